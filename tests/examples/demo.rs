//! The README demo: a local S3 server (moto) and several workers contending for
//! one Terraform-compatible lock. Each worker says when it waits, for whom, and
//! when it holds the lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use condlock::backoff::Backoff;
use condlock::drive::Notice;
use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{Credentials, S3LockConfig};
use condlock::Wait;
use condlock_integration::MotoServer;

const WORKERS: usize = 4;
const BUCKET: &str = "tfstate";
const STATE_KEY: &str = "envs/prod/terraform.tfstate";

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    println!("starting a local S3 server (moto) on 127.0.0.1 ...");
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    println!(
        "S3 at {}; lock file s3://{BUCKET}/{STATE_KEY}.tflock\n",
        moto.endpoint()
    );

    let t0 = Instant::now();
    let stamp = move || format!("[{:>5.2}s]", t0.elapsed().as_secs_f64());
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for n in 1..=WORKERS {
        let config = S3LockConfig::builder(BUCKET, STATE_KEY)
            .endpoint(moto.endpoint())
            .build()
            .expect("valid config");
        let creds =
            Credentials::new("AKIDEXAMPLE", "demo-secret", None).expect("valid credentials");
        let lock = S3Lock::new(config, CredentialSource::Static(creds)).expect("lock");
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("worker-{n}");
            let mut opts = lock.options();
            opts.who = format!("{me}@demo");
            opts.operation = "OperationTypeApply".into();
            opts.info = format!("demo run by {me}");
            opts.wait = Wait::For(Duration::from_secs(60));
            opts.wait_backoff = Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                multiplier: 2.0,
            };
            let held = lock
                .acquire_with(opts, &Default::default(), |notice| {
                    // Said once per holder, as a person would want to read it.
                    if let Notice::Waiting {
                        holder,
                        new_holder: true,
                        ..
                    } = notice
                    {
                        println!("{} {me} waits: lock held by {holder}", stamp());
                    }
                })
                .await
                .unwrap_or_else(|e| panic!("{me} could not acquire: {e}"));
            assert_eq!(
                inside.fetch_add(1, Ordering::SeqCst),
                0,
                "two holders at once"
            );
            println!("{} {me} HOLDS the lock (ID {})", stamp(), held.info.id);
            tokio::time::sleep(Duration::from_millis(700)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            let outcome = lock
                .release(&held)
                .await
                .unwrap_or_else(|e| panic!("{me} release failed: {e}"));
            println!(
                "{} {me} released ({outcome:?}) after {} requests in all",
                stamp(),
                lock.transport().requests_sent()
            );
        }));
        // Stagger the starts so the contention is easy to follow.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.await.expect("worker");
    }
    println!("\nall {WORKERS} workers held the lock, one at a time; the lock file is gone again.");
}
