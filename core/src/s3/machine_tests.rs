//! The S3 state machines on a virtual clock, with canned responses, plus the
//! exact shape of the requests they build.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::{Method, Request, Response};
use sha2::Digest as _;

use super::acquire::{Acquire, AcquireOptions, Entropy, HeldLock};
use super::config::{Credentials, Encryption, S3LockConfig};
use super::lockinfo::{LockHolder, LockInfo};
use super::log_capture;
use super::request::{delete_lock, get_lock, put_lock, PutCondition};
use super::status::Status;
use super::unlock::{Unlock, UnlockOutcome};
use super::verdict::{ConditionalDelete, ConditionalWriteVerdicts};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{run_virtual, Action, Body, Event, Machine, TransportFailure, Wait};
use crate::secret::Secret;
use crate::time::{ClockOffset, Now};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const OTHER_ID: &str = "11111111-2222-3333-4444-555555555555";
const OTHER_BODY: &str = r#"{"ID":"11111111-2222-3333-4444-555555555555","Operation":"OperationTypeApply","Info":"held by script","Who":"ceo@box","Version":"0.1.0","Created":"2026-11-22T03:00:00Z","Path":"tfstate/envs/dev/terraform.tfstate"}"#;
const LAST_MODIFIED: &str = "Sun, 22 Nov 2026 02:59:00 GMT";
const OUR_ID_BYTES: [u8; 16] = [
    0x3f, 0x2b, 0x8c, 0x1e, 0x9d, 0x4a, 0x7e, 0x55, 0x0c, 0x1b, 0x6a, 0x9e, 0x2f, 0x7d, 0x4b, 0x10,
];
const OUR_ID: &str = "3f2b8c1e-9d4a-7e55-0c1b-6a9e2f7d4b10";
const ENDPOINT: &str = "http://127.0.0.1:9000";
const LOCK_URL: &str = "http://127.0.0.1:9000/tfstate/envs/dev/terraform.tfstate.tflock";

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdoNotLeakMe";
const SSE_C_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

type Reply = Result<Response<Body>, TransportFailure>;
type Sent = Vec<(Now, Request<Body>)>;
type ErrorCheck = fn(&Error) -> bool;

fn origin() -> Now {
    Now::virtual_origin()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config() -> Arc<S3LockConfig> {
    Arc::new(
        S3LockConfig::builder("tfstate", "envs/dev/terraform.tfstate")
            .endpoint(ENDPOINT)
            .build()
            .unwrap(),
    )
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", SECRET_KEY, None).unwrap()
}

fn opts(wait: Wait, verify: bool) -> AcquireOptions {
    let mut o = AcquireOptions::new("alice@ci-runner-7");
    o.wait = wait;
    o.verify_conditional_writes = verify;
    o
}

fn acquire(o: AcquireOptions) -> Acquire {
    Acquire::new(
        config(),
        creds(),
        o,
        Entropy {
            lock_id: OUR_ID_BYTES,
            jitter_seed: 0x5eed,
        },
        ClockOffset::default(),
        origin(),
    )
}

/// A lock body with our ID, as `Unlock::release` receives it.
fn our_info() -> LockInfo {
    LockInfo::new(
        OUR_ID_BYTES,
        "condlock",
        "",
        "alice@ci-runner-7",
        "tfstate/envs/dev/terraform.tfstate",
        origin().wall,
    )
}

fn release(etag: &str) -> Unlock {
    Unlock::release(
        config(),
        creds(),
        &our_info(),
        etag,
        secs(10),
        9,
        ClockOffset::default(),
    )
}

fn force(id: &str) -> Unlock {
    Unlock::force(config(), creds(), id, secs(10), 9, ClockOffset::default())
}

fn status() -> Status {
    Status::new(config(), creds(), secs(10), 9, ClockOffset::default())
}

fn resp(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

fn s3_error(status: u16, code: &str) -> Response<Body> {
    s3_error_with(status, code, &[], "")
}

fn s3_error_with(status: u16, code: &str, headers: &[(&str, &str)], extra: &str) -> Response<Body> {
    resp(
        status,
        headers,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code} (canned)</Message>{extra}<RequestId>4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>"
        ),
    )
}

fn put_ok(etag: &str) -> Reply {
    Ok(resp(200, &[("ETag", etag)], ""))
}

fn precondition_failed() -> Reply {
    Ok(s3_error_with(
        412,
        "PreconditionFailed",
        &[],
        "<Condition>If-None-Match</Condition>",
    ))
}

fn no_such_key() -> Reply {
    Ok(s3_error(404, "NoSuchKey"))
}

fn lock_object(body: impl Into<Vec<u8>>, etag: &str) -> Reply {
    Ok(resp(
        200,
        &[
            ("ETag", etag),
            ("Last-Modified", LAST_MODIFIED),
            ("Content-Type", "application/json"),
        ],
        body,
    ))
}

fn other_holder(etag: &str) -> Reply {
    lock_object(OTHER_BODY, etag)
}

fn ours(etag: &str) -> Reply {
    lock_object(our_info().to_json(), etag)
}

fn deleted() -> Reply {
    Ok(resp(204, &[], ""))
}

/// Run `machine` answering requests from `replies` in order; every reply must
/// be consumed and no extra request may be sent.
fn run<M: Machine>(machine: &mut M, replies: Vec<Reply>) -> (Result<M::Output, Error>, Sent) {
    let expected = replies.len();
    let mut queue = VecDeque::from(replies);
    let (result, sent) = run_virtual(machine, origin(), |req, _| {
        queue.pop_front().unwrap_or_else(|| {
            panic!(
                "unexpected extra request {}",
                line(req) // the script ran out
            )
        })
    });
    assert_eq!(sent.len(), expected, "requests sent: {:?}", lines(&sent));
    (result, sent)
}

fn header(req: &Request<Body>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

/// `METHOD[ If-None-Match: v][ If-Match: v]`.
fn line(req: &Request<Body>) -> String {
    let mut s = req.method().to_string();
    if let Some(v) = header(req, "if-none-match") {
        s.push_str(&format!(" If-None-Match: {v}"));
    }
    if let Some(v) = header(req, "if-match") {
        s.push_str(&format!(" If-Match: {v}"));
    }
    s
}

fn lines(sent: &Sent) -> Vec<String> {
    sent.iter().map(|(_, r)| line(r)).collect()
}

fn times(sent: &Sent) -> Vec<Duration> {
    sent.iter().map(|(t, _)| t.monotonic).collect()
}

const PUT: &str = "PUT If-None-Match: *";

fn within(d: Duration, ceiling: Duration) -> bool {
    d >= ceiling / 2 && d <= ceiling
}

fn assert_all_to_lock_url(sent: &Sent) {
    for (_, r) in sent {
        assert_eq!(r.uri().to_string(), LOCK_URL);
    }
}

// ---------------------------------------------------------------------------
// Acquire: the happy paths
// ---------------------------------------------------------------------------

#[test]
fn uncontended_acquire_with_verification_then_release_in_one_request() {
    let mut acq = acquire(opts(Wait::No, true));
    assert_eq!(acq.lock_info().id, OUR_ID);
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"9b2cf535f27731c974343645a3985328\""),
            precondition_failed(),
            precondition_failed(),
        ],
    );
    let held = result.unwrap();
    assert_eq!(
        held,
        HeldLock {
            info: acq.lock_info().clone(),
            etag: "\"9b2cf535f27731c974343645a3985328\"".into(),
            verified_conditional_writes: true,
            lease: None,
            written_at: Duration::ZERO,
        }
    );
    // The proof: the same create again must get 412, and so must a DELETE
    // naming a wrong ETag.
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE]);
    assert_eq!(times(&sent), [Duration::ZERO; 3]);
    assert_all_to_lock_url(&sent);
    assert_eq!(sent[2].1.body(), &Vec::<u8>::new());
    for (_, r) in &sent[..2] {
        assert_eq!(r.body(), &acq.lock_info().to_json());
        assert_eq!(
            header(r, "content-type").as_deref(),
            Some("application/json")
        );
    }
    // The body is Terraform's LockInfo with our Path.
    let written = LockInfo::parse(sent[0].1.body()).unwrap();
    assert_eq!(written.id, OUR_ID);
    assert_eq!(written.path, "tfstate/envs/dev/terraform.tfstate");
    assert_eq!(written.who, "alice@ci-runner-7");
    assert_eq!(written.created, "2026-11-22T03:00:00Z");

    let mut rel = Unlock::release(
        config(),
        creds(),
        &held.info,
        &held.etag,
        secs(10),
        1,
        ClockOffset::default(),
    );
    let (result, sent) = run(&mut rel, vec![deleted()]);
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(
        lines(&sent),
        ["DELETE If-Match: \"9b2cf535f27731c974343645a3985328\""]
    );
    assert_eq!(sent[0].1.body(), &Vec::<u8>::new());
    assert_all_to_lock_url(&sent);
    assert!(!rel.used_fallback());
}

#[test]
fn uncontended_acquire_without_verification_is_one_request() {
    let mut acq = acquire(opts(Wait::Forever, false));
    let (result, sent) = run(&mut acq, vec![put_ok("\"e1\"")]);
    let held = result.unwrap();
    assert_eq!(held.etag, "\"e1\"");
    assert!(!held.verified_conditional_writes);
    assert_eq!(lines(&sent), [PUT]);
}

#[test]
fn put_success_without_etag_reads_it_back() {
    let mut acq = acquire(opts(Wait::No, false));
    let (result, sent) = run(&mut acq, vec![Ok(resp(200, &[], "")), ours("\"read\"")]);
    assert_eq!(result.unwrap().etag, "\"read\"");
    assert_eq!(lines(&sent), [PUT, "GET"]);
}

// ---------------------------------------------------------------------------
// Acquire: someone else holds the lock
// ---------------------------------------------------------------------------

#[test]
fn a_lock_of_ours_that_cannot_be_removed_for_want_of_an_etag_is_named_in_a_warning() {
    // A store that never returns an ETag: the lock we wrote cannot be released
    // conditionally, so acquire gives up; the cleanup read finds our lock but
    // cannot delete it by ETag either. The lock stays: say where, loudly.
    let mut acq = acquire(opts(Wait::No, false));
    let no_etag = || lock_object_without_etag(our_info().to_json());
    let ((result, sent), logs) =
        log_capture::capture(|| run(&mut acq, vec![Ok(resp(200, &[], "")), no_etag(), no_etag()]));
    assert!(
        matches!(result, Err(Error::MalformedResponse { .. })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), [PUT, "GET", "GET"]);
    let warned = log_capture::warnings(&logs);
    assert!(
        warned
            .iter()
            .any(|w| w.contains("s3://tfstate/envs/dev/terraform.tfstate.tflock")),
        "{warned:?}"
    );
}

fn lock_object_without_etag(body: Vec<u8>) -> Reply {
    Ok(resp(200, &[("Content-Type", "application/json")], body))
}

#[test]
fn held_with_wait_no_reports_the_holder() {
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run(
        &mut acq,
        vec![precondition_failed(), other_holder("\"theirs\"")],
    );
    let Err(Error::Held { holder: Some(h) }) = result else {
        panic!("expected Held with a holder, got {result:?}")
    };
    assert_eq!(h.id(), Some(OTHER_ID));
    assert_eq!(h.etag, "\"theirs\"");
    assert_eq!(h.last_modified.as_deref(), Some(LAST_MODIFIED));
    let info = h.info.as_ref().unwrap();
    assert_eq!(info.who, "ceo@box");
    assert_eq!(info.info, "held by script");
    assert_eq!(lines(&sent), [PUT, "GET"]);
    assert_all_to_lock_url(&sent);
}

#[test]
fn held_by_an_unreadable_lock_reports_an_unparseable_holder() {
    let mut acq = acquire(opts(Wait::No, true));
    let (result, _) = run(
        &mut acq,
        vec![precondition_failed(), lock_object("not json", "\"x\"")],
    );
    let Err(Error::Held { holder: Some(h) }) = result else {
        panic!("{result:?}")
    };
    assert!(h.info.is_err());
    assert_eq!(h.etag, "\"x\"");
}

#[test]
fn held_and_unreadable_holder_403_is_held_without_holder() {
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run(
        &mut acq,
        vec![precondition_failed(), Ok(s3_error(403, "AccessDenied"))],
    );
    assert!(
        matches!(result, Err(Error::Held { holder: None })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), [PUT, "GET"]);
}

#[test]
fn wait_for_times_out_with_jittered_backoff_clipped_to_the_deadline() {
    let timeout = secs(20);
    let mut acq = acquire(opts(Wait::For(timeout), true));
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => precondition_failed(),
        Method::GET => other_holder("\"theirs\""),
        _ => panic!("unexpected {}", line(req)),
    });
    let Err(Error::Timeout {
        waited,
        holder: Some(h),
    }) = result
    else {
        panic!("expected Timeout with holder, got {result:?}")
    };
    assert_eq!(waited, timeout);
    assert_eq!(h.id(), Some(OTHER_ID));
    assert_eq!(h.etag, "\"theirs\"");
    assert_eq!(h.last_modified.as_deref(), Some(LAST_MODIFIED));

    // PUT, GET pairs at the same instant; nothing after the deadline.
    assert_eq!(sent.len() % 2, 0);
    for pair in sent.chunks(2) {
        assert_eq!(line(&pair[0].1), PUT);
        assert_eq!(line(&pair[1].1), "GET");
        assert_eq!(pair[0].0, pair[1].0);
        assert!(pair[0].0.monotonic <= timeout);
    }
    let puts: Vec<Duration> = sent.iter().step_by(2).map(|(t, _)| t.monotonic).collect();
    // 0.5+1+2+4+8 s < 20 s, so at least 6 attempts; the last one at the deadline.
    assert!(puts.len() >= 6, "{puts:?}");
    assert_eq!(puts[0], Duration::ZERO);
    assert_eq!(
        *puts.last().unwrap(),
        timeout,
        "a final attempt at the deadline"
    );
    let gaps: Vec<Duration> = puts.windows(2).map(|w| w[1] - w[0]).collect();
    let last = gaps.len() - 1;
    for (i, gap) in gaps.iter().enumerate() {
        let ceiling = Backoff::WAIT_FOR_HOLDER.ceiling(i as u32);
        if i < last {
            assert!(
                within(*gap, ceiling),
                "gap {i} = {gap:?}, ceiling {ceiling:?}"
            );
        } else {
            // Clipped to the deadline.
            assert!(*gap <= ceiling, "last gap {gap:?}, ceiling {ceiling:?}");
        }
    }
    // Jitter: the delays are not the exact ceilings Terraform would use.
    assert!(gaps[..last]
        .iter()
        .enumerate()
        .any(|(i, g)| *g != Backoff::WAIT_FOR_HOLDER.ceiling(i as u32)));
}

#[test]
fn holder_leaves_after_three_attempts_then_acquired() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let mut puts = 0;
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => {
            puts += 1;
            match puts {
                1..=3 => precondition_failed(),
                4 => put_ok("\"mine\""),
                _ => precondition_failed(), // the verification PUT
            }
        }
        Method::GET => other_holder("\"theirs\""),
        Method::DELETE => precondition_failed(), // the verification DELETE
        _ => panic!("unexpected {}", line(req)),
    });
    let held = result.unwrap();
    assert_eq!(held.etag, "\"mine\"");
    assert!(held.verified_conditional_writes);
    assert_eq!(
        lines(&sent),
        [PUT, "GET", PUT, "GET", PUT, "GET", PUT, PUT, PROOF_DELETE]
    );
    let t = times(&sent);
    for (i, (a, b)) in [(0usize, 2usize), (2, 4), (4, 6)].into_iter().enumerate() {
        let ceiling = Backoff::WAIT_FOR_HOLDER.ceiling(i as u32);
        assert!(within(t[b] - t[a], ceiling), "{:?}", t[b] - t[a]);
    }
    assert_eq!(t[6], t[7], "verification follows at once");
}

#[test]
fn waiting_for_names_the_holder_while_sleeping() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    assert!(matches!(acq.step(Event::Start, now), Action::Send(_)));
    assert!(acq.waiting_for().is_none());
    let Action::Send(get) = acq.step(Event::Response(precondition_failed().unwrap()), now) else {
        panic!()
    };
    assert_eq!(get.method(), Method::GET);
    let Action::SleepUntil(t) = acq.step(Event::Response(other_holder("\"h\"").unwrap()), now)
    else {
        panic!()
    };
    assert!(within(t, Backoff::WAIT_FOR_HOLDER.ceiling(0)), "{t:?}");
    assert_eq!(acq.waiting_for().and_then(LockHolder::id), Some(OTHER_ID));
    // Waking up sends the next PUT and stops "waiting".
    let Action::Send(put) = acq.step(Event::TimerFired, now.advanced(t)) else {
        panic!()
    };
    assert_eq!(line(&put), PUT);
    assert!(acq.waiting_for().is_none());
}

// ---------------------------------------------------------------------------
// Acquire: lost responses, conflicts, transient failures
// ---------------------------------------------------------------------------

#[test]
fn own_lock_after_lost_put_response_is_acquired_not_waited_on() {
    let mut acq = acquire(opts(Wait::For(secs(60)), true));
    let ours_body = acq.lock_info().to_json();
    assert_eq!(acq.lock_info().id, OUR_ID);
    let (result, sent) = run(
        &mut acq,
        vec![
            Err(TransportFailure::maybe_sent("connection reset by peer")),
            precondition_failed(),
            lock_object(ours_body, "\"landed\""),
            precondition_failed(), // verification PUT
            precondition_failed(), // verification DELETE
        ],
    );
    let held = result.unwrap();
    assert_eq!(held.etag, "\"landed\"");
    assert!(held.verified_conditional_writes);
    assert_eq!(lines(&sent), [PUT, PUT, "GET", PUT, PROOF_DELETE]);
    let t = times(&sent);
    assert!(within(t[1], Backoff::TRANSIENT.ceiling(0)), "{:?}", t[1]);
    assert_eq!(t[1], t[2]);
    assert_eq!(t[2], t[3]);
    assert_eq!(t[3], t[4]);
}

#[test]
fn conflict_409_is_retried_with_transient_backoff_even_with_wait_no() {
    let mut acq = acquire(opts(Wait::No, false));
    let (result, sent) = run(
        &mut acq,
        vec![
            Ok(s3_error(409, "ConditionalRequestConflict")),
            Ok(s3_error(409, "ConditionalRequestConflict")),
            put_ok("\"e\""),
        ],
    );
    assert_eq!(result.unwrap().etag, "\"e\"");
    assert_eq!(lines(&sent), [PUT, PUT, PUT], "no GET: a 409 is not 'held'");
    let t = times(&sent);
    assert!(within(t[1] - t[0], Backoff::TRANSIENT.ceiling(0)), "{t:?}");
    assert!(within(t[2] - t[1], Backoff::TRANSIENT.ceiling(1)), "{t:?}");
}

#[test]
fn conflict_409_forever_with_wait_no_ends_at_the_transient_budget_as_server_error() {
    let mut o = opts(Wait::No, true);
    o.transient_budget = secs(2);
    let mut acq = acquire(o);
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| {
        assert_eq!(line(req), PUT);
        Ok(s3_error(409, "ConditionalRequestConflict"))
    });
    match result {
        Err(Error::Server {
            status: 409, code, ..
        }) => {
            assert_eq!(code, "ConditionalRequestConflict")
        }
        other => panic!("expected a 409 Server error, got {other:?}"),
    }
    let t = times(&sent);
    assert!(t.len() >= 4, "{t:?}");
    assert_eq!(*t.last().unwrap(), secs(2));
    for (i, w) in t.windows(2).enumerate().take(t.len() - 2) {
        assert!(
            within(w[1] - w[0], Backoff::TRANSIENT.ceiling(i as u32)),
            "{t:?}"
        );
    }
}

#[test]
fn server_errors_are_retried_then_the_uncertain_lock_is_cleaned_up() {
    let mut o = opts(Wait::No, true);
    o.transient_budget = secs(2);
    let mut acq = acquire(o);
    let ours_body = acq.lock_info().to_json();
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => Ok(s3_error(500, "InternalError")),
        // The 500 was in fact applied: the lock is ours.
        Method::GET => lock_object(ours_body.clone(), "\"applied\""),
        Method::DELETE => deleted(),
        _ => panic!(),
    });
    match &result {
        Err(Error::Server {
            status: 500, code, ..
        }) => assert_eq!(code, "InternalError"),
        other => panic!("expected a 500 Server error, got {other:?}"),
    }
    let l = lines(&sent);
    let n = l.len();
    assert!(n >= 4, "{l:?}");
    assert!(l[..n - 2].iter().all(|x| x == PUT), "{l:?}");
    assert_eq!(l[n - 2..], ["GET", "DELETE If-Match: \"applied\""]);
    let t = times(&sent);
    assert_eq!(t[n - 3], secs(2), "last PUT at the deadline");
    assert_eq!(t[n - 2], secs(2), "cleanup at once");
    assert_eq!(t[n - 1], secs(2));
}

#[test]
fn slowdown_503_is_retried_then_succeeds() {
    let mut acq = acquire(opts(Wait::No, false));
    let (result, sent) = run(
        &mut acq,
        vec![
            Ok(s3_error(503, "SlowDown")),
            Ok(resp(502, &[], "<html>bad gateway</html>")),
            put_ok("\"e\""),
        ],
    );
    assert_eq!(result.unwrap().etag, "\"e\"");
    assert_eq!(lines(&sent), [PUT, PUT, PUT]);
    let t = times(&sent);
    assert!(within(t[1] - t[0], Backoff::TRANSIENT.ceiling(0)), "{t:?}");
    assert!(within(t[2] - t[1], Backoff::TRANSIENT.ceiling(1)), "{t:?}");
}

#[test]
fn slowdown_forever_gives_server_error_and_no_delete_when_lock_absent() {
    let mut o = opts(Wait::No, true);
    o.transient_budget = secs(1);
    let mut acq = acquire(o);
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => Ok(s3_error(503, "SlowDown")),
        Method::GET => no_such_key(),
        _ => panic!("unexpected {}", line(req)),
    });
    assert!(
        matches!(&result, Err(Error::Server { status: 503, code, .. }) if code == "SlowDown"),
        "{result:?}"
    );
    let l = lines(&sent);
    assert_eq!(l.last().unwrap(), "GET");
    assert!(l[..l.len() - 1].iter().all(|x| x == PUT));
    assert!(times(&sent).iter().all(|t| *t <= secs(1)));
}

#[test]
fn transport_errors_forever_give_transport_error_and_cleanup_spares_others() {
    let mut o = opts(Wait::For(secs(3)), true);
    o.transient_budget = secs(1); // irrelevant with Wait::For
    let mut acq = acquire(o);
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => Err(TransportFailure::maybe_sent("connect timed out")),
        // Someone else got in meanwhile: not ours, never deleted.
        Method::GET => other_holder("\"theirs\""),
        _ => panic!("unexpected {}", line(req)),
    });
    assert!(
        matches!(&result, Err(Error::Transport { message, .. }) if message == "connect timed out"),
        "{result:?}"
    );
    let l = lines(&sent);
    assert_eq!(l.last().unwrap(), "GET");
    assert!(l[..l.len() - 1].iter().all(|x| x == PUT));
    let t = times(&sent);
    assert_eq!(t[t.len() - 2], secs(3), "retried up to the wait deadline");
    assert!(t.iter().all(|x| *x <= secs(3)));
}

#[test]
fn lock_vanishing_between_412_and_get_triggers_an_immediate_put() {
    let mut acq = acquire(opts(Wait::No, false));
    let (result, sent) = run(
        &mut acq,
        vec![precondition_failed(), no_such_key(), put_ok("\"e\"")],
    );
    assert_eq!(result.unwrap().etag, "\"e\"");
    assert_eq!(lines(&sent), [PUT, "GET", PUT]);
    assert_eq!(times(&sent), [Duration::ZERO; 3]);
}

#[test]
fn lock_vanishing_twice_backs_off_before_the_third_put() {
    let mut acq = acquire(opts(Wait::Forever, false));
    let mut script = Vec::new();
    for _ in 0..2 {
        script.push(precondition_failed());
        script.push(no_such_key());
    }
    script.push(put_ok("\"e\""));
    let (result, sent) = run(&mut acq, script);
    assert_eq!(result.unwrap().etag, "\"e\"");
    let t = times(&sent);
    assert!(t[..4].iter().all(|x| x.is_zero()), "{t:?}");
    assert!(within(t[4], Backoff::TRANSIENT.ceiling(0)), "{t:?}");
}

#[test]
fn a_store_answering_412_to_if_none_match_without_a_lock_is_named_after_three_rounds() {
    // Before: Wait::No spent its 30 s transient budget, a 5 s wait ended in a
    // malformed-response error, and waiting forever never ended.
    for wait in [Wait::No, Wait::For(secs(5)), Wait::Forever] {
        let mut acq = acquire(opts(wait, true));
        let ((result, sent), logs) = log_capture::capture(|| {
            run_virtual(&mut acq, origin(), |req, _| match *req.method() {
                Method::PUT => precondition_failed(),
                Method::GET => no_such_key(),
                _ => panic!("unexpected {}", line(req)),
            })
        });
        let err = match result {
            Err(e @ Error::ConditionalCreateRefused { .. }) => e,
            other => panic!("{wait:?}: expected ConditionalCreateRefused, got {other:?}"),
        };
        let text = err.to_string();
        assert!(
            text.contains(
                "answers 412 Precondition Failed to If-None-Match although no lock exists"
            ) && text.contains(ENDPOINT)
                && text.contains("tfstate"),
            "{text}"
        );
        assert_eq!(
            lines(&sent),
            [PUT, "GET", PUT, "GET", PUT, "GET"],
            "{wait:?}"
        );
        let warned = log_capture::warnings(&logs);
        assert_eq!(
            warned
                .iter()
                .filter(|w| w.contains("412") && w.contains("no lock"))
                .count(),
            1,
            "one warning at the first occurrence: {warned:?}"
        );
    }
}

#[test]
fn a_timeout_during_412_then_absent_rounds_is_still_a_timeout() {
    let mut acq = acquire(opts(Wait::For(secs(5)), false));
    let t0 = origin();
    assert!(matches!(acq.step(Event::Start, t0), Action::Send(_)));
    let get = acq.step(Event::Response(precondition_failed().unwrap()), t0);
    assert!(
        matches!(&get, Action::Send(r) if r.method() == Method::GET),
        "{get:?}"
    );
    // The GET's answer arrives after the wait ran out.
    let late = t0.advanced(secs(6));
    let done = acq.step(Event::Response(no_such_key().unwrap()), late);
    assert!(
        matches!(done, Action::Done(Err(Error::Timeout { .. }))),
        "{done:?}"
    );
}

// ---------------------------------------------------------------------------
// Acquire: clock skew, final errors, broken stores
// ---------------------------------------------------------------------------

#[test]
fn clock_skew_resends_at_once_with_the_servers_time() {
    let mut acq = acquire(opts(Wait::No, false));
    let skewed = s3_error_with(
        403,
        "RequestTimeTooSkewed",
        &[],
        "<RequestTime>20261122T030000Z</RequestTime><ServerTime>2026-11-22T04:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>",
    );
    let (result, sent) = run(&mut acq, vec![Ok(skewed), put_ok("\"e\"")]);
    assert_eq!(result.unwrap().etag, "\"e\"");
    assert_eq!(lines(&sent), [PUT, PUT]);
    assert_eq!(times(&sent), [Duration::ZERO, Duration::ZERO]);
    assert_eq!(
        header(&sent[0].1, "x-amz-date").as_deref(),
        Some("20261122T030000Z")
    );
    assert_eq!(
        header(&sent[1].1, "x-amz-date").as_deref(),
        Some("20261122T040000Z")
    );
    assert!(header(&sent[1].1, "authorization")
        .unwrap()
        .contains("Credential=AKIDEXAMPLE/20261122/us-east-1/s3/aws4_request"));
    assert_eq!(acq.clock_offset(), ClockOffset { millis: 3_600_000 });
    // Same body: the lock is the same lock.
    assert_eq!(sent[0].1.body(), sent[1].1.body());
}

#[test]
fn clock_skew_that_persists_is_a_final_error_not_a_loop() {
    let mut acq = acquire(opts(Wait::No, false));
    let skewed = || {
        Ok(s3_error_with(
            403,
            "RequestTimeTooSkewed",
            &[],
            "<ServerTime>2026-11-22T04:00:00Z</ServerTime>",
        ))
    };
    let (result, sent) = run(&mut acq, vec![skewed(), skewed(), skewed()]);
    assert!(
        matches!(&result, Err(Error::Rejected { status: 403, code, .. }) if code == "RequestTimeTooSkewed"),
        "{result:?}"
    );
    assert_eq!(sent.len(), 3);
}

#[test]
fn a_server_time_at_the_end_of_year_9999_is_an_error_not_a_panic() {
    // Found while fuzzing the S3 machines: the SigV4 signer panics on dates
    // past 9999-12-31T23:59:59Z, and a store claiming to be at that very
    // second moved our signing clock there; the retries after it signed later.
    let skewed = || {
        Ok(s3_error_with(
            403,
            "RequestTimeTooSkewed",
            &[],
            "<ServerTime>9999-12-31T23:59:59Z</ServerTime>",
        ))
    };
    let mut replies = vec![skewed()];
    replies.extend((0..6).map(|_| Ok(s3_error(503, "SlowDown"))));
    replies.push(skewed());
    let mut st = status();
    let mut queue = VecDeque::from(replies);
    let (result, sent) = run_virtual(&mut st, origin(), |_, _| {
        queue
            .pop_front()
            .unwrap_or_else(|| Ok(s3_error(503, "SlowDown")))
    });
    assert!(result.is_err(), "{result:?}");
    assert!(sent.len() > 2, "{}", sent.len());
}

#[test]
fn final_errors_are_not_retried() {
    let cases: Vec<(Response<Body>, ErrorCheck)> = vec![
        (
            s3_error_with(
                301,
                "PermanentRedirect",
                &[("x-amz-bucket-region", "eu-west-1")],
                "<Endpoint>tfstate.s3.eu-west-1.amazonaws.com</Endpoint>",
            ),
            |e| {
                matches!(e, Error::WrongRegion { bucket, configured, actual: Some(r) }
                    if bucket == "tfstate" && configured == "us-east-1" && r == "eu-west-1")
                    && e.to_string().contains("eu-west-1")
            },
        ),
        (
            s3_error_with(
                400,
                "AuthorizationHeaderMalformed",
                &[],
                "<Region>eu-west-1</Region>",
            ),
            |e| matches!(e, Error::WrongRegion { actual: Some(r), .. } if r == "eu-west-1"),
        ),
        (s3_error(403, "AccessDenied"), |e| {
            matches!(e, Error::AccessDenied { code, message }
                if code == "AccessDenied" && message == "AccessDenied (canned)")
        }),
        (
            s3_error(403, "SignatureDoesNotMatch"),
            |e| matches!(e, Error::AccessDenied { code, .. } if code == "SignatureDoesNotMatch"),
        ),
        (
            s3_error(403, "InvalidAccessKeyId"),
            |e| matches!(e, Error::AccessDenied { code, .. } if code == "InvalidAccessKeyId"),
        ),
        (
            s3_error(400, "ExpiredToken"),
            |e| matches!(e, Error::AccessDenied { code, .. } if code == "ExpiredToken"),
        ),
        (
            s3_error(404, "NoSuchBucket"),
            |e| matches!(e, Error::NoSuchBucket { bucket } if bucket == "tfstate"),
        ),
        (
            s3_error(400, "InvalidRequest"),
            |e| matches!(e, Error::Rejected { status: 400, code, .. } if code == "InvalidRequest"),
        ),
    ];
    for (response, check) in cases {
        let what = format!(
            "{} {:?}",
            response.status(),
            String::from_utf8_lossy(response.body())
        );
        let mut acq = acquire(opts(Wait::Forever, true));
        let (result, sent) = run(&mut acq, vec![Ok(response)]);
        let err = result.expect_err(&what);
        assert!(check(&err), "{what}: got {err:?}");
        assert_eq!(lines(&sent), [PUT], "{what}");
    }
}

#[test]
fn store_ignoring_if_none_match_is_detected_and_our_lock_removed() {
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run(
        &mut acq,
        vec![put_ok("\"e1\""), put_ok("\"e2\""), deleted()],
    );
    match result {
        Err(Error::ConditionalWritesUnsupported { endpoint, bucket }) => {
            assert_eq!(endpoint, ENDPOINT);
            assert_eq!(bucket, "tfstate");
        }
        other => panic!("expected ConditionalWritesUnsupported, got {other:?}"),
    }
    assert_eq!(lines(&sent), [PUT, PUT, "DELETE If-Match: \"e2\""]);
    assert_all_to_lock_url(&sent);
}

/// A store that ignores `If-None-Match` (the verification PUT gets through)
/// and refuses `DELETE If-Match` (501): acquire must end in
/// `ConditionalWritesUnsupported`, removing our lock by GET-compare-DELETE.
/// `then` answers the requests after the 501; returns every request line.
fn cleanup_on_a_store_ignoring_conditions(then: Vec<Reply>) -> Vec<String> {
    let mut acq = acquire(opts(Wait::No, true));
    let mut replies = vec![
        put_ok("\"e1\""),
        put_ok("\"e1\""),
        Ok(s3_error(501, "NotImplemented")),
    ];
    replies.extend(then);
    let (result, sent) = run(&mut acq, replies);
    assert!(
        matches!(result, Err(Error::ConditionalWritesUnsupported { .. })),
        "{result:?}"
    );
    lines(&sent)
}

#[test]
fn store_ignoring_conditions_and_conditional_delete_falls_back_to_get_compare_delete() {
    let sent = cleanup_on_a_store_ignoring_conditions(vec![ours("\"e1\""), deleted()]);
    assert_eq!(sent, [PUT, PUT, "DELETE If-Match: \"e1\"", "GET", "DELETE"]);
}

#[test]
fn cleanup_never_repeats_a_blind_delete_without_comparing_again() {
    // The unconditional DELETE fails in transit: it may have landed, and
    // someone else may have taken the lock since. Read again: theirs, so
    // nothing more is deleted.
    let sent = cleanup_on_a_store_ignoring_conditions(vec![
        ours("\"e1\""),
        Err(TransportFailure::maybe_sent("connection reset")),
        other_holder("\"theirs\""),
    ]);
    assert_eq!(
        sent,
        [PUT, PUT, "DELETE If-Match: \"e1\"", "GET", "DELETE", "GET"]
    );
}

#[test]
fn cleanup_on_a_store_refusing_every_delete_ends() {
    let sent = cleanup_on_a_store_ignoring_conditions(vec![
        ours("\"e1\""),
        Ok(s3_error(501, "NotImplemented")),
    ]);
    assert_eq!(sent, [PUT, PUT, "DELETE If-Match: \"e1\"", "GET", "DELETE"]);
}

#[test]
fn cleanup_chasing_a_lock_that_keeps_changing_gives_up() {
    // Cancelled after an uncertain PUT; every read shows our ID under a new
    // ETag and every conditional DELETE gets 412: a bounded chase, then stop.
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    acq.step(Event::Start, now);
    acq.step(
        Event::TransportFailed(TransportFailure::maybe_sent("reset")),
        now,
    );
    let mut action = acq.step(Event::Cancelled, now);
    let mut deletes = 0;
    for n in 0..100 {
        action = match action {
            Action::Send(req) if req.method() == Method::GET => {
                acq.step(Event::Response(ours(&format!("\"v{n}\"")).unwrap()), now)
            }
            Action::Send(req) if req.method() == Method::DELETE => {
                deletes += 1;
                acq.step(Event::Response(precondition_failed().unwrap()), now)
            }
            other => panic!("unexpected action {other:?}"),
        };
        if matches!(action, Action::Done(_)) {
            break;
        }
    }
    assert!(
        matches!(action, Action::Done(Err(Error::Cancelled))),
        "{action:?}"
    );
    assert_eq!(deletes, 4, "three chases after the first 412, then stop");
}

// ---------------------------------------------------------------------------
// Acquire: cancellation and misuse
// ---------------------------------------------------------------------------

#[test]
fn cancelled_while_waiting_for_a_holder_stops_without_requests() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    assert!(matches!(acq.step(Event::Start, now), Action::Send(_)));
    assert!(matches!(
        acq.step(Event::Response(precondition_failed().unwrap()), now),
        Action::Send(_)
    ));
    let Action::SleepUntil(_) = acq.step(Event::Response(other_holder("\"h\"").unwrap()), now)
    else {
        panic!()
    };
    let later = now.advanced(ms(100));
    assert!(matches!(
        acq.step(Event::Cancelled, later),
        Action::Done(Err(Error::Cancelled))
    ));
    assert!(matches!(
        acq.step(Event::TimerFired, later),
        Action::Done(Err(Error::Misuse(_)))
    ));
}

#[test]
fn cancelled_after_an_uncertain_put_reads_back_and_deletes_our_lock() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    let Action::Send(put) = acq.step(Event::Start, now) else {
        panic!()
    };
    assert_eq!(line(&put), PUT);
    let Action::SleepUntil(_) = acq.step(
        Event::TransportFailed(TransportFailure::maybe_sent("reset")),
        now,
    ) else {
        panic!("a transport failure is retried after a delay")
    };
    let Action::Send(get) = acq.step(Event::Cancelled, now) else {
        panic!("cancellation must first look for a lock we may have written")
    };
    assert_eq!(line(&get), "GET");
    let Action::Send(del) = acq.step(Event::Response(ours("\"landed\"").unwrap()), now) else {
        panic!("our lock must be deleted")
    };
    assert_eq!(line(&del), "DELETE If-Match: \"landed\"");
    assert!(matches!(
        acq.step(Event::Response(deleted().unwrap()), now),
        Action::Done(Err(Error::Cancelled))
    ));
    assert!(matches!(
        acq.step(Event::Cancelled, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
}

#[test]
fn cancelled_after_an_uncertain_put_leaves_a_foreign_lock_alone() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    acq.step(Event::Start, now);
    acq.step(
        Event::TransportFailed(TransportFailure::maybe_sent("reset")),
        now,
    );
    let Action::Send(get) = acq.step(Event::Cancelled, now) else {
        panic!()
    };
    assert_eq!(get.method(), Method::GET);
    assert!(matches!(
        acq.step(Event::Response(other_holder("\"t\"").unwrap()), now),
        Action::Done(Err(Error::Cancelled))
    ));
}

#[test]
fn cancelled_instead_of_sending_the_first_put_finishes_at_once() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    acq.step(Event::Start, now);
    // The PUT was never sent, so nothing can have landed.
    assert!(matches!(
        acq.step(Event::Cancelled, now),
        Action::Done(Err(Error::Cancelled))
    ));
}

#[test]
fn second_cancellation_during_cleanup_stops_at_once() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    acq.step(Event::Start, now);
    acq.step(
        Event::TransportFailed(TransportFailure::maybe_sent("reset")),
        now,
    );
    assert!(matches!(acq.step(Event::Cancelled, now), Action::Send(_)));
    assert!(matches!(
        acq.step(Event::Cancelled, now),
        Action::Done(Err(Error::Cancelled))
    ));
}

#[test]
fn cancelled_after_acquiring_during_verification_deletes_our_lock() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let now = origin();
    acq.step(Event::Start, now);
    let Action::Send(probe) = acq.step(Event::Response(put_ok("\"e\"").unwrap()), now) else {
        panic!()
    };
    assert_eq!(line(&probe), PUT);
    let Action::Send(del) = acq.step(Event::Cancelled, now) else {
        panic!("we hold the lock: it must be removed")
    };
    assert_eq!(line(&del), "DELETE If-Match: \"e\"");
    assert!(matches!(
        acq.step(Event::Response(deleted().unwrap()), now),
        Action::Done(Err(Error::Cancelled))
    ));
}

#[test]
fn misuse_is_an_error_never_a_panic() {
    let now = origin();
    // Acquire: stepping after Done, and events out of order.
    let mut acq = acquire(opts(Wait::No, false));
    let (result, _) = run(&mut acq, vec![put_ok("\"e\"")]);
    assert!(result.is_ok());
    for ev in [
        Event::Start,
        Event::TimerFired,
        Event::Cancelled,
        Event::Response(deleted().unwrap()),
        Event::TransportFailed(TransportFailure::maybe_sent("x")),
    ] {
        assert!(matches!(
            acq.step(ev, now),
            Action::Done(Err(Error::Misuse(_)))
        ));
    }
    let mut fresh = acquire(opts(Wait::No, false));
    assert!(matches!(
        fresh.step(Event::TimerFired, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    let mut fresh = acquire(opts(Wait::No, false));
    assert!(matches!(
        fresh.step(Event::Response(deleted().unwrap()), now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    // A misuse in the middle does not wedge or panic.
    let mut acq = acquire(opts(Wait::No, false));
    assert!(matches!(acq.step(Event::Start, now), Action::Send(_)));
    assert!(matches!(
        acq.step(Event::Start, now),
        Action::Done(Err(Error::Misuse(_)))
    ));

    // Unlock.
    let mut rel = release("\"e\"");
    let (result, _) = run(&mut rel, vec![deleted()]);
    assert!(result.is_ok());
    assert!(matches!(
        rel.step(Event::Start, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    assert!(matches!(
        rel.step(Event::Response(deleted().unwrap()), now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    let mut fresh = release("\"e\"");
    assert!(matches!(
        fresh.step(Event::TimerFired, now),
        Action::Done(Err(Error::Misuse(_)))
    ));

    // Status.
    let mut st = status();
    let (result, _) = run(&mut st, vec![no_such_key()]);
    assert_eq!(result.unwrap(), None);
    assert!(matches!(
        st.step(Event::Start, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    assert!(matches!(
        st.step(Event::TimerFired, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    let mut fresh = status();
    assert!(matches!(
        fresh.step(Event::Response(deleted().unwrap()), now),
        Action::Done(Err(Error::Misuse(_)))
    ));
}

// ---------------------------------------------------------------------------
// Unlock::release and Unlock::force
// ---------------------------------------------------------------------------

#[test]
fn release_412_then_foreign_lock_is_not_owned_and_not_deleted() {
    let mut rel = release("\"old\"");
    let (result, sent) = run(
        &mut rel,
        vec![precondition_failed(), other_holder("\"theirs\"")],
    );
    let Err(Error::NotOwned { holder: Some(h) }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(h.id(), Some(OTHER_ID));
    assert_eq!(h.etag, "\"theirs\"");
    assert_eq!(h.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(lines(&sent), ["DELETE If-Match: \"old\"", "GET"]);
}

#[test]
fn release_412_then_our_lock_under_a_new_etag_deletes_that_etag() {
    let mut rel = release("\"old\"");
    let (result, sent) = run(
        &mut rel,
        vec![precondition_failed(), ours("\"renewed\""), deleted()],
    );
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(
        lines(&sent),
        [
            "DELETE If-Match: \"old\"",
            "GET",
            "DELETE If-Match: \"renewed\""
        ]
    );
    assert!(!rel.used_fallback());
}

#[test]
fn release_chasing_an_ever_changing_etag_gives_up() {
    let mut rel = release("\"e0\"");
    let mut script = vec![precondition_failed()];
    for i in 1..=4 {
        script.push(ours(&format!("\"e{i}\"")));
        if i <= 3 {
            script.push(precondition_failed());
        }
    }
    let (result, sent) = run(&mut rel, script);
    assert!(
        matches!(result, Err(Error::Server { status: 412, .. })),
        "{result:?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|(_, r)| r.method() == Method::DELETE)
            .count(),
        4
    );
}

#[test]
fn release_of_a_missing_lock_is_already_gone() {
    let mut rel = release("\"e\"");
    let (result, sent) = run(&mut rel, vec![no_such_key()]);
    assert_eq!(result.unwrap(), UnlockOutcome::AlreadyGone);
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e\""]);
}

#[test]
fn release_on_a_store_without_conditional_delete_falls_back_like_terraform() {
    let mut rel = release("\"e\"");
    let (result, sent) = run(
        &mut rel,
        vec![
            Ok(s3_error(501, "NotImplemented")),
            ours("\"e\""),
            deleted(),
        ],
    );
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e\"", "GET", "DELETE"]);
    assert!(sent[2].1.headers().get("if-match").is_none());
    assert!(rel.used_fallback());
}

#[test]
fn release_fallback_still_refuses_a_foreign_lock() {
    let mut rel = release("\"e\"");
    let (result, sent) = run(
        &mut rel,
        vec![Ok(s3_error(501, "NotImplemented")), other_holder("\"t\"")],
    );
    assert!(
        matches!(result, Err(Error::NotOwned { holder: Some(_) })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e\"", "GET"]);
    assert!(rel.used_fallback());
}

#[test]
fn release_400_refusing_if_match_falls_back() {
    let mut rel = release("\"e\"");
    let refused = resp(
        400,
        &[],
        "<Error><Code>InvalidArgument</Code><Message>If-Match is not supported for DELETE</Message></Error>",
    );
    let (result, sent) = run(&mut rel, vec![Ok(refused), ours("\"e\""), deleted()]);
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e\"", "GET", "DELETE"]);
    assert!(rel.used_fallback());
}

#[test]
fn release_fallback_never_repeats_a_blind_delete() {
    // GET-compare-DELETE whose DELETE fails in transit. Repeating the blind
    // DELETE could remove a lock taken meanwhile by someone else: compare again.
    // The lock now carries another ID, so our DELETE did land (the read had
    // just found our ID): released, and theirs untouched.
    let mut rel = release("\"e\"");
    let (result, sent) = run(
        &mut rel,
        vec![
            Ok(s3_error(501, "NotImplemented")),
            ours("\"e\""),
            Err(TransportFailure::maybe_sent("connection reset")),
            other_holder("\"b\""),
        ],
    );
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(
        lines(&sent),
        ["DELETE If-Match: \"e\"", "GET", "DELETE", "GET"]
    );

    // Same, with a 503 that had in fact deleted it: the read finds nothing.
    let mut rel = release("\"e\"");
    let (result, sent) = run(
        &mut rel,
        vec![
            Ok(s3_error(501, "NotImplemented")),
            ours("\"e\""),
            Ok(s3_error(503, "SlowDown")),
            no_such_key(),
        ],
    );
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(
        lines(&sent),
        ["DELETE If-Match: \"e\"", "GET", "DELETE", "GET"]
    );
}

#[test]
fn release_transport_error_then_404_counts_as_released() {
    let mut rel = release("\"e\"");
    let (result, sent) = run(
        &mut rel,
        vec![Err(TransportFailure::maybe_sent("reset")), no_such_key()],
    );
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e\""; 2]);
    let t = times(&sent);
    assert!(within(t[1], Backoff::TRANSIENT.ceiling(0)), "{t:?}");
}

#[test]
fn release_whose_delete_landed_unheard_then_412_on_the_next_holder_is_released() {
    // Our DELETE If-Match lands but its answer is lost; meanwhile the next
    // holder takes the lock, so the retry gets 412. Our lock is gone and theirs
    // was never touched: released, not NotOwned.
    for first in [
        Err(TransportFailure::maybe_sent("connection reset")),
        Ok(s3_error(503, "SlowDown")),
    ] {
        let mut rel = release("\"e\"");
        let (result, sent) = run(
            &mut rel,
            vec![first, precondition_failed(), other_holder("\"theirs\"")],
        );
        assert_eq!(result.unwrap(), UnlockOutcome::Released);
        assert_eq!(
            lines(&sent),
            ["DELETE If-Match: \"e\"", "DELETE If-Match: \"e\"", "GET"]
        );
    }
    // A 412 on our first DELETE, or after a 409 (a concurrent write won, so
    // our DELETE was not applied), is someone else's lock: NotOwned.
    for first in [
        precondition_failed(),
        Ok(s3_error(409, "ConditionalRequestConflict")),
    ] {
        let mut rel = release("\"e\"");
        let mut replies = vec![first];
        if rel_needs_second_412(&replies) {
            replies.push(precondition_failed());
        }
        replies.push(other_holder("\"theirs\""));
        let (result, _) = run(&mut rel, replies);
        assert!(
            matches!(result, Err(Error::NotOwned { holder: Some(_) })),
            "{result:?}"
        );
    }
}

/// After a 409 the DELETE is repeated (and then gets 412); after a 412 the
/// lock is read at once.
fn rel_needs_second_412(replies: &[Reply]) -> bool {
    matches!(&replies[0], Ok(r) if r.status() == 409)
}

#[test]
fn release_transient_failures_until_budget_is_a_server_error() {
    let mut rel = release("\"e\"");
    let (result, sent) = run_virtual(&mut rel, origin(), |req, _| {
        assert_eq!(line(req), "DELETE If-Match: \"e\"");
        Ok(s3_error(503, "SlowDown"))
    });
    assert!(
        matches!(&result, Err(Error::Server { status: 503, code, .. }) if code == "SlowDown"),
        "{result:?}"
    );
    assert_eq!(*times(&sent).last().unwrap(), secs(10));
}

#[test]
fn release_access_denied_is_final() {
    let mut rel = release("\"e\"");
    let (result, sent) = run(&mut rel, vec![Ok(s3_error(403, "AccessDenied"))]);
    assert!(
        matches!(result, Err(Error::AccessDenied { .. })),
        "{result:?}"
    );
    assert_eq!(sent.len(), 1);
}

#[test]
fn release_cancelled_stops() {
    let mut rel = release("\"e\"");
    let now = origin();
    assert!(matches!(rel.step(Event::Start, now), Action::Send(_)));
    assert!(matches!(
        rel.step(
            Event::TransportFailed(TransportFailure::maybe_sent("x")),
            now
        ),
        Action::SleepUntil(_)
    ));
    assert!(matches!(
        rel.step(Event::Cancelled, now),
        Action::Done(Err(Error::Cancelled))
    ));
}

#[test]
fn force_unlock_with_a_wrong_id_does_not_delete() {
    let mut f = force(OUR_ID);
    let (result, sent) = run(&mut f, vec![other_holder("\"t\"")]);
    let Err(Error::NotOwned { holder: Some(h) }) = result else {
        panic!("{result:?}")
    };
    assert_eq!(h.id(), Some(OTHER_ID));
    assert_eq!(lines(&sent), ["GET"]);
}

#[test]
fn force_unlock_with_the_right_id_deletes_the_etag_it_read() {
    let mut f = force(OTHER_ID);
    let (result, sent) = run(&mut f, vec![other_holder("\"t\""), deleted()]);
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["GET", "DELETE If-Match: \"t\""]);
    assert_all_to_lock_url(&sent);
}

#[test]
fn force_unlock_of_an_absent_lock_is_already_gone() {
    let mut f = force(OTHER_ID);
    let (result, sent) = run(&mut f, vec![no_such_key()]);
    assert_eq!(result.unwrap(), UnlockOutcome::AlreadyGone);
    assert_eq!(lines(&sent), ["GET"]);
}

#[test]
fn force_unlock_of_an_unparseable_lock_is_not_owned() {
    let mut f = force(OTHER_ID);
    let (result, sent) = run(&mut f, vec![lock_object("garbage", "\"g\"")]);
    assert!(
        matches!(result, Err(Error::NotOwned { holder: Some(_) })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), ["GET"]);
}

// ---------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------

#[test]
fn status_reports_the_holder() {
    let mut st = status();
    let (result, sent) = run(&mut st, vec![other_holder("\"t\"")]);
    let h = result.unwrap().expect("held");
    assert_eq!(h.id(), Some(OTHER_ID));
    assert_eq!(h.etag, "\"t\"");
    assert_eq!(h.last_modified.as_deref(), Some(LAST_MODIFIED));
    assert_eq!(
        h.info.unwrap(),
        LockInfo::parse(OTHER_BODY.as_bytes()).unwrap()
    );
    assert_eq!(lines(&sent), ["GET"]);
    assert_all_to_lock_url(&sent);
}

#[test]
fn status_with_an_unparseable_body_still_reports_a_holder() {
    let mut st = status();
    let (result, _) = run(
        &mut st,
        vec![lock_object(&b"\xff\xfe not json"[..], "\"g\"")],
    );
    let h = result.unwrap().expect("held");
    assert!(h.info.is_err());
    assert_eq!(h.etag, "\"g\"");
}

#[test]
fn status_of_a_free_lock_is_none() {
    let mut st = status();
    let (result, sent) = run(&mut st, vec![no_such_key()]);
    assert_eq!(result.unwrap(), None);
    assert_eq!(lines(&sent), ["GET"]);
}

#[test]
fn status_retries_transient_errors_and_reports_final_ones() {
    let mut st = status();
    let (result, sent) = run(
        &mut st,
        vec![Ok(s3_error(500, "InternalError")), no_such_key()],
    );
    assert_eq!(result.unwrap(), None);
    assert!(within(times(&sent)[1], Backoff::TRANSIENT.ceiling(0)));

    let mut st = status();
    let (result, _) = run(&mut st, vec![Ok(s3_error(404, "NoSuchBucket"))]);
    assert!(
        matches!(result, Err(Error::NoSuchBucket { .. })),
        "{result:?}"
    );

    let mut st = status();
    let (result, _) = run(&mut st, vec![Ok(resp(200, &[], OTHER_BODY))]);
    assert!(
        matches!(result, Err(Error::MalformedResponse { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------
// The once-per-store proof covers DELETE If-Match; the verdict reaches release
// ---------------------------------------------------------------------------

const PROOF_DELETE: &str = "DELETE If-Match: \"condlock-proof-mismatch\"";

fn fallback_warnings(logs: &[(log::Level, String)]) -> usize {
    log_capture::warnings(logs)
        .iter()
        .filter(|w| w.contains("GET-compare-DELETE"))
        .count()
}

#[test]
fn verification_proves_conditional_delete_and_release_trusts_it() {
    let verdicts = ConditionalWriteVerdicts::new();
    let mut acq = acquire(opts(Wait::No, true)).with_verdicts(verdicts.clone());
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"e1\""),
            precondition_failed(),
            precondition_failed(),
        ],
    );
    let held = result.unwrap();
    assert_eq!(held.etag, "\"e1\"");
    assert!(held.verified_conditional_writes);
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE]);
    assert!(verdicts.is_verified(&config()));
    assert_eq!(
        verdicts.conditional_delete(&config()),
        ConditionalDelete::Proven
    );

    let mut rel = release("\"e1\"").with_verdicts(verdicts);
    let (result, sent) = run(&mut rel, vec![deleted()]);
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["DELETE If-Match: \"e1\""]);
    assert!(!rel.used_fallback());
}

#[test]
fn a_store_ignoring_if_match_on_delete_is_found_out_and_never_trusted_to_release() {
    // Ceph radosgw: If-None-Match enforced, If-Match on DELETE ignored. The
    // proof DELETE with a wrong ETag deletes our lock: we no longer hold it,
    // so acquire starts over (no re-creation of "our" lock behind anyone's
    // back), and the verdict is remembered.
    let verdicts = ConditionalWriteVerdicts::new();
    let mut acq = acquire(opts(Wait::No, true)).with_verdicts(verdicts.clone());
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"e1\""),
            precondition_failed(),
            deleted(),
            put_ok("\"e2\""),
        ],
    );
    let held = result.unwrap();
    assert_eq!(held.etag, "\"e2\"");
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE, PUT]);
    assert!(verdicts.is_verified(&config()));
    assert_eq!(
        verdicts.conditional_delete(&config()),
        ConditionalDelete::Unsupported
    );

    // A stale release (our lock was since taken over) must not delete the
    // new holder's lock: read, compare, leave it.
    let ((result, sent), logs) = log_capture::capture(|| {
        let mut rel = release("\"e2\"").with_verdicts(verdicts.clone());
        run(&mut rel, vec![other_holder("\"theirs\"")])
    });
    assert!(
        matches!(result, Err(Error::NotOwned { holder: Some(_) })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), ["GET"]);
    assert_eq!(fallback_warnings(&logs), 1, "{logs:?}");

    // Our own lock: read, compare, delete; the fallback is not warned again.
    let ((result, sent), logs) = log_capture::capture(|| {
        let mut rel = release("\"e2\"").with_verdicts(verdicts.clone());
        let out = run(&mut rel, vec![ours("\"e2\""), deleted()]);
        assert!(rel.used_fallback());
        out
    });
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["GET", "DELETE"]);
    assert_eq!(fallback_warnings(&logs), 0, "{logs:?}");

    // A later acquire does not prove it again (the driver sees is_verified),
    // and its release is the fallback too.
    let mut acq = acquire(opts(Wait::No, false)).with_verdicts(verdicts.clone());
    let (result, sent) = run(&mut acq, vec![put_ok("\"e3\"")]);
    assert_eq!(result.unwrap().etag, "\"e3\"");
    assert_eq!(lines(&sent), [PUT]);
}

#[test]
fn a_store_refusing_conditional_delete_during_the_proof_keeps_our_lock() {
    let verdicts = ConditionalWriteVerdicts::new();
    let mut acq = acquire(opts(Wait::No, true)).with_verdicts(verdicts.clone());
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"e1\""),
            precondition_failed(),
            Ok(s3_error(501, "NotImplemented")),
        ],
    );
    assert_eq!(result.unwrap().etag, "\"e1\"");
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE]);
    assert!(verdicts.is_verified(&config()));
    assert_eq!(
        verdicts.conditional_delete(&config()),
        ConditionalDelete::Unsupported
    );
    let mut rel = release("\"e1\"").with_verdicts(verdicts);
    let (result, sent) = run(&mut rel, vec![ours("\"e1\""), deleted()]);
    assert_eq!(result.unwrap(), UnlockOutcome::Released);
    assert_eq!(lines(&sent), ["GET", "DELETE"]);
}

#[test]
fn an_answer_lost_on_the_proof_delete_is_read_back_before_anything_else() {
    // The proof DELETE's answer is lost: on a store ignoring If-Match it may
    // have deleted our lock, and someone else may hold the lock by now, so
    // it is never repeated blind. The read shows our lock: prove again.
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"e1\""),
            precondition_failed(),
            Err(TransportFailure::maybe_sent("connection reset")),
            ours("\"e1\""),
            precondition_failed(),
        ],
    );
    assert_eq!(result.unwrap().etag, "\"e1\"");
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE, "GET", PROOF_DELETE]);

    // The read shows another holder: our lock is gone, start over (and wait
    // as asked: Wait::No reports the holder).
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run(
        &mut acq,
        vec![
            put_ok("\"e1\""),
            precondition_failed(),
            Ok(s3_error(503, "SlowDown")),
            other_holder("\"theirs\""),
            precondition_failed(),
            other_holder("\"theirs\""),
        ],
    );
    assert!(
        matches!(result, Err(Error::Held { holder: Some(_) })),
        "{result:?}"
    );
    assert_eq!(lines(&sent), [PUT, PUT, PROOF_DELETE, "GET", PUT, "GET"]);
}

#[test]
fn the_501_fallback_of_release_is_warned_once_per_store() {
    let verdicts = ConditionalWriteVerdicts::new();
    let ((), logs) = log_capture::capture(|| {
        let mut rel = release("\"e\"").with_verdicts(verdicts.clone());
        let (result, sent) = run(
            &mut rel,
            vec![
                Ok(s3_error(501, "NotImplemented")),
                ours("\"e\""),
                deleted(),
            ],
        );
        assert_eq!(result.unwrap(), UnlockOutcome::Released);
        assert_eq!(lines(&sent), ["DELETE If-Match: \"e\"", "GET", "DELETE"]);
        // Remembered: the next release goes straight to the fallback.
        let mut rel = release("\"e\"").with_verdicts(verdicts.clone());
        let (result, sent) = run(&mut rel, vec![ours("\"e\""), deleted()]);
        assert_eq!(result.unwrap(), UnlockOutcome::Released);
        assert_eq!(lines(&sent), ["GET", "DELETE"]);
    });
    assert_eq!(fallback_warnings(&logs), 1, "{logs:?}");
    assert_eq!(
        verdicts.conditional_delete(&config()),
        ConditionalDelete::Unsupported
    );
}

#[test]
fn trusting_a_store_without_proof_is_warned_once_per_store() {
    let verdicts = ConditionalWriteVerdicts::new();
    let trusting = |verdicts: &ConditionalWriteVerdicts, config: Arc<S3LockConfig>| {
        let mut acq = Acquire::new(
            config,
            creds(),
            opts(Wait::No, false),
            Entropy {
                lock_id: OUR_ID_BYTES,
                jitter_seed: 1,
            },
            ClockOffset::default(),
            origin(),
        )
        .with_verdicts(verdicts.clone());
        let ((result, _), logs) = log_capture::capture(|| run(&mut acq, vec![put_ok("\"e\"")]));
        result.unwrap();
        log_capture::warnings(&logs)
            .iter()
            .filter(|w| w.contains("without proof"))
            .count()
    };
    assert_eq!(trusting(&verdicts, config()), 1);
    assert_eq!(trusting(&verdicts, config()), 0, "once per store");
    let other_bucket = Arc::new(
        S3LockConfig::builder("other-bucket", "envs/dev/terraform.tfstate")
            .endpoint(ENDPOINT)
            .build()
            .unwrap(),
    );
    assert_eq!(trusting(&verdicts, other_bucket), 1, "another store");
    // A store that proved itself needs no warning.
    let proven = Arc::new(
        S3LockConfig::builder("proven", "k")
            .endpoint(ENDPOINT)
            .build()
            .unwrap(),
    );
    verdicts.mark_verified(&proven);
    assert_eq!(trusting(&verdicts, proven), 0);
}

// ---------------------------------------------------------------------------
// Server messages never carry our secrets back to the user
// ---------------------------------------------------------------------------

/// An error body whose message echoes every secret we hold, in raw and
/// base64 forms (a hostile or buggy server).
fn echoing_secrets(status: u16, code: &str) -> Reply {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // SSE_C_KEY decodes to printable ASCII, so its raw form can be echoed too.
    let raw_sse_c = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(SSE_C_KEY)
            .unwrap(),
    )
    .unwrap();
    Ok(resp(
        status,
        &[],
        format!(
            "<Error><Code>{code}</Code><Message>token {SESSION_TOKEN} ({}) secret {SECRET_KEY} \
             ({}) sse-c {SSE_C_KEY} raw {raw_sse_c}</Message></Error>",
            b64(SESSION_TOKEN),
            b64(SECRET_KEY)
        ),
    ))
}

fn assert_no_secret_in(err: &Error) {
    let raw_sse_c = base64::engine::general_purpose::STANDARD
        .decode(SSE_C_KEY)
        .unwrap();
    let raw_sse_c = String::from_utf8(raw_sse_c).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for shown in [err.to_string(), format!("{err:?}")] {
        for secret in [
            SESSION_TOKEN.to_string(),
            SECRET_KEY.to_string(),
            SSE_C_KEY.to_string(),
            raw_sse_c.clone(),
            b64(SESSION_TOKEN),
            b64(SECRET_KEY),
        ] {
            assert!(!shown.contains(&secret), "{secret} in {shown}");
        }
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

#[test]
fn server_messages_echoing_our_secrets_are_redacted_in_errors() {
    let config = Arc::new(sse_c_config());
    let entropy = Entropy {
        lock_id: OUR_ID_BYTES,
        jitter_seed: 1,
    };
    // Acquire: 403 (AccessDenied) and 400 (Rejected).
    for (status, code) in [(403, "AccessDenied"), (400, "InvalidRequest")] {
        let mut acq = Acquire::new(
            config.clone(),
            token_creds(),
            opts(Wait::No, false),
            entropy,
            ClockOffset::default(),
            origin(),
        );
        let (result, _) = run(&mut acq, vec![echoing_secrets(status, code)]);
        assert_no_secret_in(&result.unwrap_err());
    }
    // Release: a 5xx until the budget (Server).
    let mut rel = Unlock::release(
        config.clone(),
        token_creds(),
        &our_info(),
        "\"e\"",
        secs(1),
        9,
        ClockOffset::default(),
    );
    let (result, _) = run_virtual(&mut rel, origin(), |_, _| {
        echoing_secrets(500, "InternalError")
    });
    assert_no_secret_in(&result.unwrap_err());
    // Status: 400 (Rejected).
    let mut st = Status::new(config, token_creds(), secs(1), 9, ClockOffset::default());
    let (result, _) = run(&mut st, vec![echoing_secrets(400, "InvalidRequest")]);
    assert_no_secret_in(&result.unwrap_err());
}

// ---------------------------------------------------------------------------
// Request building
// ---------------------------------------------------------------------------

fn sse_c_config() -> S3LockConfig {
    S3LockConfig::builder("tfstate", "envs/dev/terraform.tfstate")
        .endpoint(ENDPOINT)
        .sse_customer_key(SSE_C_KEY)
        .build()
        .unwrap()
}

fn token_creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", SECRET_KEY, Some(Secret::new(SESSION_TOKEN))).unwrap()
}

fn names(req: &Request<Body>) -> BTreeSet<String> {
    req.headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn signed_headers(req: &Request<Body>) -> String {
    let auth = header(req, "authorization").unwrap();
    let start = auth.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
    let rest = &auth[start..];
    rest[..rest.find(',').unwrap()].to_string()
}

const BODY: &[u8] = br#"{"ID":"x"}"#;

#[test]
fn put_headers_sse_s3_acl_tags() {
    let c = S3LockConfig::builder("tfstate", "envs/dev/terraform.tfstate")
        .endpoint(ENDPOINT)
        .encryption(Encryption::S3Managed)
        .acl("bucket-owner-full-control")
        .tag("team", "infra ops")
        .build()
        .unwrap();
    let req = put_lock(&c, &creds(), BODY, PutCondition::IfNoneMatch, origin().wall).unwrap();
    assert_eq!(req.method(), Method::PUT);
    assert_eq!(req.uri().to_string(), LOCK_URL);
    assert_eq!(req.body(), BODY);
    assert_eq!(
        names(&req),
        set(&[
            "authorization",
            "content-type",
            "if-none-match",
            "x-amz-acl",
            "x-amz-checksum-sha256",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-server-side-encryption",
            "x-amz-tagging",
        ])
    );
    let sha = sha2::Sha256::digest(BODY);
    assert_eq!(header(&req, "content-type").unwrap(), "application/json");
    assert_eq!(header(&req, "if-none-match").unwrap(), "*");
    assert_eq!(
        header(&req, "x-amz-checksum-sha256").unwrap(),
        base64::engine::general_purpose::STANDARD.encode(sha)
    );
    assert_eq!(
        header(&req, "x-amz-content-sha256").unwrap(),
        hex::encode(sha)
    );
    assert_eq!(header(&req, "x-amz-date").unwrap(), "20261122T030000Z");
    assert_eq!(
        header(&req, "x-amz-server-side-encryption").unwrap(),
        "AES256"
    );
    assert_eq!(
        header(&req, "x-amz-acl").unwrap(),
        "bucket-owner-full-control"
    );
    assert_eq!(header(&req, "x-amz-tagging").unwrap(), "team=infra%20ops");
    let auth = header(&req, "authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/aws4_request, SignedHeaders="),
        "{auth}"
    );
    // The condition and every x-amz header are covered by the signature.
    let signed = signed_headers(&req);
    for h in [
        "content-type",
        "host",
        "if-none-match",
        "x-amz-acl",
        "x-amz-checksum-sha256",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-server-side-encryption",
        "x-amz-tagging",
    ] {
        assert!(signed.split(';').any(|s| s == h), "{h} not in {signed}");
    }
}

#[test]
fn put_headers_kms_and_if_match_and_no_checksum() {
    let c = S3LockConfig::builder("tfstate", "envs/dev/terraform.tfstate")
        .endpoint(ENDPOINT)
        .encryption(Encryption::Kms {
            key_id: Some("arn:aws:kms:us-east-1:111122223333:key/abcd".into()),
        })
        .checksum(false)
        .build()
        .unwrap();
    let req = put_lock(
        &c,
        &creds(),
        BODY,
        PutCondition::IfMatch("\"e1\""),
        origin().wall,
    )
    .unwrap();
    assert_eq!(
        names(&req),
        set(&[
            "authorization",
            "content-type",
            "if-match",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-server-side-encryption",
            "x-amz-server-side-encryption-aws-kms-key-id",
        ])
    );
    assert_eq!(header(&req, "if-match").unwrap(), "\"e1\"");
    assert_eq!(
        header(&req, "x-amz-server-side-encryption").unwrap(),
        "aws:kms"
    );
    assert_eq!(
        header(&req, "x-amz-server-side-encryption-aws-kms-key-id").unwrap(),
        "arn:aws:kms:us-east-1:111122223333:key/abcd"
    );
    // KMS with the default key: no key id header.
    let c = S3LockConfig::builder("tfstate", "k")
        .encryption(Encryption::Kms { key_id: None })
        .build()
        .unwrap();
    let req = put_lock(&c, &creds(), BODY, PutCondition::IfNoneMatch, origin().wall).unwrap();
    assert!(req
        .headers()
        .get("x-amz-server-side-encryption-aws-kms-key-id")
        .is_none());
    assert_eq!(
        header(&req, "x-amz-server-side-encryption").unwrap(),
        "aws:kms"
    );
}

#[test]
fn put_and_get_carry_sse_c_headers_delete_does_not() {
    let c = sse_c_config();
    let sse_c = [
        "x-amz-server-side-encryption-customer-algorithm",
        "x-amz-server-side-encryption-customer-key",
        "x-amz-server-side-encryption-customer-key-md5",
    ];
    let check = |req: &Request<Body>| {
        assert_eq!(
            header(req, "x-amz-server-side-encryption-customer-algorithm").unwrap(),
            "AES256"
        );
        assert_eq!(
            header(req, "x-amz-server-side-encryption-customer-key").unwrap(),
            SSE_C_KEY
        );
        assert_eq!(
            header(req, "x-amz-server-side-encryption-customer-key-md5").unwrap(),
            "hRasmdxgYDKV3nvbahU1MA=="
        );
    };
    let put = put_lock(
        &c,
        &token_creds(),
        BODY,
        PutCondition::IfNoneMatch,
        origin().wall,
    )
    .unwrap();
    let mut expected = set(&[
        "authorization",
        "content-type",
        "if-none-match",
        "x-amz-checksum-sha256",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
    ]);
    expected.extend(sse_c.iter().map(|s| s.to_string()));
    assert_eq!(names(&put), expected);
    check(&put);
    assert!(header(&put, "x-amz-server-side-encryption").is_none());

    let get = get_lock(&c, &token_creds(), origin().wall).unwrap();
    assert_eq!(get.method(), Method::GET);
    assert!(get.body().is_empty());
    let mut expected = set(&[
        "authorization",
        "x-amz-content-sha256",
        "x-amz-date",
        "x-amz-security-token",
    ]);
    expected.extend(sse_c.iter().map(|s| s.to_string()));
    assert_eq!(names(&get), expected);
    check(&get);
    assert_eq!(
        header(&get, "x-amz-content-sha256").unwrap(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(header(&get, "x-amz-security-token").unwrap(), SESSION_TOKEN);
    for h in sse_c {
        assert!(signed_headers(&get).split(';').any(|s| s == h), "{h}");
    }

    let del = delete_lock(&c, &token_creds(), Some("\"e\""), origin().wall).unwrap();
    assert_eq!(
        names(&del),
        set(&[
            "authorization",
            "if-match",
            "x-amz-content-sha256",
            "x-amz-date",
            "x-amz-security-token",
        ])
    );
}

#[test]
fn delete_with_and_without_if_match() {
    let c = config();
    let del = delete_lock(&c, &creds(), Some("\"9b2c\""), origin().wall).unwrap();
    assert_eq!(del.method(), Method::DELETE);
    assert_eq!(del.uri().to_string(), LOCK_URL);
    assert!(del.body().is_empty());
    assert_eq!(
        names(&del),
        set(&[
            "authorization",
            "if-match",
            "x-amz-content-sha256",
            "x-amz-date"
        ])
    );
    assert_eq!(header(&del, "if-match").unwrap(), "\"9b2c\"");
    assert!(signed_headers(&del).split(';').any(|s| s == "if-match"));
    let plain = delete_lock(&c, &creds(), None, origin().wall).unwrap();
    assert_eq!(
        names(&plain),
        set(&["authorization", "x-amz-content-sha256", "x-amz-date"])
    );
    // An ETag that cannot be a header is an error, not a panic.
    assert!(matches!(
        delete_lock(&c, &creds(), Some("\"bad\nvalue\""), origin().wall),
        Err(Error::MalformedResponse { .. })
    ));
}

#[test]
fn debug_of_signed_requests_never_shows_secrets() {
    let c = sse_c_config();
    let creds = token_creds();
    let reqs = [
        put_lock(&c, &creds, BODY, PutCondition::IfNoneMatch, origin().wall).unwrap(),
        get_lock(&c, &creds, origin().wall).unwrap(),
        delete_lock(&c, &creds, Some("\"e\""), origin().wall).unwrap(),
    ];
    for req in &reqs {
        let dbg = format!("{req:?} {:?}", req.headers());
        assert!(!dbg.contains(SECRET_KEY), "{dbg}");
        assert!(!dbg.contains(SESSION_TOKEN), "{dbg}");
        assert!(!dbg.contains(SSE_C_KEY), "{dbg}");
        assert!(!dbg.contains("Signature="), "{dbg}");
        assert!(dbg.contains("x-amz-date"), "{dbg}");
    }
    // The machines' Debug (which holds config and credentials) is clean too.
    let st = Status::new(Arc::new(c), creds, secs(1), 1, ClockOffset::default());
    let dbg = format!("{st:?}");
    for secret in [SECRET_KEY, SESSION_TOKEN, SSE_C_KEY] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
}

/// HMAC-SHA256 from the SHA-256 primitive, for an independent SigV4 check.
fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = sha2::Sha256::new();
    inner.update(k.iter().map(|b| b ^ 0x36).collect::<Vec<u8>>());
    inner.update(msg);
    let mut outer = sha2::Sha256::new();
    outer.update(k.iter().map(|b| b ^ 0x5c).collect::<Vec<u8>>());
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

#[test]
fn signature_matches_an_independent_sigv4_computation_with_single_encoding() {
    // A workspace key with ':' and a space: encoded once in the URL and once
    // (not twice) in the canonical request.
    let c = S3LockConfig::builder("tfstate", "a b/key")
        .workspace("dev")
        .endpoint(ENDPOINT)
        .build()
        .unwrap();
    let path = "/tfstate/env%3A/dev/a%20b/key.tflock";
    assert_eq!(c.lock_url(), format!("{ENDPOINT}{path}"));
    let req = delete_lock(&c, &creds(), Some("\"e1\""), origin().wall).unwrap();
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let canonical = format!(
        "DELETE\n{path}\n\nhost:127.0.0.1:9000\nif-match:\"e1\"\nx-amz-content-sha256:{empty}\nx-amz-date:20261122T030000Z\n\nhost;if-match;x-amz-content-sha256;x-amz-date\n{empty}"
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n20261122T030000Z\n20261122/us-east-1/s3/aws4_request\n{}",
        hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{SECRET_KEY}").as_bytes(), b"20261122");
    let k_region = hmac(&k_date, b"us-east-1");
    let k_service = hmac(&k_region, b"s3");
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex::encode(hmac(&k_signing, to_sign.as_bytes()));
    assert_eq!(
        header(&req, "authorization").unwrap(),
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/s3/aws4_request, SignedHeaders=host;if-match;x-amz-content-sha256;x-amz-date, Signature={signature}"
        )
    );
}

mod failfast;
