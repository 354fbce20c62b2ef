//! Tests of the test harness itself: each server starts, behaves as the
//! harness docs say (moto enforces conditional writes, s3rver ignores them,
//! moto's auth mode rejects unsigned and badly signed requests), and is gone
//! after drop. Every test starts its own servers (tests run in parallel).

use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use condlock_integration::{
    http_request, ApstraEmulator, FaultProxy, MotoServer, S3rver, MOTO_DUMMY_AUTHORIZATION,
    S3RVER_ACCESS_KEY, S3RVER_SECRET_KEY,
};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `If-None-Match: *` PUT of `body` to `url`, plus extra headers.
fn put_if_absent(url: &str, body: &'static str, headers: &[(&str, &str)]) -> Response {
    let mut req = client()
        .put(url)
        .header("If-None-Match", "*")
        .header("Content-Type", "application/octet-stream")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

/// Adds a SigV4 signature (S3, us-east-1, x-amz-content-sha256) to a request.
fn signed(
    client: &Client,
    method: &str,
    url: &str,
    body: &'static [u8],
    access_key: &str,
    secret: &str,
) -> RequestBuilder {
    let identity = Credentials::new(access_key, secret, None, None, "harness-test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body)).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = client.request(method.parse().unwrap(), url).body(body);
    for (name, value) in instructions.headers() {
        req = req.header(name, value);
    }
    req
}

fn assert_port_closed(port: u16) {
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections after drop"
    );
}

#[test]
fn moto_enforces_if_none_match() {
    let started = Instant::now();
    let moto = MotoServer::start();
    eprintln!("moto started in {:?}", started.elapsed());
    moto.create_bucket("cl-harness");
    let url = format!("{}/cl-harness/state.tflock", moto.endpoint());
    // Authorization present so moto does not apply its anonymous-access 403.
    let auth = [("Authorization", MOTO_DUMMY_AUTHORIZATION)];

    let first = put_if_absent(&url, "first", &auth);
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();

    let second = put_if_absent(&url, "second", &auth);
    assert_eq!(second.status(), StatusCode::PRECONDITION_FAILED);
    assert!(second.text().unwrap().contains("PreconditionFailed"));

    // If-Match with a stale ETag is refused too, with the right one accepted.
    let stale = client()
        .put(&url)
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .header("If-Match", "\"0123456789abcdef0123456789abcdef\"")
        .body("third")
        .send()
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = client()
        .put(&url)
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .header("If-Match", etag.as_str())
        .body("fourth")
        .send()
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);

    let got = client()
        .get(&url)
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .send()
        .unwrap();
    assert_eq!(got.text().unwrap(), "fourth");

    let port = moto.port();
    drop(moto);
    assert_port_closed(port);
}

#[test]
fn moto_unsigned_request_on_existing_object_is_anonymous() {
    // Documents the quirk behind MOTO_DUMMY_AUTHORIZATION.
    let moto = MotoServer::start();
    moto.create_bucket("cl-anon");
    let url = format!("{}/cl-anon/k", moto.endpoint());
    assert_eq!(put_if_absent(&url, "a", &[]).status(), StatusCode::OK);
    assert_eq!(
        put_if_absent(&url, "b", &[]).status(),
        StatusCode::FORBIDDEN
    );
}

#[test]
fn s3rver_ignores_if_none_match() {
    let s3 = S3rver::start("cl-negative");
    let url = format!("{}/cl-negative/state.tflock", s3.endpoint());

    // Unsigned requests are accepted as anonymous.
    assert_eq!(put_if_absent(&url, "first", &[]).status(), StatusCode::OK);
    assert_eq!(put_if_absent(&url, "second", &[]).status(), StatusCode::OK);
    let got = client().get(&url).send().unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.text().unwrap(),
        "second",
        "both writers won, the last body is kept"
    );

    let data_dir = s3.data_dir().to_path_buf();
    assert!(data_dir.is_dir());
    let port = s3.port();
    drop(s3);
    assert_port_closed(port);
    assert!(
        !data_dir.exists(),
        "temp dir {} left behind",
        data_dir.display()
    );
}

#[test]
fn s3rver_credentials() {
    let s3 = S3rver::start("cl-creds");
    let url = format!("{}/cl-creds/obj", s3.endpoint());
    let c = client();

    let put = signed(
        &c,
        "PUT",
        &url,
        b"hello",
        S3RVER_ACCESS_KEY,
        S3RVER_SECRET_KEY,
    )
    .header("If-None-Match", "*")
    .send()
    .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let again = signed(
        &c,
        "PUT",
        &url,
        b"hello",
        S3RVER_ACCESS_KEY,
        S3RVER_SECRET_KEY,
    )
    .header("If-None-Match", "*")
    .send()
    .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "signed conditional PUT is ignored too"
    );

    // SigV4 signatures are not verified: a wrong secret still passes...
    let wrong_secret = signed(&c, "GET", &url, b"", S3RVER_ACCESS_KEY, "not-the-secret")
        .send()
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::OK);
    assert_eq!(wrong_secret.text().unwrap(), "hello");
    // ...but an unknown access key does not.
    let wrong_key = signed(&c, "GET", &url, b"", "AKIAOTHER", S3RVER_SECRET_KEY)
        .send()
        .unwrap();
    assert_eq!(wrong_key.status(), StatusCode::FORBIDDEN);
    assert!(wrong_key.text().unwrap().contains("InvalidAccessKeyId"));
}

#[test]
fn moto_auth_mode() {
    let (moto, key) = MotoServer::start_with_auth("cl-auth");
    assert!(key.access_key_id.starts_with("AKIA"), "{key:?}");
    assert!(!key.secret_access_key.is_empty());
    let ep = moto.endpoint();
    let url = format!("{ep}/cl-auth/state.tflock");
    let c = client();

    // Unsigned bucket-level request: refused, but moto 5.2.5 says 500 (it
    // indexes the missing Authorization header) rather than 403.
    let unsigned = c.get(format!("{ep}/cl-auth")).send().unwrap();
    assert!(!unsigned.status().is_success(), "{}", unsigned.status());
    let unsigned_put = c.put(&url).body("sneaky").send().unwrap();
    assert!(
        !unsigned_put.status().is_success(),
        "{}",
        unsigned_put.status()
    );

    // Correctly signed: works, and conditional writes are still enforced.
    let put = signed(
        &c,
        "PUT",
        &url,
        b"v1",
        &key.access_key_id,
        &key.secret_access_key,
    )
    .header("If-None-Match", "*")
    .send()
    .unwrap();
    assert_eq!(put.status(), StatusCode::OK, "{}", put.text().unwrap());
    let again = signed(
        &c,
        "PUT",
        &url,
        b"v2",
        &key.access_key_id,
        &key.secret_access_key,
    )
    .header("If-None-Match", "*")
    .send()
    .unwrap();
    assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    let get = signed(
        &c,
        "GET",
        &url,
        b"",
        &key.access_key_id,
        &key.secret_access_key,
    )
    .send()
    .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.text().unwrap(), "v1");

    // Wrong secret: 403 SignatureDoesNotMatch. Unknown key: 403 InvalidAccessKeyId.
    let bad_sig = signed(&c, "GET", &url, b"", &key.access_key_id, "wrong-secret")
        .send()
        .unwrap();
    assert_eq!(bad_sig.status(), StatusCode::FORBIDDEN);
    assert!(bad_sig.text().unwrap().contains("SignatureDoesNotMatch"));
    let bad_key = signed(&c, "GET", &url, b"", "AKIAUNKNOWN0000000000", "x")
        .send()
        .unwrap();
    assert_eq!(bad_key.status(), StatusCode::FORBIDDEN);
    assert!(bad_key.text().unwrap().contains("InvalidAccessKeyId"));

    // Unsigned requests on the existing object: 403, and nothing changed.
    assert_eq!(c.get(&url).send().unwrap().status(), StatusCode::FORBIDDEN);
    let overwrite = c.put(&url).body("sneaky").send().unwrap();
    assert_eq!(overwrite.status(), StatusCode::FORBIDDEN);
    let get = signed(
        &c,
        "GET",
        &url,
        b"",
        &key.access_key_id,
        &key.secret_access_key,
    )
    .send()
    .unwrap();
    assert_eq!(get.text().unwrap(), "v1");
}

#[test]
fn parallel_servers_get_distinct_ports() {
    let handles: Vec<_> = (0..3)
        .map(|_| std::thread::spawn(MotoServer::start))
        .collect();
    let servers: Vec<MotoServer> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = servers.iter().map(MotoServer::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for (i, s) in servers.iter().enumerate() {
        s.create_bucket(&format!("cl-par-{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_works_inside_a_tokio_runtime() {
    // The harness is std-only, so async tests can call it directly.
    let moto = MotoServer::start();
    moto.create_bucket("cl-async");
    let r = http_request(
        "PUT",
        &format!("{}/cl-async/k", moto.endpoint()),
        &[
            ("Authorization", MOTO_DUMMY_AUTHORIZATION),
            ("If-None-Match", "*"),
        ],
        b"x",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let r = http_request(
        "PUT",
        &format!("{}/cl-async/k", moto.endpoint()),
        &[
            ("Authorization", MOTO_DUMMY_AUTHORIZATION),
            ("If-None-Match", "*"),
        ],
        b"y",
    )
    .unwrap();
    assert_eq!(r.status, 412, "{}", r.text());
}

#[test]
fn apstra_emulator_starts_and_logs_in() {
    let apstra = ApstraEmulator::start(&["--user", "admin:secret"]);
    let url = apstra.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let r = http_request(
        "POST",
        &format!("{url}/api/aaa/login"),
        &[("Content-Type", "application/json")],
        br#"{"username":"admin","password":"secret"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}\n{}", r.text(), apstra.output());
    assert!(r.text().contains("token"));

    let prefixed = ApstraEmulator::start(&["--prefix", "/apstra"]);
    assert!(prefixed.url().ends_with("/apstra"), "{}", prefixed.url());
    let r = http_request(
        "POST",
        &format!("{}/api/aaa/login", prefixed.url()),
        &[("Content-Type", "application/json")],
        br#"{"username":"admin","password":"admin"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn fault_proxy_faults_do_what_its_docs_say() {
    let moto = MotoServer::start_atomic();
    moto.create_bucket("faults");
    let proxy = FaultProxy::start(&moto.endpoint(), &["--seed", "3"]);
    let via = |key: &str| format!("{}/faults/{key}", proxy.endpoint());
    let direct = |key: &str| {
        http_request(
            "GET",
            &format!("{}/faults/{key}", moto.endpoint()),
            &[("authorization", MOTO_DUMMY_AUTHORIZATION)],
            b"",
        )
        .unwrap()
    };
    let auth = [("Authorization", MOTO_DUMMY_AUTHORIZATION)];
    // One pooled (keep-alive) client for everything: the proxy must keep
    // answering on reused connections, faults or not.
    let c = client();
    let put = |key: &str, extra: &[(&str, &str)]| {
        let mut req = c
            .put(via(key))
            .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
            .body("v");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send()
    };

    // No faults configured: a transparent proxy, conditions included.
    assert_eq!(put("a", &auth).unwrap().status(), StatusCode::OK);
    let again = put_if_absent(&via("a"), "w", &auth);
    assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    let got = c
        .get(via("a"))
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .send();
    assert_eq!(got.unwrap().text().unwrap(), "v");

    // Errors answered by the proxy itself: the store is not touched.
    for (fault, status, code) in [
        ("status500", 500, "InternalError"),
        ("slowdown", 503, "SlowDown"),
        ("conflict", 409, "ConditionalRequestConflict"),
    ] {
        proxy.configure(&format!(r#"{{"{fault}": 1}}"#));
        let r = put(&format!("err-{fault}"), &[]).unwrap();
        assert_eq!(r.status().as_u16(), status, "{fault}");
        assert!(r.text().unwrap().contains(&format!("<Code>{code}</Code>")));
        assert_eq!(
            direct(&format!("err-{fault}")).status,
            404,
            "{fault} was forwarded"
        );
        proxy.configure(&format!(r#"{{"{fault}": 0}}"#));
    }

    // Reset: never forwarded. Only PUTs are targeted, so a GET passes.
    proxy.configure(r#"{"reset": 1, "only_method": ["PUT"]}"#);
    assert!(put("reset", &[]).is_err());
    assert_eq!(direct("reset").status, 404);
    let got = c
        .get(via("a"))
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .send();
    assert_eq!(got.unwrap().status(), StatusCode::OK);

    // Drop-response: forwarded (the write happened), the answer never came.
    proxy.configure(r#"{"reset": 0, "drop_response": 1}"#);
    assert!(put("dropped", &[]).is_err());
    assert_eq!(direct("dropped").status, 200);

    // Delay: forwarded normally, late.
    proxy.configure(r#"{"drop_response": 0, "delay": [1, 0.3]}"#);
    assert_eq!(put("delayed", &[]).unwrap().status(), StatusCode::OK);
    assert_eq!(direct("delayed").status, 200);

    // Stall, targeted at PUTs with If-Match only: the client gives up.
    proxy.configure(r#"{"delay": [0, 0], "stall": 1, "only_header": ["If-Match"]}"#);
    let short = Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let stalled = short
        .put(via("a"))
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .header("If-Match", "\"anything\"")
        .body("x")
        .send();
    assert!(stalled.unwrap_err().is_timeout());
    assert_eq!(put("untargeted", &[]).unwrap().status(), StatusCode::OK);

    let stats = proxy.stats();
    for fault in [
        "status500",
        "slowdown",
        "conflict",
        "reset",
        "drop_response",
        "delay",
        "stall",
    ] {
        assert_eq!(stats.count(fault), 1, "{fault}: {stats:?}");
    }
    // A bad setting is refused and changes nothing.
    let bad = http_request(
        "PUT",
        &format!("{}/_proxy/config", proxy.endpoint()),
        &[],
        br#"{"stall": 0, "reset": 2}"#,
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.text());
    let still = short
        .put(via("a"))
        .header("Authorization", MOTO_DUMMY_AUTHORIZATION)
        .header("If-Match", "\"anything\"")
        .body("x")
        .send();
    assert!(still.unwrap_err().is_timeout(), "stall was switched off");
    assert_eq!(proxy.stats().count("stall"), 2);
}
