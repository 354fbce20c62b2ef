//! The Apstra machines on a virtual clock, against a small in-memory server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use serde_json::{json, Value};

use super::*;
use crate::backoff::Backoff;
use crate::error::Error;
use crate::sansio::{run_virtual, Action, Body, Event, Machine, TransportFailure, Wait};
use crate::time::Now;

const PASSWORD: &str = "Sup3r-s3cret!";
const USER_ID: &str = "user-1111";
const BP: &str = "bp-1";

/// What to do with one matching request.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer this status (with `Retry-After` when given) without processing.
    Status(u16, Option<&'static str>),
    /// Lose the request: not processed, transport failure.
    DropBefore,
    /// Process it, then lose the answer.
    DropAfter,
}

#[derive(Clone, Debug)]
struct Tag {
    id: String,
    label: String,
    description: String,
    created_at: String,
}

/// An in-memory Apstra: logins, tokens, design tags, lock-status, faults.
struct Fake {
    password: String,
    aaa_login: bool,
    tokens: Vec<String>,
    logins: u32,
    next: u32,
    tags: Vec<Tag>,
    lock_status: Value,
    blueprint_exists: bool,
    /// Blueprints that exist besides `BP`.
    other_blueprints: Vec<&'static str>,
    faults: VecDeque<(Method, &'static str, Fault)>,
    /// Every call to a non-login path answers 401 (a server refusing tokens).
    refuse_tokens: bool,
    /// Echo the submitted login body in a 401 (a careless server).
    echo_login_body: bool,
    log: Vec<(Method, String, Option<u16>)>,
}

impl Fake {
    fn new() -> Self {
        Fake {
            password: PASSWORD.into(),
            aaa_login: true,
            tokens: Vec::new(),
            logins: 0,
            next: 0,
            tags: Vec::new(),
            lock_status: json!({"lock_status": "unlocked", "lock_type": "", "username": "",
                "first_name": "", "last_name": "", "user_id": "", "possible_override": false}),
            blueprint_exists: true,
            other_blueprints: Vec::new(),
            faults: VecDeque::new(),
            refuse_tokens: false,
            echo_login_body: false,
            log: Vec::new(),
        }
    }

    fn plant(&mut self, bp: &str, description: &str, created_at: &str) -> String {
        self.next += 1;
        let id = format!("planted-{}", self.next);
        self.tags.push(Tag {
            id: id.clone(),
            label: format!("blueprint {bp} locked"),
            description: description.into(),
            created_at: created_at.into(),
        });
        id
    }

    fn fault(&mut self, method: Method, path: &'static str, f: Fault) {
        self.faults.push_back((method, path, f));
    }

    fn expire_tokens(&mut self) {
        self.tokens.clear();
    }

    fn paths(&self) -> Vec<String> {
        self.log
            .iter()
            .map(|(m, p, _)| format!("{m} {p}"))
            .collect()
    }

    fn respond(
        &mut self,
        req: &Request<Body>,
        now: Now,
    ) -> Result<Response<Body>, TransportFailure> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let pos = self
            .faults
            .iter()
            .position(|(m, p, _)| *m == method && path == *p);
        let fault = pos.and_then(|i| self.faults.remove(i)).map(|(_, _, f)| f);
        match fault {
            Some(Fault::Status(status, retry_after)) => {
                self.log.push((method, path, Some(status)));
                let mut b = Response::builder().status(status);
                if let Some(ra) = retry_after {
                    b = b.header("retry-after", ra);
                }
                return Ok(b.body(br#"{"errors": "emulated fault"}"#.to_vec()).unwrap());
            }
            Some(Fault::DropBefore) => {
                self.log.push((method, path, None));
                return Err(TransportFailure::maybe_sent(
                    "connection reset (dropped before)",
                ));
            }
            _ => {}
        }
        let (status, body) = self.dispatch(req, &method, &path, now);
        self.log.push((method, path, Some(status)));
        if matches!(fault, Some(Fault::DropAfter)) {
            return Err(TransportFailure::maybe_sent(
                "connection reset (dropped after)",
            ));
        }
        Ok(Response::builder()
            .status(status)
            .body(if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            })
            .unwrap())
    }

    fn dispatch(
        &mut self,
        req: &Request<Body>,
        method: &Method,
        path: &str,
        now: Now,
    ) -> (u16, Value) {
        if path == "/api/aaa/login" || path == "/api/user/login" {
            if path == "/api/aaa/login" && !self.aaa_login {
                return (404, json!({"errors": "no such endpoint"}));
            }
            let body: Value = serde_json::from_slice(req.body()).unwrap();
            assert_eq!(body["username"], "admin");
            if body["password"] != self.password.as_str() {
                let msg = if self.echo_login_body {
                    format!("Invalid credentials for {body}")
                } else {
                    "Invalid credentials".to_string()
                };
                return (401, json!({ "errors": msg }));
            }
            self.logins += 1;
            self.next += 1;
            let token = format!("token-{}", self.next);
            self.tokens.push(token.clone());
            return (201, json!({"token": token, "id": USER_ID}));
        }
        let token = req
            .headers()
            .get("AuthToken")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            req.headers()
                .get("AuthToken")
                .is_none_or(|v| v.is_sensitive()),
            "AuthToken must be marked sensitive"
        );
        if self.refuse_tokens || !token.is_some_and(|t| self.tokens.contains(&t)) {
            return (401, json!({"errors": "invalid or expired AuthToken"}));
        }
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        match (method.as_str(), parts.as_slice()) {
            ("GET", ["api", "design", "tags"]) => {
                let items: Vec<Value> = self
                    .tags
                    .iter()
                    .map(|t| {
                        json!({"id": t.id, "label": t.label, "description": t.description,
                        "created_at": t.created_at, "last_modified_at": t.created_at})
                    })
                    .collect();
                (200, json!({ "items": items }))
            }
            ("POST", ["api", "design", "tags"]) => {
                let body: Value = serde_json::from_slice(req.body()).unwrap();
                let label = body["label"].as_str().unwrap().to_string();
                if self.tags.iter().any(|t| t.label == label) {
                    return (
                        422,
                        json!({"errors": {"label": format!("Tag with label '{label}' already exists")}}),
                    );
                }
                self.next += 1;
                let id = format!("tag-{}", self.next);
                self.tags.push(Tag {
                    id: id.clone(),
                    label,
                    description: body["description"].as_str().unwrap().to_string(),
                    created_at: humantime::format_rfc3339_micros(now.wall).to_string(),
                });
                (201, json!({ "id": id }))
            }
            ("GET", ["api", "design", "tags", id]) => {
                match self.tags.iter().find(|t| t.id == *id) {
                    Some(t) => (
                        200,
                        json!({"id": t.id, "label": t.label, "description": t.description,
                        "created_at": t.created_at}),
                    ),
                    None => (404, json!({"errors": "not found"})),
                }
            }
            ("DELETE", ["api", "design", "tags", id]) => {
                let before = self.tags.len();
                self.tags.retain(|t| t.id != *id);
                if self.tags.len() < before {
                    (204, Value::Null)
                } else {
                    (404, json!({"errors": "not found"}))
                }
            }
            ("GET", ["api", "blueprints", bp, "lock-status"]) => {
                if (*bp == BP && self.blueprint_exists) || self.other_blueprints.contains(bp) {
                    (200, self.lock_status.clone())
                } else {
                    (404, json!({"errors": "no such blueprint"}))
                }
            }
            _ => (404, json!({"errors": "no such endpoint"})),
        }
    }
}

fn server() -> Arc<ApstraServer> {
    Arc::new(
        ApstraServer::builder()
            .url("https://apstra.test")
            .username("admin")
            .password(PASSWORD)
            .build()
            .unwrap(),
    )
}

fn bp() -> BlueprintId {
    BlueprintId::new(BP).unwrap()
}

fn token(n: u8) -> HolderToken {
    HolderToken::from_random([n, 0xab, 0xcd, 0xef, 0x01, 0x23])
}

fn opts(wait: Wait) -> AcquireOptions {
    let mut o = AcquireOptions::new("locked by test at 2026-11-22 03:00:00 +0000 UTC");
    o.wait = wait;
    o
}

fn acquire(session: Session, o: AcquireOptions, t: HolderToken) -> Acquire {
    Acquire::new(server(), bp(), session, o, t, 42)
}

fn assert_no_password(e: &Error) {
    let text = format!("{e} | {e:?}");
    assert!(!text.contains(PASSWORD), "password leaked: {text}");
    assert!(!text.contains("s3cret"), "password leaked: {text}");
}

/// Drive `m`, delivering `Event::Cancelled` instead of the first action for
/// which `cancel` returns true.
fn run_cancelling<M: Machine>(
    m: &mut M,
    fake: &mut Fake,
    mut cancel: impl FnMut(&Action<M::Output>, Now) -> bool,
) -> Result<M::Output, Error> {
    let mut now = Now::virtual_origin();
    let mut event = Event::Start;
    let mut cancelled = false;
    for _ in 0..10_000 {
        let action = m.step(event, now);
        if !cancelled && !matches!(action, Action::Done(_)) && cancel(&action, now) {
            cancelled = true;
            event = Event::Cancelled;
            continue;
        }
        event = match action {
            Action::Send(req) => match fake.respond(&req, now) {
                Ok(r) => Event::Response(r),
                Err(e) => Event::TransportFailed(e),
            },
            Action::SleepUntil(t) => {
                now = now.advanced(t.saturating_sub(now.monotonic));
                Event::TimerFired
            }
            Action::Done(r) => return r,
        };
    }
    panic!("did not finish");
}

#[test]
fn first_acquire_logs_in_checks_lock_status_and_creates() {
    let mut fake = Fake::new();
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let held = r.unwrap();
    assert_eq!(
        fake.paths(),
        [
            "POST /api/aaa/login",
            "GET /api/blueprints/bp-1/lock-status",
            "POST /api/design/tags"
        ]
    );
    assert!(!held.recovered);
    assert_eq!(held.label, "blueprint bp-1 locked");
    assert_eq!(fake.tags[0].id, held.tag_id);
    assert_eq!(
        fake.tags[0].description,
        "locked by test at 2026-11-22 03:00:00 +0000 UTC [condlock:01abcdef0123]"
    );
    assert_eq!(m.session().logins(), 1);
    assert_eq!(m.session().user_id(), Some(USER_ID));
    // The login request is the only one with a body holding the password;
    // calls carry the token, never the password.
    for (_, req) in &sent[1..] {
        assert!(!String::from_utf8_lossy(req.body()).contains(PASSWORD));
    }
    // The session is carried: releasing does not log in again.
    let mut rel = Release::new(
        server(),
        m.session().clone(),
        &held,
        Duration::from_secs(5),
        1,
    );
    let (r, _) = run_virtual(&mut rel, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap(), UnlockOutcome::Released);
    assert_eq!(fake.logins, 1);
    assert!(fake.tags.is_empty());
}

#[test]
fn aaa_login_absent_falls_back_to_user_login_and_remembers_it() {
    let mut fake = Fake::new();
    fake.aaa_login = false;
    let mut o = opts(Wait::No);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o.clone(), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let held = r.unwrap();
    assert_eq!(
        fake.paths(),
        [
            "POST /api/aaa/login",
            "POST /api/user/login",
            "GET /api/blueprints/bp-1/lock-status",
            "POST /api/design/tags"
        ]
    );
    assert_eq!(m.session().login_path(), LoginPath::User);
    // A later operation that must log in again goes straight to the fallback.
    let mut session = m.session().clone();
    session.forget_token();
    fake.log.clear();
    let mut rel = Release::new(server(), session, &held, Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut rel, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap(), UnlockOutcome::Released);
    assert_eq!(
        fake.paths(),
        ["POST /api/user/login", "DELETE /api/design/tags/tag-2"]
    );
}

#[test]
fn no_login_endpoint_at_all_is_a_url_error() {
    let mut fake = Fake::new();
    fake.aaa_login = false;
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    // Both login paths 404 (e.g. a wrong path prefix).
    fake.fault(Method::POST, "/api/user/login", Fault::Status(404, None));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::InvalidConfig { field, reason } => {
            assert_eq!(field, "url");
            assert!(reason.contains("https://apstra.test"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn expired_token_triggers_one_login_and_a_retry() {
    let mut fake = Fake::new();
    // Log in once.
    let mut m = ListMutexes::all(server(), Session::new(), Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert!(r.unwrap().is_empty());
    let session = m.session().clone();
    fake.expire_tokens();
    fake.log.clear();
    let mut o = opts(Wait::No);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(session, o, token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    r.unwrap();
    assert_eq!(
        fake.paths(),
        [
            "GET /api/blueprints/bp-1/lock-status",
            "POST /api/aaa/login",
            "GET /api/blueprints/bp-1/lock-status",
            "POST /api/design/tags"
        ]
    );
    assert_eq!(fake.logins, 2);
    assert_eq!(fake.log[0].2, Some(401));
}

#[test]
fn a_second_401_for_the_same_call_is_final() {
    let mut fake = Fake::new();
    fake.refuse_tokens = true;
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err:?}");
    assert_eq!(fake.logins, 2, "{:?}", fake.paths());
    assert_no_password(&err);
}

#[test]
fn login_401_is_a_credentials_error_without_the_password() {
    let mut fake = Fake::new();
    fake.password = "the-real-one".into();
    fake.echo_login_body = true; // the server even echoes what we sent
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    match &err {
        Error::LoginRefused {
            url,
            username,
            message,
        } => {
            assert_eq!(url, "https://apstra.test");
            assert_eq!(username, "admin");
            assert!(message.contains("Invalid credentials"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_no_password(&err);
    assert_eq!(fake.log.len(), 1, "no retry of a refused login");
}

#[test]
fn try_lock_on_a_held_mutex_reports_description_id_and_creation_time() {
    let mut fake = Fake::new();
    let id = fake.plant(
        BP,
        "locked by terraform at 2026-11-22 02:00:00 +0000 UTC",
        "2026-11-22T02:00:00.000000Z",
    );
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    let tag = err
        .blocker()
        .and_then(Blocker::tag)
        .expect("a tag holder")
        .clone();
    assert_eq!(tag.id, id);
    assert_eq!(
        tag.description,
        "locked by terraform at 2026-11-22 02:00:00 +0000 UTC"
    );
    assert_eq!(
        tag.created_at.as_deref(),
        Some("2026-11-22T02:00:00.000000Z")
    );
    assert_eq!(tag.age, Some(Duration::from_secs(3600)));
    assert!(!tag.carries_token());
    let text = err.to_string();
    assert!(
        text.contains(&id) && text.contains("locked by terraform"),
        "{text}"
    );
    assert!(matches!(err, Error::BlueprintLocked { .. }));
    assert_eq!(
        fake.paths()[2..],
        ["POST /api/design/tags", "GET /api/design/tags"]
    );
}

#[test]
fn lost_create_response_is_recognised_by_our_token() {
    let mut fake = Fake::new();
    fake.fault(Method::POST, "/api/design/tags", Fault::DropAfter);
    let mut m = acquire(Session::new(), opts(Wait::No), token(7));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let held = r.unwrap();
    assert!(held.recovered);
    assert_eq!(fake.tags.len(), 1);
    assert_eq!(fake.tags[0].id, held.tag_id);
    assert_eq!(
        fake.paths()[2..],
        [
            "POST /api/design/tags",
            "POST /api/design/tags",
            "GET /api/design/tags"
        ]
    );
}

#[test]
fn a_tag_with_another_token_is_not_ours() {
    let mut fake = Fake::new();
    fake.plant(BP, "other [condlock:999999999999]", "2026-11-22T02:00:00Z");
    let mut m = acquire(Session::new(), opts(Wait::No), token(7));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    let tag = err.blocker().and_then(Blocker::tag).unwrap();
    assert_eq!(
        tag.token.as_ref().map(HolderToken::as_str),
        Some("999999999999")
    );
    assert_eq!(fake.tags.len(), 1, "someone else's tag is never deleted");
}

#[test]
fn waiting_uses_growing_jittered_delays_and_acquires_after_release() {
    let mut fake = Fake::new();
    fake.plant(BP, "held", "2026-11-22T02:00:00Z");
    let mut o = opts(Wait::Forever);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let release_at = Duration::from_secs(20);
    let mut creates = Vec::new();
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        if now.monotonic >= release_at {
            fake.tags.clear();
        }
        if req.method() == Method::POST && req.uri().path() == "/api/design/tags" {
            creates.push(now.monotonic);
        }
        fake.respond(req, now)
    });
    r.unwrap();
    let gaps: Vec<Duration> = creates.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 4, "{gaps:?}");
    // 0.5 s doubling to 16 s, each delay in [ceiling/2, ceiling].
    for (i, g) in gaps.iter().enumerate() {
        let ceiling = Backoff::WAIT_FOR_HOLDER.ceiling(i as u32);
        assert!(
            *g >= ceiling / 2 && *g <= ceiling,
            "gap {i}: {g:?} vs {ceiling:?}"
        );
    }
    assert!(gaps[3] > gaps[0], "delays grow: {gaps:?}");
    assert!(*creates.last().unwrap() >= release_at);
    assert!(*creates.last().unwrap() < release_at + Backoff::WAIT_FOR_HOLDER.max);
}

#[test]
fn on_wait_sees_the_holder_while_sleeping() {
    let mut fake = Fake::new();
    fake.plant(BP, "held by bob", "2026-11-22T02:00:00Z");
    let mut o = opts(Wait::For(Duration::from_secs(2)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let mut now = Now::virtual_origin();
    let mut event = Event::Start;
    let mut seen = None;
    let result = loop {
        match m.step(event, now) {
            Action::Send(req) => {
                event = match fake.respond(&req, now) {
                    Ok(r) => Event::Response(r),
                    Err(e) => Event::TransportFailed(e),
                }
            }
            Action::SleepUntil(t) => {
                if let Some(b) = m.waiting_for() {
                    seen = Some(b.clone());
                }
                now = now.advanced(t - now.monotonic);
                event = Event::TimerFired;
            }
            Action::Done(r) => break r,
        }
    };
    assert_eq!(
        seen.and_then(|b| b.tag().cloned()).unwrap().description,
        "held by bob"
    );
    let err = result.unwrap_err();
    match &err {
        Error::BlueprintLockTimeout {
            waited, blocker, ..
        } => {
            assert_eq!(*waited, Duration::from_secs(2));
            assert_eq!(
                blocker.as_ref().unwrap().tag().unwrap().description,
                "held by bob"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("held by bob"), "{err}");
    assert!(m.waiting_for().is_none());
}

#[test]
fn retry_after_is_honoured_on_503_and_429() {
    for status in [503, 429] {
        let mut fake = Fake::new();
        fake.fault(
            Method::POST,
            "/api/design/tags",
            Fault::Status(status, Some("7")),
        );
        // A timed wait: a try-once call does not wait 7 s (see failfast.rs).
        let mut o = opts(Wait::For(Duration::from_secs(30)));
        o.wait_for_blueprint_unlock = false;
        let mut m = acquire(Session::new(), o, token(1));
        let mut creates = Vec::new();
        let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
            if req.uri().path() == "/api/design/tags" {
                creates.push(now.monotonic);
            }
            fake.respond(req, now)
        });
        let held = r.unwrap();
        assert!(!held.recovered);
        assert_eq!(creates.len(), 2);
        let gap = creates[1] - creates[0];
        assert!(gap >= Duration::from_secs(7), "{status}: {gap:?}");
        assert!(gap <= Duration::from_secs(8), "{status}: {gap:?}");
    }
}

#[test]
fn retry_after_beyond_the_deadline_fails_at_once() {
    let mut fake = Fake::new();
    fake.fault(
        Method::POST,
        "/api/design/tags",
        Fault::Status(503, Some("30")),
    );
    let mut o = opts(Wait::For(Duration::from_secs(5)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let mut now_at_end = None;
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        now_at_end = Some(now.monotonic);
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::Server { status, .. } => assert_eq!(status, 503),
        other => panic!("{other:?}"),
    }
    // A 503 may have created the tag: we looked, found none of ours.
    assert_eq!(fake.paths().last().unwrap(), "GET /api/design/tags");
    assert_eq!(now_at_end, Some(Duration::ZERO), "no sleep");
}

#[test]
fn transient_failures_are_retried_with_backoff() {
    let mut fake = Fake::new();
    for _ in 0..3 {
        fake.fault(
            Method::GET,
            "/api/blueprints/bp-1/lock-status",
            Fault::Status(502, None),
        );
    }
    fake.fault(Method::POST, "/api/aaa/login", Fault::DropBefore);
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    r.unwrap();
    assert_eq!(fake.logins, 1);
}

#[test]
fn a_dead_server_ends_even_an_endless_wait() {
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |_, _| {
        Err(TransportFailure::maybe_sent("connection refused"))
    });
    match r.unwrap_err() {
        Error::Transport { message, .. } => assert!(message.contains("refused")),
        other => panic!("{other:?}"),
    }
    let last = sent.last().unwrap().0.monotonic;
    assert!(last <= Duration::from_secs(60), "{last:?}");
    assert!(sent.len() > 5);
}

#[test]
fn lock_status_locked_by_another_user_is_waited_for() {
    let mut fake = Fake::new();
    fake.lock_status = json!({"lock_status": "locked", "username": "bob", "user_id": "user-bob",
        "first_name": "Bob", "last_name": "B", "lock_type": "ui", "possible_override": true});
    // Try-lock: held by the UI lock.
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    match err.blocker() {
        Some(Blocker::BlueprintLock(s)) => assert_eq!(s.username, "bob"),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("bob"), "{err}");
    assert!(fake.tags.is_empty());
    // Waiting: Bob unlocks at t = 10 s.
    let mut m = acquire(
        Session::new(),
        opts(Wait::For(Duration::from_secs(60))),
        token(1),
    );
    let mut polls = 0;
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        if req.uri().path().ends_with("/lock-status") {
            polls += 1;
        }
        if now.monotonic >= Duration::from_secs(10) {
            fake.lock_status["lock_status"] = json!("unlocked");
        }
        fake.respond(req, now)
    });
    r.unwrap();
    assert!((3..=10).contains(&polls), "{polls}");
    assert_eq!(fake.tags.len(), 1);
}

#[test]
fn lock_status_locked_by_our_own_user_counts_as_free() {
    let mut fake = Fake::new();
    fake.lock_status = json!({"lock_status": "locked", "username": "admin", "user_id": USER_ID});
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    r.unwrap();
    // Other statuses are held even with our user id.
    let mut fake = Fake::new();
    fake.lock_status =
        json!({"lock_status": "locked_by_admin", "username": "admin", "user_id": USER_ID});
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert!(matches!(r.unwrap_err(), Error::BlueprintLocked { .. }));
    assert!(LockStatus::default().lock_status.is_empty());
    let free = LockStatus {
        lock_status: "unlocked".into(),
        ..LockStatus::default()
    };
    assert!(free.is_free_for(None));
}

#[test]
fn unknown_blueprint_is_reported() {
    let mut fake = Fake::new();
    fake.blueprint_exists = false;
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::NoSuchBlueprint { blueprint, url } => {
            assert_eq!(blueprint, BP);
            assert_eq!(url, "https://apstra.test");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cancelling_a_wait_leaves_nothing_behind() {
    let mut fake = Fake::new();
    fake.plant(BP, "held", "2026-11-22T02:00:00Z");
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(1));
    let r = run_cancelling(&mut m, &mut fake, |a, now| {
        matches!(a, Action::SleepUntil(_)) && now.monotonic > Duration::ZERO
    });
    assert!(matches!(r.unwrap_err(), Error::Cancelled));
    assert_eq!(fake.tags.len(), 1);
    assert_eq!(fake.tags[0].description, "held");
}

#[test]
fn cancelling_after_a_lost_create_removes_our_tag() {
    let mut fake = Fake::new();
    fake.fault(Method::POST, "/api/design/tags", Fault::DropAfter);
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(3));
    // Cancel during the retry sleep that follows the lost create.
    let r = run_cancelling(&mut m, &mut fake, |a, _| matches!(a, Action::SleepUntil(_)));
    assert!(matches!(r.unwrap_err(), Error::Cancelled));
    assert!(fake.tags.is_empty(), "our tag was removed");
    assert_eq!(
        fake.paths()[fake.log.len() - 2..],
        ["GET /api/design/tags", "DELETE /api/design/tags/tag-2"]
    );
}

#[test]
fn cancel_before_the_list_that_follows_a_lost_create_removes_our_tag() {
    // The create lands but its answer is lost; the retry gets 422 (our own
    // tag). Cancelled before the list that would recognise it: still ours to
    // remove.
    let mut fake = Fake::new();
    fake.fault(Method::POST, "/api/design/tags", Fault::DropAfter);
    let mut m = acquire(Session::new(), opts(Wait::Forever), token(3));
    let r = run_cancelling(&mut m, &mut fake, |a, _| {
        matches!(a, Action::Send(req)
            if req.method() == Method::GET && req.uri().path() == "/api/design/tags")
    });
    assert!(matches!(r.unwrap_err(), Error::Cancelled));
    assert!(fake.tags.is_empty(), "our landed tag was leaked");
}

#[test]
fn a_failed_list_after_a_lost_create_still_removes_our_tag() {
    let mut fake = Fake::new();
    fake.fault(Method::POST, "/api/design/tags", Fault::DropAfter);
    fake.fault(Method::GET, "/api/design/tags", Fault::Status(403, None));
    let mut m = acquire(Session::new(), opts(Wait::No), token(5));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert!(r.is_err(), "{r:?}");
    assert!(fake.tags.is_empty(), "our landed tag was leaked");
}

#[test]
fn giving_up_after_5xx_on_create_cleans_up_only_our_tag() {
    let mut fake = Fake::new();
    // The create lands but answers 500, then the server is down for creates.
    fake.fault(Method::POST, "/api/design/tags", Fault::DropAfter);
    for _ in 0..100 {
        fake.fault(Method::POST, "/api/design/tags", Fault::Status(500, None));
    }
    let mut o = opts(Wait::For(Duration::from_secs(3)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(4));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::Server { status: 500, .. } => {}
        other => panic!("{other:?}"),
    }
    assert!(fake.tags.is_empty());
}

#[test]
fn release_reports_already_gone_and_recognises_its_own_lost_delete() {
    let held = |id: &str| HeldMutex {
        blueprint: bp(),
        tag_id: id.into(),
        label: "blueprint bp-1 locked".into(),
        description: "x".into(),
        token: token(1),
        recovered: false,
    };
    let mut fake = Fake::new();
    let mut rel = Release::new(
        server(),
        Session::new(),
        &held("nope"),
        Duration::from_secs(5),
        1,
    );
    let (r, _) = run_virtual(&mut rel, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap(), UnlockOutcome::AlreadyGone);

    let id = fake.plant(BP, "ours", "2026-11-22T02:00:00Z");
    fake.fault(
        Method::DELETE,
        "/api/design/tags/planted-2",
        Fault::DropAfter,
    );
    let mut rel = Release::new(
        server(),
        Session::new(),
        &held(&id),
        Duration::from_secs(5),
        1,
    );
    let (r, _) = run_virtual(&mut rel, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap(), UnlockOutcome::Released);
    assert!(fake.tags.is_empty());
}

#[test]
fn listing_stale_and_force_unlock() {
    let mut fake = Fake::new();
    let old = fake.plant(
        "bp-old",
        "locked by terraform at yesterday",
        "2026-11-21T03:00:00Z",
    );
    let new_id = fake.plant(
        "bp-new",
        "fresh [condlock:0123456789ab]",
        "2026-11-22T02:59:00Z",
    );
    fake.tags.push(Tag {
        id: "not-a-mutex".into(),
        label: "blueprint bp-x locked for a reason".into(),
        description: "a normal tag".into(),
        created_at: "2020-01-01T00:00:00Z".into(),
    });
    let mut m = ListMutexes::all(server(), Session::new(), Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let all = r.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].blueprint, "bp-old");
    assert_eq!(all[0].age, Some(Duration::from_secs(86_400)));
    assert!(!all[0].carries_token());
    assert!(all[1].carries_token());
    assert_eq!(all[1].message, "fresh");
    let old_ones = stale(&all, Duration::from_secs(3600));
    assert_eq!(old_ones.len(), 1);
    assert_eq!(old_ones[0].id, old);

    // Force-unlock by blueprint deletes exactly that tag.
    let bp_old = BlueprintId::new("bp-old").unwrap();
    let mut f =
        ForceUnlock::blueprint(server(), Session::new(), &bp_old, Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut f, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    let done = r.unwrap();
    assert_eq!(done.outcome, UnlockOutcome::Released);
    assert_eq!(done.tag.unwrap().id, old);
    assert_eq!(fake.tags.len(), 2);
    // Again: nothing left.
    let mut f =
        ForceUnlock::blueprint(server(), Session::new(), &bp_old, Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut f, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(
        r.unwrap(),
        ForceUnlocked {
            outcome: UnlockOutcome::AlreadyGone,
            tag: None
        }
    );
    // Status of one blueprint.
    fake.other_blueprints.push("bp-new");
    let mut m = ListMutexes::blueprint(
        server(),
        Session::new(),
        &BlueprintId::new("bp-new").unwrap(),
        Duration::from_secs(5),
        1,
    );
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap().len(), 1);
    // By tag id: a non-mutex tag is refused and left alone.
    let mut f = ForceUnlock::tag(
        server(),
        Session::new(),
        "not-a-mutex",
        Duration::from_secs(5),
        1,
    )
    .unwrap();
    let (r, _) = run_virtual(&mut f, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::InvalidConfig { field, reason } => {
            assert_eq!(field, "tag_id");
            assert!(reason.contains("not a blueprint mutex"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.tags.len(), 2);
    let mut f =
        ForceUnlock::tag(server(), Session::new(), &new_id, Duration::from_secs(5), 1).unwrap();
    let (r, _) = run_virtual(&mut f, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap().outcome, UnlockOutcome::Released);
    let mut f =
        ForceUnlock::tag(server(), Session::new(), &new_id, Duration::from_secs(5), 1).unwrap();
    let (r, _) = run_virtual(&mut f, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap().outcome, UnlockOutcome::AlreadyGone);
    assert!(ForceUnlock::tag(server(), Session::new(), " ", Duration::from_secs(5), 1).is_err());
}

#[test]
fn machines_refuse_misuse() {
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let now = Now::virtual_origin();
    assert!(matches!(
        m.step(Event::TimerFired, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
    let mut fake = Fake::new();
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    let (r, _) = run_virtual(&mut m, now, |req, now| fake.respond(req, now));
    r.unwrap();
    assert!(matches!(
        m.step(Event::Start, now),
        Action::Done(Err(Error::Misuse(_)))
    ));
}

#[test]
fn no_error_or_debug_output_ever_contains_the_password() {
    let s = server();
    assert!(!format!("{s:?}").contains(PASSWORD));
    let mut fake = Fake::new();
    let mut m = acquire(Session::new(), opts(Wait::No), token(1));
    assert!(!format!("{m:?}").contains(PASSWORD), "machine Debug leaks");
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    r.unwrap();
    assert!(!format!("{m:?}").contains(PASSWORD));
    assert!(!format!("{:?}", m.session()).contains("token-"));
}

/// Drive `m` where every request takes `latency` of virtual time (answered
/// as it arrives, the answer delivered `latency` later). Returns the result,
/// each request's send time and `METHOD path`, and the time it finished.
#[allow(clippy::type_complexity)]
fn run_with_latency<M: Machine>(
    m: &mut M,
    fake: &mut Fake,
    latency: Duration,
) -> (Result<M::Output, Error>, Vec<(Duration, String)>, Duration) {
    let mut now = Now::virtual_origin();
    let mut event = Event::Start;
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        event = match m.step(event, now) {
            Action::Send(req) => {
                sent.push((
                    now.monotonic,
                    format!("{} {}", req.method(), req.uri().path()),
                ));
                let r = fake.respond(&req, now);
                now = now.advanced(latency);
                match r {
                    Ok(r) => Event::Response(r),
                    Err(e) => Event::TransportFailed(e),
                }
            }
            Action::SleepUntil(t) => {
                assert!(t >= now.monotonic, "sleep into the past");
                now = now.advanced(t - now.monotonic);
                Event::TimerFired
            }
            Action::Done(r) => return (r, sent, now.monotonic),
        };
    }
    panic!("did not finish");
}

#[test]
fn a_timed_wait_starts_no_request_after_its_deadline() {
    // Held by someone else; every request takes 200 ms; timeout 1 s. The
    // wake-up at the deadline used to start one more create (and its list),
    // overrunning the timeout by two requests.
    for seed in 0..20 {
        let mut fake = Fake::new();
        fake.plant(BP, "held", "2026-11-22T02:00:00Z");
        let timeout = Duration::from_secs(1);
        let latency = Duration::from_millis(200);
        let mut m = Acquire::new(
            server(),
            bp(),
            Session::new(),
            opts(Wait::For(timeout)),
            token(1),
            seed,
        );
        let (r, sent, ended) = run_with_latency(&mut m, &mut fake, latency);
        match r.unwrap_err() {
            Error::BlueprintLockTimeout { blocker, .. } => {
                assert_eq!(blocker.unwrap().tag().unwrap().description, "held")
            }
            other => panic!("{other:?}"),
        }
        for (at, what) in &sent {
            assert!(*at < timeout, "seed {seed}: {what} started at {at:?}");
        }
        assert!(
            ended <= timeout + latency,
            "seed {seed}: ended at {ended:?}"
        );
    }
}

#[test]
fn a_slow_login_and_lock_status_do_not_start_a_create_after_the_deadline() {
    // Login and lock-status take 600 ms each: the create would start at
    // 1.2 s, after the 1 s timeout.
    let mut fake = Fake::new();
    let mut m = acquire(
        Session::new(),
        opts(Wait::For(Duration::from_secs(1))),
        token(1),
    );
    let (r, sent, ended) = run_with_latency(&mut m, &mut fake, Duration::from_millis(600));
    match r.unwrap_err() {
        Error::BlueprintLockTimeout {
            blocker, waited, ..
        } => {
            assert!(blocker.is_none());
            assert_eq!(waited, Duration::from_millis(1200));
        }
        other => panic!("{other:?}"),
    }
    let paths: Vec<&str> = sent.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "POST /api/aaa/login",
            "GET /api/blueprints/bp-1/lock-status"
        ]
    );
    assert_eq!(ended, Duration::from_millis(1200));
    assert!(fake.tags.is_empty());
    // The login is kept for the next operation.
    assert!(m.session().is_logged_in());
}

#[test]
fn transient_retries_never_sleep_to_the_deadline_and_send_again() {
    let mut fake = Fake::new();
    for _ in 0..100 {
        fake.fault(Method::POST, "/api/design/tags", Fault::Status(502, None));
    }
    let timeout = Duration::from_secs(1);
    let mut o = opts(Wait::For(timeout));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::Server { status: 502, .. } => {}
        other => panic!("{other:?}"),
    }
    let creates: Vec<Duration> = sent
        .iter()
        .filter(|(_, req)| req.method() == Method::POST && req.uri().path() == "/api/design/tags")
        .map(|(now, _)| now.monotonic)
        .collect();
    assert!(creates.len() >= 3, "{creates:?}");
    for at in &creates {
        assert!(*at < timeout, "a create started at {at:?}: {creates:?}");
    }
    // A 502 may have created the tag: the cleanup looked (and found none).
    let (last_at, last) = sent.last().unwrap();
    assert_eq!(last.uri().path(), "/api/design/tags");
    assert_eq!(last.method(), Method::GET);
    assert!(last_at.monotonic < timeout);
}

#[test]
fn a_mistyped_blueprint_is_refused_even_without_the_lock_status_wait() {
    // With the lock-status wait off, a wrong ID used to create a tag
    // `blueprint <typo> locked` that excludes no one.
    for wait in [Wait::No, Wait::For(Duration::from_secs(5)), Wait::Forever] {
        let mut fake = Fake::new();
        fake.blueprint_exists = false;
        let mut o = opts(wait);
        o.wait_for_blueprint_unlock = false;
        let mut m = acquire(Session::new(), o, token(1));
        let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
            fake.respond(req, now)
        });
        match r.unwrap_err() {
            Error::NoSuchBlueprint { blueprint, url } => {
                assert_eq!(blueprint, BP);
                assert_eq!(url, "https://apstra.test");
            }
            other => panic!("{wait:?}: {other:?}"),
        }
        assert!(fake.tags.is_empty(), "{wait:?}: a tag was created");
        assert!(!fake.paths().contains(&"POST /api/design/tags".to_string()));
    }
}

#[test]
fn without_the_lock_status_wait_a_locked_blueprint_is_not_waited_for() {
    // The lock-status call then only proves the blueprint exists.
    let mut fake = Fake::new();
    fake.lock_status = json!({"lock_status": "locked", "username": "bob", "user_id": "user-bob"});
    let mut o = opts(Wait::No);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    r.unwrap();
    assert_eq!(
        fake.paths(),
        [
            "POST /api/aaa/login",
            "GET /api/blueprints/bp-1/lock-status",
            "POST /api/design/tags"
        ]
    );
}

#[test]
fn the_status_of_an_unknown_blueprint_is_an_error_not_free() {
    let mut fake = Fake::new();
    let typo = BlueprintId::new("bp-typo").unwrap();
    let mut m = ListMutexes::blueprint(server(), Session::new(), &typo, Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::NoSuchBlueprint { blueprint, .. } => assert_eq!(blueprint, "bp-typo"),
        other => panic!("{other:?}"),
    }
    // A known blueprint: its mutex, or free.
    fake.plant(BP, "held", "2026-11-22T02:00:00Z");
    let mut m = ListMutexes::blueprint(server(), Session::new(), &bp(), Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap()[0].description, "held");
}

#[test]
fn a_422_that_is_not_already_exists_carries_the_servers_text() {
    let mut fake = Fake::new();
    let mut o = opts(Wait::Forever);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        if req.method() == Method::POST && req.uri().path() == "/api/design/tags" {
            return Ok(Response::builder()
                .status(422)
                .body(br#"{"errors": {"description": "Longer than maximum length 255."}}"#.to_vec())
                .unwrap());
        }
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    match &err {
        Error::Rejected {
            status, message, ..
        } => {
            assert_eq!(*status, 422);
            assert!(
                message.contains("description: Longer than maximum length 255."),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("Longer than maximum length 255."),
        "{err}"
    );
    assert!(fake.tags.is_empty());
}

/// Log records of this test binary (each test filters by a unique string).
fn capture_logs() {
    crate::test_logs::start();
}

fn logged_with(level: log::Level, needle: &str) -> usize {
    crate::test_logs::records()
        .iter()
        .filter(|(l, m)| *l == level && m.contains(needle))
        .count()
}

#[test]
fn releasing_an_already_gone_tag_leaves_the_warning_to_the_caller() {
    // The outcome says AlreadyGone; the caller (the Python binding, the
    // blocking guard) warns once. A warning here too made it twice.
    capture_logs();
    let mut fake = Fake::new();
    let id = "gone-tag-7731";
    // A 429 first: refused, not carried out, then retried.
    fake.fault(
        Method::DELETE,
        "/api/design/tags/gone-tag-7731",
        Fault::Status(429, None),
    );
    let held = HeldMutex {
        blueprint: bp(),
        tag_id: id.into(),
        label: "blueprint bp-1 locked".into(),
        description: "x".into(),
        token: token(1),
        recovered: false,
    };
    let mut rel = Release::new(server(), Session::new(), &held, Duration::from_secs(5), 1);
    let (r, _) = run_virtual(&mut rel, Now::virtual_origin(), |req, now| {
        fake.respond(req, now)
    });
    assert_eq!(r.unwrap(), UnlockOutcome::AlreadyGone, "{:?}", fake.log);
    assert_eq!(logged_with(log::Level::Warn, id), 0);
    assert_eq!(
        logged_with(log::Level::Info, id),
        1,
        "said once, not per retry"
    );
}

#[test]
fn giving_up_retries_at_the_deadline_while_held_is_a_timeout_naming_the_holder() {
    // Held by someone else, then the server fails until the timeout: the
    // caller waited for a holder, so the answer is a timeout naming it, not
    // the last 503.
    let mut fake = Fake::new();
    fake.plant(BP, "held", "2026-11-22T02:00:00Z");
    let mut o = opts(Wait::For(Duration::from_secs(1)));
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let mut creates = 0;
    let (r, sent) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        if req.method() == Method::POST && req.uri().path() == "/api/design/tags" {
            creates += 1;
            if creates > 1 {
                return Ok(Response::builder()
                    .status(503)
                    .body(br#"{"errors": "busy"}"#.to_vec())
                    .unwrap());
            }
        }
        fake.respond(req, now)
    });
    match r.unwrap_err() {
        Error::BlueprintLockTimeout { blocker, .. } => {
            assert_eq!(blocker.unwrap().tag().unwrap().description, "held")
        }
        other => panic!("{other:?}"),
    }
    assert!(creates > 1);
    for (at, req) in &sent {
        if req.method() == Method::POST {
            assert!(at.monotonic < Duration::from_secs(1), "{:?}", at.monotonic);
        }
    }
}

#[test]
fn a_422_already_exists_with_no_such_tag_in_the_list_quotes_the_server() {
    // The server says "already exists" but the global catalog has no tag
    // with our label (e.g. it refers to something else): the error must
    // carry what the server said.
    let mut fake = Fake::new();
    let mut o = opts(Wait::No);
    o.wait_for_blueprint_unlock = false;
    let mut m = acquire(Session::new(), o, token(1));
    let (r, _) = run_virtual(&mut m, Now::virtual_origin(), |req, now| {
        if req.method() == Method::POST && req.uri().path() == "/api/design/tags" {
            return Ok(Response::builder()
                .status(422)
                .body(
                    br#"{"errors": {"label": "Label already exists in blueprint scope"}}"#.to_vec(),
                )
                .unwrap());
        }
        fake.respond(req, now)
    });
    let err = r.unwrap_err();
    assert!(
        err.to_string()
            .contains("label: Label already exists in blueprint scope"),
        "{err}"
    );
}

mod failfast;
