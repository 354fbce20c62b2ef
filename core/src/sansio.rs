//! The sans-IO contract shared by every operation.
//!
//! An operation (acquire, release, status, force-unlock, ...) is a state machine.
//! The driver feeds it [`Event`]s together with the current time and carries out
//! the [`Action`] it returns: send a request, sleep until a monotonic instant, or
//! stop with the outcome. The machine never performs I/O and never reads a clock,
//! so the same machine runs under tokio, in a Python or Node binding, in a
//! browser with `fetch`, or in a unit test with a virtual clock.
//!
//! Protocol between driver and machine:
//! 1. Call `step(Event::Start, now)` once.
//! 2. After `Action::Send(req)`: deliver `Event::Response` or
//!    `Event::TransportFailed`, or `Event::Cancelled` if the request was never sent.
//! 3. After `Action::SleepUntil(t)`: deliver `Event::TimerFired` once the monotonic
//!    clock reaches `t`, or `Event::Cancelled` to abandon the wait early.
//! 4. After `Action::Done(_)`: stop. Stepping again yields a misuse error.
//!
//! `Event::Cancelled` never loses a lock: a machine that may have written a lock
//! (for example a PUT whose response was lost) answers with the requests needed to
//! read it back and remove it, under a fresh short deadline, before it finishes
//! with [`crate::Error::Cancelled`]. The driver keeps executing those actions.

use std::time::Duration;

use crate::error::Error;
use crate::progress::Notice;
use crate::time::Now;

/// The body type of requests and responses exchanged with the driver.
pub type Body = Vec<u8>;

/// What happened since the machine's last action.
///
/// `Debug` shows a response's status only: bodies and headers may carry
/// secrets (an Apstra login response holds the session token).
pub enum Event {
    /// First step.
    Start,
    /// The response to the request from the previous `Action::Send`.
    Response(http::Response<Body>),
    /// The request from the previous `Action::Send` failed in transport (connect,
    /// TLS, timeout, reset...). [`TransportFailure::maybe_sent`] says whether it
    /// may have reached the server.
    TransportFailed(TransportFailure),
    /// The sleep from the previous `Action::SleepUntil` is over.
    TimerFired,
    /// The caller wants to stop; the previous action was not carried out.
    Cancelled,
}

/// Why a request got no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportFailure {
    /// What happened, without secrets.
    pub message: String,
    /// Whether the request may have reached the server (false only when it is
    /// certain that no byte of it was sent: connection refused, DNS failure,
    /// TLS handshake failure).
    pub maybe_sent: bool,
    /// Retrying cannot help (certificate rejected, DNS name does not exist,
    /// the caller's own transport is broken).
    pub permanent: bool,
}

impl TransportFailure {
    /// Certainly not sent, and worth retrying (connection refused, DNS
    /// resolution failed for now).
    pub fn not_sent(message: impl Into<String>) -> Self {
        TransportFailure {
            message: message.into(),
            maybe_sent: false,
            permanent: false,
        }
    }

    /// May have reached the server (timeout or reset after sending, or
    /// unknown), and worth retrying.
    pub fn maybe_sent(message: impl Into<String>) -> Self {
        TransportFailure {
            message: message.into(),
            maybe_sent: true,
            permanent: false,
        }
    }

    /// Certainly not sent, and retrying cannot help (certificate rejected, DNS
    /// name does not exist).
    pub fn permanent(message: impl Into<String>) -> Self {
        TransportFailure {
            message: message.into(),
            maybe_sent: false,
            permanent: true,
        }
    }
}

impl std::fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<TransportFailure> for Error {
    fn from(f: TransportFailure) -> Self {
        Error::Transport {
            message: f.message,
            maybe_sent: f.maybe_sent,
            permanent: f.permanent,
        }
    }
}

/// What the driver must do next.
///
/// `Debug` shows a request's method and URL only: bodies and headers may carry
/// secrets (an Apstra login body holds the password).
pub enum Action<T> {
    /// Send this request and report the outcome.
    Send(http::Request<Body>),
    /// Sleep until the monotonic clock reads this value.
    SleepUntil(Duration),
    /// The operation is over.
    Done(Result<T, Error>),
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Start => f.write_str("Start"),
            Event::Response(resp) => write!(f, "Response({})", resp.status()),
            Event::TransportFailed(e) => f.debug_tuple("TransportFailed").field(e).finish(),
            Event::TimerFired => f.write_str("TimerFired"),
            Event::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Action<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Send(req) => write!(f, "Send({} {})", req.method(), req.uri()),
            Action::SleepUntil(t) => f.debug_tuple("SleepUntil").field(t).finish(),
            Action::Done(r) => f.debug_tuple("Done").field(r).finish(),
        }
    }
}

/// A sans-IO operation.
pub trait Machine {
    /// The successful result of the operation.
    type Output;

    /// Advance the machine with an event observed at `now`.
    fn step(&mut self, event: Event, now: Now) -> Action<Self::Output>;

    /// The next progress notice (waiting for a holder, retrying, a fallback),
    /// if any. Drivers drain this after every step.
    fn poll_notice(&mut self) -> Option<Notice> {
        None
    }

    /// The monotonic instant at which the request of the last
    /// `Action::Send` must be abandoned if it has no answer yet (a lease
    /// renewal at the lease's give-up time). The driver then delivers
    /// `Event::TransportFailed` (maybe sent) at that instant.
    fn abandon_request_at(&self) -> Option<Duration> {
        None
    }
}

/// How long an operation may keep trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Try once: do not wait for a holder, make one attempt. A request that
    /// certainly did not leave (connection refused) is repeated once, quickly;
    /// other transient failures (5xx, a reset after sending) are retried
    /// within the operation's transient budget, capped at 3 seconds; a
    /// permanent failure (certificate rejected) ends it at once. Only the
    /// removal of a lock that may have been written takes longer (its own
    /// cleanup budget).
    No,
    /// Wait up to this long, measured on the monotonic clock.
    For(Duration),
    /// Wait until the lock is acquired or the operation is cancelled.
    Forever,
}

/// A monotonic deadline or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline(pub Option<Duration>);

impl Deadline {
    pub(crate) fn after(now: Now, budget: Option<Duration>) -> Self {
        Deadline(budget.map(|b| now.monotonic.saturating_add(b)))
    }

    /// When to wake for a retry `delay` from now, never past the deadline.
    /// `None` when the deadline has already passed.
    pub(crate) fn wake_for(self, now: Now, delay: Duration) -> Option<Duration> {
        let wanted = now.monotonic.saturating_add(delay);
        match self.0 {
            None => Some(wanted),
            Some(d) if now.monotonic >= d => None,
            Some(d) => Some(wanted.min(d)),
        }
    }
}

/// Drive a machine to completion with canned responses, for tests.
///
/// `respond` is called for every request (with the virtual time it was sent);
/// sleeps advance the virtual clock. Returns the outcome and the requests sent.
#[cfg(test)]
#[allow(clippy::type_complexity)]
pub(crate) fn run_virtual<M: Machine>(
    machine: &mut M,
    mut now: Now,
    mut respond: impl FnMut(&http::Request<Body>, Now) -> Result<http::Response<Body>, TransportFailure>,
) -> (Result<M::Output, Error>, Vec<(Now, http::Request<Body>)>) {
    let mut sent = Vec::new();
    let mut event = Event::Start;
    for _ in 0..10_000 {
        match machine.step(event, now) {
            Action::Send(req) => {
                event = match respond(&req, now) {
                    Ok(resp) => Event::Response(resp),
                    Err(e) => Event::TransportFailed(e),
                };
                sent.push((now, req));
            }
            Action::SleepUntil(t) => {
                assert!(t >= now.monotonic, "sleep into the past");
                now = now.advanced(t - now.monotonic);
                event = Event::TimerFired;
            }
            Action::Done(result) => return (result, sent),
        }
    }
    panic!("machine did not finish within 10000 steps");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transport_error_says_whether_it_was_sent_and_whether_it_is_permanent() {
        let never_left = Error::from(TransportFailure::not_sent("connection refused"));
        assert_eq!(never_left.code(), "transport");
        assert_eq!(never_left.transport_failure(), Some((false, false)));
        let cert = Error::from(TransportFailure::permanent("invalid peer certificate"));
        assert_eq!(cert.transport_failure(), Some((false, true)));
        let reset = Error::from(TransportFailure::maybe_sent("connection reset"));
        assert_eq!(reset.transport_failure(), Some((true, false)));
        assert_eq!(reset.to_string(), "transport error: connection reset");
    }

    #[test]
    fn debug_of_actions_and_events_never_shows_bodies() {
        let req = http::Request::builder()
            .method("POST")
            .uri("https://apstra.local/api/aaa/login")
            .body(br#"{"username":"admin","password":"hunter2"}"#.to_vec())
            .unwrap();
        let action: Action<()> = Action::Send(req);
        assert_eq!(
            format!("{action:?}"),
            "Send(POST https://apstra.local/api/aaa/login)"
        );
        let resp = http::Response::builder()
            .status(201)
            .body(br#"{"token":"sekrit-token"}"#.to_vec())
            .unwrap();
        assert_eq!(
            format!("{:?}", Event::Response(resp)),
            "Response(201 Created)"
        );
    }
}
