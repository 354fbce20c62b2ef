//! Releasing the DynamoDB lock item, force-unlocking it by ID, and reading
//! who holds it.
//!
//! Terraform reads the item, compares the ID and deletes unconditionally,
//! leaving a window in which a release that comes late removes the next
//! holder's item. Here every delete is conditioned on the exact `Info` it
//! means to remove (`#info = :info`), so that window does not exist; a
//! conditional-check failure is then read back and reported: the item is
//! gone ([`UnlockOutcome::AlreadyGone`]) or someone else's
//! ([`Error::NotOwned`], with the holder).

use std::sync::Arc;
use std::time::Duration;

use super::config::DynamoDbTable;
use super::request;
use super::response::{classify_redacted, found_item, Class};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::s3::retry::Retry;
use crate::s3::{Credentials, LockHolder, UnlockOutcome};
use crate::sansio::{Action, Deadline, Event, Machine, TransportFailure};
use crate::time::{ClockOffset, Now};

/// Rounds of "the item we read changed before our conditional delete" a
/// force-unlock follows before giving up: something keeps rewriting it.
const MAX_CHASES: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// Our own item, whose `Info` we wrote.
    Ours,
    /// Whatever item carries this lock ID.
    Force { wanted: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Read,
    /// Delete the item only if its `Info` is exactly this.
    Delete {
        info: String,
    },
}

#[derive(Clone, Debug)]
enum Phase {
    Ready(Step),
    InFlight(Step),
    Finished,
}

/// Release our item, or force-unlock an item by lock ID.
#[derive(Debug)]
pub struct Release {
    table: Arc<DynamoDbTable>,
    credentials: Credentials,
    lock_id: String,
    mode: Mode,
    phase: Phase,
    budget: Duration,
    started: bool,
    retry: Retry,
    chases: u32,
}

impl Release {
    /// Release the item `lock_id` we wrote with `info` (what our acquire
    /// returned), retrying transient failures within `budget`.
    pub fn ours(
        table: Arc<DynamoDbTable>,
        credentials: Credentials,
        lock_id: String,
        info: String,
        budget: Duration,
        jitter_seed: u64,
        clock: ClockOffset,
    ) -> Self {
        let step = Step::Delete { info };
        Self::new(
            table,
            credentials,
            lock_id,
            Mode::Ours,
            step,
            budget,
            jitter_seed,
            clock,
        )
    }

    /// Remove the item `lock_id` only if it carries the lock ID `wanted`, as
    /// `terraform force-unlock` does (conditioned on the `Info` read).
    pub fn force(
        table: Arc<DynamoDbTable>,
        credentials: Credentials,
        lock_id: String,
        wanted: &str,
        budget: Duration,
        jitter_seed: u64,
        clock: ClockOffset,
    ) -> Self {
        let mode = Mode::Force {
            wanted: wanted.to_string(),
        };
        Self::new(
            table,
            credentials,
            lock_id,
            mode,
            Step::Read,
            budget,
            jitter_seed,
            clock,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        table: Arc<DynamoDbTable>,
        credentials: Credentials,
        lock_id: String,
        mode: Mode,
        first: Step,
        budget: Duration,
        jitter_seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Release {
            table,
            credentials,
            lock_id,
            mode,
            phase: Phase::Ready(first),
            budget,
            started: false,
            retry: Retry::new(Backoff::TRANSIENT, jitter_seed, clock),
            chases: 0,
        }
    }

    /// Replace the credentials used for the following requests.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    /// The clock correction in use.
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    fn send(&mut self, step: Step, now: Now) -> Action<UnlockOutcome> {
        let t = self.retry.signing_time(now);
        let built = match &step {
            Step::Read => request::get_lock(&self.table, &self.credentials, &self.lock_id, t),
            Step::Delete { info } => {
                request::delete_lock(&self.table, &self.credentials, &self.lock_id, info, t)
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

    fn finish(&mut self, r: Result<UnlockOutcome, Error>) -> Action<UnlockOutcome> {
        self.phase = Phase::Finished;
        Action::Done(r)
    }

    fn retry(&mut self, step: Step, err: Error, wake: Option<Duration>) -> Action<UnlockOutcome> {
        match wake {
            Some(until) => {
                self.phase = Phase::Ready(step);
                Action::SleepUntil(until)
            }
            None => self.finish(Err(err)),
        }
    }

    fn on_transport(&mut self, step: Step, f: TransportFailure, now: Now) -> Action<UnlockOutcome> {
        let what = format!("DynamoDB release of {}", self.lock_id);
        let wake = self.retry.after_transport(&what, &f, now);
        self.retry(step, f.into(), wake)
    }

    fn on_response(&mut self, step: Step, class: Class, now: Now) -> Action<UnlockOutcome> {
        match (step, class) {
            (Step::Delete { .. }, Class::Success(_)) => {
                log::info!("removed the DynamoDB lock item {}", self.lock_id);
                self.finish(Ok(UnlockOutcome::Released))
            }
            // Not the item we meant (or none): read what is there, to report it.
            (Step::Delete { .. }, Class::ConditionFailed) => {
                self.retry.progressed();
                self.send(Step::Read, now)
            }
            (Step::Read, Class::Success(output)) => {
                self.retry.progressed();
                let found = match found_item(&output) {
                    Ok(f) => f,
                    Err(e) => return self.finish(Err(e)),
                };
                let Some(found) = found else {
                    return self.finish(Ok(UnlockOutcome::AlreadyGone));
                };
                match &self.mode {
                    Mode::Force { wanted } if found.holder.id() == Some(wanted.as_str()) => {
                        let Some(info) = found.info else {
                            return self.not_owned(found.holder);
                        };
                        if self.chases >= MAX_CHASES {
                            return self.finish(Err(Error::Server {
                                status: 409,
                                code: "ConditionalCheckFailedException".into(),
                                message: format!(
                                    "the DynamoDB item {} kept changing between reading and \
                                     deleting it",
                                    self.lock_id
                                ),
                            }));
                        }
                        self.chases += 1;
                        self.send(Step::Delete { info }, now)
                    }
                    _ => self.not_owned(found.holder),
                }
            }
            (step, Class::ClockSkewed { server_time, .. })
                if self.retry.correct_clock(server_time, now) =>
            {
                self.send(step, now)
            }
            (step, class @ Class::Transient { .. }) => {
                let err = class.into_error(&self.table);
                let what = format!("DynamoDB release of {}", self.lock_id);
                let wake = self.retry.next_wake(&what, &err, now);
                self.retry(step, err, wake)
            }
            (_, class) => {
                let err = class.into_error(&self.table);
                self.finish(Err(err))
            }
        }
    }

    fn not_owned(&mut self, holder: LockHolder) -> Action<UnlockOutcome> {
        log::warn!(
            "the DynamoDB lock item {} is not ours ({holder}); left alone",
            self.lock_id
        );
        self.finish(Err(Error::NotOwned {
            holder: Some(Box::new(holder)),
        }))
    }
}

impl Machine for Release {
    type Output = UnlockOutcome;

    fn step(&mut self, event: Event, now: Now) -> Action<UnlockOutcome> {
        match (self.phase.clone(), event) {
            (Phase::Ready(step), Event::Start) if !self.started => {
                self.started = true;
                self.retry.deadline = Deadline::after(now, Some(self.budget));
                self.send(step, now)
            }
            (Phase::Ready(step), Event::TimerFired) if self.started => self.send(step, now),
            (Phase::InFlight(step), Event::Response(resp)) => {
                let class = classify_redacted(&resp, &self.credentials);
                self.on_response(step, class, now)
            }
            (Phase::InFlight(step), Event::TransportFailed(f)) => self.on_transport(step, f, now),
            // A release is seen through; a driver cancelling anyway ends it.
            (Phase::Ready(_) | Phase::InFlight(_), Event::Cancelled) => {
                self.finish(Err(Error::Cancelled))
            }
            (Phase::Finished, _) => Action::Done(Err(Error::Misuse(
                "DynamoDB release stepped after it finished",
            ))),
            (_, _) => self.finish(Err(Error::Misuse(
                "DynamoDB release received an event out of order",
            ))),
        }
    }
}

/// Who holds the DynamoDB lock item now (`None`: free): one strongly
/// consistent `GetItem`, transient failures retried within the budget.
#[derive(Debug)]
pub struct Status {
    table: Arc<DynamoDbTable>,
    credentials: Credentials,
    lock_id: String,
    budget: Duration,
    retry: Retry,
    state: StatusState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusState {
    New,
    Sleeping,
    InFlight,
    Finished,
}

impl Status {
    /// Read the item `lock_id`.
    pub fn new(
        table: Arc<DynamoDbTable>,
        credentials: Credentials,
        lock_id: String,
        budget: Duration,
        jitter_seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Status {
            table,
            credentials,
            lock_id,
            budget,
            retry: Retry::new(Backoff::TRANSIENT, jitter_seed, clock),
            state: StatusState::New,
        }
    }

    /// The clock correction in use.
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    fn send(&mut self, now: Now) -> Action<Option<LockHolder>> {
        let t = self.retry.signing_time(now);
        match request::get_lock(&self.table, &self.credentials, &self.lock_id, t) {
            Ok(req) => {
                self.state = StatusState::InFlight;
                Action::Send(req)
            }
            Err(e) => self.done(Err(e)),
        }
    }

    fn done(&mut self, r: Result<Option<LockHolder>, Error>) -> Action<Option<LockHolder>> {
        self.state = StatusState::Finished;
        Action::Done(r)
    }

    fn again(&mut self, err: Error, wake: Option<Duration>) -> Action<Option<LockHolder>> {
        match wake {
            Some(until) => {
                self.state = StatusState::Sleeping;
                Action::SleepUntil(until)
            }
            None => self.done(Err(err)),
        }
    }
}

impl Machine for Status {
    type Output = Option<LockHolder>;

    fn step(&mut self, event: Event, now: Now) -> Action<Option<LockHolder>> {
        let what = format!("DynamoDB status of {}", self.lock_id);
        match (self.state, event) {
            (StatusState::New, Event::Start) => {
                self.retry.set_try_once();
                self.retry.deadline = Deadline::after(now, Some(self.budget));
                self.send(now)
            }
            (StatusState::Sleeping, Event::TimerFired) => self.send(now),
            (StatusState::InFlight, Event::Response(resp)) => {
                match classify_redacted(&resp, &self.credentials) {
                    Class::ClockSkewed { server_time, .. }
                        if self.retry.correct_clock(server_time, now) =>
                    {
                        self.send(now)
                    }
                    Class::Success(output) => {
                        let found = found_item(&output).map(|f| f.map(|f| f.holder));
                        self.done(found)
                    }
                    class @ Class::Transient { .. } => {
                        let err = class.into_error(&self.table);
                        let wake = self.retry.next_wake(&what, &err, now);
                        self.again(err, wake)
                    }
                    class => {
                        let err = class.into_error(&self.table);
                        self.done(Err(err))
                    }
                }
            }
            (StatusState::InFlight, Event::TransportFailed(f)) => {
                let wake = self.retry.after_transport(&what, &f, now);
                self.again(f.into(), wake)
            }
            (StatusState::Finished, _) => Action::Done(Err(Error::Misuse(
                "DynamoDB status stepped after it finished",
            ))),
            (_, Event::Cancelled) => self.done(Err(Error::Cancelled)),
            (_, _) => self.done(Err(Error::Misuse(
                "DynamoDB status received an event out of order",
            ))),
        }
    }
}
