//! The Apstra blueprint mutex against the Apstra emulator
//! (`tests/apstra_emulator.py`): contention, holder reporting, token expiry,
//! lost responses, release and administration, bad input, rate limiting, TLS.
//!
//! Every test starts its own emulator on a free port.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use condlock::apstra::{
    AcquireOptions, ApstraServer, Blocker, BlueprintId, LoginPath, UnlockOutcome,
};
use condlock::backoff::Backoff;
use condlock::drive::{Cancel, Holder, Notice};
use condlock::native::apstra::blocking;
use condlock::native::{ApstraClient, ApstraMutex};
use condlock::{Error, Wait};
use condlock_integration::{http_request, ApstraEmulator};
use serde_json::{json, Value};

const BP: &str = "801a43ec-96ea-4f08-aa04-1f1faaeeeaf1";
const PASSWORD: &str = "Adm1n-pa55word";

fn start(extra: &[&str]) -> ApstraEmulator {
    let user = format!("admin:{PASSWORD}");
    let mut args = vec!["--user", &user, "--user", "bob:bobpass", "--blueprint", BP];
    args.extend_from_slice(extra);
    ApstraEmulator::start(&args)
}

/// A control-API call (`/_emulator/...`), answered as JSON.
fn control(emu: &ApstraEmulator, method: &str, path: &str, body: Value) -> Value {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let r = http_request(
        method,
        &format!("{}/_emulator/{path}", emu.url()),
        &[("Content-Type", "application/json")],
        &body,
    )
    .unwrap();
    assert!(
        (200..300).contains(&r.status),
        "{method} {path}: {} {}",
        r.status,
        r.text()
    );
    serde_json::from_slice(&r.body).unwrap()
}

fn state(emu: &ApstraEmulator) -> Value {
    control(emu, "GET", "state", Value::Null)
}

fn tags(emu: &ApstraEmulator) -> Vec<Value> {
    state(emu)["tags"].as_array().unwrap().clone()
}

/// `(method, path, status)` of every API request the emulator saw.
fn requests(emu: &ApstraEmulator) -> Vec<(String, String, Value, Option<String>)> {
    state(emu)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["status"].clone(),
                r["fault"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn add_faults(emu: &ApstraEmulator, rules: Value) {
    control(emu, "POST", "faults", rules);
}

fn server_for(url: &str, user: &str, password: &str) -> ApstraServer {
    ApstraServer::builder()
        .url(url)
        .username(user)
        .password(password)
        .request_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn client(emu: &ApstraEmulator) -> ApstraClient {
    ApstraClient::new(server_for(&emu.url(), "admin", PASSWORD)).unwrap()
}

fn bp() -> BlueprintId {
    BlueprintId::new(BP).unwrap()
}

fn mutex(emu: &ApstraEmulator) -> ApstraMutex {
    client(emu).mutex(bp())
}

/// Fast schedules so tests do not sleep for long.
fn fast(mut o: AcquireOptions, wait: Wait) -> AcquireOptions {
    o.wait = wait;
    o.wait_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
    };
    o.retry_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(500),
        multiplier: 2.0,
    };
    o
}

fn assert_no_password(e: &Error, password: &str) {
    let text = format!("{e} | {e:?}");
    assert!(!text.contains(password), "password leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn contending_holders_are_never_inside_together() {
    let emu = start(&[]);
    let inside = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for holder in 0..6 {
        // Each holder is its own client: its own login session, like separate
        // processes.
        let m = mutex(&emu).with_message(format!("holder {holder}"));
        let inside = inside.clone();
        let entered = entered.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..4 {
                let opts = fast(m.options(), Wait::For(Duration::from_secs(60)));
                let held = m.acquire(opts).await.expect("acquire");
                let before = inside.fetch_add(1, Ordering::SeqCst);
                assert_eq!(before, 0, "two holders inside the critical section");
                entered.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                assert_eq!(m.release(&held).await.unwrap(), UnlockOutcome::Released);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(entered.load(Ordering::SeqCst), 24);
    assert!(tags(&emu).is_empty(), "every tag was released");
    let log = requests(&emu);
    let held = log
        .iter()
        .filter(|(m, p, s, _)| m == "POST" && p == "/api/design/tags" && *s == json!(422))
        .count();
    assert!(held > 0, "the holders did contend");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_holder_message_is_shown_to_the_next_caller() {
    let emu = start(&[]);
    let a = mutex(&emu).with_message("deploying change 42 from CI at $DATE");
    let held = a.try_acquire(fast(a.options(), Wait::No)).await.unwrap();
    assert!(!held.recovered);

    // The stored description is the expanded message plus our token, readable.
    let stored = tags(&emu);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["label"], format!("blueprint {BP} locked"));
    let description = stored[0]["description"].as_str().unwrap();
    assert_eq!(description, held.description);
    assert!(
        description.starts_with("deploying change 42 from CI at 20"),
        "{description}"
    );
    assert!(
        description.contains(" +0000 UTC [condlock:"),
        "{description}"
    );
    assert!(description.ends_with(&format!("[condlock:{}]", held.token)));

    let b = mutex(&emu);
    let err = b
        .try_acquire(fast(b.options(), Wait::No))
        .await
        .unwrap_err();
    let tag = match &err {
        Error::BlueprintLocked { blueprint, blocker } => {
            assert_eq!(blueprint, BP);
            blocker.tag().expect("held by a tag").clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(tag.id, held.tag_id);
    assert_eq!(tag.description, held.description);
    assert!(tag.message.starts_with("deploying change 42 from CI"));
    assert_eq!(tag.token.as_ref(), Some(&held.token));
    assert!(tag.created_at.is_some() && tag.age.is_some());
    let text = err.to_string();
    assert!(
        text.contains("deploying change 42") && text.contains(&held.tag_id),
        "{text}"
    );

    // status() tells the same without trying.
    let status = b.status().await.unwrap().expect("held");
    assert_eq!(status.id, held.tag_id);
    a.release(&held).await.unwrap();
    assert!(b.status().await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_expiry_mid_wait_logs_in_again() {
    let emu = start(&[]);
    let a = mutex(&emu);
    let held = a.acquire(fast(a.options(), Wait::No)).await.unwrap();

    let b = mutex(&emu);
    let waits = Arc::new(Mutex::new(Vec::new()));
    let seen = waits.clone();
    let waiter = tokio::spawn(async move {
        let opts = fast(b.options(), Wait::For(Duration::from_secs(30)));
        let r = b
            .acquire_with(opts, &Cancel::new(), |notice| {
                // Each new holder is reported once.
                if let Notice::Waiting {
                    holder: Holder::Apstra(blocker),
                    new_holder: true,
                    ..
                } = notice
                {
                    seen.lock().unwrap().push(*blocker)
                }
            })
            .await;
        (r, b)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = control(&emu, "POST", "expire-tokens", Value::Null);
    assert_eq!(expired["expired"], 2, "both sessions had a token");
    tokio::time::sleep(Duration::from_millis(400)).await;
    // A's token expired too: its release logs in again.
    assert_eq!(a.release(&held).await.unwrap(), UnlockOutcome::Released);
    let (r, b) = waiter.await.unwrap();
    let b_held = r.expect("B acquires after A releases");
    // B saw A as the holder, once.
    let waits = waits.lock().unwrap().clone();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(waits[0].tag().unwrap().id, held.tag_id);
    // Logins: A, B, then one each after the expiry.
    assert_eq!(state(&emu)["logins"], 4);
    let unauthorized = requests(&emu).iter().filter(|r| r.2 == json!(401)).count();
    assert_eq!(unauthorized, 2, "{:?}", requests(&emu));
    b.release(&b_held).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_create_response_is_recognised_as_ours() {
    let emu = start(&[]);
    add_faults(
        &emu,
        json!([{"method": "POST", "path": "/api/design/tags", "action": {"drop": "after"}}]),
    );
    let m = mutex(&emu);
    let held = m
        .acquire(fast(m.options(), Wait::For(Duration::from_secs(10))))
        .await
        .unwrap();
    assert!(held.recovered, "found by its token");
    let stored = tags(&emu);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], held.tag_id.as_str());
    let creates: Vec<_> = requests(&emu)
        .into_iter()
        .filter(|r| r.1 == "/api/design/tags")
        .map(|r| (r.0, r.2, r.3))
        .collect();
    assert_eq!(
        creates,
        [
            ("POST".into(), json!(201), Some("drop_after".into())),
            ("POST".into(), json!(422), None),
            ("GET".into(), json!(200), None),
        ]
    );
    assert_eq!(m.release(&held).await.unwrap(), UnlockOutcome::Released);
}

#[tokio::test(flavor = "multi_thread")]
async fn release_of_a_force_unlocked_mutex_reports_already_gone() {
    let emu = start(&[]);
    let m = mutex(&emu);
    let held = m.acquire(fast(m.options(), Wait::No)).await.unwrap();
    let admin = client(&emu);
    let done = admin.force_unlock_tag(&held.tag_id).await.unwrap();
    assert_eq!(done.outcome, UnlockOutcome::Released);
    assert_eq!(done.tag.unwrap().description, held.description);
    assert_eq!(m.release(&held).await.unwrap(), UnlockOutcome::AlreadyGone);
    let deletes: Vec<_> = requests(&emu)
        .into_iter()
        .filter(|r| r.0 == "DELETE")
        .map(|r| r.2)
        .collect();
    assert_eq!(deletes, [json!(204), json!(404)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_mutexes_are_listed_and_can_be_force_unlocked() {
    let emu = start(&[]);
    let two_hours_ago =
        condlock::time::format_go_rfc3339_nano(SystemTime::now() - Duration::from_secs(2 * 3600));
    let planted = |label: &str, description: &str, created_at: Option<&str>| {
        let mut body = json!({"label": label, "description": description});
        if let Some(c) = created_at {
            body["created_at"] = json!(c);
        }
        control(&emu, "POST", "tags", body)["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let old = planted(
        "blueprint bp-old locked",
        "locked by terraform at 2026-01-01 00:00:00 +0000 UTC",
        Some(&two_hours_ago),
    );
    let not_mutex = planted(
        "blueprint bp-x locked by hand",
        "a normal tag",
        Some(&two_hours_ago),
    );
    planted("prod", "another normal tag", None);
    let m = mutex(&emu);
    let held = m.acquire(fast(m.options(), Wait::No)).await.unwrap();

    let admin = client(&emu);
    let all = admin.list_mutexes().await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let old_tag = all.iter().find(|t| t.blueprint == "bp-old").unwrap();
    assert_eq!(old_tag.id, old);
    assert!(!old_tag.carries_token());
    assert!(old_tag.age.unwrap() >= Duration::from_secs(2 * 3600 - 60));
    let ours = all.iter().find(|t| t.blueprint == BP).unwrap();
    assert!(ours.carries_token());
    assert!(ours.age.unwrap() < Duration::from_secs(60));

    let stale = admin
        .stale_mutexes(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].id, old);

    // A non-mutex tag is never deleted, even by tag ID.
    match admin.force_unlock_tag(&not_mutex).await.unwrap_err() {
        Error::InvalidConfig { field, .. } => assert_eq!(field, "tag_id"),
        other => panic!("{other:?}"),
    }
    let done = admin
        .force_unlock_blueprint(&BlueprintId::new("bp-old").unwrap())
        .await
        .unwrap();
    assert_eq!(done.outcome, UnlockOutcome::Released);
    assert_eq!(done.tag.unwrap().id, old);
    let left: Vec<String> = tags(&emu)
        .iter()
        .map(|t| t["label"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(!left.contains(&"blueprint bp-old locked".to_string()));
    m.release(&held).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_urls_are_reported() {
    // Not a URL at all: a config error naming the field, without the password.
    let err = ApstraServer::builder()
        .url(format!("apstra.example.com:{PASSWORD}@host"))
        .username("admin")
        .password(PASSWORD)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { field: "url", .. }),
        "{err:?}"
    );
    assert_no_password(&err, PASSWORD);

    // A live server, but the path prefix is wrong: no login endpoint there.
    let emu = start(&["--prefix", "/apstra"]);
    let wrong = emu.url().replace("/apstra", "/wrong");
    let m = ApstraClient::new(server_for(&wrong, "admin", PASSWORD))
        .unwrap()
        .mutex(bp());
    match m
        .try_acquire(fast(m.options(), Wait::No))
        .await
        .unwrap_err()
    {
        Error::InvalidConfig { field, reason } => {
            assert_eq!(field, "url");
            assert!(reason.contains("login endpoint"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The right prefix works (and the port is part of the URL).
    let m = mutex(&emu);
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    m.release(&held).await.unwrap();

    // Nothing listens there: a transport error once the budget runs out.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let m = ApstraClient::new(server_for(
        &format!("http://127.0.0.1:{port}"),
        "admin",
        PASSWORD,
    ))
    .unwrap()
    .mutex(bp());
    let mut opts = fast(m.options(), Wait::No);
    opts.transient_budget = Duration::from_millis(500);
    let started = Instant::now();
    let err = m.try_acquire(opts).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_are_refused_without_showing_the_password() {
    let emu = start(&[]);
    let wrong = "hunter2-Wrong";
    let m = ApstraClient::new(server_for(&emu.url(), "admin", wrong))
        .unwrap()
        .mutex(bp());
    let err = m
        .acquire(fast(m.options(), Wait::Forever))
        .await
        .unwrap_err();
    match &err {
        Error::LoginRefused { username, url, .. } => {
            assert_eq!(username, "admin");
            assert_eq!(url, &emu.url());
        }
        other => panic!("{other:?}"),
    }
    assert_no_password(&err, wrong);
    assert!(!format!("{m:?}").contains(wrong));
    // A refused login is not retried, and /api/user/login is not tried either.
    assert_eq!(requests(&emu).len(), 1);
    assert!(tags(&emu).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_embedded_in_the_url_are_decoded() {
    let emu = start(&["--user", "ops@corp:p@ss:w/rd%"]);
    let url = emu
        .url()
        .replace("http://", "http://ops%40corp:p%40ss%3Aw%2Frd%25@");
    let server = ApstraServer::builder().url(&url).build().unwrap();
    assert_eq!(server.url(), emu.url(), "credentials are out of the URL");
    assert_eq!(server.username(), "ops@corp");
    assert!(!format!("{server:?}").contains("p@ss"));
    let m = ApstraClient::new(server).unwrap().mutex(bp());
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    m.release(&held).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_blueprint_ids_are_refused() {
    for bad in ["", "has space", "tab\tbed", &"x".repeat(48)] {
        match BlueprintId::new(bad).unwrap_err() {
            Error::InvalidConfig { field, .. } => assert_eq!(field, "blueprint_id"),
            other => panic!("{other:?}"),
        }
    }
    // Well formed, but no such blueprint on the server.
    let emu = start(&[]);
    let m = client(&emu).mutex(BlueprintId::new("no-such-blueprint").unwrap());
    match m
        .acquire(fast(m.options(), Wait::Forever))
        .await
        .unwrap_err()
    {
        Error::NoSuchBlueprint { blueprint, .. } => assert_eq!(blueprint, "no-such-blueprint"),
        other => panic!("{other:?}"),
    }
    // Without the lock-status wait too: a tag for a mistyped ID would be a
    // mutex that excludes no one.
    let mut opts = fast(m.options(), Wait::No);
    opts.wait_for_blueprint_unlock = false;
    match m.try_acquire(opts).await.unwrap_err() {
        Error::NoSuchBlueprint { blueprint, .. } => assert_eq!(blueprint, "no-such-blueprint"),
        other => panic!("{other:?}"),
    }
    // Its status is that error, not "free".
    match m.status().await.unwrap_err() {
        Error::NoSuchBlueprint { blueprint, .. } => assert_eq!(blueprint, "no-such-blueprint"),
        other => panic!("{other:?}"),
    }
    assert!(tags(&emu).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_on_503_and_429_is_honoured() {
    let emu = start(&[]);
    add_faults(
        &emu,
        json!([
            {"method": "GET", "path": format!("/api/blueprints/{BP}/lock-status"),
             "action": {"status": 429, "retry_after": 1}},
            {"method": "POST", "path": "/api/design/tags",
             "action": {"status": 503, "retry_after": 1}},
        ]),
    );
    let m = mutex(&emu);
    let started = Instant::now();
    let held = m
        .acquire(fast(m.options(), Wait::For(Duration::from_secs(20))))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    let statuses: Vec<Value> = requests(&emu)
        .into_iter()
        .filter(|r| r.0 != "POST" || r.1 == "/api/design/tags")
        .map(|r| r.2)
        .collect();
    assert_eq!(statuses, [json!(429), json!(200), json!(503), json!(201)]);
    m.release(&held).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_blueprint_ui_lock_is_respected_except_our_own() {
    let emu = start(&[]);
    let lock_as = |user: &str| {
        control(
            &emu,
            "PUT",
            &format!("blueprints/{BP}"),
            json!({"lock_status": "locked", "username": user, "first_name": "B"}),
        )
    };
    lock_as("bob");
    let m = mutex(&emu);
    let err = m
        .try_acquire(fast(m.options(), Wait::No))
        .await
        .unwrap_err();
    match err.blocker() {
        Some(Blocker::BlueprintLock(s)) => assert_eq!(s.username, "bob"),
        other => panic!("{other:?}"),
    }
    assert!(tags(&emu).is_empty());

    // Locked by our own user: free for us.
    lock_as("admin");
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    m.release(&held).await.unwrap();

    // Locked by Bob, unlocked while we wait.
    lock_as("bob");
    let waiter = {
        let m = mutex(&emu);
        tokio::spawn(async move {
            let r = m
                .acquire(fast(m.options(), Wait::For(Duration::from_secs(20))))
                .await;
            (r, m)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    control(
        &emu,
        "PUT",
        &format!("blueprints/{BP}"),
        json!({"lock_status": "unlocked"}),
    );
    let (r, m) = waiter.await.unwrap();
    m.release(&r.unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_old_server_without_aaa_login_is_used_through_user_login() {
    let emu = start(&["--no-aaa-login", "--prefix", "/apstra/v1"]);
    let m = mutex(&emu);
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    assert_eq!(m.client().session().login_path(), LoginPath::User);
    m.release(&held).await.unwrap();
    let log: Vec<(String, Value)> = requests(&emu).into_iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(log[0], ("/api/aaa/login".into(), json!(404)));
    assert_eq!(log[1], ("/api/user/login".into(), json!(201)));
    assert_eq!(state(&emu)["logins"], 1, "the token is carried to release");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_wait_leaves_the_holder_alone() {
    let emu = start(&[]);
    let a = mutex(&emu);
    let held = a.try_acquire(fast(a.options(), Wait::No)).await.unwrap();
    let b = mutex(&emu);
    let cancel = Cancel::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let started = Instant::now();
    let err = b
        .acquire_with(fast(b.options(), Wait::Forever), &cancel, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let stored = tags(&emu);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], held.tag_id.as_str());
    a.release(&held).await.unwrap();
}

#[test]
fn the_blocking_wrapper_locks_and_releases_on_drop() {
    let emu = start(&[]);
    let m = blocking::ApstraMutex::new(server_for(&emu.url(), "admin", PASSWORD), bp())
        .unwrap()
        .with_message("blocking test");
    {
        let guard = m.lock(fast(m.options(), Wait::No)).unwrap();
        assert!(guard
            .held()
            .description
            .starts_with("blocking test [condlock:"));
        assert_eq!(m.status().unwrap().unwrap().id, guard.held().tag_id);
        assert_eq!(m.list_mutexes().unwrap().len(), 1);
    }
    assert!(m.status().unwrap().is_none(), "released on drop");
    assert!(tags(&emu).is_empty());
}

/// Warnings logged in this test binary.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureWarnings;

impl log::Log for CaptureWarnings {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn a_guard_dropped_after_a_force_unlock_warns_once() {
    if log::set_logger(&CaptureWarnings).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
    let emu = start(&[]);
    let bp = BlueprintId::new("bp-dropped-guard").unwrap();
    control(
        &emu,
        "PUT",
        "blueprints/bp-dropped-guard",
        json!({"lock_status": "unlocked"}),
    );
    let m = blocking::ApstraMutex::new(server_for(&emu.url(), "admin", PASSWORD), bp).unwrap();
    {
        let _guard = m.lock(fast(m.options(), Wait::No)).unwrap();
        m.force_unlock().unwrap();
    }
    let about_it: Vec<String> = WARNINGS
        .lock()
        .unwrap()
        .iter()
        // (The force-unlock itself warns too, on purpose: another event.)
        .filter(|w| w.contains("already gone"))
        .cloned()
        .collect();
    assert_eq!(about_it.len(), 1, "{about_it:?}");
    assert!(about_it[0].contains("bp-dropped-guard"), "{about_it:?}");
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

struct Pki {
    dir: std::path::PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, via `openssl`.
fn make_pki() -> Option<Pki> {
    let dir = std::env::temp_dir().join(format!(
        "condlock-apstra-pki-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let pki = Pki { dir: dir.clone() };
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    .ok()?;
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=condlock test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    ok.then_some(pki)
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_is_verified_by_default_with_a_ca_bundle_or_an_explicit_opt_out() {
    let Some(pki) = make_pki() else {
        eprintln!("openssl is not available: TLS test skipped");
        return;
    };
    let cert = pki.dir.join("server.pem");
    let key = pki.dir.join("server.key");
    let emu = start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(emu.url().starts_with("https://"));
    let builder = || {
        ApstraServer::builder()
            .url(emu.url())
            .username("admin")
            .password(PASSWORD)
            .request_timeout(Duration::from_secs(5))
    };

    // Default: verification on, the unknown CA is refused.
    let m = ApstraClient::new(builder().build().unwrap())
        .unwrap()
        .mutex(bp());
    let mut opts = fast(m.options(), Wait::No);
    opts.transient_budget = Duration::from_millis(300);
    let err = m.try_acquire(opts).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");

    // With the CA bundle: verified and accepted.
    let ca = std::fs::read(pki.dir.join("ca.pem")).unwrap();
    let m = ApstraClient::new(builder().ca_bundle_pem(ca).build().unwrap())
        .unwrap()
        .mutex(bp());
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    m.release(&held).await.unwrap();

    // Explicit opt-out.
    let m = ApstraClient::new(builder().verify_tls(false).build().unwrap())
        .unwrap()
        .mutex(bp());
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    m.release(&held).await.unwrap();
}

/// A certificate made exactly as appliances (and most how-tos) make theirs:
/// self-signed, and a CA by OpenSSL's defaults (`basicConstraints CA:TRUE`),
/// which rustls refuses as a server certificate (`CaUsedAsEndEntity`).
fn make_self_signed() -> Option<Pki> {
    let dir = std::env::temp_dir().join(format!(
        "condlock-apstra-selfsigned-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let pki = Pki { dir: dir.clone() };
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .current_dir(&dir)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(pki)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_appliance_certificate_is_trusted_when_given_as_the_bundle() {
    let Some(pki) = make_self_signed() else {
        eprintln!("openssl is not available: TLS test skipped");
        return;
    };
    let cert = pki.dir.join("server.pem");
    let key = pki.dir.join("server.key");
    let emu = start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let builder = || {
        ApstraServer::builder()
            .url(emu.url())
            .username("admin")
            .password(PASSWORD)
            .request_timeout(Duration::from_secs(5))
    };

    // The certificate itself as the bundle: pinned, accepted.
    let pem = std::fs::read(&cert).unwrap();
    let m = ApstraClient::new(builder().ca_bundle_pem(pem).build().unwrap())
        .unwrap()
        .mutex(bp());
    let held = m.try_acquire(fast(m.options(), Wait::No)).await.unwrap();
    // (The control API is behind the same TLS port: read through the client.)
    assert_eq!(m.status().await.unwrap().unwrap().id, held.tag_id);
    assert_eq!(m.release(&held).await.unwrap(), UnlockOutcome::Released);
    assert!(m.status().await.unwrap().is_none());

    // Without it, verification on: refused with a certificate error.
    let m = ApstraClient::new(builder().build().unwrap())
        .unwrap()
        .mutex(bp());
    let mut opts = fast(m.options(), Wait::No);
    // Until transport failures carry "permanent", a certificate error is
    // retried like any transport failure: keep that short here.
    opts.transient_budget = Duration::from_millis(300);
    let err = m.try_acquire(opts).await.unwrap_err();
    match &err {
        Error::Transport { message, .. } => {
            assert!(message.contains("certificate"), "{message}")
        }
        other => panic!("{other:?}"),
    }

    // Another certificate pinned: refused too.
    let other = make_self_signed().unwrap();
    let other_pem = std::fs::read(other.dir.join("server.pem")).unwrap();
    let m = ApstraClient::new(builder().ca_bundle_pem(other_pem).build().unwrap())
        .unwrap()
        .mutex(bp());
    let mut opts = fast(m.options(), Wait::No);
    opts.transient_budget = Duration::from_millis(300);
    let err = m.try_acquire(opts).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}
