//! Fail-fast rules shared by the S3 and Apstra machines.
//!
//! - A permanent transport failure (certificate rejected, DNS name that does
//!   not exist) ends the operation at once: retrying cannot help.
//! - A try-once call ([`crate::Wait::No`], a status read) makes one attempt. A
//!   request that certainly did not leave (connection refused) is repeated
//!   once, [`NOT_SENT_RETRY_DELAY`] later; other transient failures are
//!   retried for [`TRY_ONCE_BUDGET`] at most.
//! - No sleep goes past the deadline (the last retry may be at the deadline
//!   itself); once it has passed, a timed wait starts no new attempt (a reply
//!   arriving late ends it), except to remove a lock that may have been
//!   written (the machines' own checks).
//! - A write that certainly did not leave ([`TransportFailure::maybe_sent`]
//!   false) changed nothing: no lock of ours to read back or remove for it
//!   (the machines' own checks).
//! - A streak of failures lasting [`WARN_AFTER`] is logged once at WARNING
//!   (every retry is logged at DEBUG), so a caller that waits sees why.

use std::fmt::Display;
use std::time::{Duration, SystemTime};

use crate::sansio::{Deadline, TransportFailure};
use crate::time::{rfc3339_nanos, Now};

/// The longest a try-once call retries transient failures: long enough to
/// ride out a dropped connection or a brief 503, short enough that "try
/// once" answers in seconds.
pub(crate) const TRY_ONCE_BUDGET: Duration = Duration::from_secs(3);

/// How long a try-once call waits before repeating a request that certainly
/// did not leave (a listener restarting, a connection pool's stale socket).
pub(crate) const NOT_SENT_RETRY_DELAY: Duration = Duration::from_millis(150);

/// Retries of one streak going on this long are logged at WARNING, once.
pub(crate) const WARN_AFTER: Duration = Duration::from_secs(5);

/// The transient budget of a try-once call: the caller's, capped.
pub(crate) fn try_once_budget(budget: Duration) -> Duration {
    budget.min(TRY_ONCE_BUDGET)
}

/// What to do after a transport failure, before any backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnTransport {
    /// Stop now with the failure.
    GiveUp,
    /// Send again at this monotonic instant (the quick not-sent retry).
    RetryAt(Duration),
    /// An ordinary transient failure: retry with backoff until the deadline.
    Backoff,
}

/// The fail-fast state of one operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct FailFast {
    try_once: bool,
    not_sent_retried: bool,
    /// When the current streak of failures began (monotonic, wall).
    streak_since: Option<(Duration, SystemTime)>,
    warned: bool,
}

impl FailFast {
    /// Make this a try-once call (or, for a cleanup after one, not any more).
    pub(crate) fn set_try_once(&mut self, on: bool) {
        self.try_once = on;
        self.not_sent_retried = false;
    }

    /// Decide what a transport failure allows, given the operation's deadline.
    pub(crate) fn on_transport(
        &mut self,
        failure: &TransportFailure,
        now: Now,
        deadline: Deadline,
    ) -> OnTransport {
        if failure.permanent {
            log::debug!("permanent transport failure, not retried: {failure}");
            return OnTransport::GiveUp;
        }
        if !self.try_once || failure.maybe_sent {
            return OnTransport::Backoff;
        }
        if self.not_sent_retried {
            return OnTransport::GiveUp;
        }
        self.not_sent_retried = true;
        match deadline.wake_for(now, NOT_SENT_RETRY_DELAY) {
            Some(at) => OnTransport::RetryAt(at),
            None => OnTransport::GiveUp,
        }
    }

    /// A failure of `what` is about to be retried: log it, at WARNING once
    /// the streak it belongs to has lasted [`WARN_AFTER`].
    pub(crate) fn retrying(&mut self, what: &dyn Display, err: &dyn Display, now: Now) {
        let (since, since_wall) = *self.streak_since.get_or_insert((now.monotonic, now.wall));
        let lasted = now.monotonic.saturating_sub(since);
        if !self.warned && lasted >= WARN_AFTER {
            self.warned = true;
            log::warn!(
                "{what} has been failing for {:.1} s (since {}); still retrying: {err}",
                lasted.as_secs_f64(),
                rfc3339_nanos(since_wall)
            );
        } else {
            log::debug!("transient failure of {what} ({err}); retrying");
        }
    }

    /// Progress was made: the next failure starts a new streak.
    pub(crate) fn progressed(&mut self) {
        self.streak_since = None;
        self.warned = false;
        self.not_sent_retried = false;
    }
}

/// Test support: what the current thread logs at WARNING or above.
#[cfg(test)]
pub(crate) mod capture {
    /// Run `f` and return what it logged at WARNING or above on this thread.
    pub(crate) fn warnings(f: impl FnOnce()) -> Vec<String> {
        let ((), records) = crate::test_logs::capture(f);
        crate::test_logs::warnings(&records)
            .into_iter()
            .map(String::from)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Now {
        Now::virtual_origin().advanced(Duration::from_secs(secs))
    }

    #[test]
    fn permanent_failures_give_up_even_without_a_deadline() {
        let mut ff = FailFast::default();
        let f = TransportFailure::permanent("invalid peer certificate: UnknownIssuer");
        assert_eq!(
            ff.on_transport(&f, at(0), Deadline(None)),
            OnTransport::GiveUp
        );
    }

    #[test]
    fn a_long_streak_is_logged_at_warning_once_then_again_after_progress() {
        let mut ff = FailFast::default();
        let warned = capture::warnings(|| {
            for t in 0..20 {
                ff.retrying(&"PUT of key.tflock", &"503 SlowDown", at(t));
            }
        });
        assert_eq!(warned.len(), 1, "{warned:?}");
        let w = &warned[0];
        assert!(
            w.contains("PUT of key.tflock") && w.contains("503 SlowDown"),
            "{w}"
        );
        assert!(
            w.contains("failing for 5.0 s (since 2026-11-22T03:00:00"),
            "{w}"
        );
        let warned = capture::warnings(|| {
            ff.progressed();
            for t in 20..24 {
                ff.retrying(&"PUT of key.tflock", &"503 SlowDown", at(t));
            }
        });
        assert!(warned.is_empty(), "a new streak, only 3 s long: {warned:?}");
    }

    #[test]
    fn try_once_repeats_a_request_that_did_not_leave_once() {
        let mut ff = FailFast::default();
        ff.set_try_once(true);
        let f = TransportFailure::not_sent("connection refused");
        let deadline = Deadline(Some(Duration::from_secs(3)));
        assert_eq!(
            ff.on_transport(&f, at(0), deadline),
            OnTransport::RetryAt(NOT_SENT_RETRY_DELAY)
        );
        assert_eq!(ff.on_transport(&f, at(0), deadline), OnTransport::GiveUp);
        // Maybe-sent failures back off as usual.
        let f = TransportFailure::maybe_sent("reset");
        assert_eq!(ff.on_transport(&f, at(0), deadline), OnTransport::Backoff);
        // Not try-once: a refused connection backs off too.
        ff.set_try_once(false);
        let f = TransportFailure::not_sent("connection refused");
        assert_eq!(ff.on_transport(&f, at(0), deadline), OnTransport::Backoff);
    }
}
