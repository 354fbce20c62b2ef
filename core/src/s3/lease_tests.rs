//! Leases on a virtual clock: the renewal schedule and safety margin, lost-lock
//! reasons, renewal racing release, and takeover timing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};

use super::acquire::{Acquire, AcquireOptions, Entropy, HeldLock};
use super::config::{Credentials, S3LockConfig};
use super::lease::{LeaseTerms, LostReason, Renew, Takeover};
use super::lockinfo::{LeaseInfo, LockInfo};
use super::unlock::{Unlock, UnlockOutcome};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{run_virtual, Body, TransportFailure, Wait};
use crate::time::{ClockOffset, Now};

const ID_BYTES: [u8; 16] = [0xab; 16];
const OUR_ID: &str = "abababab-abab-abab-abab-abababababab";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn config() -> Arc<S3LockConfig> {
    Arc::new(
        S3LockConfig::builder("tfstate", "k")
            .endpoint("http://127.0.0.1:9000")
            .build()
            .unwrap(),
    )
}

fn creds() -> Credentials {
    Credentials::new("AKID", "secret", None).unwrap()
}

fn ok(etag: &str) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("etag", etag)
        .body(Vec::new())
        .unwrap()
}

fn body_response(etag: &str, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("etag", etag)
        .body(body)
        .unwrap()
}

fn error(status: u16, code: &str) -> Response<Body> {
    let xml = format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
    Response::builder()
        .status(status)
        .body(xml.into_bytes())
        .unwrap()
}

fn header<'a>(r: &'a Request<Body>, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A body of another holder, with or without a lease.
fn other_body(lease: Option<(u64, u64)>) -> Vec<u8> {
    let mut info = LockInfo::new(
        [0x11; 16],
        "OperationTypeApply",
        "",
        "bob@box",
        "tfstate/k",
        Now::virtual_origin().wall,
    );
    info.lease = lease.map(|(duration_ms, generation)| LeaseInfo {
        duration_ms,
        generation,
        renewed: info.created.clone(),
        renewals: 0,
    });
    info.to_json()
}

fn lease_acquire(wait: Wait, lease: Option<LeaseTerms>, takeover: Takeover) -> Acquire {
    let mut o = AcquireOptions::new("alice@ci");
    o.wait = wait;
    o.verify_conditional_writes = false;
    o.lease = lease;
    o.takeover = takeover;
    o.wait_backoff = Backoff {
        initial: Duration::from_millis(500),
        max: secs(2),
        multiplier: 2.0,
    };
    Acquire::new(
        config(),
        creds(),
        o,
        Entropy {
            lock_id: ID_BYTES,
            jitter_seed: 42,
        },
        ClockOffset::default(),
        Now::virtual_origin(),
    )
}

/// A waiter holding with a 30 s lease that may take over expired leases
/// (not Terraform's locks), waiting at most `wait`.
fn expired_lease_taker(wait: Duration) -> Acquire {
    let takeover = Takeover {
        expired_leases: true,
        stale_without_lease: None,
    };
    lease_acquire(Wait::For(wait), Some(LeaseTerms::new(secs(30))), takeover)
}

fn held_with_lease(etag: &str, written_at: Duration) -> HeldLock {
    let terms = LeaseTerms::new(secs(30));
    let mut info = LockInfo::new(
        ID_BYTES,
        "condlock",
        "",
        "alice@ci",
        "tfstate/k",
        Now::virtual_origin().wall,
    );
    info.lease = Some(LeaseInfo {
        duration_ms: 30_000,
        generation: 1,
        renewed: info.created.clone(),
        renewals: 0,
    });
    HeldLock {
        info,
        etag: etag.to_string(),
        verified_conditional_writes: true,
        lease: Some(terms),
        written_at,
    }
}

#[test]
fn terms_default_cadence_and_validation() {
    let t = LeaseTerms::new(secs(30));
    assert_eq!((t.renew_every, t.safety_margin), (secs(10), secs(6)));
    assert_eq!(t.renew_at(secs(100)), secs(110));
    assert_eq!(t.give_up_at(secs(100)), secs(124));
    assert!(t.validate().is_ok());
    assert!(LeaseTerms::new(Duration::from_millis(500))
        .validate()
        .is_err());
    let bad = LeaseTerms {
        duration: secs(10),
        renew_every: secs(8),
        safety_margin: secs(3),
    };
    assert!(matches!(
        bad.validate(),
        Err(Error::InvalidConfig { field: "lease", .. })
    ));
}

#[test]
fn acquire_with_a_lease_records_it_after_terraforms_fields() {
    let mut acq = lease_acquire(
        Wait::No,
        Some(LeaseTerms::new(secs(30))),
        Takeover::default(),
    );
    let start = Now::virtual_origin().advanced(secs(5));
    let (result, sent) = run_virtual(&mut acq, start, |_, _| Ok(ok("\"e1\"")));
    let held = result.unwrap();
    assert_eq!(held.generation(), 1);
    assert_eq!(
        held.written_at,
        secs(5),
        "the lease runs from when the PUT was sent"
    );
    let body = String::from_utf8(sent[0].1.body().clone()).unwrap();
    assert!(body.ends_with(r#""Lease":{"DurationMs":30000,"Generation":1,"Renewed":"2026-11-22T03:00:00Z","Renewals":0}}"#), "{body}");
}

#[test]
fn renewal_rewrites_with_if_match_and_a_changed_body() {
    let held = held_with_lease("\"e1\"", secs(0));
    let now = Now::virtual_origin().advanced(secs(10));
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    let (result, sent) = run_virtual(&mut renew, now, |_, _| Ok(ok("\"e2\"")));
    let renewed = result.unwrap();
    assert_eq!(sent.len(), 1);
    let req = &sent[0].1;
    assert_eq!(req.method(), Method::PUT);
    assert_eq!(header(req, "if-match"), Some("\"e1\""));
    assert_eq!(header(req, "if-none-match"), None);
    assert_eq!(renewed.etag, "\"e2\"");
    assert_eq!(renewed.written_at, secs(10));
    let lease = renewed.info.lease.as_ref().unwrap();
    assert_eq!((lease.renewals, lease.generation), (1, 1));
    assert_eq!(lease.renewed, "2026-11-22T03:00:10Z");
    assert_eq!(renewed.info.id, OUR_ID);
    assert_ne!(
        req.body(),
        &held.info.to_json(),
        "each renewal must change the body (and so the ETag)"
    );
}

#[test]
fn renewal_412_then_another_id_is_stolen_and_404_is_gone() {
    let held = held_with_lease("\"e1\"", secs(0));
    let now = Now::virtual_origin().advanced(secs(10));
    let mut replies: VecDeque<Response<Body>> = [
        error(412, "PreconditionFailed"),
        body_response("\"x9\"", other_body(None)),
    ]
    .into();
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    let (result, sent) = run_virtual(&mut renew, now, |_, _| Ok(replies.pop_front().unwrap()));
    match result {
        Err(Error::Lost {
            reason: LostReason::Stolen { holder: Some(h) },
        }) => {
            assert_eq!(h.etag, "\"x9\"");
            assert_eq!(h.info.as_ref().unwrap().who, "bob@box");
        }
        other => panic!("expected stolen, got {other:?}"),
    }
    assert_eq!(
        sent.iter()
            .map(|(_, r)| r.method().clone())
            .collect::<Vec<_>>(),
        [Method::PUT, Method::GET]
    );

    for replies in [
        vec![error(404, "NoSuchKey")],
        vec![error(412, "PreconditionFailed"), error(404, "NoSuchKey")],
    ] {
        let mut replies: VecDeque<_> = replies.into();
        let mut renew =
            Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
        let (result, _) = run_virtual(&mut renew, now, |_, _| Ok(replies.pop_front().unwrap()));
        assert!(
            matches!(
                result,
                Err(Error::Lost {
                    reason: LostReason::Gone
                })
            ),
            "{result:?}"
        );
    }
}

#[test]
fn a_renewal_whose_response_was_lost_is_recognised_as_ours() {
    let held = held_with_lease("\"e1\"", secs(0));
    let now = Now::virtual_origin().advanced(secs(10));
    let mut ours = held.info.clone();
    ours.lease.as_mut().unwrap().renewals = 1;
    let ours_body = ours.to_json();
    let mut step = 0;
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    let (result, sent) = run_virtual(&mut renew, now, |_, _| {
        step += 1;
        match step {
            1 => Err(TransportFailure::maybe_sent("connection reset")), // landed, answer lost
            2 => Ok(error(412, "PreconditionFailed")),
            _ => Ok(body_response("\"e2\"", ours_body.clone())),
        }
    });
    let renewed = result.unwrap();
    assert_eq!(renewed.etag, "\"e2\"");
    assert_eq!(
        renewed.written_at,
        secs(10),
        "the lease runs from the first renewal attempt"
    );
    assert_eq!(sent.len(), 3);
}

#[test]
fn renewal_retries_transient_failures_until_the_safety_margin_then_reports_it() {
    let held = held_with_lease("\"e1\"", secs(0)); // give up at 30 - 6 = 24 s
    let now = Now::virtual_origin().advanced(secs(10));
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    let (result, sent) = run_virtual(&mut renew, now, |_, _| Ok(error(503, "SlowDown")));
    match result {
        Err(Error::Lost {
            reason: LostReason::RenewalFailed { last_error },
        }) => {
            assert!(last_error.contains("SlowDown"), "{last_error}")
        }
        other => panic!("expected renewal_failed, got {other:?}"),
    }
    assert!(
        sent.len() > 3,
        "transient failures are retried ({} requests)",
        sent.len()
    );
    for (t, r) in &sent {
        assert!(
            t.monotonic <= secs(24),
            "a renewal was sent past the safety margin at {:?}",
            t.monotonic
        );
        assert!(
            header(r, "if-match").is_some(),
            "renewals are always conditional"
        );
    }
    assert_eq!(
        sent.last().unwrap().0.monotonic,
        secs(24),
        "the last try is at the margin itself"
    );

    // Started after the margin: lost at once, nothing sent.
    let late = Now::virtual_origin().advanced(secs(25));
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), late).unwrap();
    let (result, sent) = run_virtual(&mut renew, late, |_, _| Ok(ok("\"never\"")));
    assert!(matches!(
        result,
        Err(Error::Lost {
            reason: LostReason::RenewalFailed { .. }
        })
    ));
    assert!(sent.is_empty());
}

#[test]
fn a_renewal_after_release_cannot_bring_the_lock_back() {
    // Release first (the lock is deleted), then a late renewal runs.
    let held = held_with_lease("\"e1\"", secs(0));
    let mut release = Unlock::release(
        config(),
        creds(),
        &held.info,
        &held.etag,
        secs(10),
        3,
        ClockOffset::default(),
    );
    let now = Now::virtual_origin().advanced(secs(10));
    let (outcome, _) = run_virtual(&mut release, now, |_, _| {
        Ok(Response::builder().status(204).body(Vec::new()).unwrap())
    });
    assert_eq!(outcome.unwrap(), UnlockOutcome::Released);
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    // The store: the object is gone, so PUT If-Match answers 404.
    let (result, sent) = run_virtual(&mut renew, now, |_, _| Ok(error(404, "NoSuchKey")));
    assert!(matches!(
        result,
        Err(Error::Lost {
            reason: LostReason::Gone
        })
    ));
    assert!(sent
        .iter()
        .all(|(_, r)| r.method() != Method::PUT || header(r, "if-match") == Some("\"e1\"")));

    // Renewal landed before release: release's DELETE If-Match(old) gets 412,
    // reads our own ID under the new ETag, deletes that.
    let mut renewed_info = held.info.clone();
    renewed_info.lease.as_mut().unwrap().renewals = 1;
    let mut replies: VecDeque<Response<Body>> = [
        error(412, "PreconditionFailed"),
        body_response("\"e2\"", renewed_info.to_json()),
        Response::builder().status(204).body(Vec::new()).unwrap(),
    ]
    .into();
    let mut release = Unlock::release(
        config(),
        creds(),
        &held.info,
        &held.etag,
        secs(10),
        3,
        ClockOffset::default(),
    );
    let (outcome, sent) = run_virtual(&mut release, now, |_, _| Ok(replies.pop_front().unwrap()));
    assert_eq!(outcome.unwrap(), UnlockOutcome::Released);
    assert_eq!(header(&sent[2].1, "if-match"), Some("\"e2\""));
}

type Sent = Vec<(Now, Request<Body>)>;

/// Drive a waiter against a store whose lock is `body` with `etag(t)` at time t.
fn run_waiter(
    acq: &mut Acquire,
    body: Vec<u8>,
    etag_at: impl Fn(Duration) -> String,
) -> (Result<HeldLock, Error>, Sent) {
    run_virtual(acq, Now::virtual_origin(), move |req, now| {
        let t = now.monotonic;
        Ok(match (req.method().clone(), header(req, "if-match")) {
            (Method::PUT, None) => error(412, "PreconditionFailed"),
            (Method::GET, _) => body_response(&etag_at(t), body.clone()),
            (Method::PUT, Some(m)) if m == etag_at(t) => ok("\"ours\""),
            (Method::PUT, Some(_)) => error(412, "PreconditionFailed"),
            _ => error(400, "Unexpected"),
        })
    })
}

fn takeover_puts(sent: &[(Now, Request<Body>)]) -> Vec<Duration> {
    sent.iter()
        .filter(|(_, r)| r.method() == Method::PUT && header(r, "if-match").is_some())
        .map(|(t, _)| t.monotonic)
        .collect()
}

#[test]
fn an_expired_lease_is_taken_over_only_after_a_whole_lease_unchanged() {
    let mut acq = expired_lease_taker(secs(60));
    let (result, sent) = run_waiter(&mut acq, other_body(Some((10_000, 4))), |_| {
        "\"dead\"".into()
    });
    let held = result.unwrap();
    let puts = takeover_puts(&sent);
    assert_eq!(puts.len(), 1);
    assert!(
        puts[0] >= secs(10),
        "took over at {:?}, before the lease ran out",
        puts[0]
    );
    assert!(
        puts[0] <= secs(10) + Duration::from_millis(10),
        "woke late: {:?}",
        puts[0]
    );
    assert_eq!(held.generation(), 5, "observed generation + 1");
    let body = String::from_utf8(sent.last().unwrap().1.body().clone()).unwrap();
    assert!(body.contains(r#""Generation":5"#), "{body}");
}

#[test]
fn a_renewing_holder_is_never_taken_over() {
    let mut acq = expired_lease_taker(secs(40));
    // The holder renews every 3 s: the ETag changes, the clock restarts.
    let (result, sent) = run_waiter(&mut acq, other_body(Some((10_000, 1))), |t| {
        format!("\"v{}\"", t.as_secs() / 3)
    });
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(takeover_puts(&sent).is_empty());

    // It renews for 20 s, then dies: takeover 10 s after the last change.
    let mut acq = expired_lease_taker(secs(60));
    let (result, sent) = run_waiter(&mut acq, other_body(Some((10_000, 1))), |t| {
        format!("\"v{}\"", t.as_secs().min(20) / 3)
    });
    assert!(result.is_ok());
    let puts = takeover_puts(&sent);
    assert_eq!(puts.len(), 1);
    // The last version ("v6") appeared at 18 s; we may first see it up to one poll later.
    assert!(puts[0] >= secs(28), "took over at {:?}", puts[0]);
}

#[test]
fn a_lock_without_a_lease_is_never_taken_over_unless_a_staleness_age_is_given() {
    let mut acq = expired_lease_taker(secs(120));
    let (result, sent) = run_waiter(&mut acq, other_body(None), |_| "\"terraform\"".into());
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
    assert!(
        takeover_puts(&sent).is_empty(),
        "a Terraform lock was taken over"
    );

    let stale = Takeover {
        expired_leases: false,
        stale_without_lease: Some(secs(20)),
    };
    let mut acq = lease_acquire(Wait::For(secs(120)), None, stale);
    let (result, sent) = run_waiter(&mut acq, other_body(None), |_| "\"terraform\"".into());
    assert!(result.is_ok());
    let puts = takeover_puts(&sent);
    assert_eq!(puts.len(), 1);
    assert!(puts[0] >= secs(20) && puts[0] < secs(21), "{:?}", puts[0]);

    // Not opted in to expired leases: a leased lock is left alone.
    let mut acq = lease_acquire(Wait::For(secs(60)), None, stale);
    let (result, sent) = run_waiter(&mut acq, other_body(Some((1_000, 1))), |_| {
        "\"dead\"".into()
    });
    assert!(matches!(result, Err(Error::Timeout { .. })));
    assert!(takeover_puts(&sent).is_empty());
}

#[test]
fn losing_a_takeover_race_goes_back_to_waiting_on_the_winner() {
    let mut acq = expired_lease_taker(secs(15));
    let winner = other_body(Some((10_000, 2)));
    let dead = other_body(Some((10_000, 1)));
    let won = std::cell::Cell::new(false);
    let (result, sent) = run_virtual(&mut acq, Now::virtual_origin(), |req, _| {
        Ok(match (req.method().clone(), header(req, "if-match")) {
            (Method::PUT, None) => error(412, "PreconditionFailed"),
            (Method::GET, _) if won.get() => body_response("\"winner\"", winner.clone()),
            (Method::GET, _) => body_response("\"dead\"", dead.clone()),
            // Another waiter replaced "dead" a moment before us.
            (Method::PUT, Some(_)) => {
                won.set(true);
                error(412, "PreconditionFailed")
            }
            _ => error(400, "Unexpected"),
        })
    });
    match result {
        Err(Error::Timeout {
            holder: Some(h), ..
        }) => assert_eq!(h.etag, "\"winner\""),
        other => panic!("expected a timeout on the winner, got {other:?}"),
    }
    assert_eq!(
        takeover_puts(&sent).len(),
        1,
        "the winner's fresh lease must not be taken over"
    );
}

#[test]
fn a_412_on_our_own_unchanged_etag_is_not_counted_as_a_renewal() {
    // A store that refuses a matching If-Match (radosgw compares unquoted
    // ETags): nothing was written, so the lease is not extended.
    let held = held_with_lease("\"e1\"", secs(0));
    let now = Now::virtual_origin().advanced(secs(10));
    let unchanged = held.info.to_json();
    let mut renew = Renew::new(config(), creds(), &held, 1, ClockOffset::default(), now).unwrap();
    let (result, sent) = run_virtual(&mut renew, now, |req, _| {
        Ok(match *req.method() {
            Method::PUT => error(412, "PreconditionFailed"),
            _ => body_response("\"e1\"", unchanged.clone()),
        })
    });
    match result {
        Err(Error::Lost {
            reason: LostReason::RenewalFailed { last_error },
        }) => assert!(
            last_error.contains("does not honour If-Match"),
            "{last_error}"
        ),
        other => panic!("expected the lease reported lost, got {other:?}"),
    }
    assert_eq!(sent.len(), 2);
}

#[test]
fn a_takeover_refused_while_the_etag_stays_is_not_repeated_and_the_deadline_holds() {
    // Every If-Match PUT gets 412 although the lock keeps the ETag it named:
    // one takeover attempt, then an ordinary wait that ends at the deadline.
    let mut acq = expired_lease_taker(secs(60));
    let dead = other_body(Some((10_000, 1)));
    let (result, sent) = run_virtual(&mut acq, Now::virtual_origin(), |req, _| {
        Ok(match *req.method() {
            Method::PUT => error(412, "PreconditionFailed"),
            _ => body_response("\"dead\"", dead.clone()),
        })
    });
    match result {
        Err(Error::Timeout {
            holder: Some(h), ..
        }) => assert_eq!(h.etag, "\"dead\""),
        other => panic!("expected a timeout on the holder, got {other:?}"),
    }
    assert_eq!(takeover_puts(&sent).len(), 1);
    let last = sent.last().unwrap().0.monotonic;
    assert!(last <= secs(60), "a request after the deadline: {last:?}");
}

#[test]
fn lease_terms_near_the_largest_duration_are_refused_or_saturate_never_panic() {
    let huge = LeaseTerms {
        duration: Duration::MAX,
        renew_every: Duration::MAX,
        safety_margin: Duration::MAX,
    };
    assert!(huge.validate().is_err());
    let edge = LeaseTerms {
        duration: Duration::MAX,
        renew_every: secs(1),
        safety_margin: Duration::ZERO,
    };
    assert!(edge.validate().is_ok());
    assert_eq!(edge.give_up_at(secs(5)), Duration::MAX);
    assert_eq!(edge.renew_at(Duration::MAX), Duration::MAX);
}

#[test]
fn an_uncertain_write_disproved_by_another_holders_lock_does_not_age_the_lease() {
    // PUT -> 503 (it may have landed); PUT -> 412; GET -> someone else's lock,
    // so that first write did not land. The holder releases; our next PUT's
    // response is lost; its retry gets 412 on our own lock. The lease runs
    // from that lost PUT, not from the long-gone 503 one.
    let mut acq = lease_acquire(
        Wait::Forever,
        Some(LeaseTerms::new(secs(30))),
        Takeover::default(),
    );
    let ours_body = acq.lock_info().to_json();
    let mut step = 0;
    let (result, sent) = run_virtual(&mut acq, Now::virtual_origin(), |_, _| {
        step += 1;
        match step {
            1 => Ok(error(503, "SlowDown")),
            2 => Ok(error(412, "PreconditionFailed")),
            3 => Ok(body_response("\"theirs\"", other_body(None))),
            4 => Err(TransportFailure::maybe_sent("connection reset")), // landed, answer lost
            5 => Ok(error(412, "PreconditionFailed")),
            _ => Ok(body_response("\"ours\"", ours_body.clone())),
        }
    });
    let held = result.unwrap();
    assert_eq!(sent.len(), 6);
    assert_eq!(held.etag, "\"ours\"");
    let lost_put = sent[3].0.monotonic;
    assert!(lost_put > sent[0].0.monotonic);
    assert_eq!(
        held.written_at, lost_put,
        "the lease runs from the write that landed, not from the disproved 503 one"
    );
}

#[test]
fn a_fresh_lock_after_losing_a_takeover_race_is_generation_one() {
    // Our takeover of a dead generation-1 lock loses the race to another
    // waiter (generation 2). When that winner releases, we create a fresh
    // lock with If-None-Match: generation 1, not the 2 of our failed takeover.
    let mut acq = expired_lease_taker(secs(60));
    let dead = other_body(Some((10_000, 1)));
    let winner = other_body(Some((10_000, 2)));
    let stage = std::cell::Cell::new(0); // 0: dead lock, 1: winner holds, 2: released
    let (result, sent) = run_virtual(&mut acq, Now::virtual_origin(), |req, _| {
        Ok(match (req.method().clone(), header(req, "if-match")) {
            (Method::PUT, None) if stage.get() == 2 => ok("\"fresh\""),
            (Method::PUT, None) => error(412, "PreconditionFailed"),
            (Method::PUT, Some(_)) => {
                stage.set(1);
                error(412, "PreconditionFailed")
            }
            (Method::GET, _) if stage.get() == 0 => body_response("\"dead\"", dead.clone()),
            (Method::GET, _) => {
                stage.set(2); // the winner releases right after we read it
                body_response("\"winner\"", winner.clone())
            }
            _ => error(400, "Unexpected"),
        })
    });
    let held = result.unwrap();
    assert_eq!(takeover_puts(&sent).len(), 1);
    let last = &sent.last().unwrap().1;
    assert_eq!(header(last, "if-none-match"), Some("*"));
    let body = String::from_utf8(last.body().clone()).unwrap();
    assert!(body.contains(r#""Generation":1"#), "{body}");
    assert_eq!(held.generation(), 1);
    assert_eq!(held.etag, "\"fresh\"");
}

#[test]
fn a_renewal_error_echoing_our_secrets_is_redacted() {
    let token = "FwoGZXIvYXdzEXAMPLESESSIONTOKENdoNotLeakMe";
    let creds = Credentials::new(
        "AKID",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        Some(crate::secret::Secret::new(token)),
    )
    .unwrap();
    let held = held_with_lease("\"e1\"", secs(0));
    let now = Now::virtual_origin().advanced(secs(10));
    let mut renew = Renew::new(config(), creds, &held, 1, ClockOffset::default(), now).unwrap();
    let echo = format!(
        "<Error><Code>InternalError</Code><Message>token {token} secret \
         wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</Message></Error>"
    );
    let (result, _) = run_virtual(&mut renew, now, |_, _| {
        Ok(Response::builder()
            .status(500)
            .body(echo.clone().into_bytes())
            .unwrap())
    });
    let err = result.unwrap_err();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(token), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
