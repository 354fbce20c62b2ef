//! Replays the behaviour scenarios of `tests/scenarios/*.json` through the
//! core's runtime-neutral operations (`condlock::drive`), on a virtual clock:
//! no sockets, no real time. Each request the core sends is checked against
//! the script and answered with the scripted reply; each operation's outcome
//! is checked against the scenario's expectation. The format is described in
//! `tests/scenarios/README.md`; the Python binding replays the same files
//! (`tests/python/test_scenarios.py`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use condlock::apstra::{ApstraServer, BlueprintId, HeldMutex};
use condlock::drive::apstra::{no_env, ApstraClient, ApstraMutex};
use condlock::drive::s3::{Lease, S3Lock, VerifyConditionalWrites, RELEASE_BUDGET};
use condlock::drive::TransportFailure;
use condlock::s3::{
    Credentials, HeldLock, LeaseTerms, LockHolder, LostReason, S3LockConfig, Takeover,
    UnlockOutcome,
};
use condlock::sansio::Body;
use condlock::{Cancel, Error, Io, Now, Wait};
use serde_json::{json, Value};

/// The randomness every replay runs with: all lock-ID bytes are this value,
/// so our lock ID is [`OUR_ID`] and our Apstra holder token `5a5a5a5a5a5a`.
const RANDOM_BYTE: u8 = 0x5a;
const OUR_ID: &str = "5a5a5a5a-5a5a-5a5a-5a5a-5a5a5a5a5a5a";

/// Headers whose presence decides what a request means: when a scenario
/// does not list them they must be absent.
const CONDITIONAL: [&str; 2] = ["if-match", "if-none-match"];

type Failure = String;

/// One entry of an operation's script: an exchange, or a sequence of
/// exchanges that may happen one or more times (`times: "any"` on an
/// exchange, or `{"repeat": [...]}`).
#[derive(Clone)]
struct Item {
    index: usize,
    group: Vec<Value>,
    repeats: bool,
    /// The next exchange of the group.
    pos: usize,
    /// Whole passes through the group so far.
    rounds: u32,
}

impl Item {
    fn new(index: usize, v: Value) -> Self {
        match v.get("repeat").and_then(Value::as_array) {
            Some(group) => Item {
                index,
                group: group.clone(),
                repeats: true,
                pos: 0,
                rounds: 0,
            },
            None => Item {
                index,
                repeats: v.get("times").and_then(Value::as_str) == Some("any"),
                group: vec![v],
                pos: 0,
                rounds: 0,
            },
        }
    }

    /// Everything this entry requires has happened: one whole round at
    /// least. A later round may stop part-way: the operation can end
    /// between its exchanges (a deadline passing after a 412 ends the wait
    /// without the read that would have followed).
    fn complete(&self) -> bool {
        self.repeats && self.rounds > 0
    }
}

/// A virtual clock and a scripted server.
///
/// Sleeps register their deadline and stay pending; when every task is
/// pending, the executor ([`run`]) moves the clock to the earliest deadline.
/// Requests are answered at once from the script; a request that does not
/// match records the failure and never gets an answer, and the executor then
/// stops with that failure.
struct ScriptIo {
    now: Cell<Duration>,
    timers: RefCell<Vec<Duration>>,
    exchanges: RefCell<VecDeque<Item>>,
    step: RefCell<String>,
    failure: RefCell<Option<Failure>>,
    vars: RefCell<BTreeMap<String, String>>,
    last_reply_at: Cell<Option<Duration>>,
    sent: RefCell<Vec<String>>,
}

impl ScriptIo {
    fn new() -> Self {
        let mut vars = BTreeMap::new();
        vars.insert("$OUR_ID".to_string(), OUR_ID.to_string());
        ScriptIo {
            now: Cell::new(Duration::ZERO),
            timers: RefCell::default(),
            exchanges: RefCell::default(),
            step: RefCell::default(),
            failure: RefCell::default(),
            vars: RefCell::new(vars),
            last_reply_at: Cell::new(None),
            sent: RefCell::default(),
        }
    }

    fn fail(&self, why: String) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(format!("{}: {why}", self.step.borrow()));
        }
    }

    /// Replace every bound `$NAME` in `text`.
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in self.vars.borrow().iter() {
            out = out.replace(k.as_str(), v);
        }
        out
    }

    fn substitute_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.substitute(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.substitute_value(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), self.substitute_value(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Compare an expected string (which may name a `$PLACEHOLDER`: the
    /// first occurrence binds it) with what was sent.
    fn matches_text(&self, expected: &str, actual: &str) -> bool {
        if expected.starts_with('$')
            && expected[1..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_')
            && !self.vars.borrow().contains_key(expected)
        {
            self.vars
                .borrow_mut()
                .insert(expected.to_string(), actual.to_string());
            return true;
        }
        self.substitute(expected) == actual
    }

    /// `expected` matches `actual`: strings as in [`Self::matches_text`],
    /// objects field by field (fields not named are not checked).
    fn matches_value(&self, expected: &Value, actual: &Value) -> bool {
        match (expected, actual) {
            (Value::String(w), Value::String(g)) => self.matches_text(w, g),
            (Value::Object(w), Value::Object(g)) => w
                .iter()
                .all(|(k, v)| self.matches_value(v, g.get(k).unwrap_or(&Value::Null))),
            (w, g) => w == g,
        }
    }

    fn check_request(&self, expected: &Value, req: &http::Request<Body>) -> Result<(), String> {
        let method = req.method().as_str();
        let path = req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        if let Some(m) = expected.get("method").and_then(Value::as_str) {
            if m != method {
                return Err(format!("method: expected {m}, got {method}"));
            }
        }
        if let Some(p) = expected.get("path").and_then(Value::as_str) {
            if p != path {
                return Err(format!("path: expected {p}, got {path}"));
            }
        }
        let headers = expected.get("headers").and_then(Value::as_object);
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        for name in CONDITIONAL {
            let want = headers.and_then(|h| h.get(name)).and_then(Value::as_str);
            match (want, header(name)) {
                (None, None) => {}
                (None, Some(got)) => return Err(format!("{name}: expected none, got {got:?}")),
                (Some(w), None) => return Err(format!("{name}: expected {w:?}, got none")),
                (Some(w), Some(got)) if !self.matches_text(w, got) => {
                    return Err(format!("{name}: expected {w:?}, got {got:?}"))
                }
                _ => {}
            }
        }
        for (name, want) in headers.into_iter().flatten() {
            if CONDITIONAL.contains(&name.as_str()) {
                continue;
            }
            let want = want.as_str().unwrap_or_default();
            match header(name) {
                Some(got) if self.matches_text(want, got) => {}
                got => return Err(format!("{name}: expected {want:?}, got {got:?}")),
            }
        }
        if let Some(fields) = expected.get("body").and_then(Value::as_object) {
            let body: Value = serde_json::from_slice(req.body()).map_err(|e| {
                format!(
                    "body: expected JSON, got {:?} ({e})",
                    String::from_utf8_lossy(req.body())
                )
            })?;
            for (k, want) in fields {
                let got = body.get(k).cloned().unwrap_or(Value::Null);
                if !self.matches_value(want, &got) {
                    return Err(format!("body field {k}: expected {want}, got {got}"));
                }
            }
        }
        if let Some(at_least) = expected.get("delay_at_least").and_then(Value::as_f64) {
            let since = self.now.get() - self.last_reply_at.get().unwrap_or_default();
            if since < Duration::from_secs_f64(at_least) {
                return Err(format!(
                    "sent {:.3}s after the previous reply, expected at least {at_least}s",
                    since.as_secs_f64()
                ));
            }
        }
        Ok(())
    }

    fn reply(&self, reply: &Value) -> Result<http::Response<Body>, TransportFailure> {
        match reply.get("fail").and_then(Value::as_str) {
            Some("refused") => {
                return Err(TransportFailure::not_sent("scripted: connection refused"))
            }
            Some("permanent") => {
                return Err(TransportFailure::permanent(
                    "scripted: certificate rejected",
                ))
            }
            Some(_) => {
                return Err(TransportFailure::maybe_sent(
                    "scripted: the response was lost",
                ))
            }
            None => {}
        }
        let status = reply.get("status").and_then(Value::as_u64).unwrap_or(200) as u16;
        let mut b = http::Response::builder().status(status);
        for (k, v) in reply
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            b = b.header(k.as_str(), self.substitute(v.as_str().unwrap_or_default()));
        }
        let body = match reply.get("body") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => self.substitute(s).into_bytes(),
            Some(v) => serde_json::to_vec(&self.substitute_value(v)).unwrap(),
        };
        Ok(b.body(body).unwrap())
    }

    fn describe(req: &http::Request<Body>) -> String {
        let mut d = format!(
            "{} {}",
            req.method(),
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        for name in CONDITIONAL {
            if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
                d.push_str(&format!(" {name}: {v}"));
            }
        }
        if !req.body().is_empty() {
            d.push_str(&format!(" body {}", String::from_utf8_lossy(req.body())));
        }
        d
    }
}

impl Io for &ScriptIo {
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Body>, TransportFailure>> {
        let described = ScriptIo::describe(&request);
        self.sent.borrow_mut().push(described.clone());
        if request.method() == http::Method::PUT {
            // What a GET returns when the lock read back is ours.
            self.vars.borrow_mut().insert(
                "$OUR_BODY".to_string(),
                String::from_utf8_lossy(request.body()).into_owned(),
            );
        }
        let answer = loop {
            let front = self.exchanges.borrow().front().cloned();
            let Some(item) = front else {
                self.fail(format!(
                    "unexpected request (the script has no more exchanges): {described}"
                ));
                break None;
            };
            let exchange = &item.group[item.pos];
            let expected = exchange.get("request").cloned().unwrap_or(Value::Null);
            match self.check_request(&expected, &request) {
                // A repetition that may end here: the request is for the
                // next entry.
                Err(_) if item.complete() => {
                    self.exchanges.borrow_mut().pop_front();
                }
                Err(diff) => {
                    let i = item.index;
                    self.fail(format!(
                        "exchange {i}: {diff}\n  expected {expected}\n  sent     {described}"
                    ));
                    break None;
                }
                Ok(()) => {
                    {
                        let mut q = self.exchanges.borrow_mut();
                        let front = &mut q[0];
                        front.pos += 1;
                        if front.pos == front.group.len() {
                            front.pos = 0;
                            front.rounds += 1;
                            if !front.repeats {
                                q.pop_front();
                            }
                        }
                    }
                    let reply = exchange.get("reply").cloned().unwrap_or(Value::Null);
                    if let Some(d) = reply.get("advance").and_then(Value::as_f64) {
                        self.now.set(self.now.get() + Duration::from_secs_f64(d));
                    }
                    self.last_reply_at.set(Some(self.now.get()));
                    break Some(self.reply(&reply));
                }
            }
        };
        // A mismatch is never answered: the executor stops with the failure.
        let mut answer = answer;
        std::future::poll_fn(move |_| match answer.take() {
            Some(a) => Poll::Ready(a),
            None => Poll::Pending,
        })
    }

    fn sleep_until(&self, monotonic: Duration) -> impl Future<Output = ()> {
        std::future::poll_fn(move |_| {
            if self.now.get() >= monotonic {
                Poll::Ready(())
            } else {
                self.timers.borrow_mut().push(monotonic);
                Poll::Pending
            }
        })
    }

    fn now(&self) -> Now {
        Now::virtual_origin().advanced(self.now.get())
    }

    fn fill_random(&self, buf: &mut [u8]) {
        buf.fill(RANDOM_BYTE);
    }
}

type Background<'a> = Option<Pin<Box<dyn Future<Output = ()> + 'a>>>;

/// Run `main` (and the background renewal, if any) on the virtual clock.
fn run<'a, T>(
    io: &ScriptIo,
    main: impl Future<Output = T>,
    background: &mut Background<'a>,
) -> Result<T, Failure> {
    let mut main = std::pin::pin!(main);
    let mut cx = Context::from_waker(Waker::noop());
    let mut idle_rounds = 0;
    for _ in 0..100_000 {
        io.timers.borrow_mut().clear();
        if let Poll::Ready(v) = main.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        if let Some(bg) = background.as_mut() {
            if bg.as_mut().poll(&mut cx).is_ready() {
                *background = None;
            }
        }
        if let Some(f) = io.failure.borrow().clone() {
            return Err(f);
        }
        let earliest = io.timers.borrow().iter().min().copied();
        match earliest {
            Some(t) => {
                idle_rounds = 0;
                if t > io.now.get() {
                    io.now.set(t);
                }
            }
            // Waiting on another task (a latch): give it a few rounds.
            None if idle_rounds < 3 => idle_rounds += 1,
            None => {
                return Err(format!(
                    "{}: the operation waits for something that never comes",
                    io.step.borrow()
                ))
            }
        }
    }
    Err(format!("{}: did not finish", io.step.borrow()))
}

fn holder_json(h: &LockHolder) -> Value {
    match &h.info {
        Ok(i) => {
            json!({"ID": i.id, "Who": i.who, "Operation": i.operation, "Info": i.info, "etag": h.etag})
        }
        Err(_) => json!({"etag": h.etag}),
    }
}

fn lost_kind(r: &LostReason) -> &'static str {
    match r {
        LostReason::Stolen { .. } => "stolen",
        LostReason::Gone => "gone",
        LostReason::RenewalFailed { .. } => "renewal_failed",
    }
}

fn error_json(e: &Error) -> Value {
    let mut v = json!({"error": e.code(), "message": e.to_string()});
    if let Some(h) = e.holder() {
        v["holder"] = holder_json(h);
    }
    if let Some(tag) = e.blocker().and_then(|b| b.tag()) {
        v["holder"] = json!({"id": tag.id, "description": tag.description});
    }
    if let Some(r) = e.lost_reason() {
        v["lost"] = json!(lost_kind(r));
    }
    if let Some((status, code)) = e.status_and_code() {
        v["status"] = json!(status);
        v["code"] = json!(code);
    }
    v
}

fn outcome_json(o: UnlockOutcome) -> Value {
    match o {
        UnlockOutcome::Released => json!({"ok": "released"}),
        UnlockOutcome::AlreadyGone => json!({"ok": "already_gone"}),
    }
}

/// `expected` is a subset of `actual`; `message_contains` is a substring of
/// the error message.
fn check_outcome(expected: &Value, actual: &Value) -> Result<(), String> {
    let Some(exp) = expected.as_object() else {
        return Err(format!("expect must be an object, got {expected}"));
    };
    for (k, want) in exp {
        if k == "message_contains" {
            let msg = actual.get("message").and_then(Value::as_str).unwrap_or("");
            let want = want.as_str().unwrap_or_default();
            if !msg.contains(want) {
                return Err(format!("message {msg:?} does not contain {want:?}"));
            }
            continue;
        }
        let got = actual.get(k).unwrap_or(&Value::Null);
        let ok = match (want, got) {
            (Value::Object(w), Value::Object(_)) => {
                check_outcome(&Value::Object(w.clone()), got).is_ok()
            }
            (w, g) => w == g,
        };
        if !ok {
            return Err(format!("{k}: expected {want}, got {got}"));
        }
    }
    Ok(())
}

fn wait_of(v: Option<&Value>) -> Result<Wait, String> {
    match v {
        None => Ok(Wait::No),
        Some(Value::String(s)) if s == "no" => Ok(Wait::No),
        Some(Value::String(s)) if s == "forever" => Ok(Wait::Forever),
        Some(Value::Number(n)) => Ok(Wait::For(Duration::from_secs_f64(
            n.as_f64().unwrap_or_default(),
        ))),
        Some(other) => Err(format!(
            "wait must be \"no\", \"forever\" or seconds, got {other}"
        )),
    }
}

fn str_of<'v>(v: &'v Value, key: &str, default: &'v str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or(default)
}

type Lock<'io> = Arc<S3Lock<&'io ScriptIo, Credentials>>;

/// What one S3 scenario holds between operations.
#[derive(Default)]
struct S3State<'io> {
    held: Option<HeldLock>,
    lease: Option<Lease>,
    background: Background<'io>,
}

fn s3_lock<'io>(io: &'io ScriptIo, spec: &Value) -> Result<Lock<'io>, String> {
    let mut b = S3LockConfig::builder(
        str_of(spec, "bucket", "tfstate"),
        str_of(spec, "key", "terraform.tfstate"),
    )
    .region(str_of(spec, "region", "us-east-1"))
    .endpoint(str_of(spec, "endpoint", "http://127.0.0.1:9000"));
    if let Some(ws) = spec.get("workspace").and_then(Value::as_str) {
        b = b.workspace(ws);
    }
    if let Some(table) = spec.get("dynamodb_table").and_then(Value::as_str) {
        b = b.dynamodb_table(table).dynamodb_endpoint(str_of(
            spec,
            "dynamodb_endpoint",
            "http://127.0.0.1:8000",
        ));
    }
    if let Some(on) = spec.get("use_lockfile").and_then(Value::as_bool) {
        b = b.lock_file(on);
    }
    let config = b.build().map_err(|e| format!("lock: {e}"))?;
    let creds = Credentials::new("AKIDSCENARIO", "scenario-secret", None)
        .map_err(|e| format!("credentials: {e}"))?;
    let lock = S3Lock::new(config, creds, io, str_of(spec, "who", "ci@runner"));
    let verify: VerifyConditionalWrites = str_of(spec, "verify_conditional_writes", "never")
        .parse()
        .map_err(|e: Error| e.to_string())?;
    lock.set_verify_conditional_writes(verify);
    // The lease API takes an `Arc` whatever the runtime; this one is
    // single-threaded on purpose.
    #[allow(clippy::arc_with_non_send_sync)]
    Ok(Arc::new(lock))
}

fn s3_step<'io>(
    io: &'io ScriptIo,
    lock: &Lock<'io>,
    spec: &Value,
    step: &Value,
    state: &mut S3State<'io>,
) -> Result<Value, String> {
    let op = str_of(step, "op", "");
    Ok(match op {
        "acquire" => {
            let mut opts = lock.options();
            opts.wait = wait_of(step.get("wait").or(spec.get("wait")))?;
            if let Some(who) = spec.get("who").and_then(Value::as_str) {
                opts.who = who.to_string();
            }
            opts.takeover = Takeover {
                expired_leases: spec.get("takeover").and_then(Value::as_bool) == Some(true),
                stale_without_lease: spec
                    .get("stale_after")
                    .and_then(Value::as_f64)
                    .map(Duration::from_secs_f64),
            };
            match spec.get("lease_seconds").and_then(Value::as_f64) {
                Some(secs) => {
                    opts.lease = Some(LeaseTerms::new(Duration::from_secs_f64(secs)));
                    let r = run(
                        io,
                        lock.acquire_lease(opts, &Cancel::new(), |_| {}),
                        &mut state.background,
                    )?;
                    match r {
                        Ok((lease, renewal)) => {
                            let held = lease.held();
                            state.lease = Some(lease);
                            state.background = Some(Box::pin(renewal.run()));
                            json!({"ok": true, "etag": held.etag, "generation": held.generation()})
                        }
                        Err(e) => error_json(&e),
                    }
                }
                None => match run(
                    io,
                    lock.acquire(opts, &Cancel::new(), |_| {}),
                    &mut state.background,
                )? {
                    Ok(held) => {
                        let v = json!({"ok": true, "etag": held.etag});
                        state.held = Some(held);
                        v
                    }
                    Err(e) => error_json(&e),
                },
            }
        }
        "release" => {
            let r = if let Some(lease) = state.lease.take() {
                run(
                    io,
                    lock.release_lease(&lease, RELEASE_BUDGET),
                    &mut state.background,
                )?
            } else {
                let held = state
                    .held
                    .take()
                    .ok_or("release: no acquire succeeded before")?;
                run(
                    io,
                    lock.release(&held, RELEASE_BUDGET),
                    &mut state.background,
                )?
            };
            match r {
                Ok(o) => outcome_json(o),
                Err(e) => error_json(&e),
            }
        }
        "status" => match run(io, lock.status(&Cancel::new()), &mut state.background)? {
            Ok(h) => json!({"ok": true, "holder": h.as_ref().map(holder_json)}),
            Err(e) => error_json(&e),
        },
        "force_unlock" => {
            let id = io.substitute(str_of(step, "id", ""));
            match run(io, lock.force_unlock(&id), &mut state.background)? {
                Ok(o) => outcome_json(o),
                Err(e) => error_json(&e),
            }
        }
        "renew" | "wait" => {
            let secs = step.get("seconds").and_then(Value::as_f64).unwrap_or(0.0);
            let until = io.now.get() + Duration::from_secs_f64(secs);
            let lost = match &state.lease {
                Some(lease) => {
                    let watch = lease.loss_watch();
                    let sleep = io.sleep_until(until);
                    run(
                        io,
                        async {
                            let mut sleep = std::pin::pin!(sleep);
                            let mut wait = std::pin::pin!(watch.wait());
                            std::future::poll_fn(|cx| {
                                if let Poll::Ready(Some(r)) = wait.as_mut().poll(cx) {
                                    return Poll::Ready(Some(r));
                                }
                                sleep.as_mut().poll(cx).map(|()| None)
                            })
                            .await
                        },
                        &mut state.background,
                    )?
                }
                None if op == "renew" => return Err("renew: no lease is held".into()),
                None => {
                    run(io, io.sleep_until(until), &mut state.background)?;
                    None
                }
            };
            match lost {
                Some(r) => json!({"ok": false, "lost": lost_kind(&r)}),
                None => json!({"ok": true}),
            }
        }
        other => return Err(format!("unknown S3 operation {other:?}")),
    })
}

fn apstra_mutex<'io>(
    io: &'io ScriptIo,
    spec: &Value,
) -> Result<ApstraMutex<&'io ScriptIo>, String> {
    let server = ApstraServer::builder()
        .url(str_of(spec, "url", "https://apstra.example:443"))
        .username(str_of(spec, "username", "admin"))
        .password(str_of(spec, "password", "scenario-password"))
        .build()
        .map_err(|e| format!("lock: {e}"))?;
    let client = ApstraClient::new(server, io, no_env(), "ci@runner");
    let bp = BlueprintId::new(str_of(spec, "blueprint", "bp-1")).map_err(|e| e.to_string())?;
    Ok(client
        .mutex(bp)
        .with_message(str_of(spec, "message", "deploying from CI")))
}

fn apstra_step(
    io: &ScriptIo,
    mutex: &ApstraMutex<&ScriptIo>,
    spec: &Value,
    step: &Value,
    held: &mut Option<HeldMutex>,
) -> Result<Value, String> {
    let mut none: Background = None;
    Ok(match str_of(step, "op", "") {
        "acquire" => {
            let mut opts = mutex.options();
            opts.wait = wait_of(step.get("wait").or(spec.get("wait")))?;
            opts.wait_for_blueprint_unlock = spec
                .get("wait_for_blueprint_unlock")
                .and_then(Value::as_bool)
                != Some(false);
            match run(io, mutex.acquire(opts, &Cancel::new(), |_| {}), &mut none)? {
                Ok(h) => {
                    let v = json!({"ok": true, "tag_id": h.tag_id});
                    *held = Some(h);
                    v
                }
                Err(e) => error_json(&e),
            }
        }
        "release" => {
            let h = held.take().ok_or("release: no acquire succeeded before")?;
            match run(io, mutex.release(&h), &mut none)? {
                Ok(o) => outcome_json(o),
                Err(e) => error_json(&e),
            }
        }
        "status" => match run(io, mutex.status(&Cancel::new()), &mut none)? {
            Ok(t) => {
                json!({"ok": true, "holder": t.map(|t| json!({"id": t.id, "description": t.description}))})
            }
            Err(e) => error_json(&e),
        },
        other => return Err(format!("unknown Apstra operation {other:?}")),
    })
}

/// Replay one scenario; `Err` names the step and the difference.
fn replay(scenario: &Value) -> Result<(), String> {
    let spec = scenario.get("lock").cloned().unwrap_or(json!({}));
    let steps = scenario
        .get("steps")
        .and_then(Value::as_array)
        .ok_or("no steps")?;
    let io = ScriptIo::new();
    let kind = str_of(&spec, "kind", "s3");
    let s3 = if kind == "s3" {
        Some(s3_lock(&io, &spec)?)
    } else {
        None
    };
    let apstra = if kind == "apstra" {
        Some(apstra_mutex(&io, &spec)?)
    } else {
        None
    };
    let mut s3_state = S3State::default();
    let mut apstra_held = None;
    for (n, step) in steps.iter().enumerate() {
        let op = str_of(step, "op", "?");
        *io.step.borrow_mut() = format!("step {} ({op})", n + 1);
        let exchanges = step
            .get("exchanges")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        *io.exchanges.borrow_mut() = exchanges
            .into_iter()
            .enumerate()
            .map(|(i, e)| Item::new(i + 1, e))
            .collect();
        let actual = match (&s3, &apstra) {
            (Some(lock), _) => s3_step(&io, lock, &spec, step, &mut s3_state)?,
            (_, Some(m)) => apstra_step(&io, m, &spec, step, &mut apstra_held)?,
            _ => return Err(format!("unknown lock kind {kind:?}")),
        };
        let step_name = io.step.borrow().clone();
        if let Some(f) = io.failure.borrow().clone() {
            return Err(f);
        }
        let left: Vec<_> = io
            .exchanges
            .borrow()
            .iter()
            .filter(|item| !item.complete())
            .map(|item| {
                format!(
                    "exchange {}: {}",
                    item.index, item.group[item.pos]["request"]
                )
            })
            .collect();
        if !left.is_empty() {
            return Err(format!(
                "{step_name}: ended with {actual} before sending\n  {}\n  (sent: {:?})",
                left.join("\n  "),
                io.sent.borrow()
            ));
        }
        let expected = step.get("expect").cloned().unwrap_or(json!({"ok": true}));
        let expected = io.substitute_value(&expected);
        check_outcome(&expected, &actual).map_err(|d| {
            format!("{step_name}: outcome {d}\n  expected {expected}\n  actual   {actual}")
        })?;
        io.sent.borrow_mut().clear();
    }
    // Stop a renewal still running (a lease never released in the script).
    drop(s3_state);
    Ok(())
}

fn scenario_files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Every scenario file holds one scenario or a list of them.
fn scenarios() -> Vec<(String, Value)> {
    let mut all = Vec::new();
    for path in scenario_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let list = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        for s in list {
            let name = format!("{file}: {}", str_of(&s, "name", "?"));
            all.push((name, s));
        }
    }
    all
}

#[test]
fn every_scenario_replays_through_the_core() {
    let all = scenarios();
    let filter = std::env::var("SCENARIO").unwrap_or_default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, scenario) in &all {
        if !name.contains(&filter) {
            continue;
        }
        let bindings = scenario.get("bindings").and_then(Value::as_array);
        if bindings.is_some_and(|b| !b.iter().any(|x| x == "rust")) {
            continue;
        }
        ran += 1;
        // A scenario marked pending specifies the right behaviour where the
        // core is known to differ: it must still fail, and says so when it
        // starts passing (then drop the mark).
        let pending = match scenario.get("pending") {
            Some(Value::String(why)) => Some(why.as_str()),
            Some(per_binding) => per_binding.get("rust").and_then(Value::as_str),
            None => None,
        };
        match (replay(scenario), pending) {
            (Err(e), None) => failures.push(format!("scenario {name}\n  {e}")),
            (Ok(()), Some(why)) => failures.push(format!(
                "scenario {name} now passes: remove its \"pending\" ({why})"
            )),
            (Err(e), Some(_)) => eprintln!("pending scenario {name} fails as known:\n  {e}"),
            (Ok(()), None) => {}
        }
    }
    assert!(ran > 0, "no scenario matched SCENARIO={filter:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn scenario_names_are_unique_and_every_scenario_says_what_it_shows() {
    let all = scenarios();
    assert!(all.len() >= 15, "only {} scenarios found", all.len());
    let mut seen = std::collections::BTreeSet::new();
    for (name, s) in &all {
        assert!(seen.insert(name.clone()), "duplicate scenario {name}");
        assert!(
            s.get("description").and_then(Value::as_str).is_some(),
            "{name}: no description"
        );
        if let Some(b) = s.get("bindings").and_then(Value::as_array) {
            if !b.iter().any(|x| x == "python") {
                assert!(
                    s.get("why_not_python").and_then(Value::as_str).is_some(),
                    "{name}: not replayed by Python, and no why_not_python"
                );
            }
        }
    }
}
