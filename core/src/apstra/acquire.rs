//! Taking a blueprint mutex: create the tag `blueprint <ID> locked`.
//!
//! The SDK's algorithm, with its gaps filled:
//! 1. Read the blueprint's own lock-status: a 404 means the blueprint does
//!    not exist ([`Error::NoSuchBlueprint`]; a tag for a mistyped ID would
//!    exclude no one). Optionally (on by default, as the SDK does) wait until
//!    it is `unlocked`; a `locked` status whose `user_id` is ours counts as
//!    free.
//! 2. `POST /api/design/tags`. A 422 containing `already exists` means held:
//!    list the tags, match the label exactly, and report the holder's
//!    description, tag ID and creation time (the SDK shows an empty ID).
//! 3. If that tag carries our holder token, an earlier create of ours landed
//!    and its response was lost: we hold the mutex.
//! 4. Otherwise fail at once ([`Wait::No`]) or wait with jittered exponential
//!    backoff (not a fixed 500 ms) and try again, until the deadline.
//!
//! Whenever it gives up (error, timeout, cancellation) after a create whose
//! outcome it does not know, it lists the tags and deletes the one carrying
//! our token, so a lost response never leaks a mutex.
//!
//! A timeout ([`Wait::For`]) is kept to within one request: every sleep ends
//! before the deadline, and no request (login, lock-status, create, list or a
//! retry) starts at or after it, except the cleanup of a tag we may have
//! created. A create already in flight at the deadline is still honoured.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use serde_json::Value;

use super::config::{ApstraServer, BlueprintId};
use super::login::{Api, ApiStep, Session};
use super::request::Call;
use super::response::Class;
use super::tag::{self, compose_description, HolderToken, MutexTag};
use crate::backoff::{Backoff, BackoffState};
use crate::error::Error;
use crate::failfast::try_once_budget;
use crate::progress::{Holder, Notice, Notices};
use crate::sansio::{Action, Body, Deadline, Event, Machine, Wait};
use crate::time::Now;

/// How an acquisition behaves. [`AcquireOptions::new`] gives the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct AcquireOptions {
    /// The holder message, written as is before the holder token (expand a
    /// template with [`super::expand_message`] first; the native driver does).
    pub message: String,
    /// Whether and how long to wait for a holder to let go.
    pub wait: Wait,
    /// First wait until the blueprint's own lock-status is unlocked (or
    /// locked by our own user), as the SDK does. On by default. Off, the
    /// lock-status is still read once, to refuse an unknown blueprint
    /// ([`Error::NoSuchBlueprint`]) instead of creating a tag for it.
    pub wait_for_blueprint_unlock: bool,
    /// Delays between attempts while the mutex is held.
    pub wait_backoff: Backoff,
    /// Delays between retries of transient failures (429, 5xx, transport).
    pub retry_backoff: Backoff,
    /// How long transient failures in a row are retried (never past the wait
    /// deadline): a server that stays down ends even an endless wait. With
    /// [`Wait::No`] (try once, see there) capped at 3 seconds.
    pub transient_budget: Duration,
    /// Fresh deadline for removing a tag we may have created when we give up
    /// or are cancelled.
    pub cleanup_budget: Duration,
}

impl AcquireOptions {
    /// Defaults: wait forever, wait for the blueprint's lock-status first,
    /// 0.5 s doubling to 16 s between attempts, transient failures retried
    /// for 60 s in a row.
    pub fn new(message: impl Into<String>) -> Self {
        AcquireOptions {
            message: message.into(),
            wait: Wait::Forever,
            wait_for_blueprint_unlock: true,
            wait_backoff: Backoff::WAIT_FOR_HOLDER,
            retry_backoff: Backoff::TRANSIENT,
            transient_budget: Duration::from_secs(60),
            cleanup_budget: Duration::from_secs(10),
        }
    }
}

/// A blueprint mutex we hold: what release needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMutex {
    /// The blueprint.
    pub blueprint: BlueprintId,
    /// Our tag's ID: release deletes it.
    pub tag_id: String,
    /// `blueprint <ID> locked`.
    pub label: String,
    /// The description we wrote (message and token).
    pub description: String,
    /// Our holder token.
    pub token: HolderToken,
    /// True when the tag was recognised by its token rather than from a
    /// create response (the response was lost or carried no ID).
    pub recovered: bool,
}

/// Apstra's own blueprint lock (`GET /api/blueprints/{bp}/lock-status`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStatus {
    /// `unlocked`, `locked`, `locked_by_admin`, `locked_by_deleted_user` or
    /// `locked_by_restricted_user`.
    pub lock_status: String,
    /// The lock type, as the server reports it.
    pub lock_type: String,
    /// Who holds it.
    pub username: String,
    /// The holder's first name.
    pub first_name: String,
    /// The holder's last name.
    pub last_name: String,
    /// The holder's user ID.
    pub user_id: String,
    /// Whether the lock may be overridden.
    pub possible_override: bool,
}

impl LockStatus {
    /// Free for a caller whose user ID is `user_id`: `unlocked`, or `locked`
    /// by that very user. Every other status (including unknown ones) is held.
    pub fn is_free_for(&self, user_id: Option<&str>) -> bool {
        match self.lock_status.as_str() {
            "unlocked" => true,
            "locked" => user_id.is_some_and(|u| !u.is_empty() && u == self.user_id),
            _ => false,
        }
    }

    /// Parse a lock-status body leniently (missing fields are empty).
    pub fn parse(body: &[u8]) -> Result<LockStatus, Error> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|_| Error::malformed("the blueprint lock-status is not JSON"))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| Error::malformed("the blueprint lock-status is not a JSON object"))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let status = LockStatus {
            lock_status: s("lock_status"),
            lock_type: s("lock_type"),
            username: s("username"),
            first_name: s("first_name"),
            last_name: s("last_name"),
            user_id: s("user_id"),
            possible_override: obj
                .get("possible_override")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        if status.lock_status.is_empty() {
            return Err(Error::malformed(
                "the blueprint lock-status has no \"lock_status\"",
            ));
        }
        Ok(status)
    }
}

impl fmt::Display for LockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.lock_status)?;
        if !self.username.is_empty() {
            write!(f, " by {}", self.username)?;
        }
        let name = format!("{} {}", self.first_name, self.last_name);
        if !name.trim().is_empty() {
            write!(f, " ({})", name.trim())?;
        }
        if !self.lock_type.is_empty() {
            write!(f, ", lock type {}", self.lock_type)?;
        }
        Ok(())
    }
}

/// What keeps a blueprint mutex from being taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// The mutex tag exists: someone holds the mutex.
    Tag(MutexTag),
    /// Apstra's own blueprint lock (taken in the web UI) is held by another user.
    BlueprintLock(LockStatus),
}

impl Blocker {
    /// The holder's tag, when the mutex itself is held.
    pub fn tag(&self) -> Option<&MutexTag> {
        match self {
            Blocker::Tag(t) => Some(t),
            Blocker::BlueprintLock(_) => None,
        }
    }

    /// Changes whenever the holder changes (used to report each new holder once).
    pub fn identity(&self) -> String {
        match self {
            Blocker::Tag(t) => format!("tag:{}", t.id),
            Blocker::BlueprintLock(s) => format!("ui:{}:{}", s.lock_status, s.user_id),
        }
    }
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::Tag(t) => write!(f, "held by {t}"),
            Blocker::BlueprintLock(s) => write!(f, "Apstra's own blueprint lock is {s}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    LockStatus,
    Create,
    List,
    CleanupList,
    CleanupDelete { id: String },
}

#[derive(Clone, Debug)]
enum Phase {
    Start,
    /// The API layer is busy with this op (request in flight or retry sleep).
    Api(Op),
    /// Sleeping because the mutex is held; then start this op.
    Waiting(Op),
    Finished,
}

/// After this many "422, then the list shows no tag" rounds in a row, back off:
/// something keeps creating and deleting the tag.
const MAX_VANISHED: u32 = 3;

/// The acquire state machine.
#[derive(Debug)]
pub struct Acquire {
    api: Api,
    blueprint: BlueprintId,
    label: String,
    description: String,
    token: HolderToken,
    opts: AcquireOptions,
    phase: Phase,
    started: Option<Duration>,
    deadline: Deadline,
    wait_backoff: BackoffState,
    blocker: Option<Blocker>,
    waiting: bool,
    /// A create of ours may have landed without us knowing.
    uncertain: bool,
    vanished: u32,
    /// The server's text of the last 422 "already exists".
    last_conflict: Option<String>,
    pending_error: Option<Error>,
    /// The blocker changed since the last wait notice.
    new_blocker: bool,
    /// Progress for the caller, drained by the driver.
    notices: Notices,
}

impl Acquire {
    /// Prepare an acquisition. `session` is the login state carried from
    /// earlier operations (or [`Session::new`]); `token` must be fresh random
    /// for every acquisition; `jitter_seed` seeds the backoff.
    pub fn new(
        server: Arc<ApstraServer>,
        blueprint: BlueprintId,
        session: Session,
        opts: AcquireOptions,
        token: HolderToken,
        jitter_seed: u64,
    ) -> Self {
        let label = blueprint.label();
        let description = compose_description(&opts.message, &token);
        Acquire {
            api: Api::new(
                server,
                session,
                opts.retry_backoff,
                jitter_seed,
                opts.transient_budget,
            ),
            wait_backoff: BackoffState::new(opts.wait_backoff, jitter_seed.rotate_left(17)),
            blueprint,
            label,
            description,
            token,
            opts,
            phase: Phase::Start,
            started: None,
            deadline: Deadline(None),
            blocker: None,
            waiting: false,
            uncertain: false,
            vanished: 0,
            last_conflict: None,
            pending_error: None,
            new_blocker: false,
            notices: Notices::default(),
        }
    }

    /// The description this acquisition writes.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Our holder token.
    pub fn token(&self) -> &HolderToken {
        &self.token
    }

    /// The login state, to carry to the next operation.
    pub fn session(&self) -> &Session {
        self.api.session()
    }

    /// While the machine sleeps because the mutex is held: what holds it.
    pub fn waiting_for(&self) -> Option<&Blocker> {
        if self.waiting {
            self.blocker.as_ref()
        } else {
            None
        }
    }

    fn call_for(&self, op: &Op) -> Call {
        match op {
            Op::LockStatus => Call::LockStatus {
                blueprint: self.blueprint.as_str().to_string(),
            },
            Op::Create => Call::CreateTag {
                label: self.label.clone(),
                description: self.description.clone(),
            },
            Op::List | Op::CleanupList => Call::ListTags,
            Op::CleanupDelete { id } => Call::DeleteTag { id: id.clone() },
        }
    }

    /// Start `op` right after a reply. A timed wait starts no new attempt
    /// once its deadline has passed: it times out instead (removing a tag of
    /// ours that may exist). Cleanup is not a new attempt.
    fn begin(&mut self, op: Op, now: Now) -> Action<HeldMutex> {
        let attempt = matches!(op, Op::LockStatus | Op::Create | Op::List);
        let waiting = matches!(self.opts.wait, Wait::For(_)) && self.pending_error.is_none();
        if attempt && waiting && self.deadline.0.is_some_and(|d| now.monotonic > d) {
            let err = Error::BlueprintLockTimeout {
                blueprint: self.blueprint.to_string(),
                waited: self.waited(now),
                blocker: self.blocker.clone().map(Box::new),
            };
            return self.fail(err, now);
        }
        self.begin_scheduled(op, now)
    }

    /// Start `op` at the start or when a wait (never past the deadline) ends.
    fn begin_scheduled(&mut self, op: Op, now: Now) -> Action<HeldMutex> {
        self.waiting = false;
        let cleanup = matches!(op, Op::CleanupList | Op::CleanupDelete { .. });
        if !cleanup && self.hard_deadline() && self.deadline_passed(now) {
            return self.out_of_time(now);
        }
        let call = self.call_for(&op);
        let step = self.api.start(call);
        self.on_step(op, step, now)
    }

    fn on_step(&mut self, op: Op, step: ApiStep, now: Now) -> Action<HeldMutex> {
        match step {
            ApiStep::Send(req) => {
                self.phase = Phase::Api(op);
                Action::Send(req)
            }
            ApiStep::Sleep(until) => {
                self.phase = Phase::Api(op);
                Action::SleepUntil(until)
            }
            ApiStep::Failed(e) => self.on_failed(op, e, now),
            ApiStep::OutOfTime => match op {
                Op::CleanupList | Op::CleanupDelete { .. } => {
                    self.on_failed(op, Error::Misuse("cleanup ran out of time"), now)
                }
                _ => self.out_of_time(now),
            },
            ApiStep::Reply(class, resp) => self.on_reply(op, class, resp, now),
        }
    }

    fn finish(&mut self, result: Result<HeldMutex, Error>) -> Action<HeldMutex> {
        self.phase = Phase::Finished;
        self.waiting = false;
        Action::Done(result)
    }

    fn waited(&self, now: Now) -> Duration {
        now.monotonic
            .saturating_sub(self.started.unwrap_or(now.monotonic))
    }

    fn deadline_passed(&self, now: Now) -> bool {
        self.deadline.0.is_some_and(|d| now.monotonic >= d)
    }

    /// True when the deadline is the caller's timeout ([`Wait::For`]): then
    /// no request starts after it, whatever step the acquisition is at. With
    /// [`Wait::No`] the deadline only bounds retries of transient failures.
    fn hard_deadline(&self) -> bool {
        matches!(self.opts.wait, Wait::For(_))
    }

    /// The caller's timeout ran out between two steps: report it with the
    /// last holder seen (removing a tag of ours that may exist first).
    fn out_of_time(&mut self, now: Now) -> Action<HeldMutex> {
        let err = Error::BlueprintLockTimeout {
            blueprint: self.blueprint.to_string(),
            waited: self.waited(now),
            blocker: self.blocker.clone().map(Box::new),
        };
        self.fail(err, now)
    }

    /// Give up with `err`, first removing a tag of ours that may exist.
    fn fail(&mut self, err: Error, now: Now) -> Action<HeldMutex> {
        if let Some(first) = self.pending_error.take() {
            return self.finish(Err(first));
        }
        if !self.uncertain {
            return self.finish(Err(err));
        }
        log::info!(
            "giving up on blueprint {} ({err}); removing the tag we may have created",
            self.blueprint
        );
        self.pending_error = Some(err);
        // The cleanup runs past the caller's timeout, on a budget of its own.
        self.api.set_cutoff(Deadline(None));
        self.api
            .set_deadline(Deadline::after(now, Some(self.opts.cleanup_budget)));
        self.api.set_transient_budget(self.opts.cleanup_budget);
        // Leaving a tag behind is worse than a few more seconds, even after a
        // try-once call.
        self.api.set_try_once(false);
        self.begin(Op::CleanupList, now)
    }

    fn end_cleanup(&mut self) -> Action<HeldMutex> {
        let err = self
            .pending_error
            .take()
            .unwrap_or(Error::Misuse("cleanup without a reason"));
        self.finish(Err(err))
    }

    fn on_failed(&mut self, op: Op, err: Error, now: Now) -> Action<HeldMutex> {
        match op {
            Op::CleanupList | Op::CleanupDelete { .. } => {
                log::warn!(
                    "could not confirm the removal of our tag on blueprint {}: {err}",
                    self.blueprint
                );
                return self.end_cleanup();
            }
            Op::Create if self.api.maybe_applied() => self.uncertain = true,
            _ => {}
        }
        // Waiting for a holder and out of time (or giving up a retry that
        // would have started after the deadline): a timeout naming the
        // holder, rather than the last transient failure.
        let out_of_time = self.deadline_passed(now) || self.api.stopped_by_deadline();
        let err = match (&self.blocker, self.opts.wait) {
            (Some(b), Wait::For(_) | Wait::Forever) if out_of_time => Error::BlueprintLockTimeout {
                blueprint: self.blueprint.to_string(),
                waited: self.waited(now),
                blocker: Some(Box::new(b.clone())),
            },
            _ => err,
        };
        self.fail(err, now)
    }

    fn on_reply(
        &mut self,
        op: Op,
        class: Class,
        resp: Response<Body>,
        now: Now,
    ) -> Action<HeldMutex> {
        match op {
            Op::LockStatus => self.on_lock_status(class, resp.body(), now),
            Op::Create => self.on_create(class, resp.body(), now),
            Op::List => self.on_list(class, resp.body(), now),
            Op::CleanupList => {
                if class == Class::Success {
                    if let Ok(tags) = tag::parse_tag_list(resp.body()) {
                        let ours = tags.into_iter().find(|t| {
                            t.label == self.label
                                && tag::split_description(&t.description).1.as_ref()
                                    == Some(&self.token)
                        });
                        if let Some(t) = ours {
                            return self.begin(Op::CleanupDelete { id: t.id }, now);
                        }
                    }
                }
                self.end_cleanup()
            }
            Op::CleanupDelete { id } => {
                match class {
                    Class::Success | Class::NotFound { .. } => {
                        log::info!("removed our tag {id} on blueprint {}", self.blueprint)
                    }
                    other => log::warn!(
                        "could not remove our tag {id} on blueprint {}: {}",
                        self.blueprint,
                        self.api.final_error(other)
                    ),
                }
                self.end_cleanup()
            }
        }
    }

    fn on_lock_status(&mut self, class: Class, body: &[u8], now: Now) -> Action<HeldMutex> {
        match class {
            // Without the wait, the call only proves the blueprint exists.
            Class::Success if !self.opts.wait_for_blueprint_unlock => self.begin(Op::Create, now),
            Class::Success => match LockStatus::parse(body) {
                Ok(status) if status.is_free_for(self.api.session().user_id()) => {
                    self.begin(Op::Create, now)
                }
                Ok(status) => {
                    self.set_blocker(Blocker::BlueprintLock(status));
                    self.held(Op::LockStatus, now)
                }
                Err(e) => self.fail(e, now),
            },
            Class::NotFound { .. } => {
                let err = Error::NoSuchBlueprint {
                    url: self.api.server().url().to_string(),
                    blueprint: self.blueprint.to_string(),
                };
                self.fail(err, now)
            }
            other => {
                let err = self.api.final_error(other);
                self.fail(err, now)
            }
        }
    }

    fn on_create(&mut self, class: Class, body: &[u8], now: Now) -> Action<HeldMutex> {
        match class {
            Class::Success => {
                let id =
                    serde_json::from_slice::<Value>(body)
                        .ok()
                        .and_then(|v| match v.get("id") {
                            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                            Some(Value::Number(n)) => Some(n.to_string()),
                            _ => None,
                        });
                match id {
                    Some(id) => self.acquired(id, false),
                    None => {
                        // Created, but we need its ID: find it by our token.
                        self.uncertain = true;
                        self.begin(Op::List, now)
                    }
                }
            }
            Class::AlreadyExists { message } => {
                self.last_conflict = Some(message);
                // A create of ours whose answer was lost may be what exists
                // now: until the list tells, a tag of ours may exist, and
                // giving up (cancelled, list failed) must look for it.
                if self.api.maybe_applied() {
                    self.uncertain = true;
                }
                self.begin(Op::List, now)
            }
            other => {
                let err = self.api.final_error(other);
                self.on_failed(Op::Create, err, now)
            }
        }
    }

    fn on_list(&mut self, class: Class, body: &[u8], now: Now) -> Action<HeldMutex> {
        if class != Class::Success {
            let err = self.api.final_error(class);
            return self.on_failed(Op::List, err, now);
        }
        let tags = match tag::parse_tag_list(body) {
            Ok(t) => t,
            Err(e) => return self.fail(e, now),
        };
        let found = tags
            .into_iter()
            .filter(|t| t.label == self.label)
            .find_map(|t| MutexTag::from_raw(t, now.wall));
        match found {
            Some(t) if t.is_ours(&self.token) => {
                log::info!(
                    "the mutex tag of blueprint {} carries our token: an earlier create of ours landed",
                    self.blueprint
                );
                self.acquired(t.id, true)
            }
            Some(t) => {
                // Someone else's tag is in place, so no create of ours landed.
                self.uncertain = false;
                self.vanished = 0;
                self.set_blocker(Blocker::Tag(t));
                self.held(Op::Create, now)
            }
            None => {
                // Released between our create and our list: no tag of ours
                // exists either. Try again at once, but back off if it keeps
                // happening.
                self.uncertain = false;
                self.vanished += 1;
                if self.vanished <= MAX_VANISHED {
                    self.begin(Op::Create, now)
                } else if self.opts.wait == Wait::No {
                    let said = self.last_conflict.as_deref().unwrap_or("");
                    let err = Error::malformed(format!(
                        "the server refuses the create with 422 ({said}) but lists no tag \
                         labelled {:?}: the mutex tag keeps vanishing between create and list",
                        self.label
                    ));
                    self.fail(err, now)
                } else {
                    log::warn!(
                        "blueprint {}: the server refuses the create with 422 ({}) but lists \
                         no tag labelled {:?}; backing off",
                        self.blueprint,
                        self.last_conflict.as_deref().unwrap_or(""),
                        self.label
                    );
                    self.vanished = 0;
                    self.sleep_then(Op::Create, now)
                }
            }
        }
    }

    fn set_blocker(&mut self, blocker: Blocker) {
        if self.blocker.as_ref().map(Blocker::identity) != Some(blocker.identity()) {
            log::info!("blueprint {} is locked: {blocker}", self.blueprint);
            self.new_blocker = true;
        }
        self.blocker = Some(blocker);
    }

    /// The mutex is held: fail or wait, then start `next`.
    fn held(&mut self, next: Op, now: Now) -> Action<HeldMutex> {
        if self.opts.wait == Wait::No {
            let blocker = match self.blocker.clone() {
                Some(b) => b,
                None => return self.fail(Error::Misuse("held without a holder"), now),
            };
            let err = Error::BlueprintLocked {
                blueprint: self.blueprint.to_string(),
                blocker: Box::new(blocker),
            };
            return self.fail(err, now);
        }
        self.sleep_then(next, now)
    }

    fn sleep_then(&mut self, next: Op, now: Now) -> Action<HeldMutex> {
        let delay = self.wait_backoff.next_delay();
        match self.deadline.wake_for(now, delay) {
            Some(until) => {
                self.phase = Phase::Waiting(next);
                self.waiting = true;
                if let Some(b) = &self.blocker {
                    self.notices.push(Notice::Waiting {
                        holder: Holder::Apstra(Box::new(b.clone())),
                        waited: self.waited(now),
                        next_try_in: until.saturating_sub(now.monotonic),
                        new_holder: std::mem::take(&mut self.new_blocker),
                    });
                }
                Action::SleepUntil(until)
            }
            None => {
                let err = Error::BlueprintLockTimeout {
                    blueprint: self.blueprint.to_string(),
                    waited: self.waited(now),
                    blocker: self.blocker.clone().map(Box::new),
                };
                self.fail(err, now)
            }
        }
    }

    fn acquired(&mut self, tag_id: String, recovered: bool) -> Action<HeldMutex> {
        self.uncertain = false;
        log::info!(
            "acquired the mutex of blueprint {} (tag {tag_id})",
            self.blueprint
        );
        self.finish(Ok(HeldMutex {
            blueprint: self.blueprint.clone(),
            tag_id,
            label: self.label.clone(),
            description: self.description.clone(),
            token: self.token.clone(),
            recovered,
        }))
    }
}

impl Machine for Acquire {
    type Output = HeldMutex;

    fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop()
    }

    fn step(&mut self, event: Event, now: Now) -> Action<HeldMutex> {
        let phase = std::mem::replace(&mut self.phase, Phase::Finished);
        match (phase, event) {
            (Phase::Finished, _) => {
                Action::Done(Err(Error::Misuse("acquire stepped after it finished")))
            }
            (Phase::Start, Event::Start) => {
                self.started = Some(now.monotonic);
                let budget = match self.opts.wait {
                    Wait::No => {
                        let budget = try_once_budget(self.opts.transient_budget);
                        self.api.set_transient_budget(budget);
                        self.api.set_try_once(true);
                        Some(budget)
                    }
                    Wait::For(d) => Some(d),
                    Wait::Forever => None,
                };
                self.deadline = Deadline::after(now, budget);
                self.api.set_deadline(self.deadline);
                if self.hard_deadline() {
                    self.api.set_cutoff(self.deadline);
                }
                // Always first: a 404 there is a mistyped blueprint ID,
                // whose tag would be a mutex that excludes no one.
                self.begin_scheduled(Op::LockStatus, now)
            }
            (Phase::Api(op), Event::Response(resp)) => {
                let step = self.api.on_response(Ok(resp), now);
                self.on_step(op, step, now)
            }
            (Phase::Api(op), Event::TransportFailed(e)) => {
                let step = self.api.on_response(Err(e), now);
                self.on_step(op, step, now)
            }
            (Phase::Api(op), Event::TimerFired) => {
                let step = self.api.resume(now);
                self.on_step(op, step, now)
            }
            (Phase::Waiting(op), Event::TimerFired) => self.begin_scheduled(op, now),
            (phase @ (Phase::Start | Phase::Api(_) | Phase::Waiting(_)), Event::Cancelled) => {
                self.api.abort();
                self.waiting = false;
                if self.pending_error.is_some() {
                    log::warn!(
                        "cleanup of blueprint {} abandoned by a second cancellation",
                        self.blueprint
                    );
                    return self.end_cleanup();
                }
                if matches!(phase, Phase::Api(Op::Create)) && self.api.maybe_applied() {
                    self.uncertain = true;
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
