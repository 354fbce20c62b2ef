//! Reading the current lock without taking it.

use std::sync::Arc;
use std::time::Duration;

use super::config::{Credentials, S3LockConfig};
use super::lockinfo::{LockHolder, LockInfo};
use super::request;
use super::response::{classify_redacted, ResponseClass};
use super::retry::Retry;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::failfast::try_once_budget;
use crate::sansio::{Action, Deadline, Event, Machine};
use crate::time::{ClockOffset, Now};

/// `GET` the lock: `Some(holder)` when it is held, `None` when it is free.
#[derive(Debug)]
pub struct Status {
    config: Arc<S3LockConfig>,
    credentials: Credentials,
    retry: Retry,
    budget: Duration,
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Idle,
    InFlight,
    Sleeping,
    Finished,
}

impl Status {
    /// Prepare a status read: a try-once call (see [`crate::Wait::No`]).
    /// Transient failures are retried for up to `budget`, capped at 3
    /// seconds; a status is a look, and an unreachable store should say so
    /// at once.
    pub fn new(
        config: Arc<S3LockConfig>,
        credentials: Credentials,
        budget: Duration,
        seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Status {
            config,
            credentials,
            retry: Retry::new(Backoff::TRANSIENT, seed, clock),
            budget,
            state: State::Idle,
        }
    }

    /// The clock correction learned so far.
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    fn send(&mut self, now: Now) -> Action<Option<LockHolder>> {
        match request::get_lock(
            &self.config,
            &self.credentials,
            self.retry.signing_time(now),
        ) {
            Ok(req) => {
                self.state = State::InFlight;
                Action::Send(req)
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    fn finish(&mut self, r: Result<Option<LockHolder>, Error>) -> Action<Option<LockHolder>> {
        self.state = State::Finished;
        Action::Done(r)
    }

    fn retry_later(&mut self, err: Error, now: Now) -> Action<Option<LockHolder>> {
        let wake = self.retry.next_wake(&self.describe(), &err, now);
        self.retry_at(wake, err)
    }

    fn describe(&self) -> String {
        format!("reading {}", self.config.lock_key())
    }

    fn retry_at(&mut self, wake: Option<Duration>, err: Error) -> Action<Option<LockHolder>> {
        match wake {
            Some(t) => {
                self.state = State::Sleeping;
                Action::SleepUntil(t)
            }
            None => self.finish(Err(err)),
        }
    }
}

impl Machine for Status {
    type Output = Option<LockHolder>;

    fn step(&mut self, event: Event, now: Now) -> Action<Option<LockHolder>> {
        match (&self.state, event) {
            (State::Idle, Event::Start) => {
                self.retry.set_try_once();
                self.retry.deadline = Deadline::after(now, Some(try_once_budget(self.budget)));
                self.send(now)
            }
            (State::Sleeping, Event::TimerFired) => self.send(now),
            (State::InFlight, Event::Response(resp)) => {
                match classify_redacted(&resp, &self.config, &self.credentials) {
                    ResponseClass::Success {
                        etag: Some(etag),
                        last_modified,
                    } => self.finish(Ok(Some(LockHolder {
                        info: LockInfo::parse(resp.body()),
                        etag,
                        last_modified,
                    }))),
                    ResponseClass::Success { etag: None, .. } => self.finish(Err(
                        Error::malformed("the lock object was returned without an ETag"),
                    )),
                    ResponseClass::NoSuchKey => self.finish(Ok(None)),
                    ResponseClass::ClockSkewed { server_time }
                        if self.retry.correct_clock(server_time, now) =>
                    {
                        self.send(now)
                    }
                    class @ (ResponseClass::Conflict | ResponseClass::Transient { .. }) => {
                        let err = class.into_error(self.config.bucket(), self.config.region());
                        self.retry_later(err, now)
                    }
                    other => {
                        let err = other.into_error(self.config.bucket(), self.config.region());
                        self.finish(Err(err))
                    }
                }
            }
            (State::InFlight, Event::TransportFailed(e)) => {
                let wake = self.retry.after_transport(&self.describe(), &e, now);
                self.retry_at(wake, e.into())
            }
            (State::Idle | State::InFlight | State::Sleeping, Event::Cancelled) => {
                self.finish(Err(Error::Cancelled))
            }
            (State::Finished, _) => {
                Action::Done(Err(Error::Misuse("status stepped after it finished")))
            }
            _ => Action::Done(Err(Error::Misuse("status received an event out of order"))),
        }
    }
}
