//! The DynamoDB machines against an in-memory table that applies each
//! request's condition as DynamoDB does, on a virtual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::acquire::{Acquire, Waiting};
use super::release::{Release, Status};
use super::request::operation;
use super::DynamoDbTable;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::progress::Notice;
use crate::s3::{Credentials, LockInfo, UnlockOutcome};
use crate::sansio::{run_virtual, Body, Machine, TransportFailure, Wait};
use crate::secret::Secret;
use crate::time::{ClockOffset, Now};

const LOCK_ID: &str = "tfstate/envs/dev/terraform.tfstate";

fn table() -> Arc<DynamoDbTable> {
    Arc::new(DynamoDbTable::new("tf-locks", Some("http://127.0.0.1:5000"), "us-east-1").unwrap())
}

fn creds() -> Credentials {
    Credentials {
        access_key_id: "AKID".into(),
        secret_access_key: Secret::from("secret"),
        session_token: None,
    }
}

fn info(id_byte: u8, who: &str) -> LockInfo {
    LockInfo::new(
        [id_byte; 16],
        "OperationTypeApply",
        "",
        who,
        LOCK_ID,
        SystemTime::UNIX_EPOCH,
    )
}

fn info_text(i: &LockInfo) -> String {
    String::from_utf8(i.to_json()).unwrap()
}

fn waiting(wait: Wait) -> Waiting {
    Waiting {
        wait,
        wait_backoff: Backoff::WAIT_FOR_HOLDER,
        retry_backoff: Backoff::TRANSIENT,
        transient_budget: Duration::from_secs(30),
        cleanup_budget: Duration::from_secs(10),
        waited_before: Duration::ZERO,
    }
}

fn acquire(ours: &LockInfo, wait: Wait) -> Acquire {
    Acquire::new(
        table(),
        creds(),
        LOCK_ID.into(),
        ours,
        waiting(wait),
        7,
        ClockOffset::default(),
    )
}

fn response(status: u16, body: Value) -> http::Response<Body> {
    http::Response::builder()
        .status(status)
        .body(body.to_string().into_bytes())
        .unwrap()
}

pub(crate) fn error(name: &str) -> http::Response<Body> {
    response(
        400,
        json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{name}"), "message": name}),
    )
}

/// LockID -> Info, with DynamoDB's conditional semantics (also used by
/// the driver's tests of the pair).
#[derive(Default)]
pub(crate) struct Table {
    pub(crate) items: HashMap<String, String>,
}

impl Table {
    fn holding(info: &str) -> Self {
        let mut t = Table::default();
        t.items.insert(LOCK_ID.into(), info.into());
        t
    }

    pub(crate) fn apply(&mut self, req: &http::Request<Body>) -> http::Response<Body> {
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(body["TableName"], "tf-locks");
        match operation(req).unwrap() {
            "PutItem" => {
                assert_eq!(body["ConditionExpression"], "attribute_not_exists(LockID)");
                let id = body["Item"]["LockID"]["S"].as_str().unwrap().to_string();
                if self.items.contains_key(&id) {
                    return error("ConditionalCheckFailedException");
                }
                let info = body["Item"]["Info"]["S"].as_str().unwrap().to_string();
                self.items.insert(id, info);
                response(200, json!({}))
            }
            "GetItem" => {
                assert_eq!(body["ConsistentRead"], true);
                let id = body["Key"]["LockID"]["S"].as_str().unwrap();
                match self.items.get(id) {
                    Some(info) => response(
                        200,
                        json!({"Item": {"LockID": {"S": id}, "Info": {"S": info}}}),
                    ),
                    None => response(200, json!({})),
                }
            }
            "DeleteItem" => {
                let id = body["Key"]["LockID"]["S"].as_str().unwrap();
                assert_eq!(body["ConditionExpression"], "#info = :info");
                let wanted = body["ExpressionAttributeValues"][":info"]["S"]
                    .as_str()
                    .unwrap();
                if self.items.get(id).map(String::as_str) != Some(wanted) {
                    return error("ConditionalCheckFailedException");
                }
                self.items.remove(id);
                response(200, json!({}))
            }
            other => panic!("unexpected operation {other}"),
        }
    }
}

fn ops(sent: &[(Now, http::Request<Body>)]) -> Vec<&str> {
    sent.iter().map(|(_, r)| operation(r).unwrap()).collect()
}

fn drain<M: Machine>(m: &mut M) -> Vec<Notice> {
    std::iter::from_fn(|| m.poll_notice()).collect()
}

#[test]
fn a_free_lock_is_one_put_item() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let (result, sent) = run_virtual(
        &mut acquire(&ours, Wait::No),
        Now::virtual_origin(),
        |r, _| Ok(t.apply(r)),
    );
    assert_eq!(result.unwrap(), info_text(&ours));
    assert_eq!(ops(&sent), ["PutItem"]);
    assert_eq!(t.items[LOCK_ID], info_text(&ours));
}

#[test]
fn a_terraform_holder_is_reported_when_not_waiting() {
    let theirs = info(9, "alice@ci");
    let mut t = Table::holding(&info_text(&theirs));
    let (result, sent) = run_virtual(
        &mut acquire(&info(1, "me@here"), Wait::No),
        Now::virtual_origin(),
        |r, _| Ok(t.apply(r)),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "held");
    assert_eq!(err.holder().unwrap().id(), Some(theirs.id.as_str()));
    assert_eq!(ops(&sent), ["PutItem", "GetItem"]);
    assert_eq!(
        t.items[LOCK_ID],
        info_text(&theirs),
        "the holder's item is untouched"
    );
}

#[test]
fn a_timed_wait_reports_the_holder_and_waiting_notices() {
    let theirs = info(9, "alice@ci");
    let mut t = Table::holding(&info_text(&theirs));
    let mut m = acquire(&info(1, "me@here"), Wait::For(Duration::from_secs(20)));
    let mut notices = Vec::new();
    let (result, sent) = run_virtual(&mut m, Now::virtual_origin(), |r, _| Ok(t.apply(r)));
    notices.extend(drain(&mut m));
    let err = result.unwrap_err();
    assert_eq!(err.code(), "timeout");
    assert!(err.waited().unwrap() >= Duration::from_secs(20));
    assert_eq!(err.holder().unwrap().id(), Some(theirs.id.as_str()));
    assert!(sent.len() > 4, "it kept trying: {:?}", ops(&sent));
    // The last attempt is at the deadline, never past it.
    let last = sent.last().unwrap().0.monotonic;
    assert!(last <= Now::virtual_origin().monotonic + Duration::from_secs(20));
    assert!(notices.iter().any(|n| matches!(n, Notice::Waiting { .. })));
}

#[test]
fn waiting_ends_when_the_holder_lets_go() {
    let theirs = info(9, "alice@ci");
    let ours = info(1, "me@here");
    let mut t = Table::holding(&info_text(&theirs));
    let start = Now::virtual_origin();
    let (result, _) = run_virtual(&mut acquire(&ours, Wait::Forever), start, |r, now| {
        if now.monotonic >= start.monotonic + Duration::from_secs(5) {
            t.items.retain(|_, v| *v != info_text(&theirs));
        }
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap(), info_text(&ours));
    assert_eq!(t.items[LOCK_ID], info_text(&ours));
}

#[test]
fn a_put_item_whose_answer_was_lost_is_resolved_by_reading_back() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut first = true;
    let (result, sent) = run_virtual(
        &mut acquire(&ours, Wait::No),
        Now::virtual_origin(),
        |r, _| {
            let resp = t.apply(r);
            if std::mem::take(&mut first) {
                // Applied, but the answer never came back.
                return Err(TransportFailure::maybe_sent("connection reset"));
            }
            Ok(resp)
        },
    );
    assert_eq!(
        result.unwrap(),
        info_text(&ours),
        "our own item: we hold it"
    );
    assert_eq!(ops(&sent), ["PutItem", "PutItem", "GetItem"]);
}

#[test]
fn a_server_error_after_the_write_is_not_taken_as_held_by_someone_else() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut first = true;
    let (result, _) = run_virtual(
        &mut acquire(&ours, Wait::No),
        Now::virtual_origin(),
        |r, _| {
            let resp = t.apply(r);
            if std::mem::take(&mut first) {
                return Ok(response(500, json!({"__type": "InternalServerError"})));
            }
            Ok(resp)
        },
    );
    assert_eq!(result.unwrap(), info_text(&ours));
}

#[test]
fn giving_up_after_an_unsure_write_removes_only_our_item() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut n = 0;
    let (result, sent) = run_virtual(
        &mut acquire(&ours, Wait::No),
        Now::virtual_origin(),
        |r, _| {
            n += 1;
            match n {
                1 => {
                    t.apply(r);
                    Err(TransportFailure::maybe_sent("reset"))
                }
                2 => Ok(error("AccessDeniedException")),
                _ => Ok(t.apply(r)),
            }
        },
    );
    assert_eq!(result.unwrap_err().code(), "access_denied");
    assert_eq!(ops(&sent), ["PutItem", "PutItem", "DeleteItem"]);
    assert!(
        t.items.is_empty(),
        "the item we may have written was removed"
    );
}

#[test]
fn cancelling_after_an_unsure_write_removes_our_item() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut m = acquire(&ours, Wait::Forever);
    let now = Now::virtual_origin();
    let crate::sansio::Action::Send(put) = m.step(crate::sansio::Event::Start, now) else {
        panic!("expected a PutItem");
    };
    t.apply(&put);
    let failed = crate::sansio::Event::TransportFailed(TransportFailure::maybe_sent("timeout"));
    assert!(matches!(
        m.step(failed, now),
        crate::sansio::Action::SleepUntil(_)
    ));
    let crate::sansio::Action::Send(delete) = m.step(crate::sansio::Event::Cancelled, now) else {
        panic!("expected the cleanup DeleteItem");
    };
    assert_eq!(operation(&delete), Some("DeleteItem"));
    let resp = t.apply(&delete);
    match m.step(crate::sansio::Event::Response(resp), now) {
        crate::sansio::Action::Done(Err(Error::Cancelled)) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.items.is_empty());
}

#[test]
fn throttling_is_retried_with_backoff() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut throttles = [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ]
    .into_iter();
    let mut m = acquire(&ours, Wait::Forever);
    let (result, sent) = run_virtual(&mut m, Now::virtual_origin(), |r, _| {
        Ok(match throttles.next() {
            Some(name) => error(name),
            None => t.apply(r),
        })
    });
    assert_eq!(result.unwrap(), info_text(&ours));
    assert_eq!(ops(&sent), ["PutItem"; 4]);
    assert!(sent[1].0.monotonic > sent[0].0.monotonic, "it backed off");
    let retrying = drain(&mut m)
        .into_iter()
        .filter(|n| matches!(n, Notice::Retrying { .. }))
        .count();
    assert_eq!(retrying, 3);
}

#[test]
fn a_missing_table_a_denial_and_a_wrong_key_are_final() {
    for (name, code, field) in [
        (
            "ResourceNotFoundException",
            "invalid_config",
            Some("dynamodb_table"),
        ),
        ("AccessDeniedException", "access_denied", None),
        ("ValidationException", "rejected", None),
    ] {
        let (result, sent) = run_virtual(
            &mut acquire(&info(1, "me@here"), Wait::Forever),
            Now::virtual_origin(),
            |_, _| Ok(error(name)),
        );
        let err = result.unwrap_err();
        assert_eq!(err.code(), code, "{name}");
        assert_eq!(err.field(), field, "{name}");
        assert_eq!(sent.len(), 1, "{name} is not retried");
    }
}

fn release(ours: &LockInfo) -> Release {
    Release::ours(
        table(),
        creds(),
        LOCK_ID.into(),
        info_text(ours),
        Duration::from_secs(30),
        3,
        ClockOffset::default(),
    )
}

#[test]
fn release_deletes_our_item() {
    let ours = info(1, "me@here");
    let mut t = Table::holding(&info_text(&ours));
    let (result, sent) = run_virtual(&mut release(&ours), Now::virtual_origin(), |r, _| {
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(ops(&sent), ["DeleteItem"]);
    assert!(t.items.is_empty());
}

#[test]
fn a_stale_release_never_removes_another_holders_item() {
    let ours = info(1, "me@here");
    let theirs = info(9, "alice@ci");
    // Our item was force-unlocked and alice took the lock since.
    let mut t = Table::holding(&info_text(&theirs));
    let (result, sent) = run_virtual(&mut release(&ours), Now::virtual_origin(), |r, _| {
        Ok(t.apply(r))
    });
    let err = result.unwrap_err();
    assert_eq!(err.code(), "not_owned");
    assert_eq!(err.holder().unwrap().id(), Some(theirs.id.as_str()));
    assert_eq!(ops(&sent), ["DeleteItem", "GetItem"]);
    assert_eq!(t.items[LOCK_ID], info_text(&theirs));
}

#[test]
fn releasing_an_item_already_gone_says_so() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let (result, _) = run_virtual(&mut release(&ours), Now::virtual_origin(), |r, _| {
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap(), UnlockOutcome::AlreadyGone);
}

#[test]
fn a_release_retries_a_lost_answer_and_learns_it_is_gone() {
    let ours = info(1, "me@here");
    let mut t = Table::holding(&info_text(&ours));
    let mut first = true;
    let (result, sent) = run_virtual(&mut release(&ours), Now::virtual_origin(), |r, _| {
        let resp = t.apply(r);
        if std::mem::take(&mut first) {
            return Err(TransportFailure::maybe_sent("reset"));
        }
        Ok(resp)
    });
    assert_eq!(result.unwrap(), UnlockOutcome::AlreadyGone);
    assert_eq!(ops(&sent), ["DeleteItem", "DeleteItem", "GetItem"]);
}

fn force(wanted: &str) -> Release {
    Release::force(
        table(),
        creds(),
        LOCK_ID.into(),
        wanted,
        Duration::from_secs(30),
        3,
        ClockOffset::default(),
    )
}

#[test]
fn force_unlock_removes_the_item_with_that_id_only() {
    let theirs = info(9, "alice@ci");
    let mut t = Table::holding(&info_text(&theirs));
    let (result, _) = run_virtual(&mut force("not-that-id"), Now::virtual_origin(), |r, _| {
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap_err().code(), "not_owned");
    assert_eq!(t.items.len(), 1);
    let (result, sent) = run_virtual(&mut force(&theirs.id), Now::virtual_origin(), |r, _| {
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(ops(&sent), ["GetItem", "DeleteItem"]);
    assert!(t.items.is_empty());
}

#[test]
fn status_reads_the_holder() {
    let theirs = info(9, "alice@ci");
    let mut t = Table::holding(&info_text(&theirs));
    let status = || {
        Status::new(
            table(),
            creds(),
            LOCK_ID.into(),
            Duration::from_secs(10),
            1,
            ClockOffset::default(),
        )
    };
    let (result, _) = run_virtual(&mut status(), Now::virtual_origin(), |r, _| Ok(t.apply(r)));
    assert_eq!(result.unwrap().unwrap().id(), Some(theirs.id.as_str()));
    t.items.clear();
    let (result, _) = run_virtual(&mut status(), Now::virtual_origin(), |r, _| Ok(t.apply(r)));
    assert!(result.unwrap().is_none());
}

#[test]
fn a_table_failing_the_condition_with_no_item_is_named_not_spun_on() {
    let mut t = Table::default();
    let (result, sent) = run_virtual(
        &mut acquire(&info(1, "me@here"), Wait::Forever),
        Now::virtual_origin(),
        |r, _| {
            Ok(match operation(r) {
                Some("PutItem") => error("ConditionalCheckFailedException"),
                _ => t.apply(r),
            })
        },
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "rejected");
    assert!(err.to_string().contains("cannot provide a lock"), "{err}");
    assert_eq!(sent.len(), 6, "{:?}", ops(&sent));
}

#[test]
fn a_skewed_clock_is_corrected_once_and_the_put_item_signed_again() {
    let ours = info(1, "me@here");
    let mut t = Table::default();
    let mut first = true;
    let mut m = acquire(&ours, Wait::No);
    let (result, sent) = run_virtual(&mut m, Now::virtual_origin(), |r, _| {
        if std::mem::take(&mut first) {
            return Ok(response(
                400,
                json!({
                    "__type": "com.amazon.coral.service#InvalidSignatureException",
                    "message": "Signature expired: 19700101T000000Z is now earlier than \
                                20260101T001500Z (20260101T002000Z - 5 min.)"
                }),
            ));
        }
        Ok(t.apply(r))
    });
    assert_eq!(result.unwrap(), info_text(&ours));
    let date = |i: usize| {
        sent[i].1.headers()["x-amz-date"]
            .to_str()
            .unwrap()
            .to_string()
    };
    // Signed first with our clock, then with the server's.
    assert!(!date(0).starts_with("20260101"), "{}", date(0));
    assert!(date(1).starts_with("20260101T002"), "{}", date(1));
    assert_eq!(sent.len(), 2);
}

#[test]
fn a_clock_still_skewed_after_correction_is_an_access_error() {
    let skewed = || {
        response(
            400,
            json!({
                "__type": "InvalidSignatureException",
                "message": "Signature expired: 19700101T000000Z is now earlier than \
                            20260101T001500Z (20260101T002000Z - 5 min.)"
            }),
        )
    };
    let (result, sent) = run_virtual(
        &mut acquire(&info(1, "me@here"), Wait::Forever),
        Now::virtual_origin(),
        |_, _| Ok(skewed()),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "access_denied");
    assert!(err.to_string().contains("clock"), "{err}");
    assert!(
        sent.len() <= 3,
        "corrected a bounded number of times: {}",
        sent.len()
    );
}

#[test]
fn the_wait_before_the_item_counts_in_notices_and_the_timeout() {
    let theirs = info(9, "alice@ci");
    let mut t = Table::holding(&info_text(&theirs));
    let mut w = waiting(Wait::For(Duration::from_secs(5)));
    w.waited_before = Duration::from_secs(10);
    let mut m = Acquire::new(
        table(),
        creds(),
        LOCK_ID.into(),
        &info(1, "me@here"),
        w,
        7,
        ClockOffset::default(),
    );
    let (result, _) = run_virtual(&mut m, Now::virtual_origin(), |r, _| Ok(t.apply(r)));
    let err = result.unwrap_err();
    assert_eq!(err.code(), "timeout");
    assert!(err.waited().unwrap() >= Duration::from_secs(15), "{err}");
    let first_wait = drain(&mut m).into_iter().find_map(|n| match n {
        Notice::Waiting { waited, .. } => Some(waited),
        _ => None,
    });
    assert!(first_wait.unwrap() >= Duration::from_secs(10));
}

#[test]
fn a_server_echoing_our_secret_key_never_gets_it_into_the_error() {
    let echo = response(
        400,
        json!({"__type": "AccessDeniedException", "message": "you signed with secret, no"}),
    );
    let (result, _) = run_virtual(
        &mut acquire(&info(1, "me@here"), Wait::No),
        Now::virtual_origin(),
        |_, _| Ok(echo.clone()),
    );
    let text = result.unwrap_err().to_string();
    assert!(text.contains("you signed with [redacted], no"), "{text}");
}
