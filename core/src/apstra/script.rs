//! A machine for operations that are a short sequence of calls with no waiting
//! of their own (release, listing, force-unlock): each step names the next
//! call or the result; login and transient retries come from `Api`.

use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::config::ApstraServer;
use super::login::{Api, ApiStep, Session};
use super::request::Call;
use super::response::Class;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{Action, Body, Deadline, Event, Machine};
use crate::time::Now;

/// What a script does after a reply.
pub(crate) enum Next<T> {
    Call(Call),
    Done(Result<T, Error>),
}

/// The calls of one operation.
pub(crate) trait Script {
    type Output;
    /// The first call.
    fn first(&mut self) -> Call;
    /// The call's final response (never a 401 or transient failure).
    fn on_reply(
        &mut self,
        api: &Api,
        class: Class,
        resp: Response<Body>,
        now: Now,
    ) -> Next<Self::Output>;
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Idle,
    Busy,
    Finished,
}

/// Runs a [`Script`] with a deadline of `budget` from the start.
#[derive(Debug)]
pub(crate) struct Scripted<S> {
    api: Api,
    script: S,
    budget: Duration,
    state: State,
}

impl<S: Script> Scripted<S> {
    pub(crate) fn new(
        server: Arc<ApstraServer>,
        session: Session,
        script: S,
        budget: Duration,
        seed: u64,
    ) -> Self {
        Scripted {
            api: Api::new(server, session, Backoff::TRANSIENT, seed, budget),
            script,
            budget,
            state: State::Idle,
        }
    }

    pub(crate) fn session(&self) -> &Session {
        self.api.session()
    }

    fn handle(&mut self, step: ApiStep, now: Now) -> Action<S::Output> {
        match step {
            ApiStep::Send(req) => Action::Send(req),
            ApiStep::Sleep(t) => Action::SleepUntil(t),
            ApiStep::Failed(e) => self.finish(Err(e)),
            // Scripts set no cutoff: their budget bounds retries only.
            ApiStep::OutOfTime => self.finish(Err(Error::Misuse("a script ran out of time"))),
            ApiStep::Reply(class, resp) => {
                match self.script.on_reply(&self.api, class, resp, now) {
                    Next::Call(call) => {
                        let step = self.api.start(call);
                        self.handle(step, now)
                    }
                    Next::Done(result) => self.finish(result),
                }
            }
        }
    }

    fn finish(&mut self, result: Result<S::Output, Error>) -> Action<S::Output> {
        self.state = State::Finished;
        Action::Done(result)
    }
}

impl<S: Script> Machine for Scripted<S> {
    type Output = S::Output;

    fn step(&mut self, event: Event, now: Now) -> Action<S::Output> {
        match (&self.state, event) {
            (State::Finished, _) => {
                Action::Done(Err(Error::Misuse("operation stepped after it finished")))
            }
            (State::Idle, Event::Start) => {
                self.state = State::Busy;
                self.api
                    .set_deadline(Deadline::after(now, Some(self.budget)));
                let call = self.script.first();
                let step = self.api.start(call);
                self.handle(step, now)
            }
            (State::Busy, Event::Response(resp)) => {
                let step = self.api.on_response(Ok(resp), now);
                self.handle(step, now)
            }
            (State::Busy, Event::TransportFailed(e)) => {
                let step = self.api.on_response(Err(e), now);
                self.handle(step, now)
            }
            (State::Busy, Event::TimerFired) => {
                let step = self.api.resume(now);
                self.handle(step, now)
            }
            (State::Idle | State::Busy, Event::Cancelled) => {
                self.api.abort();
                self.finish(Err(Error::Cancelled))
            }
            _ => Action::Done(Err(Error::Misuse(
                "operation received an event out of order",
            ))),
        }
    }
}
