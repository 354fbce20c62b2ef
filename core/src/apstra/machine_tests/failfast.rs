//! The fail-fast rules (see `crate::failfast`) in the Apstra machines.

use super::*;
use crate::failfast::capture;

fn is_transport<T: std::fmt::Debug>(r: &Result<T, Error>, text: &str) -> bool {
    matches!(r, Err(Error::Transport { message, .. }) if message.contains(text))
}

fn held(id: &str) -> HeldMutex {
    HeldMutex {
        blueprint: bp(),
        tag_id: id.into(),
        label: "blueprint bp-1 locked".into(),
        description: "x".into(),
        token: token(1),
        recovered: false,
    }
}

#[test]
fn try_once_against_a_refused_connection_tries_twice_quickly() {
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |_, _| {
        Err(TransportFailure::not_sent("connection refused"))
    });
    assert!(is_transport(&r, "refused"), "{r:?}");
    assert_eq!(sent.len(), 2);
    let gap = sent[1].0.monotonic - sent[0].0.monotonic;
    assert!(gap <= Duration::from_millis(200), "{gap:?}");
}

#[test]
fn try_once_against_a_rejected_certificate_fails_at_once() {
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |_, _| {
        Err(TransportFailure::permanent(
            "invalid peer certificate: UnknownIssuer",
        ))
    });
    assert!(is_transport(&r, "UnknownIssuer"), "{r:?}");
    assert_eq!(sent.len(), 1);
}

#[test]
fn try_once_does_not_wait_out_a_long_retry_after() {
    let mut fake = Fake::new();
    fake.fault(
        Method::POST,
        "/api/design/tags",
        Fault::Status(503, Some("7")),
    );
    let mut o = opts(Wait::No);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert!(matches!(r, Err(Error::Server { status: 503, .. })), "{r:?}");
    assert!(
        sent.iter()
            .all(|(t, _)| t.monotonic <= Duration::from_secs(3)),
        "{:?}",
        fake.paths()
    );
}

#[test]
fn a_create_that_never_left_needs_no_cleanup() {
    let mut fake = Fake::new();
    let mut o = opts(Wait::For(Duration::from_secs(2)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let mut r = Err(Error::Cancelled);
    let warned = capture::warnings(|| {
        r = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
            if req.method() == Method::POST && req.uri().path() == "/api/design/tags" {
                return Err(TransportFailure::not_sent("connection refused"));
            }
            // Were a cleanup attempted, it could not confirm anything.
            if req.uri().path() == "/api/design/tags" {
                return Err(TransportFailure::maybe_sent("connection reset"));
            }
            fake.respond(req, now)
        })
        .0
        .map(|_| ());
    });
    assert!(is_transport(&r, "refused"), "{r:?}");
    assert!(
        !warned.iter().any(|w| w.contains("could not confirm")),
        "{warned:?}"
    );
}

#[test]
fn release_ends_at_once_on_a_permanent_failure() {
    let mut rel = Release::new(
        server(),
        Session::new(),
        &held("t-1"),
        Duration::from_secs(30),
        1,
    );
    let (r, sent) = run_virtual(&mut rel, Now::virtual_origin(), |_, _| {
        Err(TransportFailure::permanent(
            "invalid peer certificate: NotValidForName",
        ))
    });
    assert!(is_transport(&r, "NotValidForName"), "{r:?}");
    assert_eq!(sent.len(), 1);
}

#[test]
fn long_retries_of_a_release_are_logged_at_warning_once() {
    let mut rel = Release::new(
        server(),
        Session::new(),
        &held("t-1"),
        Duration::from_secs(30),
        1,
    );
    let mut r = Ok(UnlockOutcome::Released);
    let warned = capture::warnings(|| {
        r = run_virtual(&mut rel, Now::virtual_origin(), |_, _| {
            Err(TransportFailure::maybe_sent("connection reset"))
        })
        .0;
    });
    assert!(is_transport(&r, "reset"), "{r:?}");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("connection reset"), "{warned:?}");
}

#[test]
fn a_timed_wait_starts_no_new_attempt_after_its_deadline() {
    let mut fake = Fake::new();
    fake.plant(BP, "held by bob", "2026-11-22T02:00:00Z");
    let mut o = opts(Wait::For(Duration::from_secs(2)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let t0 = Now::virtual_origin();
    let Action::Send(login) = m.step(Event::Start, t0) else {
        panic!("expected the login")
    };
    let answer = fake.respond(&login, t0).unwrap();
    // The blueprint is read first even without the lock-status wait: a 404
    // there is a mistyped ID.
    let Action::Send(status) = m.step(Event::Response(answer), t0) else {
        panic!("expected the lock-status read")
    };
    assert_eq!(status.method(), Method::GET);
    let answer = fake.respond(&status, t0).unwrap();
    let Action::Send(create) = m.step(Event::Response(answer), t0) else {
        panic!("expected the create")
    };
    assert_eq!(create.method(), Method::POST);
    // The 422 (held) arrives after the deadline: listing the tags would be a
    // new request past it.
    let late = t0.advanced(Duration::from_millis(2500));
    let answer = fake.respond(&create, late).unwrap();
    match m.step(Event::Response(answer), late) {
        Action::Done(Err(Error::BlueprintLockTimeout { waited, .. })) => {
            assert_eq!(waited, Duration::from_millis(2500))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}
