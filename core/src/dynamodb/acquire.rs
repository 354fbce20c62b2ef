//! Acquiring the DynamoDB lock item: `PutItem` with
//! `ConditionExpression: attribute_not_exists(LockID)`.
//!
//! As the lock file's acquire does:
//! - a conditional-check failure means held: the holder is read with a
//!   strongly consistent `GetItem` and reported (an item carrying our own
//!   ID means an earlier `PutItem` of ours landed although its answer was
//!   lost: we hold the lock);
//! - waiting uses jittered backoff against a monotonic deadline; throttling,
//!   5xx and transport failures are retried with the transient backoff;
//! - whenever it gives up (error, timeout, cancellation) after a `PutItem`
//!   whose outcome it does not know, it deletes the item on the condition
//!   that its `Info` is ours: an unsure write is resolved, never guessed, and
//!   someone else's item is never removed.

use std::sync::Arc;
use std::time::Duration;

use super::config::DynamoDbTable;
use super::request;
use super::response::{classify_redacted, found_item, Class};
use crate::backoff::{Backoff, BackoffState};
use crate::error::Error;
use crate::failfast::try_once_budget;
use crate::progress::{FailureStreak, Holder, Notice, Notices};
use crate::s3::retry::Retry;
use crate::s3::{Credentials, LockHolder, LockInfo};
use crate::sansio::{Action, Deadline, Event, Machine, TransportFailure, Wait};
use crate::time::{ClockOffset, Now};

/// How an acquisition of the item waits and retries (the lock file's
/// `AcquireOptions` carry the same values; the driver passes them on).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Waiting {
    /// Whether and how long to wait for a holder.
    pub wait: Wait,
    /// Delays between attempts while someone else holds the item.
    pub wait_backoff: Backoff,
    /// Delays between retries of transient failures.
    pub retry_backoff: Backoff,
    /// With `Wait::No`, how long transient failures are still retried.
    pub transient_budget: Duration,
    /// Fresh deadline for removing an item we may have written when giving up.
    pub cleanup_budget: Duration,
    /// How long the caller already waited before this acquisition (for the
    /// lock file, when both are taken): waiting notices and a timeout report
    /// the whole wait. `wait` is what remains of it.
    pub waited_before: Duration,
}

/// After this many rounds in a row of "conditional-check failure, then no
/// item on a consistent read", the table is named as unable to lock. A
/// holder releasing between our `PutItem` and `GetItem` explains one round,
/// rarely two.
const MAX_VANISHED_ROUNDS: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Put,
    ReadHolder,
    /// Giving up: delete the item if its `Info` is ours.
    CleanupDelete,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Ready(Step),
    InFlight(Step),
    Finished,
}

/// The acquire state machine of the DynamoDB lock item. Its output is the
/// `Info` written (what a release is conditioned on).
#[derive(Debug)]
pub struct Acquire {
    table: Arc<DynamoDbTable>,
    credentials: Credentials,
    lock_id: String,
    our_id: String,
    info: String,
    waiting: Waiting,
    phase: Phase,
    started: Option<Duration>,
    retry: Retry,
    wait_backoff: BackoffState,
    holder: Option<LockHolder>,
    /// A `PutItem` of ours may have landed without us knowing.
    uncertain: bool,
    /// Rounds in a row of "the condition failed, yet no item is there".
    vanished_in_a_row: u32,
    pending_error: Option<Error>,
    notices: Notices,
    failures: FailureStreak,
}

impl Acquire {
    /// Prepare to write `info` (the same LockInfo as the lock file's, when
    /// both are taken) as the item `lock_id` (`<bucket>/<state key>`).
    pub fn new(
        table: Arc<DynamoDbTable>,
        credentials: Credentials,
        lock_id: String,
        info: &LockInfo,
        waiting: Waiting,
        jitter_seed: u64,
        clock: ClockOffset,
    ) -> Self {
        Acquire {
            table,
            credentials,
            lock_id,
            our_id: info.id.clone(),
            info: String::from_utf8_lossy(&info.to_json()).into_owned(),
            retry: Retry::new(waiting.retry_backoff, jitter_seed, clock),
            wait_backoff: BackoffState::new(waiting.wait_backoff, jitter_seed.rotate_left(29)),
            waiting,
            phase: Phase::Ready(Step::Put),
            started: None,
            holder: None,
            uncertain: false,
            vanished_in_a_row: 0,
            pending_error: None,
            notices: Notices::default(),
            failures: FailureStreak::default(),
        }
    }

    /// Replace the credentials used for the following requests.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    /// The clock correction in use (carried from the lock file's operations).
    pub fn clock_offset(&self) -> ClockOffset {
        self.retry.clock()
    }

    /// The whole wait: this acquisition's and the caller's before it.
    fn waited(&self, now: Now) -> Duration {
        let here = now
            .monotonic
            .saturating_sub(self.started.unwrap_or(now.monotonic));
        here.saturating_add(self.waiting.waited_before)
    }

    fn send(&mut self, step: Step, now: Now) -> Action<String> {
        let past = self.retry.deadline.0.is_some_and(|d| now.monotonic > d);
        if step != Step::CleanupDelete
            && past
            && self.pending_error.is_none()
            && matches!(self.waiting.wait, Wait::For(_))
        {
            let err = Error::Timeout {
                waited: self.waited(now),
                holder: self.holder.clone().map(Box::new),
            };
            return self.fail(err, now);
        }
        let t = self.retry.signing_time(now);
        let built = match step {
            Step::Put => {
                request::put_lock(&self.table, &self.credentials, &self.lock_id, &self.info, t)
            }
            Step::ReadHolder => request::get_lock(&self.table, &self.credentials, &self.lock_id, t),
            Step::CleanupDelete => {
                request::delete_lock(&self.table, &self.credentials, &self.lock_id, &self.info, t)
            }
        };
        match built {
            Ok(req) => {
                self.phase = Phase::InFlight(step);
                Action::Send(req)
            }
            Err(e) => self.fail(e, now),
        }
    }

    fn finish(&mut self, result: Result<String, Error>) -> Action<String> {
        self.phase = Phase::Finished;
        Action::Done(result)
    }

    /// Give up with `err`, first removing an item of ours that may exist.
    fn fail(&mut self, err: Error, now: Now) -> Action<String> {
        if let Some(first) = self.pending_error.take() {
            return self.finish(Err(first));
        }
        if !self.uncertain {
            return self.finish(Err(err));
        }
        log::info!(
            "giving up ({err}); removing the DynamoDB item {} we may have written",
            self.lock_id
        );
        self.pending_error = Some(err);
        self.retry
            .start_cleanup(Deadline::after(now, Some(self.waiting.cleanup_budget)));
        self.failures = FailureStreak::default();
        self.send(Step::CleanupDelete, now)
    }

    fn end_cleanup(&mut self) -> Action<String> {
        let err = self
            .pending_error
            .take()
            .unwrap_or(Error::Misuse("cleanup without a reason"));
        self.finish(Err(err))
    }

    fn retry_later(
        &mut self,
        step: Step,
        err: Error,
        wake: Option<Duration>,
        now: Now,
    ) -> Action<String> {
        match wake {
            Some(until) => {
                let failures = self.failures.record(now);
                self.notices.push(Notice::Retrying {
                    problem: err.to_string(),
                    failures: failures.count,
                    failing_for: failures.failing_for,
                    next_try_in: until.saturating_sub(now.monotonic),
                });
                self.phase = Phase::Ready(step);
                Action::SleepUntil(until)
            }
            None if self.pending_error.is_some() => {
                log::warn!(
                    "could not confirm the removal of our DynamoDB item {} in table {} before \
                     the cleanup deadline: {err}",
                    self.lock_id,
                    self.table.table()
                );
                self.end_cleanup()
            }
            None => {
                let err = match (&self.holder, self.waiting.wait) {
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

    fn on_transport(&mut self, step: Step, failure: TransportFailure, now: Now) -> Action<String> {
        if step == Step::Put && failure.maybe_sent {
            self.uncertain = true;
        }
        let what = format!("DynamoDB {step:?} of {}", self.lock_id);
        let wake = self.retry.after_transport(&what, &failure, now);
        self.retry_later(step, failure.into(), wake, now)
    }

    fn on_response(&mut self, step: Step, class: Class, now: Now) -> Action<String> {
        match (step, class) {
            (Step::Put, Class::Success(_)) => {
                log::info!("took the DynamoDB lock item {}", self.lock_id);
                let info = self.info.clone();
                self.finish(Ok(info))
            }
            (Step::Put, Class::ConditionFailed) => {
                self.retry.progressed();
                self.send(Step::ReadHolder, now)
            }
            (Step::ReadHolder, Class::Success(output)) => {
                self.retry.progressed();
                match found_item(&output) {
                    Err(e) => self.fail(e, now),
                    // Released between our PutItem and GetItem: try again
                    // now. Round after round, though, it is a table that
                    // fails the condition with no item (or hides the item
                    // from a consistent read): it cannot be locked.
                    Ok(None) => {
                        self.vanished_in_a_row += 1;
                        if self.vanished_in_a_row >= MAX_VANISHED_ROUNDS {
                            let err = Error::Rejected {
                                status: 400,
                                code: "ConditionalCheckFailedException".into(),
                                message: format!(
                                    "PutItem of {} in table {} failed its condition \
                                     attribute_not_exists(LockID) {} times in a row, yet a \
                                     consistent GetItem found no item: this table cannot \
                                     provide a lock",
                                    self.lock_id,
                                    self.table.table(),
                                    self.vanished_in_a_row
                                ),
                            };
                            return self.fail(err, now);
                        }
                        self.send(Step::Put, now)
                    }
                    Ok(Some(found)) if found.holder.id() == Some(self.our_id.as_str()) => {
                        log::info!(
                            "an earlier PutItem of ours landed: we hold {}",
                            self.lock_id
                        );
                        let info = found.info.unwrap_or_else(|| self.info.clone());
                        self.info = info.clone();
                        self.finish(Ok(info))
                    }
                    Ok(Some(found)) => {
                        self.vanished_in_a_row = 0;
                        // Someone else's item exists: a PutItem of ours that
                        // may have been in doubt did not land.
                        self.uncertain = false;
                        self.held_by(found.holder, now)
                    }
                }
            }
            (Step::CleanupDelete, Class::Success(_) | Class::ConditionFailed) => self.end_cleanup(),
            (
                step,
                Class::ClockSkewed {
                    server_time,
                    message,
                },
            ) if self.retry.correct_clock(server_time, now) => {
                log::debug!("DynamoDB: {message}; re-signing with the server's time");
                self.send(step, now)
            }
            (step, class @ Class::Transient { .. }) => {
                if step == Step::Put {
                    // A 5xx may come after the write was applied.
                    self.uncertain = true;
                }
                let err = class.into_error(&self.table);
                let what = format!("DynamoDB {step:?} of {}", self.lock_id);
                let wake = self.retry.next_wake(&what, &err, now);
                self.retry_later(step, err, wake, now)
            }
            (_, class) => {
                let err = class.into_error(&self.table);
                self.fail(err, now)
            }
        }
    }

    fn held_by(&mut self, holder: LockHolder, now: Now) -> Action<String> {
        let new_holder = self.holder.as_ref().map(|h| &h.etag) != Some(&holder.etag);
        if new_holder {
            log::info!("DynamoDB item {} is held by {holder}", self.lock_id);
        }
        self.holder = Some(holder.clone());
        if self.waiting.wait == Wait::No {
            return self.fail(
                Error::Held {
                    holder: Some(Box::new(holder)),
                },
                now,
            );
        }
        let delay = self.wait_backoff.next_delay();
        match self.retry.deadline.wake_for(now, delay) {
            Some(until) => {
                self.notices.push(Notice::Waiting {
                    holder: Holder::S3(Box::new(holder)),
                    waited: self.waited(now),
                    next_try_in: until.saturating_sub(now.monotonic),
                    new_holder,
                });
                self.phase = Phase::Ready(Step::Put);
                Action::SleepUntil(until)
            }
            None => {
                let err = Error::Timeout {
                    waited: self.waited(now),
                    holder: Some(Box::new(holder)),
                };
                self.fail(err, now)
            }
        }
    }
}

impl Machine for Acquire {
    type Output = String;

    fn step(&mut self, event: Event, now: Now) -> Action<String> {
        match (self.phase, event) {
            (Phase::Ready(step), Event::Start) if self.started.is_none() => {
                self.started = Some(now.monotonic);
                let budget = match self.waiting.wait {
                    Wait::No => {
                        self.retry.set_try_once();
                        Some(try_once_budget(self.waiting.transient_budget))
                    }
                    Wait::For(d) => Some(d),
                    Wait::Forever => None,
                };
                self.retry.deadline = Deadline::after(now, budget);
                self.send(step, now)
            }
            (Phase::Ready(step), Event::TimerFired) if self.started.is_some() => {
                self.send(step, now)
            }
            (Phase::InFlight(step), Event::Response(resp)) => {
                let class = classify_redacted(&resp, &self.credentials);
                self.on_response(step, class, now)
            }
            (Phase::InFlight(step), Event::TransportFailed(f)) => self.on_transport(step, f, now),
            (Phase::Ready(_) | Phase::InFlight(_), Event::Cancelled) => {
                if self.pending_error.is_some() {
                    log::warn!(
                        "removal of the DynamoDB item {} abandoned by a second cancellation",
                        self.lock_id
                    );
                    return self.end_cleanup();
                }
                self.fail(Error::Cancelled, now)
            }
            (Phase::Finished, _) => Action::Done(Err(Error::Misuse("stepped after Done"))),
            (_, _) => {
                self.phase = Phase::Finished;
                Action::Done(Err(Error::Misuse(
                    "unexpected event for the DynamoDB acquire",
                )))
            }
        }
    }

    fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop()
    }
}
