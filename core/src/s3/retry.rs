//! Per-operation retry bookkeeping shared by the S3 state machines: the
//! deadline, the transient-failure backoff, and clock-skew correction.

use std::time::{Duration, SystemTime};

use crate::backoff::{Backoff, BackoffState};
use crate::sansio::Deadline;
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
}

impl Retry {
    pub(crate) fn new(policy: Backoff, seed: u64, clock: ClockOffset) -> Self {
        Retry {
            deadline: Deadline(None),
            backoff: BackoffState::new(policy, seed),
            clock,
            skew_corrections: 0,
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

    /// When to retry after a transient failure, or `None` past the deadline.
    pub(crate) fn next_wake(&mut self, now: Now) -> Option<Duration> {
        let delay = self.backoff.next_delay();
        self.deadline.wake_for(now, delay)
    }

    /// Progress was made: the next transient failure starts from a short delay.
    pub(crate) fn progressed(&mut self) {
        self.backoff.reset();
    }
}
