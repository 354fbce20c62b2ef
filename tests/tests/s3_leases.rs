//! Leases against moto: takeover of a SIGKILLed holder by exactly one of
//! several waiting processes, lost-lock reasons seen at the next renewal, and
//! release that stops renewal for good.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{Credentials, LeaseTerms, LockInfo, LostReason, S3LockConfig, UnlockOutcome};
use condlock::{Error, Wait};
use condlock_integration::{http_request, MotoServer, MOTO_DUMMY_AUTHORIZATION};

const BUCKET: &str = "tfstate";

fn started() -> MotoServer {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    moto
}

fn lock(moto: &MotoServer, key: &str) -> Arc<S3Lock> {
    let config = S3LockConfig::builder(BUCKET, key)
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "moto", None).unwrap();
    Arc::new(S3Lock::new(config, CredentialSource::Static(creds)).unwrap())
}

fn spawn_holder(
    moto: &MotoServer,
    key: &str,
    mode: &str,
    lease_ms: u64,
    wait_ms: u64,
    hold_ms: u64,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lease_holder"))
        .args([
            &moto.endpoint(),
            key,
            mode,
            &lease_ms.to_string(),
            &wait_ms.to_string(),
            &hold_ms.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn lease_holder")
}

fn lines_of(child: Child) -> Vec<String> {
    let out = child.wait_with_output().expect("lease_holder output");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_killed_holder_is_taken_over_by_exactly_one_waiting_process() {
    // Counts winners: on stock (threaded) moto two racing takeover PUTs
    // (If-Match) can both pass moto's check-then-write; the atomic store
    // serialises requests, as real S3 is atomic.
    let moto = MotoServer::start_atomic();
    moto.create_bucket(BUCKET);
    let key = "envs/killed.tfstate";
    let mut holder = spawn_holder(&moto, key, "hold", 2_000, 0, 600_000);
    let mut first = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"HELD"), "holder said {first:?}");
    let dead_id = fields[1].to_string();
    assert_eq!(fields[2], "1", "a fresh lock is generation 1");
    holder.kill().unwrap(); // SIGKILL: no release, no more renewals
    holder.wait().unwrap();

    let waiters: Vec<Child> = (0..4)
        .map(|_| spawn_holder(&moto, key, "wait", 2_000, 9_000, 12_000))
        .collect();
    let outputs: Vec<Vec<String>> = waiters.into_iter().map(lines_of).collect();
    let winners: Vec<&Vec<String>> = outputs
        .iter()
        .filter(|o| o.first().is_some_and(|l| l.starts_with("ACQUIRED")))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one waiter must take over: {outputs:?}"
    );
    let winner: Vec<&str> = winners[0][0].split_whitespace().collect();
    assert_ne!(winner[1], dead_id);
    assert_eq!(winner[2], "2", "takeover bumps the generation: {outputs:?}");
    assert_eq!(
        winners[0].get(1).map(String::as_str),
        Some("RELEASED"),
        "{outputs:?}"
    );
    for o in &outputs {
        if !std::ptr::eq(o, winners[0]) {
            assert_eq!(
                o,
                &vec!["TIMEOUT".to_string()],
                "a live, renewing winner must not be taken over"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_unlocked_holder_learns_it_is_gone_at_its_next_renewal() {
    let moto = started();
    let l = lock(&moto, "gone.tfstate");
    let mut opts = l.options();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let lease = l.acquire_lease(opts).await.unwrap();
    assert_eq!(lease.lost(), None);
    let id = lease.held().info.id;
    let operator = lock(&moto, "gone.tfstate");
    assert_eq!(
        operator.force_unlock(&id).await.unwrap(),
        UnlockOutcome::Released
    );

    let reason = tokio::time::timeout(Duration::from_secs(5), lease.wait_lost())
        .await
        .expect("no lost signal");
    assert_eq!(reason, LostReason::Gone);
    assert_eq!(lease.lost(), Some(LostReason::Gone));
    let err = l.release_lease(lease).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Lost {
                reason: LostReason::Gone
            }
        ),
        "{err:?}"
    );
    assert!(
        operator.status().await.unwrap().is_none(),
        "a lost lease must not come back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_lock_is_reported_stolen() {
    let moto = started();
    let l = lock(&moto, "stolen.tfstate");
    let mut opts = l.options();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let lease = l.acquire_lease(opts).await.unwrap();

    // Someone writes the lock file unconditionally (a misbehaving tool).
    let intruder = r#"{"ID":"99999999-0000-0000-0000-000000000000","Operation":"OperationTypeApply","Info":"","Who":"rogue@box","Version":"1.11.4","Created":"2026-11-22T03:00:00Z","Path":"tfstate/stolen.tfstate"}"#;
    let url = format!("{}/{BUCKET}/stolen.tfstate.tflock", moto.endpoint());
    let put = http_request(
        "PUT",
        &url,
        &[("authorization", MOTO_DUMMY_AUTHORIZATION)],
        intruder.as_bytes(),
    )
    .unwrap();
    assert_eq!(put.status, 200);

    let reason = tokio::time::timeout(Duration::from_secs(5), lease.wait_lost())
        .await
        .expect("no lost signal");
    let LostReason::Stolen { holder: Some(h) } = &reason else {
        panic!("expected stolen, got {reason:?}")
    };
    assert_eq!(h.info.as_ref().unwrap().who, "rogue@box");
    assert!(matches!(
        l.release_lease(lease).await,
        Err(Error::Lost {
            reason: LostReason::Stolen { .. }
        })
    ));
    // The intruder's lock is left alone.
    let now = l.status().await.unwrap().unwrap();
    assert_eq!(now.id(), Some("99999999-0000-0000-0000-000000000000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_change_the_etag_and_release_stops_them_for_good() {
    let moto = started();
    let l = lock(&moto, "renew.tfstate");
    let mut opts = l.options();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let lease = l.acquire_lease(opts).await.unwrap();
    let first = lease.fencing_token();
    assert_eq!(first.0, 1);
    tokio::time::sleep(Duration::from_millis(2_300)).await; // two renewals (every 1 s)
    let later = lease.fencing_token();
    assert_eq!(later.0, 1, "renewal keeps the generation");
    assert_ne!(later.1, first.1, "renewal changes the ETag");
    let on_server = l.status().await.unwrap().unwrap();
    assert_eq!(on_server.etag, later.1);
    let renewals = on_server
        .info
        .as_ref()
        .unwrap()
        .lease
        .as_ref()
        .unwrap()
        .renewals;
    assert!(renewals >= 2, "renewals recorded: {renewals}");
    assert_eq!(lease.lost(), None);

    assert_eq!(
        l.release_lease(lease).await.unwrap(),
        UnlockOutcome::Released
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        l.status().await.unwrap().is_none(),
        "a renewal after release brought the lock back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terraform_lock_is_never_taken_over_by_default() {
    let moto = started();
    // Terraform's own lock body (no lease), written as Terraform writes it.
    let body = r#"{"ID":"6e2f9a53-fdfb-3451-f77a-25cd696a5968","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.11.4","Created":"2026-11-22T03:26:23.961866795Z","Path":"tfstate/tf.tfstate"}"#;
    let url = format!("{}/{BUCKET}/tf.tfstate.tflock", moto.endpoint());
    let put = http_request(
        "PUT",
        &url,
        &[
            ("authorization", MOTO_DUMMY_AUTHORIZATION),
            ("if-none-match", "*"),
        ],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(put.status, 200);
    let l = lock(&moto, "tf.tfstate");
    let mut opts = l.options();
    opts.wait = Wait::For(Duration::from_millis(2_500));
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(2)));
    opts.takeover.expired_leases = true;
    let err = l.acquire_lease(opts).await.unwrap_err();
    let Error::Timeout {
        holder: Some(h), ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(h.id(), Some("6e2f9a53-fdfb-3451-f77a-25cd696a5968"));
    let still = http_request(
        "GET",
        &url,
        &[("authorization", MOTO_DUMMY_AUTHORIZATION)],
        b"",
    )
    .unwrap();
    assert_eq!(LockInfo::parse(&still.body).unwrap().who, "root@vm");
}
