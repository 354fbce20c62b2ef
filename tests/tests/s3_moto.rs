//! The S3 lock against moto server on 127.0.0.1: real HTTP, real conditional
//! writes. Each test starts its own server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use condlock::backoff::Backoff;
use condlock::drive::{Cancel, Holder, Notice};
use condlock::native::{blocking, CredentialSource, S3Lock, VerifyConditionalWrites};
use condlock::s3::{AcquireOptions, Credentials, LockInfo, S3LockConfig, UnlockOutcome};
use condlock::{Error, Secret, Wait};
use condlock_integration::{http_request, MotoServer, MOTO_DUMMY_AUTHORIZATION};

const BUCKET: &str = "tfstate";

fn creds() -> CredentialSource {
    CredentialSource::Static(Credentials::new("AKIDEXAMPLE", "moto-does-not-check", None).unwrap())
}

fn config(moto: &MotoServer, key: &str) -> S3LockConfig {
    S3LockConfig::builder(BUCKET, key)
        .endpoint(moto.endpoint())
        .build()
        .unwrap()
}

fn lock(moto: &MotoServer, key: &str) -> S3Lock {
    S3Lock::new(config(moto, key), creds()).unwrap()
}

fn quick(lock: &S3Lock, who: &str, wait: Wait) -> AcquireOptions {
    let mut o = lock.options();
    o.who = who.to_string();
    o.wait = wait;
    o.wait_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
    };
    o
}

fn started() -> MotoServer {
    let moto = MotoServer::start();
    moto.create_bucket(BUCKET);
    moto
}

/// For tests that count exclusion: stock moto's conditional PUT is
/// check-then-write on a threaded server, so two racing creates can both win
/// there (a store bug, not condlock's); the atomic one serialises requests.
fn started_atomic() -> MotoServer {
    let moto = MotoServer::start_atomic();
    moto.create_bucket(BUCKET);
    moto
}

/// GET an object straight from moto (not through condlock).
fn raw_get(moto: &MotoServer, encoded_key: &str) -> condlock_integration::HttpResponse {
    let url = format!("{}/{BUCKET}/{encoded_key}", moto.endpoint());
    http_request(
        "GET",
        &url,
        &[("authorization", MOTO_DUMMY_AUTHORIZATION)],
        b"",
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contending_holders_never_overlap() {
    let moto = started_atomic();
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let l = lock(&moto, "envs/contended.tfstate");
        let inside = inside.clone();
        let entries = entries.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let held = l
                    .acquire(quick(&l, &format!("worker-{worker}@test"), Wait::Forever))
                    .await
                    .unwrap();
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                entries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(entries.load(Ordering::SeqCst), 18);
    assert!(lock(&moto, "envs/contended.tfstate")
        .status()
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn held_lock_reports_its_holder_and_the_body_is_terraforms() {
    let moto = started();
    let a = lock(&moto, "envs/dev/terraform.tfstate");
    let mut opts = quick(&a, "alice@ci", Wait::No);
    opts.operation = "OperationTypeApply".into();
    opts.info = "deploying v42".into();
    let held = a.acquire(opts).await.unwrap();

    let b = lock(&moto, "envs/dev/terraform.tfstate");
    let err = b
        .try_acquire(quick(&b, "bob@laptop", Wait::No))
        .await
        .unwrap_err();
    let Error::Held {
        holder: Some(holder),
    } = &err
    else {
        panic!("expected Held, got {err:?}")
    };
    let info = holder.info.as_ref().unwrap();
    assert_eq!(info.id, held.info.id);
    assert_eq!(info.who, "alice@ci");
    assert_eq!(info.operation, "OperationTypeApply");
    assert_eq!(info.info, "deploying v42");
    assert_eq!(info.path, "tfstate/envs/dev/terraform.tfstate");
    assert_eq!(holder.etag, held.etag);
    assert!(holder.last_modified.is_some());
    assert!(err.to_string().contains("alice@ci"), "{err}");

    // What is on the server is Terraform's LockInfo, field for field, in order.
    let raw = raw_get(&moto, "envs/dev/terraform.tfstate.tflock");
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    let text = raw.text();
    let order: Vec<usize> = [
        "\"ID\"",
        "\"Operation\"",
        "\"Info\"",
        "\"Who\"",
        "\"Version\"",
        "\"Created\"",
        "\"Path\"",
    ]
    .iter()
    .map(|k| {
        text.find(k)
            .unwrap_or_else(|| panic!("{k} missing in {text}"))
    })
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "field order differs from Terraform's: {text}"
    );
    assert_eq!(LockInfo::parse(&raw.body).unwrap(), held.info);
    a.release(&held).await.unwrap();
}

#[tokio::test]
async fn an_uncontended_cycle_costs_two_requests_after_the_store_is_proven() {
    let moto = started();
    let l = lock(&moto, "cycle.tfstate");
    // First acquire in this process also proves If-None-Match is enforced
    // (a second create gets 412) and so is DELETE If-Match (a DELETE naming a
    // wrong ETag gets 412): PUT, PUT, DELETE.
    let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
    assert!(held.verified_conditional_writes);
    assert_eq!(l.transport().requests_sent(), 3);
    assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
    assert_eq!(l.transport().requests_sent(), 4);
    for cycle in 1..=5 {
        let before = l.transport().requests_sent();
        let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
        assert!(
            !held.verified_conditional_writes,
            "verdict should be cached"
        );
        assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
        assert_eq!(l.transport().requests_sent() - before, 2, "cycle {cycle}");
    }
    assert_eq!(raw_get(&moto, "cycle.tfstate.tflock").status, 404);
}

#[tokio::test]
async fn release_never_deletes_someone_elses_lock() {
    let moto = started();
    let a = lock(&moto, "k.tfstate");
    let held_a = a.acquire(quick(&a, "a@x", Wait::No)).await.unwrap();
    // An operator force-unlocks A's lock, then C takes it.
    let op = lock(&moto, "k.tfstate");
    assert_eq!(
        op.force_unlock(&held_a.info.id).await.unwrap(),
        UnlockOutcome::Released
    );
    let c = lock(&moto, "k.tfstate");
    let held_c = c.acquire(quick(&c, "c@x", Wait::No)).await.unwrap();

    let err = a.release(&held_a).await.unwrap_err();
    let Error::NotOwned { holder: Some(h) } = &err else {
        panic!("expected NotOwned, got {err:?}")
    };
    assert_eq!(h.id(), Some(held_c.info.id.as_str()));
    // C's lock is intact.
    let now = c.status().await.unwrap().unwrap();
    assert_eq!(now.etag, held_c.etag);
    assert_eq!(c.release(&held_c).await.unwrap(), UnlockOutcome::Released);
    // Releasing again: already gone, reported as such.
    assert_eq!(
        c.release(&held_c).await.unwrap(),
        UnlockOutcome::AlreadyGone
    );
}

#[tokio::test]
async fn force_unlock_checks_the_id_like_terraform() {
    let moto = started();
    let a = lock(&moto, "f.tfstate");
    let held = a.acquire(quick(&a, "a@x", Wait::No)).await.unwrap();
    let op = lock(&moto, "f.tfstate");
    let err = op
        .force_unlock("00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotOwned { holder: Some(_) }),
        "{err:?}"
    );
    assert!(
        op.status().await.unwrap().is_some(),
        "a wrong ID must not delete the lock"
    );
    assert!(matches!(
        op.force_unlock("").await,
        Err(Error::InvalidConfig {
            field: "lock_id",
            ..
        })
    ));
    assert_eq!(
        op.force_unlock(&held.info.id).await.unwrap(),
        UnlockOutcome::Released
    );
    assert!(op.status().await.unwrap().is_none());
    assert_eq!(
        op.force_unlock(&held.info.id).await.unwrap(),
        UnlockOutcome::AlreadyGone
    );
}

#[tokio::test]
async fn waiting_times_out_with_the_holder_and_cancellation_stops_a_wait() {
    let moto = started();
    let a = lock(&moto, "w.tfstate");
    let held = a.acquire(quick(&a, "a@x", Wait::No)).await.unwrap();
    let b = lock(&moto, "w.tfstate");

    let t0 = Instant::now();
    let mut seen = Vec::new();
    let err = b
        .acquire_with(
            quick(&b, "b@x", Wait::For(Duration::from_millis(800))),
            &Cancel::new(),
            // Each new holder is reported once.
            |n| {
                if let Notice::Waiting {
                    holder: Holder::S3(h),
                    new_holder: true,
                    ..
                } = n
                {
                    seen.push(h.id().unwrap_or_default().to_string())
                }
            },
        )
        .await
        .unwrap_err();
    let waited = t0.elapsed();
    let Error::Timeout {
        holder: Some(h), ..
    } = &err
    else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!(h.id(), Some(held.info.id.as_str()));
    assert_eq!(
        seen,
        vec![held.info.id.clone()],
        "on_wait is called once per new holder"
    );
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    let cancel = Cancel::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let t0 = Instant::now();
    let err = b
        .acquire_with(quick(&b, "b@x", Wait::Forever), &cancel, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The holder is untouched.
    assert_eq!(b.status().await.unwrap().unwrap().etag, held.etag);

    // Once released, the waiter gets it.
    a.release(&held).await.unwrap();
    let got = b
        .acquire(quick(&b, "b@x", Wait::For(Duration::from_secs(5))))
        .await
        .unwrap();
    b.release(&got).await.unwrap();
}

#[tokio::test]
async fn workspaces_and_tricky_keys_land_where_terraform_puts_them() {
    let moto = started();
    let cfg = S3LockConfig::builder(BUCKET, "a b/ü.tfstate")
        .workspace("dev")
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    assert_eq!(cfg.lock_key(), "env:/dev/a b/ü.tfstate.tflock");
    let l = S3Lock::new(cfg, creds()).unwrap();
    let held = l.acquire(quick(&l, "w@x", Wait::No)).await.unwrap();
    let raw = raw_get(&moto, "env%3A/dev/a%20b/%C3%BC.tfstate.tflock");
    assert_eq!(raw.status, 200, "{}", raw.text());
    assert_eq!(
        LockInfo::parse(&raw.body).unwrap().path,
        "tfstate/env:/dev/a b/ü.tfstate"
    );
    l.release(&held).await.unwrap();
    assert_eq!(
        raw_get(&moto, "env%3A/dev/a%20b/%C3%BC.tfstate.tflock").status,
        404
    );

    let empty_prefix = S3LockConfig::builder(BUCKET, "k")
        .workspace("prod")
        .workspace_key_prefix("")
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    let l = S3Lock::new(empty_prefix, creds()).unwrap();
    let held = l.acquire(quick(&l, "w@x", Wait::No)).await.unwrap();
    assert_eq!(raw_get(&moto, "prod/k.tflock").status, 200);
    l.release(&held).await.unwrap();
}

#[tokio::test]
async fn sse_c_locks_show_their_holder() {
    let moto = started();
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let sse = |who: &str| {
        let cfg = S3LockConfig::builder(BUCKET, "secret.tfstate")
            .endpoint(moto.endpoint())
            .sse_customer_key(key)
            .build()
            .unwrap();
        let l = S3Lock::new(cfg, creds()).unwrap();
        let o = quick(&l, who, Wait::No);
        (l, o)
    };
    let (a, oa) = sse("a@x");
    let held = a.acquire(oa).await.unwrap();
    let (b, ob) = sse("b@x");
    let err = b.try_acquire(ob).await.unwrap_err();
    assert_eq!(
        err.holder()
            .and_then(|h| h.info.as_ref().ok())
            .map(|i| i.who.as_str()),
        Some("a@x"),
        "{err:?}"
    );
    let status = b.status().await.unwrap().unwrap();
    assert_eq!(status.id(), Some(held.info.id.as_str()));
    assert!(
        !format!("{err:?} {err} {b:?}").contains(key),
        "SSE-C key leaked"
    );
    a.release(&held).await.unwrap();
}

#[tokio::test]
async fn a_missing_bucket_is_named() {
    let moto = started();
    let cfg = S3LockConfig::builder("no-such-bucket", "k")
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    let l = S3Lock::new(cfg, creds()).unwrap();
    let err = l.try_acquire(quick(&l, "x@y", Wait::No)).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchBucket { bucket } if bucket == "no-such-bucket"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_store_is_a_transport_error_within_the_budget() {
    // A port nothing listens on (bind then drop).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = S3LockConfig::builder(BUCKET, "k")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let l = S3Lock::new(cfg, creds()).unwrap();
    let mut o = quick(&l, "x@y", Wait::No);
    o.transient_budget = Duration::from_millis(700);
    let t0 = Instant::now();
    let err = l.try_acquire(o).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
}

#[test]
fn blocking_guard_releases_on_drop() {
    let moto = started();
    let l = blocking::S3Lock::new(config(&moto, "g.tfstate"), creds()).unwrap();
    {
        let mut o = l.options();
        o.wait = Wait::No;
        let guard = l.lock(o).unwrap();
        assert_eq!(l.status().unwrap().unwrap().etag, guard.held().etag);
    }
    assert!(
        l.status().unwrap().is_none(),
        "dropping the guard must release the lock"
    );
}

#[tokio::test]
async fn signatures_are_checked_in_auth_mode() {
    let (moto, key) = MotoServer::start_with_auth(BUCKET);
    let tricky = S3LockConfig::builder(BUCKET, "a b/ü+%/~x.tfstate")
        .workspace("dev")
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    let good = CredentialSource::Static(
        Credentials::new(
            key.access_key_id.clone(),
            key.secret_access_key.clone(),
            None,
        )
        .unwrap(),
    );
    let l = S3Lock::new(tricky.clone(), good).unwrap();
    let held = l.acquire(quick(&l, "signed@x", Wait::No)).await.unwrap();
    assert!(l.status().await.unwrap().is_some());
    assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);

    let wrong = CredentialSource::Static(
        Credentials::new(
            key.access_key_id.clone(),
            Secret::new("not-the-secret"),
            None,
        )
        .unwrap(),
    );
    let l = S3Lock::new(tricky, wrong).unwrap();
    let err = l.try_acquire(quick(&l, "x@y", Wait::No)).await.unwrap_err();
    let Error::AccessDenied { code, .. } = &err else {
        panic!("expected AccessDenied, got {err:?}")
    };
    assert_eq!(code, "SignatureDoesNotMatch");
    assert!(err.to_string().contains("secret access key"), "{err}");
    assert!(!format!("{err:?}").contains("not-the-secret"));
}

#[tokio::test]
async fn trusting_without_proof_is_an_explicit_choice() {
    let moto = started();
    let l = lock(&moto, "trust.tfstate")
        .verify_conditional_writes(VerifyConditionalWrites::TrustWithoutProof);
    let held = l.acquire(quick(&l, "t@x", Wait::No)).await.unwrap();
    assert!(!held.verified_conditional_writes);
    assert_eq!(l.transport().requests_sent(), 1);
    l.release(&held).await.unwrap();
}
