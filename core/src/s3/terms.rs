//! The terms of a lease and of takeover, shared by acquiring (which writes
//! and obeys them) and renewing (which keeps them): see [`super::lease`].

use std::time::Duration;

use crate::error::Error;

/// A holder's lease: how long the lock lives without renewal, and the cadence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTerms {
    /// The lease: a waiter may take the lock over after seeing the same
    /// version for this long.
    pub duration: Duration,
    /// Renew when this much time has passed since the last successful write.
    pub renew_every: Duration,
    /// Give up renewing (and report the lock lost) this long before the lease
    /// would end on our clock, to absorb clock-rate differences and latency.
    pub safety_margin: Duration,
}

impl LeaseTerms {
    /// Terms for `duration`: renew every third of it, give up with a fifth left.
    pub fn new(duration: Duration) -> Self {
        LeaseTerms {
            duration,
            renew_every: duration / 3,
            safety_margin: duration / 5,
        }
    }

    /// Check the terms make sense.
    pub fn validate(&self) -> Result<(), Error> {
        if self.duration < Duration::from_secs(1) {
            return Err(Error::config("lease", "must be at least 1 second"));
        }
        let before_the_end = self.renew_every.checked_add(self.safety_margin);
        if self.renew_every.is_zero() || before_the_end.is_none_or(|d| d >= self.duration) {
            return Err(Error::config(
                "lease",
                "renew_every + safety_margin must be positive and shorter than the lease",
            ));
        }
        Ok(())
    }

    /// When to start renewing a version written (sent) at `written_at`.
    pub fn renew_at(&self, written_at: Duration) -> Duration {
        written_at.saturating_add(self.renew_every)
    }

    /// The last moment a renewal of a version written at `written_at` may
    /// still be attempted.
    pub fn give_up_at(&self, written_at: Duration) -> Duration {
        written_at.saturating_add(self.duration.saturating_sub(self.safety_margin))
    }
}

/// Which held-looking locks a waiter may replace. Nothing by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Takeover {
    /// Take over a lock with a lease once its ETag has stayed the same for
    /// the lease's duration (measured on our clock).
    pub expired_leases: bool,
    /// Take over a lock WITHOUT a lease (e.g. Terraform's) once its ETag has
    /// stayed the same this long. `None`: never (Terraform users expect their
    /// locks not to expire).
    pub stale_without_lease: Option<Duration>,
}
