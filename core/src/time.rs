//! Time as the core sees it: always passed in, never read.
//!
//! The core runs on wasm32 where `SystemTime::now()` panics, and its state
//! machines are tested on a virtual clock, so every step receives a [`Now`].
//! Two clocks travel together because they answer different questions:
//! wall time goes into signatures and lock bodies; monotonic time measures
//! waits, deadlines and backoff, and is immune to clock jumps.

use std::time::{Duration, SystemTime};

/// The current time, supplied by the driver at every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Wall-clock time (UTC), used for SigV4 signing and `Created` fields.
    pub wall: SystemTime,
    /// Monotonic time since an arbitrary origin fixed by the driver. Only
    /// differences between two values are meaningful.
    pub monotonic: Duration,
}

impl Now {
    /// A `Now` for the given wall time and monotonic reading.
    pub fn new(wall: SystemTime, monotonic: Duration) -> Self {
        Now { wall, monotonic }
    }

    /// A virtual clock origin for tests and examples: wall time
    /// 2026-11-22T03:00:00Z, monotonic zero.
    pub fn virtual_origin() -> Self {
        Now {
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_316_400),
            monotonic: Duration::ZERO,
        }
    }

    /// This instant advanced by `d` on both clocks (virtual clocks in tests).
    pub fn advanced(self, d: Duration) -> Self {
        Now {
            wall: self.wall + d,
            monotonic: self.monotonic + d,
        }
    }
}

/// Correction between our wall clock and the server's, learned from
/// `RequestTimeTooSkewed`. Signatures use `wall + offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockOffset {
    /// Seconds to add to our wall clock (may be negative).
    pub millis: i64,
}

impl ClockOffset {
    /// The offset that turns `ours` into `server`.
    pub fn between(ours: SystemTime, server: SystemTime) -> Self {
        let millis = match server.duration_since(ours) {
            Ok(ahead) => ahead.as_millis() as i64,
            Err(behind) => -(behind.duration().as_millis() as i64),
        };
        ClockOffset { millis }
    }

    /// Apply the offset to a wall-clock reading.
    pub fn apply(self, wall: SystemTime) -> SystemTime {
        // The offset comes from a server's `ServerTime`: out of range, ignore it.
        let shifted = if self.millis >= 0 {
            wall.checked_add(Duration::from_millis(self.millis as u64))
        } else {
            wall.checked_sub(Duration::from_millis(self.millis.unsigned_abs()))
        };
        shifted.unwrap_or(wall)
    }
}

/// Format a wall time the way Go's `time.Time` marshals to JSON (RFC 3339 with
/// nanoseconds, trailing zeros trimmed), which is how Terraform writes `Created`.
pub fn format_go_rfc3339_nano(t: SystemTime) -> String {
    let full = rfc3339_nanos(t); // ...SS.nnnnnnnnnZ
    match full.rfind('.') {
        Some(dot) => {
            let fraction = full[dot + 1..full.len() - 1].trim_end_matches('0');
            if fraction.is_empty() {
                format!("{}Z", &full[..dot])
            } else {
                format!("{}.{}Z", &full[..dot], fraction)
            }
        }
        None => full,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` for `t`, clamped to the years 1970 to
/// 9999 that RFC 3339 formatting covers: a clock set before 1970 (or a time
/// passed in by a caller) must give a date, never a panic.
pub(crate) fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(clamp_to_years_1970_to_9999(t)).to_string()
}

/// `t` moved into 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z,
/// the range date formatters (ours, humantime's, the SigV4 signer's) can
/// write. Times outside it come from a driver's odd clock or from a server's
/// `ServerTime`/`Date` at the very end of 9999 plus the time since.
pub(crate) fn clamp_to_years_1970_to_9999(t: SystemTime) -> SystemTime {
    let last = SystemTime::UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
    t.clamp(SystemTime::UNIX_EPOCH, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_format_trims_trailing_zeros_like_rfc3339nano() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_983);
        assert_eq!(
            format_go_rfc3339_nano(base + Duration::from_nanos(961_866_795)),
            "2026-11-22T03:26:23.961866795Z"
        );
        assert_eq!(
            format_go_rfc3339_nano(base + Duration::from_nanos(120_000_000)),
            "2026-11-22T03:26:23.12Z"
        );
        assert_eq!(format_go_rfc3339_nano(base), "2026-11-22T03:26:23Z");
    }

    #[test]
    fn times_outside_1970_to_9999_are_clamped_never_a_panic() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(format_go_rfc3339_nano(before), "1970-01-01T00:00:00Z");
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(
            format_go_rfc3339_nano(after),
            "9999-12-31T23:59:59.999999999Z"
        );
        // Offsets learnt from a hostile `ServerTime`: applied or ignored,
        // never a panic, and the result still formats.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        for millis in [i64::MAX, i64::MIN] {
            let t = ClockOffset { millis }.apply(now);
            assert!(!format_go_rfc3339_nano(t).is_empty());
        }
    }

    #[test]
    fn clock_offset_round_trips_both_directions() {
        let ours = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ahead = ours + Duration::from_secs(900);
        let behind = ours - Duration::from_secs(900);
        assert_eq!(ClockOffset::between(ours, ahead).apply(ours), ahead);
        assert_eq!(ClockOffset::between(ours, behind).apply(ours), behind);
    }
}
