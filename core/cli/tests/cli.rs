//! The `condlock` binary against real servers: moto for S3, the Apstra
//! emulator. Each test starts its own server.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use condlock::native::blocking::S3Lock;
use condlock::native::CredentialSource;
use condlock::s3::{Credentials, S3LockConfig};
use condlock::{Error, Wait};
use condlock_integration::{http_request, ApstraEmulator, MotoServer, MOTO_DUMMY_AUTHORIZATION};
use serde_json::Value;

const BUCKET: &str = "tfstate";
const KEY: &str = "envs/dev/terraform.tfstate";
const BP: &str = "801a43ec-96ea-4f08-aa04-1f1faaeeeaf1";

/// Far longer than anything here takes: only proves "did not hang".
const HANG: Duration = Duration::from_secs(60);

fn moto() -> MotoServer {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    m
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "condlock-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary with a clean environment: moto's keys, no profile, no IMDS.
fn condlock() -> Command {
    clean(Command::new(env!("CARGO_BIN_EXE_condlock")))
}

fn clean(mut c: Command) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("TF_") || k.starts_with("APSTRA_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "moto-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    c
}

fn s3_url() -> String {
    format!("s3://{BUCKET}/{KEY}")
}

/// `condlock ARGS --endpoint <moto>`, the endpoint before any `-- COMMAND`.
fn on(moto: &MotoServer, args: &[&str]) -> Command {
    let ep = moto.endpoint();
    let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut c = condlock();
    c.args(&args[..split])
        .args(["--endpoint", &ep])
        .args(&args[split..]);
    c
}

fn out(mut c: Command) -> Output {
    c.output().expect("run condlock")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn lock_on(moto: &MotoServer, key: &str, who: &str) -> (S3Lock, condlock::s3::AcquireOptions) {
    let config = S3LockConfig::builder(BUCKET, key)
        .endpoint(moto.endpoint())
        .build()
        .unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "moto", None).unwrap();
    let lock = S3Lock::new(config, CredentialSource::Static(creds)).unwrap();
    let mut opts = lock.options();
    opts.who = who.to_string();
    (lock, opts)
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !ok() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A spawned `condlock`, killed if the test fails before it exits (its
/// commands' loops are bounded, so nothing outlives the test for long).
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A shell loop that ends by itself after about a minute.
const SPIN: &str = "for i in $(seq 1200); do sleep 0.05; done";

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "condlock did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn exit_statuses_tell_free_held_timeout_not_owned_and_bad_input_apart() {
    let moto = moto();
    let url = s3_url();
    let o = out(on(&moto, &["status", &url]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).starts_with("free: s3://tfstate/envs/dev/terraform.tfstate.tflock"));

    let o = out(on(&moto, &["acquire", &url, "--info", "step 1"]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    assert_eq!(id.len(), 36, "{id}");

    let o = out(on(&moto, &["--json", "status", &url]));
    assert_eq!(code(&o), 3);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "held");
    assert_eq!(v["holder"]["id"], id.as_str());
    assert_eq!(v["holder"]["info"], "step 1");
    assert!(v["holder"]["age_seconds"].is_u64());

    // Held, without waiting; timed out, with a short wait.
    assert_eq!(
        code(&out(on(&moto, &["acquire", &url, "--timeout", "0s"]))),
        3
    );
    let o = out(on(
        &moto,
        &["run", &url, "--timeout", "1s", "--", "sh", "-c", "exit 0"],
    ));
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("timed out"), "{err}");
    assert!(
        err.contains(&format!("condlock force-unlock {id}")),
        "{err}"
    );

    // --json: one event per line, the error last.
    let o = out(on(&moto, &["--json", "acquire", &url, "--timeout", "0s"]));
    let last: Value = serde_json::from_str(text(&o.stderr).lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["event"].as_str(), last["code"].as_str()),
        (Some("error"), Some("held"))
    );

    assert_eq!(code(&out(on(&moto, &["release", "not-the-id", &url]))), 6);
    assert_eq!(code(&out(on(&moto, &["release", &id, &url]))), 0);
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 0);

    // Bad input: usage (2), invalid configuration (8).
    assert_eq!(code(&out(on(&moto, &["status", &url, "--bogus"]))), 2);
    assert_eq!(
        code(&out(on(&moto, &["wait", &url, "--timeout", "soon"]))),
        2
    );
    let o = out(on(&moto, &["status", "s3://Bad_Bucket/k"]));
    assert_eq!(code(&o), 8, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("invalid bucket"));
    assert_eq!(code(&out(on(&moto, &["status", "s3://tfstate/"]))), 8);
    let o = out(on(&moto, &["status", "s3://no-such-bucket/k"]));
    assert_eq!(code(&o), 8, "{}", text(&o.stderr));

    // The command's own status comes back; a missing command is 127.
    let o = out(on(&moto, &["run", &url, "--", "sh", "-c", "exit 7"]));
    assert_eq!(code(&o), 7, "{}", text(&o.stderr));
    assert_eq!(
        code(&out(on(&moto, &["run", &url, "--", "/no/such/cmd"]))),
        127
    );
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 0);
}

#[test]
fn run_excludes_a_concurrent_holder_both_ways() {
    let moto = moto();
    let dir = scratch("exclude");
    let (rust, opts) = lock_on(&moto, KEY, "rust@test");

    // A Rust holder first: `condlock run` waits, then runs.
    let held = rust
        .acquire_with(opts.clone(), &Default::default(), |_| {})
        .unwrap();
    let marker = dir.join("ran");
    let mut child = on(
        &moto,
        &["run", &s3_url(), "--", "touch", marker.to_str().unwrap()],
    )
    .stderr(Stdio::piped())
    .spawn()
    .map(Spawned)
    .unwrap();
    let child = &mut child.0;
    // Off a terminal, a plain line says who we wait for: read it, then check
    // the command has not run while the lock was held.
    let mut err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    wait_for("the waiting line", || {
        let mut buf = [0u8; 512];
        let n = err.read(&mut buf).unwrap();
        seen.extend_from_slice(&buf[..n]);
        text(&seen).contains("held by rust@test")
    });
    assert!(!marker.exists(), "ran while another holder had the lock");
    rust.release(&held).unwrap();
    assert_eq!(wait_exit(child).code(), Some(0));
    assert!(marker.exists());
    assert!(
        rust.status().unwrap().is_none(),
        "the lock was not released"
    );

    // `condlock run` first: the Rust holder is refused while the command runs.
    let started = dir.join("started");
    let go = dir.join("go");
    let script = format!(
        "touch {}; for i in $(seq 1200); do [ -f {} ] && break; sleep 0.05; done",
        started.display(),
        go.display()
    );
    let mut child = on(&moto, &["run", &s3_url(), "--", "sh", "-c", &script])
        .stderr(Stdio::null())
        .spawn()
        .map(Spawned)
        .unwrap();
    wait_for("the command to start", || started.exists());
    let mut try_opts = opts.clone();
    try_opts.wait = Wait::No;
    let refused = rust.acquire_with(try_opts, &Default::default(), |_| {});
    match refused {
        Err(Error::Held { holder: Some(h) }) => {
            assert_eq!(h.info.as_ref().unwrap().operation, "condlock run");
            assert!(h.info.as_ref().unwrap().info.starts_with("sh -c "));
        }
        other => panic!("expected Held, got {other:?}"),
    }
    std::fs::write(&go, "").unwrap();
    assert_eq!(wait_exit(&mut child.0).code(), Some(0));
    assert!(rust.status().unwrap().is_none());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn sigterm_to_run_reaches_the_command_and_the_lock_is_released_after_it() {
    let moto = moto();
    let dir = scratch("sigterm");
    let (rust, _) = lock_on(&moto, KEY, "rust@test");
    let started = dir.join("started");
    let got = dir.join("got-term");
    let script = format!(
        "trap 'echo term > {}; exit 3' TERM; touch {}; {SPIN}",
        got.display(),
        started.display()
    );
    let mut child = on(&moto, &["run", &s3_url(), "--", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .map(Spawned)
        .unwrap();
    let child = &mut child.0;
    wait_for("the command to start", || started.exists());
    assert!(rust.status().unwrap().is_some());
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_exit(child);
    assert_eq!(status.code(), Some(3), "{}", stderr_of(child));
    assert!(got.exists(), "the command did not get SIGTERM");
    assert!(
        rust.status().unwrap().is_none(),
        "the lock was not released"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_lease_lost_during_run_stops_the_command_with_status_5() {
    let moto = moto();
    let dir = scratch("lost");
    let (rust, _) = lock_on(&moto, KEY, "rust@test");
    for (name, trap, grace) in [
        // A command that stops on SIGTERM...
        ("polite", "trap 'echo term > {got}; exit 0' TERM", "10s"),
        // ...and one that ignores it, killed after the grace period.
        ("stubborn", "trap 'echo term > {got}' TERM", "1s"),
    ] {
        let started = dir.join(format!("{name}-started"));
        let got = dir.join(format!("{name}-got-term"));
        let script = format!(
            "{}; touch {}; {SPIN}",
            trap.replace("{got}", &got.display().to_string()),
            started.display()
        );
        let mut child = on(
            &moto,
            &[
                "run",
                &s3_url(),
                "--lease",
                "3s",
                "--grace",
                grace,
                "--",
                "sh",
                "-c",
                &script,
            ],
        )
        .stderr(Stdio::piped())
        .spawn()
        .map(Spawned)
        .unwrap();
        let child = &mut child.0;
        wait_for("the command to start", || started.exists());
        let id = rust.status().unwrap().unwrap().id().unwrap().to_string();
        // Someone force-unlocks it: the next renewal finds it gone.
        rust.force_unlock(&id).unwrap();
        let status = wait_exit(child);
        let err = stderr_of(child);
        assert_eq!(status.code(), Some(5), "{name}: {err}");
        assert!(got.exists(), "{name}: the command did not get SIGTERM");
        assert!(err.contains("was lost"), "{name}: {err}");
        if name == "stubborn" {
            assert!(err.contains("SIGKILL"), "{err}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A Terraform directory laid out exactly as the reference capture, pointed
/// at `moto`, with a secret key that must never be printed.
fn terraform_dir(moto: &MotoServer, workspace: Option<&str>, state: Option<String>) -> PathBuf {
    let dir = scratch("tfdir");
    std::fs::create_dir_all(dir.join(".terraform")).unwrap();
    let state = state.unwrap_or_else(|| {
        include_str!("terraform-1.11.4.tfstate")
            .replace("http://127.0.0.1:5099", &moto.endpoint())
            .replace(
                r#""secret_key": "test""#,
                r#""secret_key": "sekrit-do-not-print""#,
            )
    });
    std::fs::write(dir.join(".terraform/terraform.tfstate"), state).unwrap();
    if let Some(w) = workspace {
        std::fs::write(dir.join(".terraform/environment"), w).unwrap();
    }
    dir
}

fn get_object(moto: &MotoServer, key: &str) -> condlock_integration::HttpResponse {
    http_request(
        "GET",
        &format!("{}/{BUCKET}/{key}", moto.endpoint()),
        &[("Authorization", MOTO_DUMMY_AUTHORIZATION)],
        b"",
    )
    .unwrap()
}

#[test]
fn terraform_dir_takes_the_lock_terraform_takes() {
    let moto = moto();
    let dir = terraform_dir(&moto, Some("staging"), None);
    // Everything condlock printed: the backend's secret key must not be in it.
    let mut printed = String::new();
    // No AWS keys in the environment: the backend's own are used.
    let bare = || {
        let mut c = condlock();
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION");
        c
    };
    let mut c = bare();
    c.args(["acquire", "--terraform-dir", dir.to_str().unwrap()]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    // Workspace staging, prefix teams, path style on endpoints.s3, SSE.
    let r = get_object(&moto, "teams/staging/envs/dev/terraform.tfstate.tflock");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&id));
    assert_eq!(r.header("x-amz-server-side-encryption"), Some("AES256"));
    assert!(r
        .text()
        .contains(r#""Path":"tfstate/teams/staging/envs/dev/terraform.tfstate""#));

    // The current directory is the default; TF_WORKSPACE wins.
    let mut c = bare();
    c.current_dir(&dir)
        .env("TF_WORKSPACE", "default")
        .args(["status"]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("s3://tfstate/envs/dev/terraform.tfstate.tflock"));
    let mut c = bare();
    c.current_dir(&dir).args(["--json", "status"]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));

    // TF_DATA_DIR moves .terraform.
    let moved = scratch("tfdata");
    std::fs::rename(dir.join(".terraform"), moved.join("data")).unwrap();
    let mut c = bare();
    c.current_dir(&moved)
        .env("TF_DATA_DIR", "data")
        .args(["release", &id]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        get_object(&moto, "teams/staging/envs/dev/terraform.tfstate.tflock").status,
        404
    );

    // A backend locking with a DynamoDB table (alone): condlock takes the
    // same item, and a Terraform holder of it is reported.
    moto.create_lock_table("tf-locks", "LockID");
    let dynamo = terraform_dir(
        &moto,
        None,
        Some(
            include_str!("terraform-1.11.4.tfstate")
                .replace("http://127.0.0.1:5099", &moto.endpoint())
                .replace(r#""use_lockfile": true"#, r#""use_lockfile": null"#)
                .replace(
                    r#""dynamodb_table": null"#,
                    r#""dynamodb_table": "tf-locks""#,
                )
                .replace(
                    r#""dynamodb": null"#,
                    &format!(r#""dynamodb": "{}""#, moto.endpoint()),
                ),
        ),
    );
    let terraform_info = r#"{"ID":"0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5","Operation":"OperationTypeApply","Info":"","Who":"alice@build-7","Version":"1.9.8","Created":"2026-03-04T05:06:07.891011121Z","Path":"tfstate/envs/dev/terraform.tfstate"}"#;
    let item = serde_json::json!({
        "TableName": "tf-locks",
        "Item": {
            "LockID": {"S": "tfstate/envs/dev/terraform.tfstate"},
            "Info": {"S": terraform_info},
        },
    });
    assert_eq!(moto.dynamodb("PutItem", &item.to_string()).status, 200);
    let mut c = bare();
    c.args(["status", "--terraform-dir", dynamo.to_str().unwrap()]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert!(
        (text(&o.stdout) + &text(&o.stderr)).contains("alice@build-7"),
        "{}",
        text(&o.stdout)
    );
    let mut c = bare();
    c.args([
        "force-unlock",
        "--force",
        "--terraform-dir",
        dynamo.to_str().unwrap(),
        "0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5",
    ]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let mut c = bare();
    c.args(["acquire", "--terraform-dir", dynamo.to_str().unwrap()]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    let get = serde_json::json!({
        "TableName": "tf-locks",
        "Key": {"LockID": {"S": "tfstate/envs/dev/terraform.tfstate"}},
    });
    let r = moto.dynamodb("GetItem", &get.to_string());
    assert!(r.text().contains(&id), "{}", r.text());
    // dynamodb_table alone: no lock file, as Terraform.
    assert_eq!(
        get_object(&moto, "envs/dev/terraform.tfstate.tflock").status,
        404
    );
    let mut c = bare();
    c.args(["release", "--terraform-dir", dynamo.to_str().unwrap(), &id]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let r = moto.dynamodb("GetItem", &get.to_string());
    assert!(!r.text().contains("Item"), "{}", r.text());
    // Errors name no secret either.
    let wrong = terraform_dir(
        &moto,
        None,
        Some(
            include_str!("terraform-1.11.4.tfstate")
                .replace("http://127.0.0.1:5099", &moto.endpoint())
                .replace(
                    r#""secret_key": "test""#,
                    r#""secret_key": "sekrit-do-not-print""#,
                )
                .replace(r#""bucket": "tfstate""#, r#""bucket": "no-such-bucket""#),
        ),
    );
    let mut c = bare();
    c.args(["status", "--terraform-dir", wrong.to_str().unwrap()]);
    let o = out(c);
    printed.push_str(&(text(&o.stdout) + &text(&o.stderr)));
    assert_eq!(code(&o), 8, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no-such-bucket"),
        "{}",
        text(&o.stderr)
    );
    assert!(!printed.contains("sekrit"), "{printed}");
    for d in [dir, moved, dynamo, wrong] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn list_shows_every_holder_and_its_age() {
    let moto = moto();
    let (a, opts) = lock_on(&moto, "envs/a/terraform.tfstate", "alice@ci");
    let _ha = a.acquire_with(opts, &Default::default(), |_| {}).unwrap();
    let o = out(on(
        &moto,
        &["acquire", "s3://tfstate/envs/b/terraform.tfstate"],
    ));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id_b = text(&o.stdout).trim().to_string();
    // A state object (not a lock) and a lock elsewhere.
    let (c, opts) = lock_on(&moto, "other/terraform.tfstate", "carol@ci");
    let _hc = c.acquire_with(opts, &Default::default(), |_| {}).unwrap();

    let o = out(on(&moto, &["--json", "list", "s3://tfstate/envs/"]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let rows: Vec<Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "envs/a/terraform.tfstate.tflock",
            "envs/b/terraform.tfstate.tflock"
        ]
    );
    assert_eq!(rows[0]["holder"]["who"], "alice@ci");
    assert_eq!(rows[1]["holder"]["id"], id_b.as_str());
    assert!(rows.iter().all(|r| r["holder"]["age_seconds"].is_u64()));

    // The whole bucket, as a table.
    let o = out(on(&moto, &["list", "s3://tfstate"]));
    let table = text(&o.stdout);
    assert!(table.starts_with("KEY"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("carol@ci") && table.contains("alice@ci"),
        "{table}"
    );
    // None is older than an hour.
    let o = out(on(
        &moto,
        &["--json", "list", "s3://tfstate", "--stale-after", "1h"],
    ));
    assert_eq!(code(&o), 0);
    assert_eq!(text(&o.stdout), "");
}

#[test]
fn force_unlock_needs_confirmation_and_the_right_id() {
    let moto = moto();
    let url = s3_url();
    let o = out(on(&moto, &["acquire", &url]));
    let id = text(&o.stdout).trim().to_string();
    // stdin is not a terminal: refused without -force, lock untouched.
    let o = out(on(&moto, &["force-unlock", &id, &url]));
    assert_eq!(code(&o), 11, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("without -force"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 3);
    // The wrong ID is refused even with -force.
    assert_eq!(
        code(&out(on(&moto, &["force-unlock", "-force", "0000", &url]))),
        6
    );
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 3);
    let o = out(on(&moto, &["force-unlock", "-force", &id, &url]));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 0);
}

#[test]
fn apstra_blueprint_mutex_from_the_shell() {
    let emu = ApstraEmulator::start(&["--user", "admin:Adm1n-pa55word", "--blueprint", BP]);
    let apstra = |args: &[&str]| {
        let mut c = condlock();
        c.env("APSTRA_URL", emu.url())
            .env("APSTRA_USER", "admin")
            .env("APSTRA_PASS", "Adm1n-pa55word")
            .args(args);
        out(c)
    };
    let o = apstra(&["status", "--apstra-blueprint", BP]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = apstra(&[
        "acquire",
        "--apstra-blueprint",
        BP,
        "--info",
        "nightly backup",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let tag = text(&o.stdout).trim().to_string();
    let o = apstra(&["--json", "status", "--apstra-blueprint", BP]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["holder"]["id"], tag.as_str());
    assert!(v["holder"]["message"]
        .as_str()
        .unwrap()
        .contains("nightly backup"));
    let o = apstra(&["--json", "list", "--apstra"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let row: Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(
        (row["id"].as_str(), row["blueprint"].as_str()),
        (Some(tag.as_str()), Some(BP))
    );
    let o = apstra(&[
        "run",
        "--apstra-blueprint",
        BP,
        "--timeout",
        "0s",
        "--",
        "true",
    ]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert_eq!(
        code(&apstra(&["release", "other-tag", "--apstra-blueprint", BP])),
        6
    );
    assert_eq!(
        code(&apstra(&["release", &tag, "--apstra-blueprint", BP])),
        0
    );
    let o = apstra(&["run", "--apstra-blueprint", BP, "--", "sh", "-c", "exit 4"]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    assert_eq!(code(&apstra(&["status", "--apstra-blueprint", BP])), 0);
    // Wrong password: access denied.
    let mut c = condlock();
    c.env("APSTRA_URL", emu.url())
        .env("APSTRA_USER", "admin")
        .env("APSTRA_PASS", "wrong")
        .args(["status", "--apstra-blueprint", BP]);
    let o = out(c);
    assert_eq!(code(&o), 7, "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("wrong\""));
}

#[test]
fn region_and_endpoint_come_from_the_aws_profile() {
    // No --endpoint, no AWS_REGION: only the profile's config leads to moto
    // (elsewhere the request would go to AWS, unreachable here).
    let moto = moto();
    let dir = scratch("profile");
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile dev]\nregion = eu-north-1\nendpoint_url = {}\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let mut c = condlock();
    c.env_remove("AWS_REGION")
        .env("AWS_PROFILE", "dev")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("none"))
        .args(["--json", "status", &s3_url()]);
    let o = out(c);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "free", "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_lists_exit_statuses_and_completions_are_generated() {
    let o = out({
        let mut c = condlock();
        c.arg("--help");
        c
    });
    assert_eq!(code(&o), 0);
    let help = text(&o.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("5    lost"),
        "{help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let o = out({
            let mut c = condlock();
            c.args(["completions", shell]);
            c
        });
        assert_eq!(code(&o), 0);
        assert!(text(&o.stdout).contains("force-unlock"), "{shell}");
    }
}

#[test]
fn an_interrupt_while_waiting_cancels_and_leaves_the_holder_alone() {
    let moto = moto();
    let (rust, opts) = lock_on(&moto, KEY, "rust@test");
    let held = rust
        .acquire_with(opts, &Default::default(), |_| {})
        .unwrap();
    for sub in [
        &["run", &s3_url(), "--", "true"][..],
        &["acquire", &s3_url()][..],
    ] {
        let mut child = on(&moto, sub)
            .stderr(Stdio::piped())
            .spawn()
            .map(Spawned)
            .unwrap();
        let child = &mut child.0;
        let mut err = child.stderr.take().unwrap();
        let mut seen = Vec::new();
        wait_for("the waiting line", || {
            let mut buf = [0u8; 512];
            let n = err.read(&mut buf).unwrap();
            seen.extend_from_slice(&buf[..n]);
            text(&seen).contains("held by rust@test")
        });
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let status = wait_exit(child);
        let _ = err.read_to_end(&mut seen);
        assert_eq!(status.code(), Some(130), "{sub:?}: {}", text(&seen));
        assert!(text(&seen).contains("cancelled"), "{}", text(&seen));
        let holder = rust.status().unwrap().unwrap();
        assert_eq!(holder.id(), Some(held.info.id.as_str()));
    }
}

/// `condlock ARGS` on a pseudo-terminal (util-linux `script`), `input` typed.
fn on_a_terminal(moto: &MotoServer, args: &[&str], input: &str) -> i32 {
    use std::io::Write as _;
    let mut line = vec![env!("CARGO_BIN_EXE_condlock").to_string()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.extend(["--endpoint".to_string(), moto.endpoint()]);
    let mut script = clean(Command::new("script"));
    script
        .args(["-qec", &line.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = script.spawn().map(Spawned).expect("util-linux script");
    child
        .0
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_exit(&mut child.0).code().unwrap_or(-1)
}

#[test]
fn force_unlock_on_a_terminal_asks_and_only_yes_removes_the_lock() {
    let moto = moto();
    let url = s3_url();
    let id = text(&out(on(&moto, &["acquire", &url])).stdout)
        .trim()
        .to_string();
    assert_eq!(
        on_a_terminal(&moto, &["force-unlock", &id, &url], "no\n"),
        11
    );
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 3);
    assert_eq!(
        on_a_terminal(&moto, &["force-unlock", &id, &url], "yes\n"),
        0
    );
    assert_eq!(code(&out(on(&moto, &["status", &url]))), 0);
}

#[test]
fn a_dynamodb_table_on_the_command_line_takes_the_pair() {
    let moto = moto();
    moto.create_lock_table("tf-locks", "LockID");
    let url = s3_url();
    let ep = moto.endpoint();
    let pair = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dynamodb-table", "tf-locks", "--dynamodb-endpoint", &ep]);
        all.push(&url);
        out(on(&moto, &all))
    };
    let o = pair(&["acquire"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let id = text(&o.stdout).trim().to_string();
    let lock_id = url.trim_start_matches("s3://").to_string();
    let get = serde_json::json!({"TableName": "tf-locks", "Key": {"LockID": {"S": lock_id}}});
    let item = moto.dynamodb("GetItem", &get.to_string());
    assert!(item.text().contains(&id), "{}", item.text());
    // A taker of the pair finds it held (exit 3), naming the table.
    let o = pair(&["status"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    let o = pair(&["acquire", "--timeout", "0s"]);
    assert_eq!(code(&o), 3, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("tf-locks"), "{}", text(&o.stderr));
    let o = pair(&["release", &id]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let item = moto.dynamodb("GetItem", &get.to_string());
    assert!(!item.text().contains("Item"), "{}", item.text());
    // A table that does not exist is a configuration error (exit 8) naming it.
    let mut args = vec!["acquire", "--dynamodb-table", "no-such-table"];
    args.extend(["--dynamodb-endpoint", &ep, &url]);
    let o = out(on(&moto, &args));
    assert_eq!(code(&o), 8, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no-such-table"),
        "{}",
        text(&o.stderr)
    );
}
