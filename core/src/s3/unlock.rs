//! Releasing the lock (we hold it) and force-unlocking it (someone does).
//!
//! Release is one request: `DELETE` with `If-Match: <ETag of our PUT>`. Unlike
//! Terraform's GET, compare, unconditional DELETE, there is no window in which
//! another holder's lock can be deleted. Only when the answer is ambiguous do we
//! read the lock: a 412 (has it changed hands, or is it still ours under a new
//! ETag?) or a store without conditional DELETE (501), where we fall back to
//! Terraform's GET-compare-DELETE and log that we did.
//!
//! With the driver's memory attached ([`Unlock::with_verdicts`]), a store the
//! acquire proof found ignoring `If-Match` on DELETE (or refusing it) is
//! released by GET-compare-DELETE from the start: its `DELETE If-Match` would
//! delete whatever lock is there, a newer holder's included.
//!
//! Force-unlock is `terraform force-unlock <ID>`: read the lock, check its ID,
//! and delete it conditioned on the ETag just read.

use std::sync::Arc;
use std::time::Duration;

use super::config::{Credentials, S3LockConfig};
use super::lockinfo::{LockHolder, LockInfo};
use super::request;
use super::response::{classify_redacted, ResponseClass};
use super::retry::Retry;
use super::verdict::{self, ConditionalDelete, ConditionalWriteVerdicts};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{Action, Body, Deadline, Event, Machine};
use crate::time::{ClockOffset, Now};

/// How an unlock ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// We deleted the lock.
    Released,
    /// There was no lock to delete (it expired, was force-unlocked, or a
    /// previous release of ours already removed it).
    AlreadyGone,
}

/// After this many rounds of "412, read: still ours under another ETag", stop:
/// something keeps rewriting the lock.
const MAX_ETAG_CHASES: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Read,
    /// `etag: None` is the unconditional fallback DELETE.
    Delete {
        etag: Option<String>,
    },
}

#[derive(Clone, Debug)]
enum Phase {
    Ready(Step),
    InFlight(Step),
    Finished,
}

/// Release our lock, or force-unlock a lock by ID.
#[derive(Debug)]
pub struct Unlock {
    config: Arc<S3LockConfig>,
    credentials: Credentials,
    lock_id: String,
    phase: Phase,
    retry: Retry,
    budget: Duration,
    started: bool,
    /// The store refused `DELETE If-Match`: use GET-compare-DELETE.
    fallback: bool,
    /// A DELETE of ours may have been applied without us hearing back.
    maybe_deleted: bool,
    etag_chases: u32,
    /// The driver's memory of what stores proved (see [`Self::with_verdicts`]).
    verdicts: Option<ConditionalWriteVerdicts>,
}

impl Unlock {
    /// Release a lock we hold: `DELETE If-Match: etag` first.
    pub fn release(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        lock: &LockInfo,
        etag: &str,
        budget: Duration,
        seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Self::new(
            config,
            credentials,
            &lock.id,
            Step::Delete {
                etag: Some(etag.to_string()),
            },
            budget,
            seed,
            clock,
        )
    }

    /// Force-unlock the lock whose ID is `lock_id` (as `terraform force-unlock`):
    /// read it first, delete it only if the ID matches.
    pub fn force(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        lock_id: &str,
        budget: Duration,
        seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Self::new(
            config,
            credentials,
            lock_id,
            Step::Read,
            budget,
            seed,
            clock,
        )
    }

    fn new(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        lock_id: &str,
        first: Step,
        budget: Duration,
        seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Unlock {
            config,
            credentials,
            lock_id: lock_id.to_string(),
            phase: Phase::Ready(first),
            retry: Retry::new(Backoff::TRANSIENT, seed, clock),
            budget,
            started: false,
            fallback: false,
            maybe_deleted: false,
            etag_chases: 0,
            verdicts: None,
        }
    }

    /// Share the driver's memory of what stores proved (clones share it). A
    /// store known not to enforce `DELETE If-Match` is then released by
    /// GET-compare-DELETE from the start; a store found refusing it (501) is
    /// remembered as such; and the fallback is logged at WARNING once per
    /// store instead of on every release.
    pub fn with_verdicts(mut self, verdicts: ConditionalWriteVerdicts) -> Self {
        self.verdicts = Some(verdicts);
        self
    }

    /// Switch to GET-compare-DELETE, logging it (once per store with a memory
    /// attached, which also remembers why).
    fn use_fallback(&mut self) {
        self.fallback = true;
        match &self.verdicts {
            Some(v) => {
                v.record_conditional_delete(&self.config, ConditionalDelete::Unsupported);
                v.warn_delete_fallback(&self.config);
            }
            None => verdict::log_delete_fallback(&self.config, true),
        }
    }

    /// True when the store refused conditional DELETE and the GET-compare-DELETE
    /// fallback was used.
    pub fn used_fallback(&self) -> bool {
        self.fallback
    }

    /// The clock correction learned so far.
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    /// Replace the credentials used for the following requests.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    fn send(&mut self, step: Step, now: Now) -> Action<UnlockOutcome> {
        let t = self.retry.signing_time(now);
        let built = match &step {
            Step::Read => request::get_lock(&self.config, &self.credentials, t),
            Step::Delete { etag } => {
                request::delete_lock(&self.config, &self.credentials, etag.as_deref(), t)
            }
        };
        match built {
            Ok(req) => {
                self.phase = Phase::InFlight(step);
                Action::Send(req)
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn finish(&mut self, result: Result<UnlockOutcome, Error>) -> Action<UnlockOutcome> {
        self.phase = Phase::Finished;
        Action::Done(result)
    }

    fn gone(&mut self) -> Action<UnlockOutcome> {
        // A 404 right after a DELETE of ours that may have landed is most
        // likely our own delete.
        if self.maybe_deleted {
            self.finish(Ok(UnlockOutcome::Released))
        } else {
            self.finish(Ok(UnlockOutcome::AlreadyGone))
        }
    }

    fn retry_later(&mut self, step: Step, err: Error, now: Now) -> Action<UnlockOutcome> {
        let what = self.describe(&step);
        let wake = self.retry.next_wake(&what, &err, now);
        self.retry_at(wake, step, err)
    }

    /// `step` of this lock, for logs.
    fn describe(&self, step: &Step) -> String {
        format!("{step:?} of {}", self.config.lock_key())
    }

    fn retry_at(
        &mut self,
        wake: Option<Duration>,
        step: Step,
        err: Error,
    ) -> Action<UnlockOutcome> {
        match wake {
            Some(until) => {
                self.phase = Phase::Ready(step);
                Action::SleepUntil(until)
            }
            None => self.finish(Err(err)),
        }
    }

    fn final_error(&self, class: ResponseClass) -> Error {
        class.into_error(self.config.bucket(), self.config.region())
    }

    fn on_delete(
        &mut self,
        class: ResponseClass,
        etag: Option<String>,
        now: Now,
    ) -> Action<UnlockOutcome> {
        match class {
            ResponseClass::Success { .. } => {
                log::info!("released {}", self.config.lock_key());
                self.finish(Ok(UnlockOutcome::Released))
            }
            ResponseClass::NoSuchKey => self.gone(),
            // Not the version we know: find out what is there now.
            ResponseClass::PreconditionFailed => self.send(Step::Read, now),
            ResponseClass::NotImplemented { .. } if etag.is_some() => {
                self.use_fallback();
                self.send(Step::Read, now)
            }
            ResponseClass::Rejected {
                status: 400,
                ref message,
                ..
            } if etag.is_some() && message.to_ascii_lowercase().contains("if-match") => {
                log::debug!("the store rejects If-Match on DELETE: {message}");
                self.use_fallback();
                self.send(Step::Read, now)
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                // A 5xx may have been applied; a 409 says a concurrent write
                // won and ours was not, so it proves nothing about a release.
                if matches!(class, ResponseClass::Transient { .. }) {
                    self.maybe_deleted = true;
                }
                let err = self.final_error(class);
                self.retry_later(Self::retry_of_delete(etag), err, now)
            }
            other => {
                let err = self.final_error(other);
                self.finish(Err(err))
            }
        }
    }

    /// What to send again after a DELETE whose outcome we did not learn. A
    /// conditional DELETE can be repeated as it is. An unconditional one is
    /// only ever sent right after the read that found our ID, so it is never
    /// repeated blind: meanwhile our delete may have landed and someone else
    /// may have taken the lock. Read (and compare) again instead.
    fn retry_of_delete(etag: Option<String>) -> Step {
        match etag {
            Some(etag) => Step::Delete { etag: Some(etag) },
            None => Step::Read,
        }
    }

    fn on_read(&mut self, class: ResponseClass, body: Body, now: Now) -> Action<UnlockOutcome> {
        match class {
            ResponseClass::Success {
                etag,
                last_modified,
            } => {
                let Some(etag) = etag else {
                    return self.finish(Err(Error::malformed(
                        "the lock object was returned without an ETag",
                    )));
                };
                let holder = LockHolder {
                    info: LockInfo::parse(&body),
                    etag,
                    last_modified,
                };
                if holder.id() != Some(self.lock_id.as_str()) && self.maybe_deleted {
                    // A DELETE of ours may have been applied with its answer
                    // lost, and the lock changed hands since: ours is gone and
                    // theirs was never touched (we only ever send DELETE
                    // If-Match, or an unconditional one right after reading
                    // our ID). That is a release whose confirmation was lost.
                    log::warn!(
                        "the confirmation of our DELETE of {} was lost; the lock is now held by \
                         {holder}, so ours was removed: released",
                        self.config.lock_key()
                    );
                    return self.finish(Ok(UnlockOutcome::Released));
                }
                if holder.id() != Some(self.lock_id.as_str()) {
                    log::warn!(
                        "{} is now held by {holder}; not deleting it",
                        self.config.lock_key()
                    );
                    return self.finish(Err(Error::NotOwned {
                        holder: Some(Box::new(holder)),
                    }));
                }
                if self.fallback {
                    return self.send(Step::Delete { etag: None }, now);
                }
                self.etag_chases += 1;
                if self.etag_chases > MAX_ETAG_CHASES {
                    return self.finish(Err(Error::Server {
                        status: 412,
                        code: "PreconditionFailed".into(),
                        message: "the lock keeps changing under our DELETE".into(),
                    }));
                }
                self.send(
                    Step::Delete {
                        etag: Some(holder.etag),
                    },
                    now,
                )
            }
            ResponseClass::NoSuchKey => self.gone(),
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Step::Read, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.finish(Err(err))
            }
        }
    }
}

impl Machine for Unlock {
    type Output = UnlockOutcome;

    fn step(&mut self, event: Event, now: Now) -> Action<UnlockOutcome> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        match (phase, event) {
            (Phase::Finished, _) => {
                Action::Done(Err(Error::Misuse("unlock stepped after it finished")))
            }
            (Phase::Ready(step), Event::Start) if !self.started => {
                self.started = true;
                self.retry.deadline = Deadline::after(now, Some(self.budget));
                let unsupported = self.verdicts.as_ref().is_some_and(|v| {
                    v.conditional_delete(&self.config) == ConditionalDelete::Unsupported
                });
                if unsupported {
                    // Its If-Match would not protect a newer holder's lock:
                    // read and compare first, whatever we were asked to send.
                    self.use_fallback();
                    return self.send(Step::Read, now);
                }
                self.send(step, now)
            }
            (Phase::Ready(step), Event::TimerFired) if self.started => self.send(step, now),
            (Phase::InFlight(step), Event::Response(resp)) => {
                let class = classify_redacted(&resp, &self.config, &self.credentials);
                if let ResponseClass::ClockSkewed { server_time } = &class {
                    if self.retry.correct_clock(*server_time, now) {
                        return self.send(step, now);
                    }
                }
                match step {
                    Step::Read => self.on_read(class, resp.into_body(), now),
                    Step::Delete { etag } => self.on_delete(class, etag, now),
                }
            }
            (Phase::InFlight(step), Event::TransportFailed(e)) => {
                let what = self.describe(&step);
                let step = match step {
                    Step::Delete { etag } => {
                        // Only a DELETE that may have left may have deleted.
                        self.maybe_deleted |= e.maybe_sent;
                        Self::retry_of_delete(etag)
                    }
                    Step::Read => Step::Read,
                };
                let wake = self.retry.after_transport(&what, &e, now);
                self.retry_at(wake, step, e.into())
            }
            (Phase::Ready(_) | Phase::InFlight(_), Event::Cancelled) => {
                self.finish(Err(Error::Cancelled))
            }
            (phase, _) => {
                self.phase = phase;
                Action::Done(Err(Error::Misuse("unlock received an event out of order")))
            }
        }
    }
}
