//! A lock holder or waiter in its own process, for the lease integration
//! tests (a holder killed with SIGKILL must be taken over by exactly one
//! waiter). Prints one line per event, flushed:
//! `HELD <id> <generation>`, `ACQUIRED <id> <generation>`, `TIMEOUT`,
//! `RELEASED`, `ERROR <message>`.
//!
//! Usage: lease_holder <endpoint> <state key> hold|wait <lease ms> <wait ms> <hold ms>

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use condlock::backoff::Backoff;
use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{Credentials, LeaseTerms, S3LockConfig, Takeover};
use condlock::{Error, Wait};

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        say("ERROR usage: lease_holder <endpoint> <key> hold|wait <lease ms> <wait ms> <hold ms>");
        std::process::exit(2);
    }
    let ms = |i: usize| Duration::from_millis(args[i].parse().expect("milliseconds"));
    let (lease, wait, hold) = (ms(4), ms(5), ms(6));
    let config = S3LockConfig::builder("tfstate", args[2].as_str())
        .endpoint(args[1].as_str())
        .build()
        .expect("config");
    let creds = Credentials::new("AKIDEXAMPLE", "moto", None).expect("creds");
    let lock = Arc::new(S3Lock::new(config, CredentialSource::Static(creds)).expect("lock"));
    let mut opts = lock.options();
    opts.who = format!("pid-{}@test", std::process::id());
    opts.lease = Some(LeaseTerms::new(lease));
    opts.wait_backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
        multiplier: 2.0,
    };
    let waiter = args[3] == "wait";
    if waiter {
        opts.wait = Wait::For(wait);
        opts.takeover = Takeover {
            expired_leases: true,
            stale_without_lease: None,
        };
    } else {
        opts.wait = Wait::No;
    }
    match lock.acquire_lease(opts).await {
        Ok(lease) => {
            let held = lease.held();
            let word = if waiter { "ACQUIRED" } else { "HELD" };
            say(&format!("{word} {} {}", held.info.id, held.generation()));
            tokio::time::sleep(hold).await;
            match lock.release_lease(lease).await {
                Ok(_) => say("RELEASED"),
                Err(e) => say(&format!("ERROR {e}")),
            }
        }
        Err(Error::Timeout { .. }) => say("TIMEOUT"),
        Err(e) => say(&format!("ERROR {e}")),
    }
}
