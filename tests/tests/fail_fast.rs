//! Calls against an endpoint that cannot answer fail fast, with the default
//! options: a closed port on 127.0.0.1 (connection refused: the request never
//! left) and an Apstra emulator behind a certificate nobody trusts (retrying
//! cannot help). The bounds are generous ("did not wait out a 30-60 s
//! budget"), not timings.

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use condlock::apstra::{ApstraServer, BlueprintId};
use condlock::native::{ApstraClient, CredentialSource, S3Lock};
use condlock::s3::{Credentials, S3LockConfig};
use condlock::{Error, Wait};
use condlock_integration::ApstraEmulator;

/// Far below the 30-60 s the transient budgets allowed before.
const GENEROUS: Duration = Duration::from_secs(10);

/// A port on 127.0.0.1 where nothing listens: bind, note it, close.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn s3_lock_at(port: u16) -> S3Lock {
    let config = S3LockConfig::builder("tfstate", "envs/unreachable.tfstate")
        .endpoint(format!("http://127.0.0.1:{port}"))
        .build()
        .unwrap();
    let creds = Credentials::new("AKIDEXAMPLE", "not-checked", None).unwrap();
    S3Lock::new(config, CredentialSource::Static(creds)).unwrap()
}

fn assert_transport(err: &Error) {
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_try_once_against_a_closed_port_fails_fast() {
    let lock = s3_lock_at(closed_port());
    let started = Instant::now();
    let err = lock.try_acquire(lock.options()).await.unwrap_err();
    let took = started.elapsed();
    assert_transport(&err);
    assert!(took < GENEROUS, "took {took:?}: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_status_against_a_closed_port_fails_fast() {
    let lock = s3_lock_at(closed_port());
    let started = Instant::now();
    let err = lock.status().await.unwrap_err();
    let took = started.elapsed();
    assert_transport(&err);
    assert!(took < GENEROUS, "took {took:?}: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_timed_wait_against_a_closed_port_ends_at_its_deadline_without_cleanup() {
    // Before, the refused PUTs counted as "may have landed": a 10 s cleanup
    // followed the 2 s wait.
    let lock = s3_lock_at(closed_port());
    let mut opts = lock.options();
    opts.wait = Wait::For(Duration::from_secs(2));
    let started = Instant::now();
    let err = lock.acquire(opts).await.unwrap_err();
    let took = started.elapsed();
    assert_transport(&err);
    assert!(took < Duration::from_secs(8), "took {took:?}: {err}");
}

fn apstra_at(url: &str) -> ApstraClient {
    ApstraClient::new(
        ApstraServer::builder()
            .url(url)
            .username("admin")
            .password("Sup3r-s3cret!")
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn apstra_try_once_against_a_closed_port_fails_fast() {
    let m = apstra_at(&format!("http://127.0.0.1:{}", closed_port()))
        .mutex(BlueprintId::new("bp-1").unwrap());
    let started = Instant::now();
    let err = m.try_acquire(m.options()).await.unwrap_err();
    let took = started.elapsed();
    assert_transport(&err);
    assert!(took < GENEROUS, "took {took:?}: {err}");
}

/// A self-signed certificate for 127.0.0.1 in a fresh directory, via
/// `openssl`; `None` when openssl is not available.
fn self_signed() -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "condlock-failfast-tls-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).ok()?;
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
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .current_dir(&dir)
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(dir)
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        None
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apstra_try_once_against_an_untrusted_certificate_fails_fast() {
    let Some(dir) = self_signed() else {
        eprintln!("openssl is not available: TLS test skipped");
        return;
    };
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let emu = ApstraEmulator::start(&[
        "--user",
        "admin:Sup3r-s3cret!",
        "--blueprint",
        "bp-1",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let m = apstra_at(&emu.url()).mutex(BlueprintId::new("bp-1").unwrap());
    let started = Instant::now();
    let result = m.try_acquire(m.options()).await;
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let err = result.unwrap_err();
    assert_transport(&err);
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(took < GENEROUS, "took {took:?}: {err}");
}
