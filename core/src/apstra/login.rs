//! Logging in, carrying the session between operations, and retrying
//! transient failures: the part every Apstra operation shares.
//!
//! [`Session`] is what a driver keeps between operations: the `AuthToken`,
//! the user ID the server gave us (the lock-status wait needs it), and which
//! login path worked. Every machine embeds an `Api`, which turns "make this
//! call" into the requests needed:
//!
//! - no token yet: `POST /api/aaa/login` first, then the call; a 404 or 405
//!   there switches to `/api/user/login` (what the Go SDK uses) for good;
//! - 401 on a call: the token expired; log in again once and retry the call.
//!   A second 401 for the same call, or a 401 at login, is final;
//! - 408, 429, 5xx and transport failures: retry with jittered exponential
//!   backoff, never sooner than `Retry-After`, until the operation's deadline
//!   or until failures in a row have lasted longer than the transient budget;
//!   the fail-fast rules (`crate::failfast`) apply (a permanent transport
//!   failure ends the call at once, a try-once call repeats a request that
//!   did not leave only once).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use serde_json::Value;

use super::config::ApstraServer;
use super::request::{self, Call, LoginPath};
use super::response::{classify, scrub, Class};
use crate::backoff::{Backoff, BackoffState};
use crate::error::Error;
use crate::failfast::{FailFast, OnTransport};
use crate::sansio::{Body, Deadline, TransportFailure};
use crate::secret::Secret;
use crate::time::Now;

/// Login state carried from one operation to the next. `Debug` never shows
/// the token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    token: Option<Secret>,
    user_id: Option<String>,
    login_path: LoginPath,
    logins: u64,
}

impl Session {
    /// A session that has not logged in yet.
    pub fn new() -> Self {
        Session::default()
    }

    /// True when a token is held (it may have expired on the server).
    pub fn is_logged_in(&self) -> bool {
        self.token.is_some()
    }

    /// The user ID the server returned at login.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The login path that works on this server (`/api/aaa/login` until it
    /// answered 404 or 405).
    pub fn login_path(&self) -> LoginPath {
        self.login_path
    }

    /// How many successful logins this session made.
    pub fn logins(&self) -> u64 {
        self.logins
    }

    /// Drop the token: the next operation logs in again.
    pub fn forget_token(&mut self) {
        self.token = None;
    }
}

/// What an operation must do after giving the API layer an event.
#[derive(Debug)]
pub(crate) enum ApiStep {
    /// Send this request.
    Send(Request<Body>),
    /// Sleep until this monotonic instant, then call [`Api::resume`].
    Sleep(Duration),
    /// The call's response (never a 401 or a transient failure), classified.
    Reply(Class, Response<Body>),
    /// The call failed for good.
    Failed(Error),
    /// A request was due at or after the cutoff (see [`Api::set_cutoff`]):
    /// none was sent. The operation decides which timeout to report.
    OutOfTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Idle,
    Login(LoginPath),
    Call,
}

/// Login and retry around one call at a time.
#[derive(Debug)]
pub(crate) struct Api {
    server: Arc<ApstraServer>,
    session: Session,
    backoff: BackoffState,
    deadline: Deadline,
    /// No request starts at or after this instant (a caller's timeout).
    cutoff: Deadline,
    transient_budget: Duration,
    streak_since: Option<Duration>,
    call: Option<Call>,
    pending: Pending,
    relogged: bool,
    maybe_applied: bool,
    /// The last call was given up because the operation's deadline (not the
    /// transient budget) left no time for another attempt.
    stopped_by_deadline: bool,
    fail_fast: FailFast,
}

impl Api {
    pub(crate) fn new(
        server: Arc<ApstraServer>,
        session: Session,
        retry: Backoff,
        seed: u64,
        transient_budget: Duration,
    ) -> Self {
        Api {
            server,
            session,
            backoff: BackoffState::new(retry, seed),
            deadline: Deadline(None),
            cutoff: Deadline(None),
            transient_budget,
            streak_since: None,
            call: None,
            pending: Pending::Idle,
            relogged: false,
            maybe_applied: false,
            stopped_by_deadline: false,
            fail_fast: FailFast::default(),
        }
    }

    pub(crate) fn server(&self) -> &ApstraServer {
        &self.server
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    pub(crate) fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    /// No request (login, call or retry) is sent at or after `cutoff`:
    /// [`ApiStep::OutOfTime`] instead. A caller's timeout sets it, so that a
    /// login finishing late does not start the call it was for; cleanup
    /// clears it.
    pub(crate) fn set_cutoff(&mut self, cutoff: Deadline) {
        self.cutoff = cutoff;
    }

    fn past_cutoff(&self, now: Now) -> bool {
        self.cutoff.0.is_some_and(|c| now.monotonic >= c)
    }

    /// Give up on what is pending because the cutoff has passed.
    fn out_of_time(&mut self) -> ApiStep {
        self.pending = Pending::Idle;
        ApiStep::OutOfTime
    }

    pub(crate) fn set_transient_budget(&mut self, budget: Duration) {
        self.transient_budget = budget;
    }

    /// Make the following calls try-once ([`crate::Wait::No`]), or not.
    pub(crate) fn set_try_once(&mut self, on: bool) {
        self.fail_fast.set_try_once(on);
    }

    /// True when an attempt of the current call failed in a way that may
    /// still have been carried out (transport failure, 5xx).
    pub(crate) fn maybe_applied(&self) -> bool {
        self.maybe_applied
    }

    /// True when the last call failed because the operation's deadline left
    /// no time for another attempt (rather than the transient budget running
    /// out): an operation waiting for a holder reports its timeout then.
    pub(crate) fn stopped_by_deadline(&self) -> bool {
        self.stopped_by_deadline
    }

    /// Begin `call` (logging in first if there is no token).
    pub(crate) fn start(&mut self, call: Call) -> ApiStep {
        self.call = Some(call);
        self.relogged = false;
        self.maybe_applied = false;
        self.stopped_by_deadline = false;
        self.streak_since = None;
        self.fail_fast.progressed();
        self.backoff.reset();
        self.send_current()
    }

    /// After a [`ApiStep::Sleep`]: send again what was due (unless the
    /// driver woke us at or after the cutoff).
    pub(crate) fn resume(&mut self, now: Now) -> ApiStep {
        if self.pending != Pending::Idle && self.past_cutoff(now) {
            return self.out_of_time();
        }
        match self.pending {
            Pending::Login(path) => self.send_login(path),
            Pending::Call => self.send_current(),
            Pending::Idle => ApiStep::Failed(Error::Misuse("resume without a pending call")),
        }
    }

    /// The operation was cancelled: nothing is pending any more.
    pub(crate) fn abort(&mut self) {
        self.pending = Pending::Idle;
    }

    /// The outcome of the request from the last [`ApiStep::Send`].
    pub(crate) fn on_response(
        &mut self,
        outcome: Result<Response<Body>, TransportFailure>,
        now: Now,
    ) -> ApiStep {
        match self.pending {
            Pending::Login(path) => self.on_login(path, outcome, now),
            Pending::Call => self.on_call(outcome, now),
            Pending::Idle => ApiStep::Failed(Error::Misuse("a response without a request")),
        }
    }

    /// The caller-facing error for a final response to `call`.
    pub(crate) fn final_error(&self, class: Class) -> Error {
        let what = self
            .call
            .as_ref()
            .map(Call::describe)
            .unwrap_or_else(|| "request".to_string());
        let reason = |status: u16| {
            http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("")
                .to_string()
        };
        match class {
            Class::Forbidden { message } => Error::AccessDenied {
                code: "Forbidden".into(),
                message: format!("{what}: {message}"),
            },
            Class::Unauthorized { message } => Error::AccessDenied {
                code: "Unauthorized".into(),
                message: format!("{what}: {message}"),
            },
            Class::NotFound { message } => Error::Rejected {
                status: 404,
                code: "Not Found".into(),
                message: format!("{what}: {message}"),
            },
            Class::MethodNotAllowed => Error::Rejected {
                status: 405,
                code: "Method Not Allowed".into(),
                message: format!("{what} is not supported by this server"),
            },
            Class::AlreadyExists { message } => Error::Rejected {
                status: 422,
                code: "Unprocessable Entity".into(),
                message: format!("{what}: {message}"),
            },
            Class::Transient {
                status, message, ..
            } => Error::Server {
                status,
                code: reason(status),
                message: format!("{what}: {message}"),
            },
            Class::Rejected { status, message } => Error::Rejected {
                status,
                code: reason(status),
                message: format!("{what}: {message}"),
            },
            Class::Success => Error::Misuse("a success is not an error"),
        }
    }

    fn send_login(&mut self, path: LoginPath) -> ApiStep {
        self.pending = Pending::Login(path);
        match request::login(&self.server, path) {
            Ok(req) => ApiStep::Send(req),
            Err(e) => ApiStep::Failed(e),
        }
    }

    fn send_current(&mut self) -> ApiStep {
        let Some(token) = self.session.token.clone() else {
            return self.send_login(self.session.login_path);
        };
        let Some(call) = &self.call else {
            return ApiStep::Failed(Error::Misuse("no call to send"));
        };
        self.pending = Pending::Call;
        match request::call(&self.server, call, &token) {
            Ok(req) => ApiStep::Send(req),
            Err(e) => ApiStep::Failed(e),
        }
    }

    fn classify(&self, resp: &Response<Body>, now: Now) -> Class {
        let pw = self.server.password();
        match classify(resp, now) {
            Class::Unauthorized { message } => Class::Unauthorized {
                message: scrub(&message, pw),
            },
            Class::Forbidden { message } => Class::Forbidden {
                message: scrub(&message, pw),
            },
            Class::NotFound { message } => Class::NotFound {
                message: scrub(&message, pw),
            },
            Class::AlreadyExists { message } => Class::AlreadyExists {
                message: scrub(&message, pw),
            },
            Class::Transient {
                status,
                message,
                retry_after,
            } => Class::Transient {
                status,
                message: scrub(&message, pw),
                retry_after,
            },
            Class::Rejected { status, message } => Class::Rejected {
                status,
                message: scrub(&message, pw),
            },
            other => other,
        }
    }

    fn progressed(&mut self) {
        self.streak_since = None;
        self.fail_fast.progressed();
        self.backoff.reset();
    }

    fn on_login(
        &mut self,
        path: LoginPath,
        outcome: Result<Response<Body>, TransportFailure>,
        now: Now,
    ) -> ApiStep {
        let resp = match outcome {
            Ok(r) => r,
            Err(e) => return self.transport_failed(e, now),
        };
        match self.classify(&resp, now) {
            Class::Success => match parse_login(resp.body()) {
                Ok((token, user_id)) => {
                    self.session.token = Some(token);
                    if user_id.is_some() {
                        self.session.user_id = user_id;
                    }
                    self.session.login_path = path;
                    self.session.logins += 1;
                    log::debug!(
                        "logged in to {} as {} ({})",
                        self.server.url(),
                        self.server.username(),
                        path.path()
                    );
                    self.progressed();
                    if self.past_cutoff(now) {
                        // Keep the token for the next operation, but a
                        // login that ended late does not start its call.
                        return self.out_of_time();
                    }
                    self.send_current()
                }
                Err(e) => ApiStep::Failed(e),
            },
            Class::NotFound { .. } | Class::MethodNotAllowed if path == LoginPath::Aaa => {
                log::info!(
                    "{} has no /api/aaa/login; using /api/user/login",
                    self.server.url()
                );
                self.session.login_path = LoginPath::User;
                if self.past_cutoff(now) {
                    return self.out_of_time();
                }
                self.send_login(LoginPath::User)
            }
            Class::NotFound { .. } | Class::MethodNotAllowed => ApiStep::Failed(Error::config(
                "url",
                format!(
                    "{} has no Apstra login endpoint (/api/aaa/login and /api/user/login are \
                     missing): check the URL and its path prefix",
                    self.server.url()
                ),
            )),
            Class::Unauthorized { message } | Class::Forbidden { message } => {
                ApiStep::Failed(Error::LoginRefused {
                    url: self.server.url().to_string(),
                    username: self.server.username().to_string(),
                    message,
                })
            }
            Class::Transient {
                status,
                message,
                retry_after,
            } => {
                let err = Error::Server {
                    status,
                    code: "login".into(),
                    message,
                };
                self.transient(err, retry_after, now)
            }
            Class::AlreadyExists { message } | Class::Rejected { message, .. } => {
                ApiStep::Failed(Error::Rejected {
                    status: resp.status().as_u16(),
                    code: "login".into(),
                    message: format!("POST {}: {message}", path.path()),
                })
            }
        }
    }

    fn on_call(&mut self, outcome: Result<Response<Body>, TransportFailure>, now: Now) -> ApiStep {
        let resp = match outcome {
            Ok(r) => r,
            Err(e) => {
                // A request that certainly did not leave changed nothing.
                self.maybe_applied |= e.maybe_sent;
                return self.transport_failed(e, now);
            }
        };
        let class = self.classify(&resp, now);
        match class {
            Class::Unauthorized { message } if !self.relogged => {
                log::info!(
                    "{} answered 401 ({message}): the token expired; logging in again",
                    self.server.url()
                );
                self.relogged = true;
                self.session.token = None;
                if self.past_cutoff(now) {
                    return self.out_of_time();
                }
                self.send_login(self.session.login_path)
            }
            Class::Unauthorized { message } => {
                self.pending = Pending::Idle;
                let err = self.final_error(Class::Unauthorized {
                    message: format!("{message} (refused again right after a fresh login)"),
                });
                ApiStep::Failed(err)
            }
            Class::Transient { retry_after, .. } => {
                self.maybe_applied |= class.maybe_applied();
                let err = self.final_error(class);
                self.transient(err, retry_after, now)
            }
            other => {
                self.progressed();
                self.pending = Pending::Idle;
                ApiStep::Reply(other, resp)
            }
        }
    }

    /// What is pending, for logs.
    fn describe(&self) -> String {
        match (self.pending, &self.call) {
            (Pending::Call, Some(call)) => call.describe(),
            _ => format!("login to {}", self.server.url()),
        }
    }

    /// Retry what is pending after a transport failure, unless the
    /// fail-fast rules end it now.
    fn transport_failed(&mut self, failure: TransportFailure, now: Now) -> ApiStep {
        match self.fail_fast.on_transport(&failure, now, self.deadline) {
            OnTransport::GiveUp => {
                self.pending = Pending::Idle;
                ApiStep::Failed(failure.into())
            }
            OnTransport::RetryAt(at) => {
                self.fail_fast.retrying(&self.describe(), &failure, now);
                ApiStep::Sleep(at)
            }
            OnTransport::Backoff => self.transient(failure.into(), None, now),
        }
    }

    /// Retry what is pending after a transient failure, or give up with `err`.
    fn transient(&mut self, err: Error, retry_after: Option<Duration>, now: Now) -> ApiStep {
        let since = *self.streak_since.get_or_insert(now.monotonic);
        let streak_end = since.saturating_add(self.transient_budget);
        let end = match self.deadline.0 {
            Some(d) => d.min(streak_end),
            None => streak_end,
        };
        // Whichever way this gives up below, it is for lack of time before
        // `end`: whether that was the operation's deadline is remembered.
        let by_deadline = self.deadline.0.is_some_and(|d| d <= streak_end);
        if now.monotonic >= end {
            self.pending = Pending::Idle;
            self.stopped_by_deadline = by_deadline;
            return ApiStep::Failed(err);
        }
        let mut delay = self.backoff.next_delay();
        if let Some(ra) = retry_after {
            if now.monotonic.saturating_add(ra) > end {
                log::warn!(
                    "the server asked to retry after {ra:?}, past the deadline; giving up: {err}"
                );
                self.pending = Pending::Idle;
                self.stopped_by_deadline = by_deadline;
                return ApiStep::Failed(err);
            }
            delay = delay.max(ra);
        }
        let wake = now.monotonic.saturating_add(delay);
        if wake >= end {
            // The retry would start at or after the deadline, where no
            // request may start: sleeping until then only delays the
            // same failure.
            self.pending = Pending::Idle;
            self.stopped_by_deadline = by_deadline;
            return ApiStep::Failed(err);
        }
        self.fail_fast.retrying(&self.describe(), &err, now);
        log::debug!("transient failure ({err}); retrying in {delay:?}");
        ApiStep::Sleep(wake)
    }
}

/// `{"token": "...", "id": "<user id>"}`.
pub(crate) fn parse_login(body: &[u8]) -> Result<(Secret, Option<String>), Error> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|_| Error::malformed("the login response is not JSON"))?;
    let token = doc
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::malformed("the login response has no \"token\""))?;
    let id = match doc.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok((Secret::new(token), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_debug_hides_the_token() {
        let mut s = Session::new();
        s.token = Some(Secret::new("very-secret-token"));
        s.user_id = Some("u1".into());
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("very-secret-token"), "{dbg}");
        assert!(s.is_logged_in());
        s.forget_token();
        assert!(!s.is_logged_in());
        assert_eq!(s.user_id(), Some("u1"));
    }

    #[test]
    fn login_bodies() {
        let (t, id) = parse_login(br#"{"token": "abc", "id": "u-1"}"#).unwrap();
        assert_eq!((t.expose(), id.as_deref()), ("abc", Some("u-1")));
        let (_, id) = parse_login(br#"{"token": "abc", "id": 42}"#).unwrap();
        assert_eq!(id.as_deref(), Some("42"));
        let (_, id) = parse_login(br#"{"token": "abc"}"#).unwrap();
        assert_eq!(id, None);
        assert!(parse_login(br#"{"token": ""}"#).is_err());
        assert!(parse_login(b"<html>").is_err());
    }
}
