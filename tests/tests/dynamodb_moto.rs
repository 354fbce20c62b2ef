//! The DynamoDB lock (Terraform's `dynamodb_table`), alone and paired with
//! the S3 lock file, against moto's DynamoDB and S3 on 127.0.0.1. Each test
//! starts its own server; exclusion is counted on the atomic moto only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use condlock::backoff::Backoff;
use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{AcquireOptions, Credentials, LockInfo, S3LockConfig, UnlockOutcome};
use condlock::{Error, Wait};
use condlock_integration::{http_request, MotoServer, MOTO_DUMMY_AUTHORIZATION};
use serde_json::{json, Value};

const BUCKET: &str = "tfstate";
const TABLE: &str = "tf-locks";

fn creds() -> CredentialSource {
    CredentialSource::Static(Credentials::new("AKIDEXAMPLE", "moto-does-not-check", None).unwrap())
}

/// moto with the bucket and Terraform's lock table.
fn started(atomic: bool) -> MotoServer {
    let moto = if atomic {
        MotoServer::start_atomic()
    } else {
        MotoServer::start()
    };
    moto.create_bucket(BUCKET);
    moto.create_lock_table(TABLE, "LockID");
    moto
}

fn config(moto: &MotoServer, key: &str, table: &str, lock_file: bool) -> S3LockConfig {
    S3LockConfig::builder(BUCKET, key)
        .endpoint(moto.endpoint())
        .dynamodb_table(table)
        .dynamodb_endpoint(moto.endpoint())
        .lock_file(lock_file)
        .build()
        .unwrap()
}

fn pair(moto: &MotoServer, key: &str) -> S3Lock {
    S3Lock::new(config(moto, key, TABLE, true), creds()).unwrap()
}

fn item_only(moto: &MotoServer, key: &str) -> S3Lock {
    S3Lock::new(config(moto, key, TABLE, false), creds()).unwrap()
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

/// The item `LockID` as stored (read straight from moto).
fn raw_item(moto: &MotoServer, lock_id: &str) -> Option<Value> {
    let body =
        json!({"TableName": TABLE, "Key": {"LockID": {"S": lock_id}}, "ConsistentRead": true});
    let r = moto.dynamodb("GetItem", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let out: Value = serde_json::from_slice(&r.body).unwrap();
    out.get("Item").cloned()
}

fn raw_put(moto: &MotoServer, item: Value) {
    let body = json!({"TableName": TABLE, "Item": item});
    let r = moto.dynamodb("PutItem", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
}

fn lock_file_status(moto: &MotoServer, key: &str) -> u16 {
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

#[tokio::test]
async fn the_pair_writes_one_lock_info_to_both_and_leaves_the_digest_alone() {
    let moto = started(false);
    let key = "envs/dev/terraform.tfstate";
    let lock_id = format!("{BUCKET}/{key}");
    // Terraform's state digest item: never ours to touch.
    let digest = json!({"LockID": {"S": format!("{lock_id}-md5")}, "Digest": {"S": "d41d8cd98f00b204e9800998ecf8427e"}});
    raw_put(&moto, digest.clone());

    let l = pair(&moto, key);
    let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
    let item = raw_item(&moto, &lock_id).expect("the lock item");
    let info = LockInfo::parse(item["Info"]["S"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(info, held.info, "the item carries the lock file's LockInfo");
    assert_eq!(info.path, lock_id);
    assert_eq!(lock_file_status(&moto, key), 200);
    let holder = l.status().await.unwrap().expect("a holder");
    assert_eq!(holder.id(), Some(held.info.id.as_str()));

    assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
    assert!(raw_item(&moto, &lock_id).is_none());
    assert_eq!(lock_file_status(&moto, key), 404);
    assert_eq!(raw_item(&moto, &format!("{lock_id}-md5")), Some(digest));
    assert!(l.status().await.unwrap().is_none());
}

#[tokio::test]
async fn dynamodb_alone_writes_no_lock_file() {
    let moto = started(false);
    let l = item_only(&moto, "solo.tfstate");
    let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
    assert!(raw_item(&moto, "tfstate/solo.tfstate").is_some());
    assert_eq!(lock_file_status(&moto, "solo.tfstate"), 404);
    let other = item_only(&moto, "solo.tfstate");
    let err = other
        .try_acquire(quick(&other, "bob@x", Wait::No))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "held");
    assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
    assert!(raw_item(&moto, "tfstate/solo.tfstate").is_none());
}

#[tokio::test]
async fn an_item_written_as_terraform_writes_it_is_shown_as_the_holder() {
    let moto = started(false);
    let key = "envs/prod/terraform.tfstate";
    // Exactly what Terraform's s3 backend PutItem stores: LockID and Info.
    let info = r#"{"ID":"3f1e7a52-9c4b-2d7e-8a61-5b0c9d4e2f13","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.9.8","Created":"2026-03-04T05:06:07.891011121Z","Path":"tfstate/envs/prod/terraform.tfstate"}"#;
    raw_put(
        &moto,
        json!({"LockID": {"S": format!("{BUCKET}/{key}")}, "Info": {"S": info}}),
    );
    let l = pair(&moto, key);
    let err = l
        .try_acquire(quick(&l, "me@here", Wait::No))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "held");
    let holder = err.holder().expect("the holder");
    assert_eq!(holder.id(), Some("3f1e7a52-9c4b-2d7e-8a61-5b0c9d4e2f13"));
    assert!(err.to_string().contains("alice@build-7"), "{err}");
    // The lock file taken first was given back.
    assert_eq!(lock_file_status(&moto, key), 404);
    // Status finds the holder in the item when the file is free.
    let seen = l.status().await.unwrap().expect("a holder");
    assert_eq!(seen.id(), Some("3f1e7a52-9c4b-2d7e-8a61-5b0c9d4e2f13"));
    // And force-unlock by that ID removes it (the absent file is no error).
    assert_eq!(
        l.force_unlock("3f1e7a52-9c4b-2d7e-8a61-5b0c9d4e2f13")
            .await
            .unwrap(),
        UnlockOutcome::Released
    );
    assert!(raw_item(&moto, &format!("{BUCKET}/{key}")).is_none());
}

#[tokio::test]
async fn when_the_item_fails_the_lock_file_is_given_back() {
    let moto = started(false);
    let key = "missing-table.tfstate";
    let l = S3Lock::new(config(&moto, key, "no-such-table", true), creds()).unwrap();
    let err = l
        .try_acquire(quick(&l, "me@here", Wait::No))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_config", "{err}");
    assert_eq!(err.field(), Some("dynamodb_table"));
    assert!(err.to_string().contains("no-such-table"), "{err}");
    assert_eq!(
        lock_file_status(&moto, key),
        404,
        "no lock file left behind"
    );
}

#[tokio::test]
async fn a_table_whose_key_is_not_lock_id_is_named() {
    let moto = started(false);
    moto.create_lock_table("wrong-key", "Id");
    let l = S3Lock::new(config(&moto, "k.tfstate", "wrong-key", true), creds()).unwrap();
    let err = l
        .try_acquire(quick(&l, "me@here", Wait::No))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rejected", "{err}");
    assert!(err.to_string().contains("LockID"), "{err}");
    assert_eq!(lock_file_status(&moto, "k.tfstate"), 404);
}

#[tokio::test]
async fn a_stale_release_never_removes_another_holders_item() {
    let moto = started(false);
    let key = "stale.tfstate";
    let a = pair(&moto, key);
    let held_a = a.acquire(quick(&a, "a@x", Wait::No)).await.unwrap();
    // An operator force-unlocks A, then C takes the pair.
    assert_eq!(
        a.force_unlock(&held_a.info.id).await.unwrap(),
        UnlockOutcome::Released
    );
    let c = pair(&moto, key);
    let held_c = c.acquire(quick(&c, "c@x", Wait::No)).await.unwrap();
    let err = a.release(&held_a).await.unwrap_err();
    assert_eq!(err.code(), "not_owned", "{err}");
    assert_eq!(
        err.holder().and_then(|h| h.id()),
        Some(held_c.info.id.as_str())
    );
    let item = raw_item(&moto, &format!("{BUCKET}/{key}")).expect("C's item");
    assert!(item["Info"]["S"]
        .as_str()
        .unwrap()
        .contains(&held_c.info.id));
    assert_eq!(lock_file_status(&moto, key), 200, "C's lock file stays");
    assert_eq!(c.release(&held_c).await.unwrap(), UnlockOutcome::Released);
}

#[tokio::test]
async fn leases_are_refused_with_a_table() {
    let moto = started(false);
    let l = pair(&moto, "lease.tfstate");
    let mut opts = quick(&l, "me@here", Wait::No);
    opts.lease = Some(condlock::s3::LeaseTerms::new(Duration::from_secs(30)));
    let err = l.acquire(opts).await.unwrap_err();
    assert_eq!(err.code(), "invalid_config");
    assert_eq!(err.field(), Some("lease"));
    assert_eq!(lock_file_status(&moto, "lease.tfstate"), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pair_takers_and_item_only_takers_never_overlap() {
    let moto = started(true);
    let key = "contended.tfstate";
    let inside = Arc::new(AtomicUsize::new(0));
    let entries = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..5 {
        // Configurations mid-migration take both; older ones the item only.
        let l = if worker % 2 == 0 {
            pair(&moto, key)
        } else {
            item_only(&moto, key)
        };
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
                tokio::time::sleep(Duration::from_millis(10)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
            }
        }));
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(240), t)
            .await
            .expect("did not hang")
            .unwrap();
    }
    assert_eq!(entries.load(Ordering::SeqCst), 15);
    assert!(raw_item(&moto, &format!("{BUCKET}/{key}")).is_none());
    assert_eq!(lock_file_status(&moto, key), 404);
}

#[tokio::test]
async fn a_timed_wait_covers_the_pair_and_names_the_holder() {
    let moto = started(false);
    let key = "timed.tfstate";
    let holder = item_only(&moto, key);
    let held = holder
        .acquire(quick(&holder, "old-terraform@ci", Wait::No))
        .await
        .unwrap();
    let l = pair(&moto, key);
    let err = l
        .acquire(quick(&l, "me@here", Wait::For(Duration::from_millis(600))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    assert_eq!(
        err.holder().and_then(|h| h.id()),
        Some(held.info.id.as_str())
    );
    assert_eq!(lock_file_status(&moto, key), 404, "the file was given back");
    holder.release(&held).await.unwrap();
}

#[test]
fn error_wording_names_the_table_and_its_permissions() {
    let e = Error::AccessDenied {
        code: "AccessDeniedException".into(),
        message: "User: arn:aws:iam::1:user/x is not authorized (DynamoDB table tf-locks: the \
                  credentials need dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem)"
            .into(),
    };
    let ctx = condlock::error::Context {
        kind: condlock::error::Kind::S3,
        target: "s3://b/k.tflock and DynamoDB item b/k in table tf-locks".into(),
        endpoint: "http://127.0.0.1".into(),
    };
    let text = e.explain(&ctx, &condlock::error::CommandLine);
    assert!(text.contains("dynamodb:DeleteItem"), "{text}");
    assert!(!text.contains("s3:GetObject"), "{text}");
}

#[tokio::test]
async fn an_uncontended_cycle_costs_four_requests_with_both_and_two_with_the_item() {
    let moto = started(false);
    let l = pair(&moto, "cycle.tfstate");
    // The first acquire also proves the S3 store (2 more requests).
    let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
    l.release(&held).await.unwrap();
    for cycle in 1..=3 {
        let before = l.transport().requests_sent();
        let held = l.acquire(quick(&l, "me@here", Wait::No)).await.unwrap();
        assert_eq!(l.release(&held).await.unwrap(), UnlockOutcome::Released);
        // PUT If-None-Match, PutItem, DELETE If-Match, DeleteItem.
        assert_eq!(l.transport().requests_sent() - before, 4, "cycle {cycle}");
    }
    let item = item_only(&moto, "cycle.tfstate");
    for cycle in 1..=3 {
        let before = item.transport().requests_sent();
        let held = item
            .acquire(quick(&item, "me@here", Wait::No))
            .await
            .unwrap();
        assert_eq!(item.release(&held).await.unwrap(), UnlockOutcome::Released);
        // PutItem, DeleteItem.
        assert_eq!(
            item.transport().requests_sent() - before,
            2,
            "cycle {cycle}"
        );
    }
}
