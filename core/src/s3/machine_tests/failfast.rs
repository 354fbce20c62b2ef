//! The fail-fast rules (see `crate::failfast`) in the S3 machines.

use super::*;
use crate::failfast::capture;
use crate::s3::lease::{LeaseTerms, LostReason, Renew};

fn refused() -> Reply {
    Err(TransportFailure::not_sent("connection refused"))
}

fn bad_certificate() -> Reply {
    Err(TransportFailure::permanent(
        "invalid peer certificate: UnknownIssuer",
    ))
}

fn is_transport(result: &Result<impl std::fmt::Debug, Error>, text: &str) -> bool {
    matches!(result, Err(Error::Transport { message, .. }) if message.contains(text))
}

#[test]
fn try_once_against_a_refused_connection_tries_twice_quickly_and_cleans_nothing() {
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run_virtual(&mut acq, origin(), |_, _| refused());
    assert!(is_transport(&result, "refused"), "{result:?}");
    // The PUT never left: no lock of ours can exist, nothing to read back.
    assert_eq!(lines(&sent), [PUT, PUT]);
    let t = times(&sent);
    assert!(t[1] >= ms(100) && t[1] <= ms(200), "{t:?}");
}

#[test]
fn try_once_retries_transient_failures_for_a_few_seconds_only() {
    // The default transient budget (30 s) is capped for a try-once call.
    let mut acq = acquire(opts(Wait::No, true));
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => Ok(s3_error(503, "SlowDown")),
        Method::GET => no_such_key(),
        _ => panic!("unexpected {}", line(req)),
    });
    assert!(
        matches!(&result, Err(Error::Server { status: 503, .. })),
        "{result:?}"
    );
    assert!(times(&sent).iter().all(|t| *t <= secs(3)), "{sent:?}");
}

#[test]
fn a_permanent_failure_ends_even_an_endless_wait_at_once() {
    let mut acq = acquire(opts(Wait::Forever, true));
    let (result, sent) = run_virtual(&mut acq, origin(), |_, _| bad_certificate());
    assert!(is_transport(&result, "UnknownIssuer"), "{result:?}");
    assert_eq!(lines(&sent), [PUT]);
}

#[test]
fn a_timed_acquire_whose_puts_never_left_ends_at_its_deadline_without_cleanup() {
    let mut acq = acquire(opts(Wait::For(secs(2)), true));
    let mut sent = Vec::new();
    let mut result = Ok(());
    let warned = capture::warnings(|| {
        let (r, s) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
            Method::PUT => refused(),
            // Were a cleanup attempted, it could not confirm anything.
            _ => Err(TransportFailure::maybe_sent("connection reset")),
        });
        result = r.map(|_| ());
        sent = s;
    });
    assert!(is_transport(&result, "refused"), "{result:?}");
    assert!(lines(&sent).iter().all(|l| l == PUT), "{:?}", lines(&sent));
    assert!(times(&sent).iter().all(|t| *t <= secs(2)), "{sent:?}");
    assert!(
        !warned.iter().any(|w| w.contains("could not confirm")),
        "{warned:?}"
    );
}

#[test]
fn a_put_that_may_have_left_is_still_cleaned_up() {
    // First PUT reset after sending (may have landed), the retry refused:
    // the first one still needs its read-back.
    let mut acq = acquire(opts(Wait::No, true));
    let mut n = 0;
    let (result, sent) = run_virtual(&mut acq, origin(), |req, _| match *req.method() {
        Method::PUT => {
            n += 1;
            if n == 1 {
                Err(TransportFailure::maybe_sent("connection reset"))
            } else {
                bad_certificate()
            }
        }
        Method::GET => no_such_key(),
        _ => panic!("unexpected {}", line(req)),
    });
    assert!(is_transport(&result, "UnknownIssuer"), "{result:?}");
    assert_eq!(lines(&sent), [PUT, PUT, "GET"]);
}

#[test]
fn status_against_a_refused_connection_fails_fast() {
    let mut st = status(); // a 10 s budget
    let (result, sent) = run_virtual(&mut st, origin(), |_, _| refused());
    assert!(is_transport(&result, "refused"), "{result:?}");
    assert_eq!(sent.len(), 2);
    assert!(times(&sent)[1] <= ms(200), "{sent:?}");
}

#[test]
fn status_and_force_unlock_end_at_once_on_a_permanent_failure() {
    let (result, sent) = run_virtual(&mut status(), origin(), |_, _| bad_certificate());
    assert!(is_transport(&result, "UnknownIssuer"), "{result:?}");
    assert_eq!(sent.len(), 1);
    let (result, sent) = run_virtual(&mut force(OTHER_ID), origin(), |_, _| bad_certificate());
    assert!(is_transport(&result, "UnknownIssuer"), "{result:?}");
    assert_eq!(sent.len(), 1);
}

#[test]
fn release_ends_at_once_on_a_permanent_failure() {
    let (result, sent) = run_virtual(&mut release("\"e\""), origin(), |_, _| bad_certificate());
    assert!(is_transport(&result, "UnknownIssuer"), "{result:?}");
    assert_eq!(sent.len(), 1);
}

#[test]
fn a_delete_that_never_left_deleted_nothing() {
    // Refused, then 404: someone else removed the lock, not our DELETE.
    let (result, _) = run(&mut release("\"e\""), vec![refused(), no_such_key()]);
    assert_eq!(result.unwrap(), UnlockOutcome::AlreadyGone);
}

#[test]
fn long_retries_of_a_release_are_logged_at_warning_once() {
    let mut rel = release("\"e\""); // a 10 s budget
    let mut result = Ok(UnlockOutcome::Released);
    let warned = capture::warnings(|| {
        result = run_virtual(&mut rel, origin(), |_, _| Ok(s3_error(503, "SlowDown"))).0;
    });
    assert!(result.is_err());
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("Delete") && warned[0].contains("SlowDown"),
        "{warned:?}"
    );
}

#[test]
fn a_renewal_that_cannot_succeed_reports_the_lock_lost_at_once() {
    let mut o = opts(Wait::No, false);
    o.lease = Some(LeaseTerms::new(secs(30)));
    let (held, _) = run(&mut acquire(o), vec![put_ok("\"e\"")]);
    let held = held.unwrap();
    let mut renew = Renew::new(
        config(),
        creds(),
        &held,
        1,
        ClockOffset::default(),
        origin(),
    )
    .unwrap();
    let (result, sent) = run_virtual(&mut renew, origin(), |_, _| bad_certificate());
    match result {
        Err(Error::Lost {
            reason: LostReason::RenewalFailed { last_error },
        }) => assert!(last_error.contains("UnknownIssuer"), "{last_error}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sent.len(), 1);
}

#[test]
fn a_timed_wait_starts_no_new_attempt_after_its_deadline() {
    let mut acq = acquire(opts(Wait::For(secs(2)), false));
    let Action::Send(put) = acq.step(Event::Start, origin()) else {
        panic!("expected the PUT")
    };
    assert_eq!(line(&put), PUT);
    // The 412 arrives after the deadline: reading the holder would be a new
    // request past it.
    let late = origin().advanced(ms(2500));
    let answer = precondition_failed().unwrap();
    match acq.step(Event::Response(answer), late) {
        Action::Done(Err(Error::Timeout { waited, .. })) => assert_eq!(waited, ms(2500)),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
