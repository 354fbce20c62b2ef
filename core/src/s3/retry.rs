//! Per-operation retry bookkeeping shared by the S3 state machines: the
//! deadline, the transient-failure backoff, the fail-fast rules (see
//! [`crate::failfast`]) and clock-skew correction.

use std::fmt::Display;
use std::time::{Duration, SystemTime};

use crate::backoff::{Backoff, BackoffState};
use crate::error::Error;
use crate::failfast::{FailFast, OnTransport};
use crate::sansio::{Deadline, TransportFailure};
use crate::time::{ClockOffset, Now};

/// How many times one operation corrects its clock before giving up: a second
/// skew after a correction means the server's clock is moving, not ours.
const MAX_SKEW_CORRECTIONS: u8 = 2;

#[derive(Clone, Debug)]
pub(crate) struct Retry {
    pub(crate) deadline: Deadline,
    backoff: BackoffState,
    clock: ClockOffset,
    skew_corrections: u8,
    fail_fast: FailFast,
}

impl Retry {
    pub(crate) fn new(policy: Backoff, seed: u64, clock: ClockOffset) -> Self {
        Retry {
            deadline: Deadline(None),
            backoff: BackoffState::new(policy, seed),
            clock,
            skew_corrections: 0,
            fail_fast: FailFast::default(),
        }
    }

    /// Wall time to sign with: ours corrected by what servers told us.
    pub(crate) fn signing_time(&self, now: Now) -> SystemTime {
        self.clock.apply(now.wall)
    }

    pub(crate) fn clock(&self) -> ClockOffset {
        self.clock
    }

    /// Learn the server's clock from `RequestTimeTooSkewed`. True when the
    /// request should be re-signed and sent again now.
    pub(crate) fn correct_clock(&mut self, server_time: Option<SystemTime>, now: Now) -> bool {
        match server_time {
            Some(t) if self.skew_corrections < MAX_SKEW_CORRECTIONS => {
                self.skew_corrections += 1;
                self.clock = ClockOffset::between(now.wall, t);
                log::warn!(
                    "our clock differs from the store's by {} ms; signing with the store's time",
                    self.clock.millis
                );
                true
            }
            _ => false,
        }
    }

    /// Make this a try-once call ([`crate::Wait::No`], a status read).
    pub(crate) fn set_try_once(&mut self) {
        self.fail_fast.set_try_once(true);
    }

    /// Start removing a lock we may have written, until `deadline`: every
    /// transient failure is retried again (even after a try-once call), as
    /// leaving the lock behind is worse than taking a few more seconds.
    pub(crate) fn start_cleanup(&mut self, deadline: Deadline) {
        self.deadline = deadline;
        self.fail_fast.set_try_once(false);
        self.progressed();
    }

    /// When to retry `what` after a transient failure `err`, or `None` past
    /// the deadline.
    pub(crate) fn next_wake(
        &mut self,
        what: &dyn Display,
        err: &dyn Display,
        now: Now,
    ) -> Option<Duration> {
        let delay = self.backoff.next_delay();
        let wake = self.deadline.wake_for(now, delay)?;
        self.fail_fast.retrying(what, err, now);
        Some(wake)
    }

    /// When to retry `what` after a transport failure, or `None` to give up
    /// now (permanent failure, try-once call done, or past the deadline).
    pub(crate) fn after_transport(
        &mut self,
        what: &dyn Display,
        failure: &TransportFailure,
        now: Now,
    ) -> Option<Duration> {
        match self.fail_fast.on_transport(failure, now, self.deadline) {
            OnTransport::GiveUp => None,
            OnTransport::RetryAt(at) => {
                self.fail_fast.retrying(what, failure, now);
                Some(at)
            }
            OnTransport::Backoff => self.next_wake(what, &Error::from(failure.clone()), now),
        }
    }

    /// Progress was made: the next transient failure starts from a short
    /// delay, and a new streak.
    pub(crate) fn progressed(&mut self) {
        self.backoff.reset();
        self.fail_fast.progressed();
    }
}
