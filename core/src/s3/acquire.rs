//! Acquiring the S3 lock file: `PUT <key>.tflock` with `If-None-Match: *`.
//!
//! Where this machine improves on Terraform while writing the same lock:
//! - 409 ConditionalRequestConflict is retried, never mistaken for "held".
//! - A 412 whose holder ID is our own means an earlier PUT of ours landed (its
//!   response was lost and the PUT was retried): we hold the lock.
//! - The holder is read with the SSE-C headers, so it is known under SSE-C too.
//! - Waiting uses jittered exponential backoff against a monotonic deadline.
//! - Right after acquiring, it can prove the store enforces `If-None-Match` by
//!   repeating the same conditional PUT and requiring 412; a store that lets it
//!   through yields [`Error::ConditionalWritesUnsupported`] and our lock is
//!   removed. The same proof then sends a `DELETE If-Match` naming a wrong
//!   ETag, which must get 412: a store that deletes anyway (Ceph radosgw)
//!   would let a stale release delete another holder's lock, so it is
//!   remembered as [`ConditionalDelete::Unsupported`] (releases then read,
//!   compare and delete), and since our lock is gone, acquire starts over.
//! - Whenever it gives up (error, timeout, cancellation) after a PUT whose
//!   outcome it does not know, it reads the lock back and deletes it if it is
//!   ours: a lost response never leaks a lock.

use std::sync::Arc;
use std::time::Duration;

use super::config::{Credentials, S3LockConfig};
use super::lockinfo::{LeaseInfo, LockHolder, LockInfo};
use super::request::{self, PutCondition};
use super::response::{classify_redacted, ResponseClass};
use super::retry::Retry;
use super::terms::{LeaseTerms, Takeover};
use super::verdict::{self, ConditionalDelete, ConditionalWriteVerdicts};
use crate::backoff::{Backoff, BackoffState};
use crate::error::Error;
use crate::failfast::try_once_budget;
use crate::progress::{FailureStreak, Holder, Notice, Notices};
use crate::sansio::{Action, Body, Deadline, Event, Machine, TransportFailure, Wait};
use crate::time::{ClockOffset, Now};

/// How an acquisition behaves. [`AcquireOptions::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct AcquireOptions {
    /// LockInfo `Operation` (Terraform writes `OperationTypeApply`...).
    pub operation: String,
    /// LockInfo `Info`: free text shown to whoever finds the lock held.
    pub info: String,
    /// LockInfo `Who`: `user@hostname` by convention.
    pub who: String,
    /// Whether and how long to wait for a holder to let go.
    pub wait: Wait,
    /// Delays between attempts while someone else holds the lock.
    pub wait_backoff: Backoff,
    /// Delays between retries of transient failures (5xx, 409, transport).
    pub retry_backoff: Backoff,
    /// With `Wait::No`, how long transient failures are still retried; capped
    /// at 3 seconds (see [`Wait::No`] for what a try-once call does).
    pub transient_budget: Duration,
    /// Fresh deadline for removing a lock we may have written when we give up
    /// or are cancelled.
    pub cleanup_budget: Duration,
    /// Prove the store enforces `If-None-Match` (one extra PUT) and
    /// `DELETE If-Match` (one DELETE naming a wrong ETag) before trusting it.
    /// Drivers turn it on for the first acquire per endpoint and bucket;
    /// turning it off for good must be an explicit choice.
    pub verify_conditional_writes: bool,
    /// Hold the lock with a lease that must be renewed (see [`super::lease`]).
    /// `None` (default): a lock that never expires, as Terraform's.
    pub lease: Option<LeaseTerms>,
    /// Which expired or stale locks this acquisition may take over (none by
    /// default).
    pub takeover: Takeover,
}

impl AcquireOptions {
    /// Defaults: operation `condlock`, empty info, wait forever, verification on.
    pub fn new(who: impl Into<String>) -> Self {
        AcquireOptions {
            operation: "condlock".to_string(),
            info: String::new(),
            who: who.into(),
            wait: Wait::Forever,
            wait_backoff: Backoff::WAIT_FOR_HOLDER,
            retry_backoff: Backoff::TRANSIENT,
            transient_budget: Duration::from_secs(30),
            cleanup_budget: Duration::from_secs(10),
            verify_conditional_writes: true,
            lease: None,
            takeover: Takeover::default(),
        }
    }

    /// Check the LockInfo fields (`operation`, `info`, `who`): no control
    /// characters, `info` at most 4 KiB. [`Acquire`] checks this on its first
    /// step and ends with [`Error::InvalidConfig`] before sending anything.
    pub fn validate(&self) -> Result<(), Error> {
        super::lockinfo::validate_holder_fields(&self.operation, &self.info, &self.who)
    }
}

/// A lock we hold: what release and renewal need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLock {
    /// The body we wrote.
    pub info: LockInfo,
    /// The ETag of our current lock object: the release token.
    pub etag: String,
    /// True when this acquisition proved the store enforces `If-None-Match`
    /// (and learnt what it does with `DELETE If-Match`, when it could).
    pub verified_conditional_writes: bool,
    /// The lease terms, when held with a lease.
    pub lease: Option<LeaseTerms>,
    /// Monotonic time at which the write that produced `etag` was sent: the
    /// lease runs from here on our clock.
    pub written_at: Duration,
}

impl HeldLock {
    /// The fencing generation: 1 for a fresh lock, +1 on each takeover; 0 for a
    /// lock held without a lease. See [`super::lease`] for what it guarantees.
    pub fn generation(&self) -> u64 {
        self.info.lease.as_ref().map_or(0, |l| l.generation)
    }
}

/// The randomness an acquisition needs, supplied by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entropy {
    /// Random bytes for the lock ID.
    pub lock_id: [u8; 16],
    /// Seed for backoff jitter.
    pub jitter_seed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// `PUT If-None-Match: *`.
    Put,
    /// `GET` to learn who holds it (or whether it is us).
    ReadHolder,
    /// `PUT If-Match: <etag>` replacing an expired or stale lock.
    TakeOver { etag: String },
    /// The verification PUT, repeated after a successful acquire.
    Probe { etag: String },
    /// The verification of conditional DELETE: `DELETE If-Match` naming an
    /// ETag our lock (`etag`) does not have; must get 412.
    ProbeDelete { etag: String },
    /// After a `ProbeDelete` whose outcome we did not learn: is our lock
    /// (`etag`) still there? A store ignoring If-Match may have deleted it.
    ProbeReadBack { etag: String },
    /// Giving up: find out whether a lock of ours exists.
    CleanupRead,
    /// Giving up: delete our lock, `If-Match: etag`; `None` is the
    /// unconditional DELETE of a store that refuses conditional ones, sent
    /// only right after a read found our ID.
    CleanupDelete { etag: Option<String> },
}

/// While cleaning up, after this many rounds of "412, read: still ours under
/// another ETag", stop: something keeps rewriting the lock.
const MAX_CLEANUP_CHASES: u32 = 3;

/// The `If-Match` of the conditional-DELETE proof: an ETag no object has
/// (quoted like every real one, so stores that compare quoted ETags compare it).
pub const PROOF_MISMATCH_ETAG: &str = "\"condlock-proof-mismatch\"";

/// After this many rounds in a row of "412 to our create, then no lock on
/// GET", the store is named as refusing conditional creates. A holder
/// releasing between our PUT and GET explains one round, rarely two.
const MAX_VANISHED_ROUNDS: u32 = 3;

#[derive(Clone, Debug)]
enum Phase {
    /// Next: send this step (at start or when the timer fires).
    Ready(Step),
    /// Sent this step; awaiting its response.
    InFlight(Step),
    Finished,
}

/// The acquire state machine.
#[derive(Debug)]
pub struct Acquire {
    config: Arc<S3LockConfig>,
    credentials: Credentials,
    opts: AcquireOptions,
    info: LockInfo,
    body: Body,
    phase: Phase,
    started: Option<Duration>,
    retry: Retry,
    wait_backoff: BackoffState,
    /// The last holder seen while waiting.
    holder: Option<LockHolder>,
    /// True while sleeping because someone else holds the lock.
    waiting_for_holder: bool,
    /// A PUT of ours may have landed without us knowing.
    uncertain: bool,
    /// The ETag of our lock once we know we hold it.
    held_etag: Option<String>,
    /// 404s in a row right after 412s: the lock keeps vanishing under us.
    vanished_in_a_row: u32,
    /// Why we are cleaning up, returned when cleanup ends.
    pending_error: Option<Error>,
    /// The holder's version we are timing for takeover, and when we first
    /// saw it (our monotonic clock).
    observed: Option<(String, Duration)>,
    /// When the latest write (PUT or takeover) was sent.
    last_write_sent: Duration,
    /// When the first write whose outcome we did not learn was sent.
    first_uncertain_write: Option<Duration>,
    /// A version whose takeover (`PUT If-Match`) got 412 although the lock
    /// still carried it afterwards: the store does not honour If-Match, so
    /// it is not tried again. The flag records that we warned.
    takeover_refused: Option<(String, bool)>,
    /// The store refused conditional DELETE while we cleaned up: compare,
    /// then delete unconditionally (Terraform's way).
    cleanup_fallback: bool,
    /// Rounds of "our cleanup DELETE got 412, the lock is still ours".
    cleanup_chases: u32,
    /// Progress for the caller, drained by the driver.
    notices: Notices,
    /// The current streak of transient failures.
    failures: FailureStreak,
    /// The driver's memory of what stores proved (see [`Self::with_verdicts`]).
    verdicts: Option<ConditionalWriteVerdicts>,
    /// This acquisition proved that the store enforces `If-None-Match`.
    put_proven: bool,
    /// What the store does with `DELETE If-Match`, as far as we know.
    conditional_delete: ConditionalDelete,
    /// The conditional-DELETE proof ran (or was abandoned) in this acquisition.
    delete_probed: bool,
}

impl Acquire {
    /// Prepare an acquisition. Nothing is sent until the first `step`.
    pub fn new(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        opts: AcquireOptions,
        entropy: Entropy,
        clock: ClockOffset,
        now: Now,
    ) -> Self {
        let mut info = LockInfo::new(
            entropy.lock_id,
            opts.operation.clone(),
            opts.info.clone(),
            opts.who.clone(),
            config.lock_info_path(),
            clock.apply(now.wall),
        );
        info.lease = opts.lease.map(|terms| LeaseInfo {
            duration_ms: terms.duration.as_millis().min(u64::MAX as u128) as u64,
            generation: 1,
            renewed: info.created.clone(),
            renewals: 0,
        });
        let body = info.to_json();
        Acquire {
            retry: Retry::new(opts.retry_backoff, entropy.jitter_seed, clock),
            wait_backoff: BackoffState::new(opts.wait_backoff, entropy.jitter_seed.rotate_left(17)),
            config,
            credentials,
            opts,
            info,
            body,
            phase: Phase::Ready(Step::Put),
            started: None,
            holder: None,
            waiting_for_holder: false,
            uncertain: false,
            held_etag: None,
            vanished_in_a_row: 0,
            pending_error: None,
            observed: None,
            last_write_sent: now.monotonic,
            first_uncertain_write: None,
            takeover_refused: None,
            cleanup_fallback: false,
            cleanup_chases: 0,
            notices: Notices::default(),
            failures: FailureStreak::default(),
            verdicts: None,
            put_proven: false,
            conditional_delete: ConditionalDelete::Unknown,
            delete_probed: false,
        }
    }

    /// Share the driver's memory of what stores proved (clones share it).
    /// This acquisition then records there what it proves, including whether
    /// the store enforces `DELETE If-Match`; skips a conditional-DELETE proof
    /// the memory shows would only delete our lock again; cleans up a store
    /// known to ignore that header by GET-compare-DELETE; and, when told not
    /// to verify a store that never proved itself
    /// (`VerifyConditionalWrites::TrustWithoutProof`), logs a WARNING once
    /// per store.
    pub fn with_verdicts(mut self, verdicts: ConditionalWriteVerdicts) -> Self {
        self.verdicts = Some(verdicts);
        self
    }

    /// The lock body this acquisition writes (its `id` identifies us).
    pub fn lock_info(&self) -> &LockInfo {
        &self.info
    }

    /// While the machine sleeps because the lock is held: who holds it.
    pub fn waiting_for(&self) -> Option<&LockHolder> {
        if self.waiting_for_holder {
            self.holder.as_ref()
        } else {
            None
        }
    }

    /// The clock correction learned so far (drivers carry it to the next operation).
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    /// Replace the credentials used for the following requests (refreshed
    /// temporary credentials).
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    /// Send `step` right after a response. A timed wait starts no new
    /// attempt once its deadline has passed: it times out instead (with the
    /// lock removed if a write of ours may have landed). Verifying a lock we
    /// hold and cleaning up are not new attempts.
    fn send(&mut self, step: Step, now: Now) -> Action<HeldLock> {
        let attempt = matches!(step, Step::Put | Step::TakeOver { .. } | Step::ReadHolder);
        let past = self.retry.deadline.0.is_some_and(|d| now.monotonic > d);
        if attempt && past && self.pending_error.is_none() && matches!(self.opts.wait, Wait::For(_))
        {
            let err = Error::Timeout {
                waited: self.waited(now),
                holder: self.holder.clone().map(Box::new),
            };
            return self.fail(err, now);
        }
        self.send_scheduled(step, now)
    }

    /// Send `step` at the start or when a sleep (never past the deadline)
    /// ends.
    fn send_scheduled(&mut self, step: Step, now: Now) -> Action<HeldLock> {
        if step == Step::Put {
            // A create (If-None-Match) starts a fresh lock: generation 1, even
            // after a takeover of ours lost its race and left previous + 1
            // in our body. Only a takeover (If-Match) writes previous + 1.
            self.adopt_generation(Some(1));
        }
        let t = self.retry.signing_time(now);
        let built = match &step {
            Step::Put => request::put_lock(
                &self.config,
                &self.credentials,
                &self.body,
                PutCondition::IfNoneMatch,
                t,
            ),
            Step::TakeOver { etag } => request::put_lock(
                &self.config,
                &self.credentials,
                &self.body,
                PutCondition::IfMatch(etag),
                t,
            ),
            Step::Probe { .. } => request::put_lock(
                &self.config,
                &self.credentials,
                &self.body,
                PutCondition::IfNoneMatch,
                t,
            ),
            Step::ReadHolder | Step::CleanupRead | Step::ProbeReadBack { .. } => {
                request::get_lock(&self.config, &self.credentials, t)
            }
            Step::ProbeDelete { .. } => request::delete_lock(
                &self.config,
                &self.credentials,
                Some(PROOF_MISMATCH_ETAG),
                t,
            ),
            Step::CleanupDelete { etag } => {
                request::delete_lock(&self.config, &self.credentials, etag.as_deref(), t)
            }
        };
        match built {
            Ok(req) => {
                if matches!(step, Step::Put | Step::TakeOver { .. }) {
                    self.last_write_sent = now.monotonic;
                }
                self.waiting_for_holder = false;
                self.phase = Phase::InFlight(step);
                Action::Send(req)
            }
            Err(e) => self.fail(e, now),
        }
    }

    /// Make our body carry `generation` (when we hold with a lease).
    fn adopt_generation(&mut self, generation: Option<u64>) {
        if let (Some(lease), Some(generation)) = (self.info.lease.as_mut(), generation) {
            if lease.generation != generation {
                lease.generation = generation;
                self.body = self.info.to_json();
            }
        }
    }

    fn sleep_then(&mut self, step: Step, until: Duration) -> Action<HeldLock> {
        self.phase = Phase::Ready(step);
        Action::SleepUntil(until)
    }

    fn finish(&mut self, result: Result<HeldLock, Error>) -> Action<HeldLock> {
        self.phase = Phase::Finished;
        self.waiting_for_holder = false;
        Action::Done(result)
    }

    /// Give up with `err`, first removing any lock of ours that may exist.
    fn fail(&mut self, err: Error, now: Now) -> Action<HeldLock> {
        if self.pending_error.is_some() {
            // Already cleaning up: the first reason stands.
            let first = self.pending_error.take().unwrap_or(err);
            return self.finish(Err(first));
        }
        let next = match (&self.held_etag, self.uncertain) {
            (Some(etag), _) if !self.cleanup_fallback => Step::CleanupDelete {
                etag: Some(etag.clone()),
            },
            // A store that does not enforce If-Match on DELETE: read and
            // compare first, even though we know our ETag.
            (Some(_), _) | (None, true) => Step::CleanupRead,
            (None, false) => return self.finish(Err(err)),
        };
        log::info!("giving up ({err}); removing the lock we may have written");
        self.pending_error = Some(err);
        self.retry
            .start_cleanup(Deadline::after(now, Some(self.opts.cleanup_budget)));
        self.failures = FailureStreak::default();
        self.send(next, now)
    }

    /// `s3://bucket/key` of the lock object, for messages asking a human to act.
    fn lock_uri(&self) -> String {
        format!("s3://{}/{}", self.config.bucket(), self.config.lock_key())
    }

    fn end_cleanup(&mut self) -> Action<HeldLock> {
        let err = self
            .pending_error
            .take()
            .unwrap_or(Error::Misuse("cleanup without a reason"));
        self.finish(Err(err))
    }

    /// Retry `step` after a transient failure, or give up with `err`.
    fn retry_later(&mut self, step: Step, err: Error, now: Now) -> Action<HeldLock> {
        let what = self.describe(&step);
        let wake = self.retry.next_wake(&what, &err, now);
        self.retry_at(wake, step, err, now)
    }

    /// `step` of this lock, for logs.
    fn describe(&self, step: &Step) -> String {
        format!("{step:?} of {}", self.config.lock_key())
    }

    /// Retry `step` at `wake`, or give up with `err` when there is none.
    fn retry_at(
        &mut self,
        wake: Option<Duration>,
        step: Step,
        err: Error,
        now: Now,
    ) -> Action<HeldLock> {
        match wake {
            Some(until) => {
                let failures = self.failures.record(now);
                self.notices.push(Notice::Retrying {
                    problem: err.to_string(),
                    failures: failures.count,
                    failing_for: failures.failing_for,
                    next_try_in: until.saturating_sub(now.monotonic),
                });
                self.sleep_then(step, until)
            }
            None if self.pending_error.is_some() => {
                log::warn!(
                    "could not confirm the removal of our lock {} before the cleanup deadline: \
                     {err}",
                    self.lock_uri()
                );
                self.end_cleanup()
            }
            None => {
                let err = match (&self.holder, self.opts.wait) {
                    (Some(h), Wait::For(_) | Wait::Forever) => Error::Timeout {
                        waited: self.waited(now),
                        holder: Some(Box::new(h.clone())),
                    },
                    _ => err,
                };
                self.fail(err, now)
            }
        }
    }

    /// What to send again after `step` failed without a clear answer. Every
    /// step is repeated as it is, except the unconditional DELETE: it is
    /// only ever sent right after a read found our ID, since by the time of a
    /// retry it may have landed and someone else may hold the lock. Read (and
    /// compare) again instead.
    fn retry_of(step: Step) -> Step {
        match step {
            Step::CleanupDelete { etag: None } => Step::CleanupRead,
            // On a store ignoring If-Match, the proof DELETE may have removed
            // our lock and someone else may hold it now: never repeat it blind.
            Step::ProbeDelete { etag } => Step::ProbeReadBack { etag },
            other => other,
        }
    }

    fn waited(&self, now: Now) -> Duration {
        now.monotonic
            .saturating_sub(self.started.unwrap_or(now.monotonic))
    }

    /// We hold the lock under `etag`. `recognised` is true when we learnt it
    /// by reading our own ID back, so the write that landed may be an earlier
    /// one: the lease then runs from the earliest uncertain write.
    fn acquired(&mut self, etag: String, recognised: bool, now: Now) -> Action<HeldLock> {
        if recognised {
            if let Some(t) = self.first_uncertain_write {
                self.last_write_sent = t;
            }
        }
        self.uncertain = false;
        self.first_uncertain_write = None;
        self.held_etag = Some(etag.clone());
        self.retry.progressed();
        self.failures = FailureStreak::default();
        self.prove_or_hold(etag, now)
    }

    /// Holding `etag`: run what is left of the proof, or return the lock.
    fn prove_or_hold(&mut self, etag: String, now: Now) -> Action<HeldLock> {
        if !self.opts.verify_conditional_writes {
            return self.done_holding(etag, false);
        }
        if !self.put_proven {
            return self.send(Step::Probe { etag }, now);
        }
        // A store known to ignore If-Match on DELETE is not asked again: the
        // proof would delete our lock once more.
        if !self.delete_probed && self.conditional_delete != ConditionalDelete::Unsupported {
            return self.send(Step::ProbeDelete { etag }, now);
        }
        self.done_holding(etag, true)
    }

    /// Learn (and remember, with a memory attached) what the store does with
    /// `DELETE If-Match`. "Unsupported" is never overturned.
    fn learn_conditional_delete(&mut self, verdict: ConditionalDelete) {
        self.delete_probed = true;
        if self.conditional_delete != ConditionalDelete::Unsupported {
            self.conditional_delete = verdict;
        }
        if self.conditional_delete == ConditionalDelete::Unsupported {
            self.cleanup_fallback = true;
        }
        if let Some(v) = &self.verdicts {
            v.record_conditional_delete(&self.config, verdict);
        }
    }

    /// The GET-compare-DELETE fallback is in use: WARNING once per store (on
    /// every use without a memory attached).
    fn log_delete_fallback(&self) {
        match &self.verdicts {
            Some(v) => {
                v.warn_delete_fallback(&self.config);
            }
            None => verdict::log_delete_fallback(&self.config, true),
        }
    }

    /// Our lock is gone (deleted by the proof DELETE, or by someone else):
    /// nothing of ours is left to hold or clean up. Start over.
    fn start_over(&mut self, now: Now) -> Action<HeldLock> {
        self.held_etag = None;
        self.uncertain = false;
        self.first_uncertain_write = None;
        self.retry.progressed();
        self.send(Step::Put, now)
    }

    fn became_uncertain(&mut self) {
        self.uncertain = true;
        self.first_uncertain_write
            .get_or_insert(self.last_write_sent);
    }

    fn done_holding(&mut self, etag: String, verified: bool) -> Action<HeldLock> {
        log::info!("acquired {} as {}", self.config.lock_key(), self.info.id);
        self.finish(Ok(HeldLock {
            info: self.info.clone(),
            etag,
            verified_conditional_writes: verified,
            lease: self.opts.lease,
            written_at: self.last_write_sent,
        }))
    }

    fn on_event(
        &mut self,
        step: Step,
        outcome: Result<http::Response<Body>, TransportFailure>,
        now: Now,
    ) -> Action<HeldLock> {
        let resp = match outcome {
            Ok(resp) => resp,
            Err(transport) => {
                // A write that certainly did not leave cannot have written a
                // lock: nothing to read back or remove for it.
                if transport.maybe_sent && matches!(step, Step::Put | Step::TakeOver { .. }) {
                    self.became_uncertain();
                }
                let what = self.describe(&step);
                let wake = self.retry.after_transport(&what, &transport, now);
                let again = Self::retry_of(step);
                return self.retry_at(wake, again, transport.into(), now);
            }
        };
        let class = classify_redacted(&resp, &self.config, &self.credentials);
        if let ResponseClass::ClockSkewed { server_time } = &class {
            if self.retry.correct_clock(*server_time, now) {
                return self.send(step, now);
            }
        }
        match step {
            Step::Put => self.on_put(class, now),
            Step::TakeOver { etag } => self.on_takeover(class, etag, now),
            Step::ReadHolder => self.on_read_holder(class, resp.into_body(), now),
            Step::Probe { etag } => self.on_probe(class, etag, now),
            Step::ProbeDelete { etag } => self.on_probe_delete(class, etag, now),
            Step::ProbeReadBack { etag } => {
                self.on_probe_read_back(class, resp.into_body(), etag, now)
            }
            Step::CleanupRead => self.on_cleanup_read(class, resp.into_body(), now),
            Step::CleanupDelete { etag } => self.on_cleanup_delete(class, etag, now),
        }
    }

    fn final_error(&self, class: ResponseClass) -> Error {
        class.into_error(self.config.bucket(), self.config.region())
    }

    fn on_put(&mut self, class: ResponseClass, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success {
                etag: Some(etag), ..
            } => self.acquired(etag, false, now),
            ResponseClass::Success { etag: None, .. } => {
                // Written, but without an ETag we cannot release conditionally:
                // read it back to learn it.
                self.became_uncertain();
                self.send(Step::ReadHolder, now)
            }
            ResponseClass::PreconditionFailed => self.send(Step::ReadHolder, now),
            ResponseClass::Conflict => {
                let err = self.final_error(ResponseClass::Conflict);
                self.retry_later(Step::Put, err, now)
            }
            ResponseClass::Transient { .. } => {
                // A 5xx may still have been applied.
                self.became_uncertain();
                let err = self.final_error(class);
                self.retry_later(Step::Put, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn holder_from(
        &self,
        body: &[u8],
        etag: Option<String>,
        last_modified: Option<String>,
    ) -> Result<LockHolder, Error> {
        let etag =
            etag.ok_or_else(|| Error::malformed("the lock object was returned without an ETag"))?;
        Ok(LockHolder {
            info: LockInfo::parse(body),
            etag,
            last_modified,
        })
    }

    fn on_read_holder(&mut self, class: ResponseClass, body: Body, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success {
                etag,
                last_modified,
            } => {
                self.vanished_in_a_row = 0;
                let holder = match self.holder_from(&body, etag, last_modified) {
                    Ok(h) => h,
                    Err(e) => return self.fail(e, now),
                };
                if holder.id() == Some(self.info.id.as_str()) {
                    log::info!(
                        "the lock already carries our ID: an earlier attempt of ours succeeded"
                    );
                    // That attempt may have been a takeover or a fresh create:
                    // hold the generation it wrote, not the one we last sent.
                    if let Ok(landed) = &holder.info {
                        self.adopt_generation(landed.lease.as_ref().map(|l| l.generation));
                    }
                    return self.acquired(holder.etag, true, now);
                }
                // Someone else's lock is in place, so no PUT of ours landed
                // (or one did and was replaced since): every uncertain write
                // so far is resolved. Forgetting the earliest one matters for
                // a lease: were a later write of ours recognised, the lease
                // would otherwise run from this long-gone one and could be
                // over the moment acquire returns.
                self.uncertain = false;
                self.first_uncertain_write = None;
                self.retry.progressed();
                self.failures = FailureStreak::default();
                self.held_by(Some(holder), now)
            }
            ResponseClass::NoSuchKey => self.vanished(now),
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Step::ReadHolder, err, now)
            }
            ResponseClass::Denied { code, message } => {
                // Allowed to PUT but not to GET (or a wrong SSE-C key): the lock
                // is held, by someone we cannot name.
                log::warn!("cannot read the lock holder ({code}: {message})");
                self.held_by(None, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    /// Our `PUT If-None-Match` got 412, yet the lock is not there. Once, it
    /// is a holder releasing between our PUT and our GET: try again at once,
    /// then after a backoff. Round after round, it is the store refusing
    /// conditional creates although no lock exists: say so instead of
    /// retrying until a deadline (or forever) with a misleading error. A
    /// deadline that has passed meanwhile still ends in a timeout.
    fn vanished(&mut self, now: Now) -> Action<HeldLock> {
        self.vanished_in_a_row += 1;
        if self.vanished_in_a_row == 1 {
            log::warn!(
                "{} answered 412 to If-None-Match on {}, yet there is no lock: a holder released \
                 meanwhile, or the store refuses conditional creates; trying again",
                self.config.endpoint_display(),
                self.config.lock_key()
            );
        }
        if self.retry.deadline.wake_for(now, Duration::ZERO).is_none() {
            let err = match self.opts.wait {
                Wait::For(_) | Wait::Forever => Error::Timeout {
                    waited: self.waited(now),
                    holder: self.holder.clone().map(Box::new),
                },
                Wait::No => self.create_refused(),
            };
            return self.fail(err, now);
        }
        match self.vanished_in_a_row {
            1 => self.send(Step::Put, now),
            n if n < MAX_VANISHED_ROUNDS => {
                let err = self.create_refused();
                self.retry_later(Step::Put, err, now)
            }
            _ => {
                let err = self.create_refused();
                self.fail(err, now)
            }
        }
    }

    fn create_refused(&self) -> Error {
        Error::ConditionalCreateRefused {
            endpoint: self.config.endpoint_display(),
            bucket: self.config.bucket().to_string(),
        }
    }

    fn held_by(&mut self, holder: Option<LockHolder>, now: Now) -> Action<HeldLock> {
        let mut new_holder = false;
        if let Some(h) = &holder {
            if self.holder.as_ref().map(|old| &old.etag) != Some(&h.etag) {
                log::info!("{} is held by {h}", self.config.lock_key());
                new_holder = true;
            }
        }
        let takeover_in = holder.as_ref().and_then(|h| self.takeover_in(h, now));
        if let (Some(h), Some(Duration::ZERO)) = (&holder, takeover_in) {
            let h = h.clone();
            return self.take_over(h, now);
        }
        self.holder = holder.or(self.holder.take());
        if self.opts.wait == Wait::No {
            let holder = self.holder.clone().map(Box::new);
            return self.fail(Error::Held { holder }, now);
        }
        let mut delay = self.wait_backoff.next_delay();
        if let Some(remaining) = takeover_in {
            // Look again right when the holder's lease would run out.
            delay = delay.min(remaining);
        }
        match self.retry.deadline.wake_for(now, delay) {
            Some(until) => {
                let action = self.sleep_then(Step::Put, until);
                self.waiting_for_holder = true;
                if let Some(h) = &self.holder {
                    self.notices.push(Notice::Waiting {
                        holder: Holder::S3(Box::new(h.clone())),
                        waited: self.waited(now),
                        next_try_in: until.saturating_sub(now.monotonic),
                        new_holder,
                    });
                }
                action
            }
            None => {
                let err = Error::Timeout {
                    waited: self.waited(now),
                    holder: self.holder.clone().map(Box::new),
                };
                self.fail(err, now)
            }
        }
    }

    /// How long until `holder` may be taken over (zero: now), or `None` when
    /// this acquisition may not take it over at all. The clock starts when we
    /// first see this exact version (ETag) of the lock; any change restarts it.
    fn takeover_in(&mut self, holder: &LockHolder, now: Now) -> Option<Duration> {
        let lease = holder.info.as_ref().ok().and_then(|i| i.lease.as_ref());
        let limit = match lease {
            Some(lease) if self.opts.takeover.expired_leases => lease.duration(),
            Some(_) => return None,
            None => self.opts.takeover.stale_without_lease?,
        };
        if let Some((refused, warned)) = &mut self.takeover_refused {
            if *refused == holder.etag {
                if !*warned {
                    *warned = true;
                    log::warn!(
                        "{} answered 412 to PUT If-Match: {refused} although the lock still has \
                         that ETag: it does not honour If-Match, so this lock cannot be taken \
                         over; waiting for its holder to release it",
                        self.config.endpoint_display()
                    );
                }
                return None;
            }
        }
        let first_seen = match &self.observed {
            Some((etag, since)) if *etag == holder.etag => *since,
            _ => {
                self.observed = Some((holder.etag.clone(), now.monotonic));
                now.monotonic
            }
        };
        Some(
            first_seen
                .saturating_add(limit)
                .saturating_sub(now.monotonic),
        )
    }

    /// Replace `holder`'s unchanged lock with ours, `PUT If-Match: <its ETag>`:
    /// of all waiters doing the same, exactly one succeeds.
    fn take_over(&mut self, holder: LockHolder, now: Now) -> Action<HeldLock> {
        let previous = holder
            .info
            .as_ref()
            .ok()
            .and_then(|i| i.lease.as_ref())
            .map_or(0, |l| l.generation);
        if let Some(lease) = self.info.lease.as_mut() {
            lease.generation = previous.saturating_add(1);
            self.body = self.info.to_json();
        }
        log::warn!(
            "{} unchanged for its whole lease or staleness age; taking over from {holder}",
            self.config.lock_key()
        );
        self.holder = Some(holder.clone());
        self.send(Step::TakeOver { etag: holder.etag }, now)
    }

    fn on_takeover(&mut self, class: ResponseClass, etag: String, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success {
                etag: Some(new_etag),
                ..
            } => {
                log::info!(
                    "took over {} (generation {})",
                    self.config.lock_key(),
                    self.generation()
                );
                self.acquired(new_etag, false, now)
            }
            ResponseClass::Success { etag: None, .. } => {
                self.became_uncertain();
                self.send(Step::ReadHolder, now)
            }
            // The holder renewed, or another waiter won: look again. Should
            // the lock still carry this very ETag, the store refused a
            // matching If-Match, and takeover of this version is given up
            // (see `takeover_in`) instead of repeated at once, forever.
            ResponseClass::PreconditionFailed => {
                self.takeover_refused = Some((etag, false));
                self.send(Step::ReadHolder, now)
            }
            // Released meanwhile: a plain acquire.
            ResponseClass::NoSuchKey => self.send(Step::Put, now),
            ResponseClass::Conflict => {
                let err = self.final_error(ResponseClass::Conflict);
                self.retry_later(Step::TakeOver { etag }, err, now)
            }
            ResponseClass::Transient { .. } => {
                self.became_uncertain();
                let err = self.final_error(class);
                self.retry_later(Step::TakeOver { etag }, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn generation(&self) -> u64 {
        self.info.lease.as_ref().map_or(0, |l| l.generation)
    }

    fn on_probe(&mut self, class: ResponseClass, etag: String, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::PreconditionFailed => {
                self.put_proven = true;
                if let Some(v) = &self.verdicts {
                    v.mark_verified(&self.config);
                }
                self.prove_or_hold(etag, now)
            }
            ResponseClass::Success { etag: new_etag, .. } => {
                log::error!(
                    "{} accepted a second If-None-Match write of an existing lock: it ignores conditional writes",
                    self.config.endpoint_display()
                );
                if let Some(new_etag) = new_etag {
                    self.held_etag = Some(new_etag);
                }
                let err = Error::ConditionalWritesUnsupported {
                    endpoint: self.config.endpoint_display(),
                    bucket: self.config.bucket().to_string(),
                };
                self.fail(err, now)
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Step::Probe { etag }, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn on_probe_delete(
        &mut self,
        class: ResponseClass,
        etag: String,
        now: Now,
    ) -> Action<HeldLock> {
        match class {
            ResponseClass::PreconditionFailed => {
                self.learn_conditional_delete(ConditionalDelete::Proven);
                self.prove_or_hold(etag, now)
            }
            ResponseClass::Success { .. } => {
                // Re-creating "our" lock now would not be holding it: anyone
                // could have taken it since. We hold nothing: acquire anew.
                log::warn!(
                    "{} (bucket {}) deleted our lock on a DELETE whose If-Match named another \
                     ETag: it ignores If-Match on DELETE, so a stale release could delete \
                     another holder's lock; releases will read, compare and delete instead. \
                     Acquiring {} again",
                    self.config.endpoint_display(),
                    self.config.bucket(),
                    self.config.lock_key()
                );
                self.learn_conditional_delete(ConditionalDelete::Unsupported);
                self.start_over(now)
            }
            ResponseClass::NotImplemented { .. } => {
                self.learn_conditional_delete(ConditionalDelete::Unsupported);
                self.log_delete_fallback();
                self.prove_or_hold(etag, now)
            }
            ResponseClass::Rejected {
                status: 400,
                ref message,
                ..
            } if message.to_ascii_lowercase().contains("if-match") => {
                self.learn_conditional_delete(ConditionalDelete::Unsupported);
                self.log_delete_fallback();
                self.prove_or_hold(etag, now)
            }
            // Gone, though not by this DELETE (it would have said 2xx):
            // force-unlocked, say. Nothing of ours to hold; the store's
            // verdict stays unknown (and is not probed again this time).
            ResponseClass::NoSuchKey => {
                self.delete_probed = true;
                log::warn!(
                    "{} vanished right after we acquired it; acquiring again",
                    self.config.lock_key()
                );
                self.start_over(now)
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                // It may have been applied: compare before anything else, and
                // clean up (if it comes to that) the same way.
                self.cleanup_fallback = true;
                let err = self.final_error(class);
                self.retry_later(Step::ProbeReadBack { etag }, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn on_probe_read_back(
        &mut self,
        class: ResponseClass,
        body: Body,
        etag: String,
        now: Now,
    ) -> Action<HeldLock> {
        match class {
            ResponseClass::Success { etag: current, .. } => {
                let ours = LockInfo::parse(&body).is_ok_and(|info| info.id == self.info.id);
                match (ours, current) {
                    // Still ours: the proof DELETE did nothing. Prove again.
                    (true, Some(current)) => {
                        self.held_etag = Some(current.clone());
                        self.send(Step::ProbeDelete { etag: current }, now)
                    }
                    (true, None) => self.fail(
                        Error::malformed("the lock object was returned without an ETag"),
                        now,
                    ),
                    (false, _) => {
                        self.delete_probed = true;
                        log::warn!(
                            "{} is no longer ours after a DELETE proof whose answer was lost; \
                             acquiring again",
                            self.config.lock_key()
                        );
                        self.start_over(now)
                    }
                }
            }
            ResponseClass::NoSuchKey => {
                self.delete_probed = true;
                log::warn!(
                    "{} is gone after a DELETE proof whose answer was lost; acquiring again",
                    self.config.lock_key()
                );
                self.start_over(now)
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Step::ProbeReadBack { etag }, err, now)
            }
            other => {
                let err = self.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn on_cleanup_read(&mut self, class: ResponseClass, body: Body, now: Now) -> Action<HeldLock> {
        match class {
            ResponseClass::Success { etag, .. } => {
                let ours = LockInfo::parse(&body).is_ok_and(|info| info.id == self.info.id);
                match (ours, etag) {
                    (true, _) if self.cleanup_fallback => {
                        self.send(Step::CleanupDelete { etag: None }, now)
                    }
                    (true, Some(etag)) => self.send(Step::CleanupDelete { etag: Some(etag) }, now),
                    // Without an ETag our lock cannot be deleted safely (an
                    // unconditional DELETE could hit a lock taken meanwhile),
                    // so it stays: whoever must remove it needs to know where.
                    (true, None) => {
                        log::warn!(
                            "our lock {} stays: the store returned it without an ETag, so it \
                             cannot be deleted conditionally; remove it by hand (its ID is {})",
                            self.lock_uri(),
                            self.info.id
                        );
                        self.end_cleanup()
                    }
                    (false, _) => self.end_cleanup(),
                }
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Step::CleanupRead, err, now)
            }
            _ => self.end_cleanup(),
        }
    }

    fn on_cleanup_delete(
        &mut self,
        class: ResponseClass,
        etag: Option<String>,
        now: Now,
    ) -> Action<HeldLock> {
        match class {
            ResponseClass::Success { .. } | ResponseClass::NoSuchKey => {
                log::info!("removed our lock {}", self.config.lock_key());
                self.held_etag = None;
                self.end_cleanup()
            }
            // Changed under us: read again and delete only if still ours.
            ResponseClass::PreconditionFailed => {
                self.held_etag = None;
                self.cleanup_chases += 1;
                if self.cleanup_chases > MAX_CLEANUP_CHASES {
                    log::warn!(
                        "{} keeps changing under our cleanup DELETE; leaving it",
                        self.config.lock_key()
                    );
                    return self.end_cleanup();
                }
                self.send(Step::CleanupRead, now)
            }
            ResponseClass::NotImplemented { .. } if etag.is_some() => {
                // No conditional DELETE on this store: Terraform's
                // GET-compare-DELETE is the best available.
                self.learn_conditional_delete(ConditionalDelete::Unsupported);
                self.log_delete_fallback();
                self.held_etag = None;
                self.send(Step::CleanupRead, now)
            }
            ResponseClass::Conflict | ResponseClass::Transient { .. } => {
                let err = self.final_error(class);
                self.retry_later(Self::retry_of(Step::CleanupDelete { etag }), err, now)
            }
            _ => self.end_cleanup(),
        }
    }
}

impl Machine for Acquire {
    type Output = HeldLock;

    fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop()
    }

    fn step(&mut self, event: Event, now: Now) -> Action<HeldLock> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        match (phase, event) {
            (Phase::Finished, _) => {
                Action::Done(Err(Error::Misuse("acquire stepped after it finished")))
            }
            (Phase::Ready(step), Event::Start) if self.started.is_none() => {
                if let Err(e) = self.opts.validate() {
                    return self.finish(Err(e));
                }
                self.started = Some(now.monotonic);
                let budget = match self.opts.wait {
                    Wait::No => {
                        self.retry.set_try_once();
                        Some(try_once_budget(self.opts.transient_budget))
                    }
                    Wait::For(d) => Some(d),
                    Wait::Forever => None,
                };
                self.retry.deadline = Deadline::after(now, budget);
                if let Some(v) = &self.verdicts {
                    self.conditional_delete = v.conditional_delete(&self.config);
                    self.cleanup_fallback =
                        self.conditional_delete == ConditionalDelete::Unsupported;
                    if !self.opts.verify_conditional_writes {
                        v.warn_trusted_without_proof(&self.config);
                    }
                }
                self.send_scheduled(step, now)
            }
            (Phase::Ready(step), Event::TimerFired) if self.started.is_some() => {
                self.send_scheduled(step, now)
            }
            (Phase::InFlight(step), Event::Response(resp)) => self.on_event(step, Ok(resp), now),
            (Phase::InFlight(step), Event::TransportFailed(e)) => self.on_event(step, Err(e), now),
            (Phase::Ready(_) | Phase::InFlight(_), Event::Cancelled) => {
                if self.pending_error.is_some() {
                    // Cancelled again during cleanup: stop now.
                    log::warn!(
                        "cleanup of {} abandoned by a second cancellation",
                        self.config.lock_key()
                    );
                    return self.end_cleanup();
                }
                self.fail(Error::Cancelled, now)
            }
            (phase, _) => {
                self.phase = phase;
                Action::Done(Err(Error::Misuse("acquire received an event out of order")))
            }
        }
    }
}
