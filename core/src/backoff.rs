//! Jittered exponential backoff, deterministic given a seed.
//!
//! The core never draws randomness from the OS (it must run on wasm and in
//! virtual-clock tests), so the driver passes a seed. Delays use "equal jitter":
//! half of the exponential step is fixed, half random. Unlike full jitter this
//! never yields a near-zero delay, so many waiters cannot hammer a store, and
//! unlike Terraform's fixed 1, 2, 4, 8, 16 s schedule they do not retry in step.

use std::time::Duration;

/// A backoff policy: the first delay, the cap and the growth factor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// No delay exceeds this.
    pub max: Duration,
    /// Growth factor per attempt (2.0 doubles).
    pub multiplier: f64,
}

impl Backoff {
    /// Policy used while a lock is held by someone else: 0.5 s doubling to 16 s.
    pub const WAIT_FOR_HOLDER: Backoff = Backoff {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(16),
        multiplier: 2.0,
    };

    /// Policy for transient failures (5xx, SlowDown, 409, transport errors):
    /// 100 ms doubling to 5 s.
    pub const TRANSIENT: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
        multiplier: 2.0,
    };

    /// The upper bound of the delay before retry number `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = self.initial.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::WAIT_FOR_HOLDER
    }
}

/// A running backoff: remembers the attempt number and owns its random stream.
#[derive(Clone, Debug)]
pub struct BackoffState {
    policy: Backoff,
    attempt: u32,
    rng: fastrand::Rng,
}

impl BackoffState {
    /// Start a backoff sequence.
    pub fn new(policy: Backoff, seed: u64) -> Self {
        BackoffState {
            policy,
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next delay: between half the ceiling and the ceiling.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.policy.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let jitter_nanos = half.as_nanos().min(u64::MAX as u128) as u64;
        half + Duration::from_nanos(self.rng.u64(0..=jitter_nanos))
    }

    /// Start again from the first delay (after progress was made).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// How many delays were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_jitter_bounds_and_stop_at_cap() {
        let policy = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
        };
        let mut b = BackoffState::new(policy, 7);
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for c in ceilings {
            let d = b.next_delay();
            let c = Duration::from_millis(c);
            assert!(d >= c / 2 && d <= c, "{d:?} not in [{:?}, {c:?}]", c / 2);
        }
    }

    #[test]
    fn same_seed_same_schedule_different_seed_differs() {
        let run = |seed| {
            let mut b = BackoffState::new(Backoff::WAIT_FOR_HOLDER, seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let p = Backoff::TRANSIENT;
        assert_eq!(p.ceiling(10_000), p.max);
        let weird = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
            multiplier: f64::NAN,
        };
        assert!(weird.ceiling(5) <= weird.max);
    }

    #[test]
    fn reset_restarts_the_schedule() {
        let mut b = BackoffState::new(Backoff::TRANSIENT, 3);
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Backoff::TRANSIENT.initial);
    }
}
