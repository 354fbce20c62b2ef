//! The S3 lock file paired with the DynamoDB item (Terraform's
//! `use_lockfile` + `dynamodb_table`), and the item alone, on a virtual clock.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use super::s3::{S3Lock, VerifyConditionalWrites, RELEASE_BUDGET};
use super::testing::{block_on, MemoryStore};
use super::{Cancel, Io, TransportFailure};
use crate::dynamodb::machine_tests::{error, Table};
use crate::dynamodb::request::operation;
use crate::s3::{Credentials, S3LockConfig, UnlockOutcome};
use crate::sansio::Body;
use crate::time::Now;
use crate::Wait;

/// Answers a request (named as in `sent`) at a monotonic time, instead of
/// the memory store or table.
type Fault = Box<dyn Fn(&str, Duration) -> Option<http::Response<Body>>>;

/// S3 requests go to a memory store, DynamoDB ones (`POST` with
/// `X-Amz-Target`) to a memory table; `fault` may answer a request (named as
/// in `sent`) instead.
struct PairIo {
    now: RefCell<Now>,
    file: Rc<RefCell<MemoryStore>>,
    table: Rc<RefCell<Table>>,
    fault: Fault,
    sent: Rc<RefCell<Vec<String>>>,
}

impl PairIo {
    fn new(fault: Fault) -> Self {
        PairIo {
            now: RefCell::new(Now::virtual_origin()),
            file: Rc::new(RefCell::new(MemoryStore::new())),
            table: Rc::new(RefCell::new(Table::default())),
            fault,
            sent: Rc::default(),
        }
    }
}

impl Io for PairIo {
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Body>, TransportFailure>> {
        let name = match operation(&request) {
            Some(op) => op.to_string(),
            None => request.method().to_string(),
        };
        self.sent.borrow_mut().push(name.clone());
        let at = self.now.borrow().monotonic;
        let response = match (self.fault)(&name, at) {
            Some(r) => r,
            None if operation(&request).is_some() => self.table.borrow_mut().apply(&request),
            None => self.file.borrow_mut().handle(&request),
        };
        std::future::ready(Ok(response))
    }

    fn sleep_until(&self, monotonic: Duration) -> impl Future<Output = ()> {
        let now = *self.now.borrow();
        if monotonic > now.monotonic {
            *self.now.borrow_mut() = now.advanced(monotonic - now.monotonic);
        }
        std::future::ready(())
    }

    fn now(&self) -> Now {
        *self.now.borrow()
    }

    fn fill_random(&self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|b| *b = 0x33);
    }
}

fn lock(io: PairIo, lock_file: bool) -> S3Lock<PairIo, Credentials> {
    let config = S3LockConfig::builder("tfstate", "k")
        .endpoint("http://127.0.0.1:9000")
        .dynamodb_table("tf-locks")
        .dynamodb_endpoint("http://127.0.0.1:5000")
        .lock_file(lock_file)
        .build()
        .unwrap();
    let creds = Credentials::new("AKID", "secret", None).unwrap();
    let lock = S3Lock::new(config, creds, io, "me@host");
    lock.set_verify_conditional_writes(VerifyConditionalWrites::TrustWithoutProof);
    lock
}

fn forbidden() -> http::Response<Body> {
    http::Response::builder()
        .status(403)
        .body(b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>".to_vec())
        .unwrap()
}

fn try_once<C: super::s3::CredentialSource>(
    lock: &S3Lock<PairIo, C>,
) -> Result<crate::s3::HeldLock, crate::Error> {
    let mut opts = lock.options();
    opts.wait = Wait::No;
    block_on(lock.acquire(opts, &Cancel::new(), |_| {}))
}

#[test]
fn an_uncontended_pair_cycle_is_four_requests_file_first() {
    let l = lock(PairIo::new(Box::new(|_, _| None)), true);
    let held = try_once(&l).unwrap();
    assert!(l.io().file.borrow().object.is_some());
    assert_eq!(l.io().table.borrow().items.len(), 1);
    assert_eq!(
        block_on(l.release(&held, RELEASE_BUDGET)).unwrap(),
        UnlockOutcome::Released
    );
    assert!(l.io().file.borrow().object.is_none());
    assert!(l.io().table.borrow().items.is_empty());
    assert_eq!(
        *l.io().sent.borrow(),
        ["PUT", "PutItem", "DELETE", "DeleteItem"]
    );
}

#[test]
fn the_item_alone_is_two_requests() {
    let l = lock(PairIo::new(Box::new(|_, _| None)), false);
    let held = try_once(&l).unwrap();
    block_on(l.release(&held, RELEASE_BUDGET)).unwrap();
    assert_eq!(*l.io().sent.borrow(), ["PutItem", "DeleteItem"]);
    assert!(l.io().file.borrow().object.is_none());
}

#[test]
fn when_the_item_fails_the_file_is_given_back() {
    let fault: Fault = Box::new(|op, _| (op == "PutItem").then(|| error("AccessDeniedException")));
    let l = lock(PairIo::new(fault), true);
    let err = try_once(&l).unwrap_err();
    assert_eq!(err.code(), "access_denied");
    assert!(!matches!(err, crate::Error::Paired { .. }), "{err}");
    assert!(
        l.io().file.borrow().object.is_none(),
        "the file was given back"
    );
    assert_eq!(*l.io().sent.borrow(), ["PUT", "PutItem", "DELETE"]);
}

#[test]
fn when_giving_the_file_back_fails_too_both_errors_are_reported() {
    let fault: Fault = Box::new(|op, _| match op {
        "PutItem" => Some(error("AccessDeniedException")),
        "DELETE" => Some(forbidden()),
        _ => None,
    });
    let l = lock(PairIo::new(fault), true);
    let err = try_once(&l).unwrap_err();
    // The DynamoDB failure decides the outcome; the cleanup failure is told.
    assert_eq!(err.code(), "access_denied");
    let text = err.to_string();
    assert!(
        text.contains("giving back the lock file failed too"),
        "{text}"
    );
    assert!(text.contains("dynamodb:PutItem"), "{text}");
    assert!(text.contains("force-unlock"), "{text}");
}

#[test]
fn a_release_tries_both_and_says_which_failed() {
    let fault: Fault = Box::new(|op, _| (op == "DELETE").then(forbidden));
    let l = lock(PairIo::new(fault), true);
    let held = try_once(&l).unwrap();
    let err = block_on(l.release(&held, RELEASE_BUDGET)).unwrap_err();
    assert_eq!(err.code(), "access_denied");
    assert!(
        err.to_string()
            .starts_with("the S3 lock file could not be removed (the DynamoDB lock item was)"),
        "{err}"
    );
    assert!(
        l.io().table.borrow().items.is_empty(),
        "the item was released"
    );
    assert_eq!(
        *l.io().sent.borrow(),
        ["PUT", "PutItem", "DELETE", "DeleteItem"]
    );

    let fault: Fault =
        Box::new(|op, _| (op == "DeleteItem").then(|| error("AccessDeniedException")));
    let l = lock(PairIo::new(fault), true);
    let held = try_once(&l).unwrap();
    let err = block_on(l.release(&held, RELEASE_BUDGET)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the DynamoDB lock item could not be removed (the S3 lock file was)"),
        "{err}"
    );
    assert!(l.io().file.borrow().object.is_none());
}

#[test]
fn a_holder_of_the_item_is_reported_and_the_wait_covers_the_pair() {
    let l = lock(PairIo::new(Box::new(|_, _| None)), true);
    let theirs = crate::s3::LockInfo::new(
        [9; 16],
        "OperationTypeApply",
        "",
        "alice@ci",
        "tfstate/k",
        std::time::SystemTime::UNIX_EPOCH,
    );
    l.io().table.borrow_mut().items.insert(
        "tfstate/k".into(),
        String::from_utf8(theirs.to_json()).unwrap(),
    );
    let mut opts = l.options();
    opts.wait = Wait::For(Duration::from_secs(30));
    let start = l.io().now().monotonic;
    let mut waiting = 0;
    let err = block_on(l.acquire(opts, &Cancel::new(), |n| {
        if matches!(n, super::Notice::Waiting { .. }) {
            waiting += 1;
        }
    }))
    .unwrap_err();
    assert_eq!(err.code(), "timeout");
    assert_eq!(err.holder().unwrap().id(), Some(theirs.id.as_str()));
    assert!(waiting > 0);
    let waited = l.io().now().monotonic - start;
    assert!(waited >= Duration::from_secs(30) && waited < Duration::from_secs(31));
    assert!(
        l.io().file.borrow().object.is_none(),
        "the file was given back"
    );
    assert_eq!(
        block_on(l.status(&Cancel::new())).unwrap().unwrap().id(),
        Some(theirs.id.as_str())
    );
}

#[test]
fn leases_and_takeovers_are_refused_with_a_table() {
    let l = lock(PairIo::new(Box::new(|_, _| None)), true);
    let mut opts = l.options();
    opts.lease = Some(crate::s3::LeaseTerms::new(Duration::from_secs(30)));
    let err = block_on(l.acquire(opts, &Cancel::new(), |_| {})).unwrap_err();
    assert_eq!(err.field(), Some("lease"));
    let mut opts = l.options();
    opts.takeover.expired_leases = true;
    let err = block_on(l.acquire(opts, &Cancel::new(), |_| {})).unwrap_err();
    assert_eq!(err.field(), Some("takeover"));
    assert!(l.io().sent.borrow().is_empty(), "nothing was sent");
}

#[test]
fn a_failing_dynamodb_server_is_named_not_the_s3_store() {
    let fault: Fault = Box::new(|op, _| {
        (op == "PutItem").then(|| {
            http::Response::builder()
                .status(503)
                .body(br#"{"__type":"ServiceUnavailable","message":"try later"}"#.to_vec())
                .unwrap()
        })
    });
    let l = lock(PairIo::new(fault), true);
    let err = try_once(&l).unwrap_err();
    assert_eq!(err.code(), "server");
    let text = err.explain(&l.context(), &crate::error::CommandLine);
    assert!(
        text.starts_with("the DynamoDB lock table tf-locks at http://127.0.0.1:5000"),
        "{text}"
    );
    assert!(!text.contains("127.0.0.1:9000"), "{text}");
    assert!(
        l.io().file.borrow().object.is_none(),
        "the file was given back"
    );
}

#[test]
fn a_timeout_reports_the_wait_for_the_pair() {
    // The lock file is held (412) for the first 10 s, the item all along.
    let origin = Now::virtual_origin().monotonic;
    let bob = crate::s3::LockInfo::new(
        [7; 16],
        "OperationTypeApply",
        "",
        "bob@ci",
        "tfstate/k",
        std::time::SystemTime::UNIX_EPOCH,
    )
    .to_json();
    let fault: Fault = Box::new(move |op, at| {
        if at >= origin + Duration::from_secs(10) {
            return None;
        }
        let reply = |status: u16, body: Vec<u8>| {
            http::Response::builder()
                .status(status)
                .header("etag", "\"bob\"")
                .body(body)
                .unwrap()
        };
        match op {
            "PUT" => Some(reply(412, Vec::new())),
            "GET" => Some(reply(200, bob.clone())),
            _ => None,
        }
    });
    let l = lock(PairIo::new(fault), true);
    let theirs = crate::s3::LockInfo::new(
        [9; 16],
        "OperationTypeApply",
        "",
        "alice@ci",
        "tfstate/k",
        std::time::SystemTime::UNIX_EPOCH,
    );
    l.io().table.borrow_mut().items.insert(
        "tfstate/k".into(),
        String::from_utf8(theirs.to_json()).unwrap(),
    );
    let mut opts = l.options();
    opts.wait = Wait::For(Duration::from_secs(30));
    let err = block_on(l.acquire(opts, &Cancel::new(), |_| {})).unwrap_err();
    assert_eq!(err.code(), "timeout");
    assert!(
        err.waited().unwrap() >= Duration::from_secs(30),
        "{:?}",
        err.waited()
    );
}
