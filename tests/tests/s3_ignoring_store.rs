//! Against s3rver, a store that silently ignores `If-None-Match`: condlock must
//! refuse to call that a lock, and must leave nothing behind.

use condlock::native::{CredentialSource, S3Lock, VerifyConditionalWrites};
use condlock::s3::{Credentials, S3LockConfig};
use condlock::{Error, Wait};
use condlock_integration::{http_request, S3rver, S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY};

const BUCKET: &str = "tfstate";

fn lock(server: &S3rver) -> S3Lock {
    let cfg = S3LockConfig::builder(BUCKET, "envs/dev/terraform.tfstate")
        .endpoint(server.endpoint())
        .build()
        .unwrap();
    let creds = Credentials::new(S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY, None).unwrap();
    S3Lock::new(cfg, CredentialSource::Static(creds)).unwrap()
}

#[tokio::test]
async fn acquire_fails_with_conditional_writes_unsupported_and_leaves_nothing() {
    let server = S3rver::start(BUCKET);
    let l = lock(&server);
    let mut o = l.options();
    o.wait = Wait::No;
    let err = l.acquire(o.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConditionalWritesUnsupported { bucket, .. } if bucket == BUCKET),
        "{err:?}"
    );
    assert!(err.to_string().contains("ignores If-None-Match"), "{err}");
    // PUT, verification PUT (accepted: the proof fails), DELETE of our lock.
    assert_eq!(l.transport().requests_sent(), 3);
    let url = format!(
        "{}/{BUCKET}/envs/dev/terraform.tfstate.tflock",
        server.endpoint()
    );
    assert_eq!(
        http_request("GET", &url, &[], b"").unwrap().status,
        404,
        "the lock was left behind"
    );

    // A failed verdict is never cached: the next acquire proves again, fails again.
    let err = l.acquire(o).await.unwrap_err();
    assert!(
        matches!(err, Error::ConditionalWritesUnsupported { .. }),
        "{err:?}"
    );
    assert_eq!(http_request("GET", &url, &[], b"").unwrap().status, 404);
}

#[tokio::test]
async fn opting_out_of_the_proof_is_explicit_and_then_trusts_the_store() {
    let server = S3rver::start(BUCKET);
    let l = lock(&server).verify_conditional_writes(VerifyConditionalWrites::TrustWithoutProof);
    let mut o = l.options();
    o.wait = Wait::No;
    let held = l.acquire(o).await.unwrap();
    assert!(!held.verified_conditional_writes);
    l.release(&held).await.unwrap();
}
