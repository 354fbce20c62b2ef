//! Progress as data: what an operation tells its caller while it runs.
//!
//! Machines queue [`Notice`]s (read with [`crate::Machine::poll_notice`]) and
//! the drivers add their own (a lease lost in the background). Every binding
//! receives the same values and shows them its own way: a Python callback, a
//! Node `onWait`, a progress line in the command-line program. The wording
//! ([`Notice`]'s `Display`) is written here, once. `log` records are still
//! written, but nothing a user should see depends on a logger being set up.

use std::fmt;
use std::time::Duration;

use crate::apstra::Blocker;
use crate::s3::{LockHolder, LostReason};

/// Who holds a lock we wait for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Holder {
    /// The holder of an S3 lock file (its LockInfo and ETag).
    S3(Box<LockHolder>),
    /// What blocks an Apstra blueprint mutex (a mutex tag, or Apstra's own
    /// blueprint lock).
    Apstra(Box<Blocker>),
}

impl Holder {
    /// A key that changes when the holder changes (the S3 ETag, the Apstra
    /// tag or lock identity): a binding reports a new holder once.
    pub fn identity(&self) -> String {
        match self {
            Holder::S3(h) => h.etag.clone(),
            Holder::Apstra(b) => b.identity(),
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::S3(h) => write!(f, "{h}"),
            Holder::Apstra(b) => write!(f, "{b}"),
        }
    }
}

/// Something the caller may want to show while an operation runs.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Notice {
    /// Someone else holds the lock; the operation waits and tries again.
    Waiting {
        /// Who holds it.
        holder: Holder,
        /// How long this operation has waited so far.
        waited: Duration,
        /// When the next attempt is, from now.
        next_try_in: Duration,
        /// True the first time this holder is seen by this operation.
        new_holder: bool,
    },
    /// A request failed in a way that is worth retrying; it is retried.
    Retrying {
        /// What failed, without secrets.
        problem: String,
        /// Consecutive failures so far.
        failures: u32,
        /// How long the failures have been going on.
        failing_for: Duration,
        /// When the next attempt is, from now.
        next_try_in: Duration,
    },
    /// The store lacks a feature and a slower, still-safe way is used.
    Fallback {
        /// What is done instead, and why.
        what: String,
    },
    /// A lock held with a lease was lost.
    Lost {
        /// Stolen, gone, or renewal failed.
        reason: LostReason,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Waiting {
                holder,
                waited,
                next_try_in,
                ..
            } => write!(
                f,
                "waiting for the lock, held by {holder}; waited {}, next try in {}",
                seconds(*waited),
                seconds(*next_try_in)
            ),
            Notice::Retrying {
                problem,
                failures,
                failing_for,
                next_try_in,
            } => write!(
                f,
                "{problem}; retrying in {} ({failures} failure{} in {})",
                seconds(*next_try_in),
                if *failures == 1 { "" } else { "s" },
                seconds(*failing_for)
            ),
            Notice::Fallback { what } => f.write_str(what),
            Notice::Lost { reason } => write!(f, "the lock was lost: {reason}"),
        }
    }
}

impl Notice {
    /// The line that tells a user an acquisition of `target` has started to
    /// wait (its first [`Notice::Waiting`]), like Terraform's "Acquiring state
    /// lock": who holds the lock, and that we wait. `None` for other notices.
    pub fn acquiring_line(&self, target: &str) -> Option<String> {
        match self {
            Notice::Waiting {
                holder,
                next_try_in,
                ..
            } => Some(format!(
                "acquiring {target}: held by {holder}; waiting (next try in {})",
                seconds(*next_try_in)
            )),
            _ => None,
        }
    }
}

/// Why a binding releases, on its own, a lock the program still holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unattended {
    /// The process is exiting normally and the program did not release it.
    Exit,
    /// The process received a termination signal (e.g. `SIGTERM`) and the
    /// program asked for its locks to be released then.
    Signal(&'static str),
}

/// The warning a binding logs when it releases `target` (held under `id`,
/// the lock ID or tag ID) without being asked by the program: at exit, or on
/// a signal the program opted in to.
pub fn released_unattended(target: &str, id: &str, why: Unattended) -> String {
    match why {
        Unattended::Exit => format!(
            "released {target} (ID {id}) at exit: the program ended while still holding it; \
             release it in the program (release(), or a with block) so that the lock is not \
             held longer than the work it protects"
        ),
        Unattended::Signal(signal) => format!(
            "released {target} (ID {id}) on {signal}: the process is being terminated while \
             holding it"
        ),
    }
}

/// The warning when a binding's held-lock object is garbage-collected while
/// the lock is still held: what happens to the lock now, and how to remove
/// it. `id` is the lock ID (S3) or the tag ID (Apstra); `lease` is the
/// lease of a leased lock, whose renewal stops with the object.
pub fn collected_unreleased(
    target: &str,
    id: &str,
    lease: Option<Duration>,
    kind: crate::error::Kind,
    spelling: &dyn crate::error::Spelling,
) -> String {
    let which = match kind {
        crate::error::Kind::S3 => format!("lock ID {id}"),
        crate::error::Kind::Apstra => format!("tag {id}"),
    };
    let remove = match kind {
        crate::error::Kind::S3 => spelling.force_unlock(Some(id)),
        crate::error::Kind::Apstra => spelling.force_unlock_tag(id),
    };
    match lease {
        Some(d) => format!(
            "{target} ({which}) was garbage-collected without being released: its renewal \
             stopped, so it expires {} after its last renewal and can then be taken over, or \
             removed at once with {remove}",
            seconds(d)
        ),
        None => format!(
            "{target} ({which}) was garbage-collected without being released: it stays held \
             until released or removed with {remove}"
        ),
    }
}

/// `1.5s`, `12s`, `3m20s`: short and readable.
pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 120.0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A queue of notices inside a machine, drained by the driver.
#[derive(Clone, Debug, Default)]
pub(crate) struct Notices(std::collections::VecDeque<Notice>);

impl Notices {
    pub(crate) fn push(&mut self, n: Notice) {
        // A driver that never drains must not make a long wait grow memory
        // without bound: keep the newest.
        if self.0.len() >= 64 {
            self.0.pop_front();
        }
        self.0.push_back(n);
    }

    pub(crate) fn pop(&mut self) -> Option<Notice> {
        self.0.pop_front()
    }
}

/// A streak of consecutive transient failures: how many, since when.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FailureStreak {
    started: Option<Duration>,
    count: u32,
}

/// What [`FailureStreak::record`] reports.
pub(crate) struct Streak {
    pub(crate) count: u32,
    pub(crate) failing_for: Duration,
}

impl FailureStreak {
    /// One more failure at `now`.
    pub(crate) fn record(&mut self, now: crate::time::Now) -> Streak {
        let started = *self.started.get_or_insert(now.monotonic);
        self.count = self.count.saturating_add(1);
        Streak {
            count: self.count,
            failing_for: now.monotonic.saturating_sub(started),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(seconds(Duration::from_secs(42)), "42s");
        assert_eq!(seconds(Duration::from_secs(200)), "3m20s");
    }

    #[test]
    fn the_first_wait_names_the_lock_and_its_holder() {
        let body = br#"{"ID":"id-1","Operation":"OperationTypeApply","Info":"","Who":"alice@host","Version":"1.11.4","Created":"2026-11-22T03:26:23.961866795Z","Path":"b/k"}"#;
        let holder = LockHolder {
            info: crate::s3::LockInfo::parse(body),
            etag: "\"e1\"".into(),
            last_modified: None,
        };
        let n = Notice::Waiting {
            holder: Holder::S3(Box::new(holder)),
            waited: Duration::ZERO,
            next_try_in: Duration::from_millis(500),
            new_holder: true,
        };
        let line = n.acquiring_line("s3://b/k.tflock").unwrap();
        assert_eq!(
            line,
            "acquiring s3://b/k.tflock: held by alice@host (ID id-1, operation \
             OperationTypeApply, created 2026-11-22T03:26:23.961866795Z); waiting (next try in \
             0.5s)"
        );
        let other = Notice::Fallback { what: "x".into() };
        assert_eq!(other.acquiring_line("t"), None);
    }

    #[test]
    fn a_release_nobody_asked_for_names_the_lock_and_why() {
        let m = released_unattended("s3://b/k.tflock", "id-1", Unattended::Exit);
        assert!(
            m.starts_with("released s3://b/k.tflock (ID id-1) at exit"),
            "{m}"
        );
        assert!(m.contains("release it in the program"), "{m}");
        let m = released_unattended("s3://b/k.tflock", "id-1", Unattended::Signal("SIGTERM"));
        assert!(m.contains("on SIGTERM"), "{m}");
    }

    #[test]
    fn a_queue_that_is_never_drained_stays_bounded() {
        let mut q = Notices::default();
        for i in 0..100 {
            q.push(Notice::Fallback {
                what: i.to_string(),
            });
        }
        let mut n = 0;
        let mut first = None;
        while let Some(x) = q.pop() {
            first.get_or_insert(x);
            n += 1;
        }
        assert_eq!(n, 64);
        assert_eq!(first, Some(Notice::Fallback { what: "36".into() }));
    }
    #[test]
    fn a_collected_lock_says_how_to_remove_it() {
        let s3 = collected_unreleased(
            "s3://b/k.tflock",
            "abc",
            Some(Duration::from_secs(30)),
            crate::error::Kind::S3,
            &crate::error::CommandLine,
        );
        assert!(
            s3.starts_with("s3://b/k.tflock (lock ID abc) was garbage-collected"),
            "{s3}"
        );
        assert!(s3.contains("expires 30s after its last renewal"), "{s3}");
        assert!(s3.contains("`condlock force-unlock abc`"), "{s3}");
        let apstra = collected_unreleased(
            "the mutex of blueprint bp-1",
            "t-1",
            None,
            crate::error::Kind::Apstra,
            &crate::error::CommandLine,
        );
        assert!(apstra.contains("(tag t-1)"), "{apstra}");
        assert!(
            apstra.contains("`condlock force-unlock --tag t-1`"),
            "{apstra}"
        );
    }
}
