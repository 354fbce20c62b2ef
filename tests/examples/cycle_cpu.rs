//! The floor of the native Rust driver: client CPU (user + system, all
//! threads) per uncontended lock+unlock cycle against a local moto server, on
//! a current-thread and on a multi-thread tokio runtime. BENCHMARKS.md uses it
//! to explain the Python numbers.
//!
//! `cargo run --release -p condlock-integration --example cycle_cpu [cycles]`

use std::time::Instant;

use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{Credentials, S3LockConfig};
use condlock::Wait;
use condlock_integration::MotoServer;
use cpu_time::ProcessTime;

fn measure(runtime: tokio::runtime::Runtime, endpoint: &str, cycles: u32) -> (f64, f64) {
    runtime.block_on(async {
        let config = S3LockConfig::builder("bench", "cycle.tfstate")
            .endpoint(endpoint)
            .build()
            .expect("config");
        let creds = Credentials::new("AKIDBENCH", "bench-secret", None).expect("creds");
        let lock = S3Lock::new(config, CredentialSource::Static(creds)).expect("lock");
        let mut opts = lock.options();
        opts.wait = Wait::No;
        for _ in 0..20 {
            let held = lock.acquire(opts.clone()).await.expect("acquire");
            lock.release(&held).await.expect("release");
        }
        let (cpu, wall) = (ProcessTime::now(), Instant::now());
        for _ in 0..cycles {
            let held = lock.acquire(opts.clone()).await.expect("acquire");
            lock.release(&held).await.expect("release");
        }
        let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / f64::from(cycles);
        (per(cpu.elapsed()), per(wall.elapsed()))
    })
}

fn main() {
    let cycles: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let moto = MotoServer::start();
    moto.create_bucket("bench");
    let endpoint = moto.endpoint();
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (cpu, wall) = measure(current, &endpoint, cycles);
    println!(
        "current-thread runtime: {cpu:.0} µs CPU, {wall:.0} µs wall per cycle ({cycles} cycles)"
    );
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (cpu, wall) = measure(multi, &endpoint, cycles);
    println!("multi-thread runtime (1 worker): {cpu:.0} µs CPU, {wall:.0} µs wall per cycle ({cycles} cycles)");
}
