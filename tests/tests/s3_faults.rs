//! The S3 lock under faults: an atomic store, a proxy that stalls lease
//! renewals, and a multi-process stress run through a proxy that drops,
//! resets, delays and fails requests.
//!
//! Exclusion is counted against [`MotoServer::start_atomic`] only: stock
//! moto's conditional PUT is check-then-write on a threaded server and can
//! let two racing creates both win, which real S3 never does.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use condlock::backoff::Backoff;
use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{Credentials, LeaseTerms, LostReason, S3LockConfig, Takeover};
use condlock::Wait;
use condlock_integration::{http_request, FaultProxy, MotoServer, MOTO_DUMMY_AUTHORIZATION};

const BUCKET: &str = "tfstate";

fn atomic_moto() -> MotoServer {
    let moto = MotoServer::start_atomic();
    moto.create_bucket(BUCKET);
    moto
}

fn lock_at(endpoint: &str, key: &str) -> Arc<S3Lock> {
    let config = S3LockConfig::builder(BUCKET, key)
        .endpoint(endpoint)
        .build()
        .unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "moto", None).unwrap();
    Arc::new(S3Lock::new(config, CredentialSource::Static(creds)).unwrap())
}

/// GET `<key>.tflock` straight from moto (never through a proxy).
fn lock_object_status(moto: &MotoServer, key: &str) -> u16 {
    let url = format!("{}/{BUCKET}/{key}.tflock", moto.endpoint());
    http_request(
        "GET",
        &url,
        &[("authorization", MOTO_DUMMY_AUTHORIZATION)],
        b"",
    )
    .unwrap()
    .status
}

/// The reason for the atomic store: N racing `PUT If-None-Match: *` on one
/// fresh key must give exactly one 200 per round. (Stock threaded moto can
/// give two, but too rarely to assert here: `tests/race_conditional_put.py`
/// measures it.)
#[test]
fn atomic_moto_never_answers_two_creates() {
    let moto = atomic_moto();
    let threads = 12;
    for round in 0..25 {
        let url = format!("{}/{BUCKET}/race-{round}.tflock", moto.endpoint());
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (url, barrier) = (url.clone(), barrier.clone());
                thread::spawn(move || {
                    let body = format!("writer {i}");
                    barrier.wait();
                    http_request(
                        "PUT",
                        &url,
                        &[
                            ("authorization", MOTO_DUMMY_AUTHORIZATION),
                            ("if-none-match", "*"),
                            ("content-type", "application/octet-stream"),
                        ],
                        body.as_bytes(),
                    )
                    .unwrap()
                    .status
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = statuses.iter().filter(|s| **s == 200).count();
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 412),
            "round {round}: {statuses:?}"
        );
        assert_eq!(wins, 1, "round {round}: {statuses:?}");
    }
}

/// A holder whose renewals stall (the store never answers them) must learn
/// it lost the lock no later than the moment another client takes the
/// expired lease over: after that it would act as holder next to the new one.
///
/// Both locks live in this process, so both instants are on one monotonic
/// clock. The holder goes through a proxy that stalls only renewal PUTs
/// (`If-Match`); the waiter talks to moto directly (its takeover is a PUT
/// `If-Match` too, which the proxy would stall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_renewals_stall_is_told_before_it_is_taken_over() {
    let moto = atomic_moto();
    let proxy = FaultProxy::start(
        &moto.endpoint(),
        &[
            "--seed",
            "1",
            "--stall",
            "1",
            "--only-method",
            "PUT",
            "--only-header",
            "If-Match",
        ],
    );
    let key = "envs/stalled.tfstate";
    let lease_for = Duration::from_secs(3);

    let holder = lock_at(&proxy.endpoint(), key);
    let mut opts = holder.options();
    opts.who = "holder@test".into();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(lease_for));
    let lease = holder.acquire_lease(opts).await.unwrap();
    let start = Instant::now();

    let lost_at: Arc<Mutex<Option<(Instant, LostReason)>>> = Arc::default();
    let watch = lease.loss_watch();
    let watcher = {
        let lost_at = lost_at.clone();
        tokio::spawn(async move {
            if let Some(reason) = watch.wait().await {
                *lost_at.lock().unwrap() = Some((Instant::now(), reason));
            }
        })
    };

    let waiter = lock_at(&moto.endpoint(), key);
    let mut wopts = waiter.options();
    wopts.who = "waiter@test".into();
    wopts.wait = Wait::For(Duration::from_secs(20));
    wopts.wait_backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        multiplier: 2.0,
    };
    wopts.lease = Some(LeaseTerms::new(lease_for));
    wopts.takeover = Takeover {
        expired_leases: true,
        stale_without_lease: None,
    };
    let taken = waiter
        .acquire_lease(wopts)
        .await
        .expect("the waiter takes the expired lease over");
    let taken_at = Instant::now();
    assert_eq!(taken.held().generation(), 2, "a takeover, not a fresh lock");
    let stalls = proxy.stats().count("stall");
    assert!(stalls >= 1, "no renewal was stalled:\n{}", proxy.output());

    let lost = lost_at.lock().unwrap().clone();
    match lost {
        Some((at, reason)) => {
            assert!(
                at <= taken_at,
                "the holder was told {:?} after the takeover ({:?} vs {:?} after acquiring)",
                reason,
                at - start,
                taken_at - start
            );
            assert!(
                matches!(reason, LostReason::RenewalFailed { .. }),
                "{reason:?}"
            );
        }
        None => panic!(
            "the lease was taken over {:?} after it was acquired, but its holder was not \
             told it lost it (lost() = {:?}); its renewals stalled {stalls} time(s)",
            taken_at - start,
            lease.lost()
        ),
    }
    watcher.abort();
    let _ = waiter.release_lease(taken).await;
}

// ---------------------------------------------------------------------------
// Stress: processes contending through faults
// ---------------------------------------------------------------------------

/// What the stress workers' shared log shows.
#[derive(Debug, Default)]
struct StressLog {
    entries: u64,
    double_holds: Vec<String>,
}

/// Walks the log in file order: every `enter` must be followed by the same
/// worker's `exit` before any other `enter`.
fn check_log(text: &str) -> StressLog {
    let mut out = StressLog::default();
    let mut inside: Option<(String, String)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.first().copied() {
            Some("enter") => {
                out.entries += 1;
                if let Some((pid, cycle)) = &inside {
                    out.double_holds
                        .push(format!("{line} while {pid}/{cycle} was inside"));
                }
                inside = Some((f[1].to_string(), f[2].to_string()));
            }
            Some("exit") => {
                if inside != Some((f[1].to_string(), f[2].to_string())) {
                    out.double_holds
                        .push(format!("{line} but inside was {inside:?}"));
                }
                inside = None;
            }
            Some("double") => out.double_holds.push(line.to_string()),
            _ => out
                .double_holds
                .push(format!("unreadable log line {line:?}")),
        }
    }
    out
}

fn spawn_worker(endpoint: &str, key: &str, cycles: u32, log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_stress_worker"))
        .args([
            endpoint,
            key,
            &cycles.to_string(),
            log.to_str().unwrap(),
            "5",     // hold ms
            "30000", // wait ms
            "0",     // no lease: a plain lock, as Terraform's
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stress_worker")
}

/// Waits for `child` at most until `deadline`; kills it past that.
fn wait_output(mut child: Child, deadline: Instant) -> (bool, String) {
    loop {
        match child.try_wait().unwrap() {
            Some(_) => {
                let out = child.wait_with_output().unwrap();
                return (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                );
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                return (false, format!("{text}KILLED: did not finish in time\n"));
            }
            None => thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[test]
fn processes_contending_through_faults_never_hold_at_once_and_leak_nothing() {
    let moto = atomic_moto();
    // ~15% of requests faulted; seeded, so the fault sequence depends only on
    // the order requests arrive in. No stalls: they cost a whole request
    // timeout each (see the stalled-renewal test for those).
    let proxy = FaultProxy::start(
        &moto.endpoint(),
        &[
            "--seed",
            "20261202",
            "--drop-response",
            "0.03",
            "--reset",
            "0.03",
            "--delay",
            "0.03:0.2",
            "--status500",
            "0.02",
            "--slowdown",
            "0.02",
            "--conflict",
            "0.02",
        ],
    );
    let key = "envs/stress.tfstate";
    let dir = std::env::temp_dir().join(format!(
        "condlock-stress-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("holders.log");

    let (workers, cycles) = (4, 30);
    let children: Vec<Child> = (0..workers)
        .map(|_| spawn_worker(&proxy.endpoint(), key, cycles, &log))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(80);
    let outputs: Vec<(bool, String)> = children
        .into_iter()
        .map(|c| wait_output(c, deadline))
        .collect();

    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let checked = check_log(&text);
    let _ = std::fs::remove_dir_all(&dir);
    let stats = proxy.stats();
    let mut errors: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, out) in &outputs {
        for l in out.lines().filter(|l| l.starts_with("ERROR ")) {
            *errors
                .entry(l.split_whitespace().nth(1).unwrap_or("?"))
                .or_default() += 1;
        }
    }
    let report = format!(
        "entries {}, errors {errors:?}, proxy {stats:?}\nworkers: {outputs:#?}",
        checked.entries
    );
    eprintln!("stress: {report}");

    assert!(
        checked.double_holds.is_empty(),
        "double holds: {:#?}\n{report}",
        checked.double_holds
    );
    assert!(
        outputs.iter().all(|(ok, out)| *ok && out.contains("DONE ")),
        "a worker failed or hung: {report}"
    );
    assert_eq!(
        lock_object_status(&moto, key),
        404,
        "a lock was leaked: {report}"
    );
    // Not vacuous: faults did happen and most cycles got through.
    assert!(stats.total_faults() >= 10, "too few faults: {report}");
    assert!(
        checked.entries >= u64::from(workers * cycles) / 2,
        "too few critical sections: {report}"
    );
}

#[test]
fn the_log_check_sees_overlaps() {
    let ok = "enter 1 0 10 5\nexit 1 0 20\nenter 2 0 30 5\nexit 2 0 40\n";
    let c = check_log(ok);
    assert_eq!((c.entries, c.double_holds.len()), (2, 0));
    let overlap = "enter 1 0 10 5\nenter 2 0 15 5\nexit 1 0 20\nexit 2 0 40\n";
    assert!(!check_log(overlap).double_holds.is_empty());
    assert!(!check_log("enter 1 0 1 1\ndouble 2 0\nexit 1 0 2\n")
        .double_holds
        .is_empty());
}
