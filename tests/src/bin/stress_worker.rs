//! One contending process for the stress tests (`tests/tests/s3_faults.rs`,
//! `scripts/reliability.sh`): `cycles` times, acquire the lock, note the
//! critical section in a shared log, hold briefly, release.
//!
//! Log lines (appended with one `write` each to a file opened `O_APPEND`, so
//! lines from concurrent processes never interleave and the file order is the
//! order the writes happened in):
//! - `enter <pid> <cycle> <unix ns> <acquire ns>`: written right AFTER acquire
//!   returned (`acquire ns`: how long the acquire call took);
//! - `exit <pid> <cycle> <unix ns>`: written right BEFORE release is called.
//!
//! So two `enter`s without an `exit` between them are two processes inside
//! the critical section at once: a double hold. On top of that, a marker file
//! created `O_EXCL` on entry (removed on exit) catches the overlap on the
//! spot: the worker then writes `double <pid> <cycle>` to the log.
//!
//! Stdout, one line each, flushed: `HELD <id> <generation>` after the first
//! acquire with `hold-first-ms` > 0 (then it holds that long: for SIGKILL
//! takeover tests); `ERROR acquire|release <cycle> <message>`;
//! at the end `DONE held=<n> acquire_errors=<n> release_errors=<n>`.
//!
//! Usage: stress_worker <endpoint> <state key> <cycles> <log file>
//!        <hold ms> <wait ms> <lease ms, 0 = none> [<hold-first ms>]
//!
//! With a lease, expired leases are taken over (a SIGKILLed holder's lock).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use condlock::backoff::Backoff;
use condlock::native::{CredentialSource, Lease, S3Lock};
use condlock::s3::{Credentials, HeldLock, LeaseTerms, S3LockConfig, Takeover};
use condlock::Wait;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Appends `line` with a single `write` (O_APPEND: atomic for small writes).
fn log(path: &PathBuf, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the shared log");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("append to the shared log");
}

enum Held {
    Plain(Box<HeldLock>),
    Lease(Lease),
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 && args.len() != 9 {
        say("ERROR usage: stress_worker <endpoint> <key> <cycles> <log> <hold ms> <wait ms> <lease ms> [<hold-first ms>]");
        std::process::exit(2);
    }
    let num = |i: usize| -> u64 { args[i].parse().expect("a number") };
    let (endpoint, key, cycles) = (&args[1], &args[2], num(3));
    let log_path = PathBuf::from(&args[4]);
    let marker = log_path.with_extension("held");
    let (hold, wait, lease_ms) = (
        Duration::from_millis(num(5)),
        Duration::from_millis(num(6)),
        num(7),
    );
    let hold_first = Duration::from_millis(if args.len() == 9 { num(8) } else { 0 });
    let pid = std::process::id();

    let config = S3LockConfig::builder("tfstate", key.as_str())
        .endpoint(endpoint.as_str())
        .build()
        .expect("config");
    let creds = Credentials::new("AKIDEXAMPLE", "moto", None).expect("creds");
    let lock = Arc::new(S3Lock::new(config, CredentialSource::Static(creds)).expect("lock"));
    let mut opts = lock.options();
    opts.who = format!("pid-{pid}@stress");
    opts.wait = Wait::For(wait);
    // Short waits between polls: hand-off time is one of the figures measured.
    opts.wait_backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(100),
        multiplier: 2.0,
    };
    if lease_ms > 0 {
        opts.lease = Some(LeaseTerms::new(Duration::from_millis(lease_ms)));
        opts.takeover = Takeover {
            expired_leases: true,
            stale_without_lease: None,
        };
    }

    let (mut held, mut acquire_errors, mut release_errors) = (0u64, 0u64, 0u64);
    for cycle in 0..cycles {
        let started = Instant::now();
        let result = if lease_ms > 0 {
            lock.acquire_lease(opts.clone()).await.map(Held::Lease)
        } else {
            lock.acquire(opts.clone())
                .await
                .map(|h| Held::Plain(Box::new(h)))
        };
        let held_lock = match result {
            Ok(h) => h,
            Err(e) => {
                acquire_errors += 1;
                say(&format!("ERROR acquire {cycle} {e}"));
                continue;
            }
        };
        let acquire_ns = started.elapsed().as_nanos();
        log(
            &log_path,
            &format!("enter {pid} {cycle} {} {acquire_ns}", unix_ns()),
        );
        let exclusive = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok();
        if !exclusive {
            log(&log_path, &format!("double {pid} {cycle}"));
        }
        held += 1;
        if cycle == 0 && !hold_first.is_zero() {
            if let Held::Lease(l) = &held_lock {
                let h = l.held();
                say(&format!("HELD {} {}", h.info.id, h.generation()));
            }
            tokio::time::sleep(hold_first).await;
        }
        tokio::time::sleep(hold).await;
        if exclusive {
            let _ = std::fs::remove_file(&marker);
        }
        log(&log_path, &format!("exit {pid} {cycle} {}", unix_ns()));
        let released = match held_lock {
            Held::Lease(l) => lock.release_lease(l).await.map(|_| ()),
            Held::Plain(h) => lock.release(&h).await.map(|_| ()),
        };
        if let Err(e) = released {
            release_errors += 1;
            say(&format!("ERROR release {cycle} {e}"));
        }
    }
    say(&format!(
        "DONE held={held} acquire_errors={acquire_errors} release_errors={release_errors}"
    ));
}
