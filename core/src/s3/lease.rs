//! Opt-in leases on the S3 lock: renewal, lost-lock detection, takeover terms.
//!
//! Terraform's locks never expire. A condlock holder may instead record a lease
//! in its lock body (see [`super::lockinfo::LeaseInfo`]) and renew it by
//! rewriting the lock with `PUT If-Match: <its current ETag>`. Every renewal
//! changes the body and therefore the ETag. A waiter that opted in to takeover
//! watches the ETag on its *own* monotonic clock: if the same ETag stays for a
//! whole lease, the holder stopped renewing, and the waiter replaces the lock
//! with `PUT If-Match: <that ETag>` — a compare-and-swap, so of many waiters
//! exactly one wins. No machine trusts another machine's clock.
//!
//! The holder's side of the same rule: a write sent at local time `t` is
//! safe until `t + lease` on our clock (a waiter starts counting only after it
//! *sees* that version, which is later). Renewal starts at `t + renew_every`;
//! transient failures are retried until `t + lease - safety_margin`; past that
//! the lock is reported lost (`RenewalFailed`) rather than silently assumed.
//!
//! Fencing: each holder can expose its ETag (changes with every write, so with
//! every holder) and a generation (fresh lock: 1; takeover: previous + 1). What
//! the generation does NOT give: after a normal release and a fresh create,
//! the store no longer remembers the old lock, so the generation starts at 1
//! again. Only the ETag-plus-generation pair, checked by the protected resource
//! against the last value it accepted, fences a stale holder — and only where
//! that resource can perform the check.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::acquire::HeldLock;
use super::config::{Credentials, S3LockConfig};
use super::lockinfo::{LockHolder, LockInfo};
use super::request::{self, PutCondition};
use super::response::{classify_redacted, ResponseClass};
use super::retry::Retry;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{Action, Body, Deadline, Event, Machine};
use crate::time::{format_go_rfc3339_nano, ClockOffset, Now};

pub use super::terms::{LeaseTerms, Takeover};

/// Why a held lock was lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// Another writer replaced it: our ETag no longer matches and the lock now
    /// carries another ID.
    Stolen {
        /// The new holder, when it could be read.
        holder: Option<Box<LockHolder>>,
    },
    /// The lock object is gone (force-unlocked or deleted).
    Gone,
    /// Renewals kept failing until the lease's safety margin ran out.
    RenewalFailed {
        /// The last failure.
        last_error: String,
    },
}

impl fmt::Display for LostReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LostReason::Stolen { holder: Some(h) } => write!(f, "stolen: now held by {h}"),
            LostReason::Stolen { holder: None } => f.write_str("stolen: the lock was overwritten"),
            LostReason::Gone => f.write_str("gone: the lock was deleted (force-unlocked?)"),
            LostReason::RenewalFailed { last_error } => {
                write!(f, "renewal failed until the lease ran out: {last_error}")
            }
        }
    }
}

impl LostReason {
    /// A short stable name: `stolen`, `gone` or `renewal_failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            LostReason::Stolen { .. } => "stolen",
            LostReason::Gone => "gone",
            LostReason::RenewalFailed { .. } => "renewal_failed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Ready,
    Writing,
    /// After a 412: did our own earlier renewal land, or did someone replace us?
    Reading,
    Sleeping,
    ReadSleeping,
    Finished,
}

/// One renewal of a held lock: `PUT If-Match: <current ETag>` with the
/// renewal count bumped. Ends with the updated [`HeldLock`] or
/// [`Error::Lost`].
#[derive(Debug)]
pub struct Renew {
    config: Arc<S3LockConfig>,
    credentials: Credentials,
    held: HeldLock,
    terms: LeaseTerms,
    info: LockInfo,
    body: Body,
    phase: Phase,
    retry: Retry,
    /// When the first renewal write was sent: the new version's `written_at`
    /// if a renewal lands (the earliest send is the conservative choice).
    first_sent: Option<Duration>,
    last_error: String,
}

impl Renew {
    /// Prepare the renewal of `held` (which must carry a lease).
    pub fn new(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        held: &HeldLock,
        seed: u64,
        clock: ClockOffset,
        now: Now,
    ) -> Result<Self, Error> {
        let terms = held
            .lease
            .ok_or(Error::Misuse("renewing a lock that has no lease"))?;
        let mut info = held.info.clone();
        let lease = info
            .lease
            .as_mut()
            .ok_or(Error::Misuse("renewing a lock body without a lease"))?;
        lease.renewals += 1;
        lease.renewed = format_go_rfc3339_nano(clock.apply(now.wall));
        let body = info.to_json();
        let mut retry = Retry::new(Backoff::TRANSIENT, seed, clock);
        retry.deadline = Deadline(Some(terms.give_up_at(held.written_at)));
        Ok(Renew {
            config,
            credentials,
            held: held.clone(),
            terms,
            info,
            body,
            phase: Phase::Ready,
            retry,
            first_sent: None,
            last_error: String::new(),
        })
    }

    /// The clock correction learned so far.
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    /// Replace the credentials used for the following requests.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    fn write(&mut self, now: Now) -> Action<HeldLock> {
        let t = self.retry.signing_time(now);
        match request::put_lock(
            &self.config,
            &self.credentials,
            &self.body,
            PutCondition::IfMatch(&self.held.etag),
            t,
        ) {
            Ok(req) => {
                self.first_sent.get_or_insert(now.monotonic);
                self.phase = Phase::Writing;
                Action::Send(req)
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn read(&mut self, now: Now) -> Action<HeldLock> {
        match request::get_lock(
            &self.config,
            &self.credentials,
            self.retry.signing_time(now),
        ) {
            Ok(req) => {
                self.phase = Phase::Reading;
                Action::Send(req)
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn finish(&mut self, r: Result<HeldLock, Error>) -> Action<HeldLock> {
        self.phase = Phase::Finished;
        Action::Done(r)
    }

    fn lost(&mut self, reason: LostReason) -> Action<HeldLock> {
        log::warn!("lost the lock {}: {reason}", self.config.lock_key());
        self.finish(Err(Error::Lost { reason }))
    }

    fn renewed(&mut self, etag: String, info: LockInfo) -> Action<HeldLock> {
        let written_at = self.first_sent.unwrap_or(self.held.written_at);
        log::debug!("renewed {} (ETag {etag})", self.config.lock_key());
        self.finish(Ok(HeldLock {
            info,
            etag,
            written_at,
            ..self.held.clone()
        }))
    }

    /// Retry after a transient failure until the safety margin, then report
    /// the lock lost.
    fn retry_later(&mut self, reading: bool, why: String, now: Now) -> Action<HeldLock> {
        let wake = self.retry.next_wake(&self.describe(reading), &why, now);
        self.retry_at(wake, reading, why)
    }

    /// What is being retried, for logs.
    fn describe(&self, reading: bool) -> String {
        let what = if reading { "reading" } else { "renewing" };
        format!("{what} {}", self.config.lock_key())
    }

    /// Retry at `wake`; without one, report the lock lost with `why`.
    fn retry_at(&mut self, wake: Option<Duration>, reading: bool, why: String) -> Action<HeldLock> {
        self.last_error = why;
        match wake {
            Some(until) => {
                self.phase = if reading {
                    Phase::ReadSleeping
                } else {
                    Phase::Sleeping
                };
                Action::SleepUntil(until)
            }
            None => {
                let last_error = std::mem::take(&mut self.last_error);
                self.lost(LostReason::RenewalFailed { last_error })
            }
        }
    }

    fn on_write(&mut self, class: ResponseClass, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success {
                etag: Some(etag), ..
            } => {
                let info = self.info.clone();
                self.renewed(etag, info)
            }
            // Written but no ETag to renew or release with: read it back.
            ResponseClass::Success { etag: None, .. } | ResponseClass::PreconditionFailed => {
                self.read(now)
            }
            ResponseClass::NoSuchKey => self.lost(LostReason::Gone),
            other => {
                let why = other
                    .into_error(self.config.bucket(), self.config.region())
                    .to_string();
                self.retry_later(false, why, now)
            }
        }
    }

    fn on_read(&mut self, class: ResponseClass, body: Body, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success {
                etag: Some(etag),
                last_modified,
            } => {
                let info = LockInfo::parse(&body);
                match info {
                    // Still the very version our `If-Match` named: nothing was
                    // written, yet the store refused the match. It does not
                    // honour If-Match, so the lease cannot be kept alive
                    // (waiters see this version age). Say so now rather than
                    // count it as a renewal.
                    Ok(info) if info.id == self.held.info.id && etag == self.held.etag => self
                        .lost(LostReason::RenewalFailed {
                            last_error: format!(
                                "the store answered 412 to PUT If-Match: {etag} although the lock \
                                 still has that ETag: it does not honour If-Match, so the lease \
                                 cannot be renewed"
                            ),
                        }),
                    // Our own renewal landed earlier (its response was lost).
                    Ok(info) if info.id == self.held.info.id => self.renewed(etag, info),
                    info => self.lost(LostReason::Stolen {
                        holder: Some(Box::new(LockHolder {
                            info,
                            etag,
                            last_modified,
                        })),
                    }),
                }
            }
            ResponseClass::NoSuchKey => self.lost(LostReason::Gone),
            other => {
                let why = match other {
                    ResponseClass::Success { etag: None, .. } => {
                        "the lock was returned without an ETag".to_string()
                    }
                    other => other
                        .into_error(self.config.bucket(), self.config.region())
                        .to_string(),
                };
                self.retry_later(true, why, now)
            }
        }
    }
}

impl Machine for Renew {
    type Output = HeldLock;

    /// A renewal still in flight at the give-up instant is abandoned there:
    /// past it a waiter may already have taken the lock over, so the holder
    /// must be told now, not when the stalled request ends.
    fn abandon_request_at(&self) -> Option<Duration> {
        self.retry.deadline.0
    }

    fn step(&mut self, event: Event, now: Now) -> Action<HeldLock> {
        match (self.phase, event) {
            (Phase::Finished, _) => {
                Action::Done(Err(Error::Misuse("renew stepped after it finished")))
            }
            (Phase::Ready, Event::Start) => {
                if self.retry.deadline.0.is_some_and(|d| now.monotonic >= d) {
                    let last_error = format!(
                        "the lease ({:?}) ran out before the renewal could start",
                        self.terms.duration
                    );
                    return self.lost(LostReason::RenewalFailed { last_error });
                }
                self.write(now)
            }
            (Phase::Sleeping, Event::TimerFired) => self.write(now),
            (Phase::ReadSleeping, Event::TimerFired) => self.read(now),
            (Phase::Writing | Phase::Reading, Event::Response(resp)) => {
                let class = classify_redacted(&resp, &self.config, &self.credentials);
                let reading = self.phase == Phase::Reading;
                if let ResponseClass::ClockSkewed { server_time } = &class {
                    if self.retry.correct_clock(*server_time, now) {
                        return if reading {
                            self.read(now)
                        } else {
                            self.write(now)
                        };
                    }
                }
                if reading {
                    self.on_read(class, resp.into_body(), now)
                } else {
                    self.on_write(class, now)
                }
            }
            // The write may have landed: a retry gets 412, and the read that
            // follows recognises our own renewal.
            // A permanent failure (certificate rejected) reports the lock
            // lost at once: no renewal can succeed before the lease ends.
            (Phase::Writing | Phase::Reading, Event::TransportFailed(e)) => {
                let reading = self.phase == Phase::Reading;
                let wake = self.retry.after_transport(&self.describe(reading), &e, now);
                self.retry_at(wake, reading, e.message)
            }
            (
                Phase::Ready
                | Phase::Sleeping
                | Phase::ReadSleeping
                | Phase::Writing
                | Phase::Reading,
                Event::Cancelled,
            ) => self.finish(Err(Error::Cancelled)),
            _ => Action::Done(Err(Error::Misuse("renew received an event out of order"))),
        }
    }
}
