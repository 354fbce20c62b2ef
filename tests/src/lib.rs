//! Test harness for condlock's integration tests: real servers on `127.0.0.1`.
//!
//! Every server is a child process started by a synchronous constructor and
//! stopped by `Drop` (SIGKILL, then `wait`, so no zombies; temp dirs removed).
//! Each test should start its own server: tests run on parallel threads and
//! every server here listens on its own port (port 0, the port is read back
//! from the server's own startup line, so there is no bind race).
//!
//! Nothing here uses an async runtime or `reqwest::blocking`: the helpers only
//! use `std` (a tiny HTTP/1.1 client, [`http_request`]), so they are safe to
//! call from inside `#[tokio::test]` as well as from plain `#[test]`.
//!
//! | server | type | comes from |
//! |---|---|---|
//! | moto (`moto_server`) | [`MotoServer`] | `<repo>/.venv`, PyPI `moto[server]` |
//! | moto, one request at a time | [`MotoServer::start_atomic`] | `<repo>/tests/moto_atomic.py` (same venv) |
//! | fault-injecting proxy | [`FaultProxy`] | `<repo>/tests/fault_proxy.py` (stdlib Python) |
//! | s3rver | [`S3rver`] | `<repo>/tests/node_modules`, npm `s3rver` |
//! | Apstra emulator | [`ApstraEmulator`] | `<repo>/tests/apstra_emulator.py` |
//!
//! Install the first two with `scripts/setup.sh` (idempotent, fast when done).
//!
//! # Server quirks worth knowing
//!
//! **moto** (5.2.x, auth mode off — the default):
//! * Signatures are not checked, any access key works. PUT `If-None-Match: *`,
//!   PUT `If-Match` and DELETE `If-Match` are enforced (412 `PreconditionFailed`).
//! * A request *without an `Authorization` header* is treated as anonymous:
//!   GET/PUT/DELETE of an **existing** object then gets an empty-bodied 403
//!   (the object ACL is private), which hides the 412 of a conditional PUT.
//!   Any `Authorization` header avoids that; [`MOTO_DUMMY_AUTHORIZATION`] is one.
//! * Routing of a request to a service (S3, IAM, ...) uses the credential scope
//!   of the `Authorization` header; requests without one go to S3.
//! * Bucket names must be valid S3 names (>= 3 chars), else 400 `InvalidBucketName`.
//!
//! **moto auth mode** (see [`MotoServer::start_with_auth`]):
//! * Turned on by `POST /moto-api/reset-auth` with body `3` and
//!   `Content-Type: text/plain` (the body is parsed with `float()`; a form body
//!   makes it answer 500). The next 3 authenticated-type actions (S3 or IAM) are
//!   still free; every action after that must be SigV4-signed by a key moto
//!   issued, and that key's IAM policies must allow the action.
//! * The counter is process-global: once the 3 free actions are used, the
//!   server stays in auth mode (for all accounts).
//! * After that: a *wrong secret* gets 403 `SignatureDoesNotMatch`, an *unknown
//!   key* 403 `InvalidAccessKeyId`, an *unsigned* GET/PUT/DELETE of an
//!   **existing** object 403 (anonymous access to a private object), but every
//!   other *unsigned* request (ListBuckets, ListObjects, HEAD bucket, GET of a
//!   missing key, PUT of a new key, ...) answers **500**: moto 5.2.5 indexes the
//!   missing `Authorization` header (`KeyError: 'HTTP_AUTHORIZATION'` in
//!   `moto/iam/access_control.py`). A moto bug; expect 500, not 403, there.
//! * `/moto-api/...` is never authenticated.
//!
//! **s3rver** (3.7.1):
//! * Ignores every conditional header on PUT and DELETE (two `If-None-Match: *`
//!   PUTs both answer 200, the last body wins): the negative control.
//! * Unsigned requests are accepted as anonymous with full access.
//! * Signed requests must use access key [`S3RVER_ACCESS_KEY`] (another key
//!   gets 403 `InvalidAccessKeyId`). SigV2 signatures are verified with secret
//!   [`S3RVER_SECRET_KEY`]; **SigV4 signatures are not verified at all** (any
//!   signature, any secret, any region) but `x-amz-content-sha256` must be
//!   present and `x-amz-date` within 15 minutes of the server clock.
//! * It does not decode `aws-chunked` (`STREAMING-...`) bodies: sign with a plain
//!   sha256 or `UNSIGNED-PAYLOAD`.
//! * Path-style is used for IP hosts (`http://127.0.0.1:PORT/bucket/key`).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to come up before the constructor panics.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Access key id that s3rver accepts (its hard-coded dummy account).
pub const S3RVER_ACCESS_KEY: &str = "S3RVER";
/// Secret for [`S3RVER_ACCESS_KEY`]. Only SigV2 signatures are checked against
/// it; s3rver does not verify SigV4 signatures (any secret passes).
pub const S3RVER_SECRET_KEY: &str = "S3RVER";

/// An `Authorization` header value that moto (auth mode off) accepts for S3.
/// Send it on raw HTTP requests so moto does not treat them as anonymous.
pub const MOTO_DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/s3/aws4_request, \
SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// Same as [`MOTO_DUMMY_AUTHORIZATION`] but scoped to IAM, which is how moto's
/// dispatcher routes an IAM query-API call posted to its single endpoint.
const MOTO_DUMMY_IAM_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/iam/aws4_request, \
SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// Same as [`MOTO_DUMMY_AUTHORIZATION`] but scoped to DynamoDB, so moto's
/// dispatcher routes the request there.
const MOTO_DUMMY_DYNAMODB_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/dynamodb/aws4_request, \
SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000";

/// The repository root (the parent of this crate's manifest directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

fn require_installed(path: &Path, what: &str) {
    if !path.exists() {
        panic!(
            "{what} not found at {}.\nRun `scripts/setup.sh` at the repository root \
             ({}) to install the test servers (Python venv in .venv, npm packages in \
             tests/node_modules).",
            path.display(),
            repo_root().display()
        );
    }
}

// ---------------------------------------------------------------------------
// Child process plumbing
// ---------------------------------------------------------------------------

/// The last lines a child wrote to one of its pipes (bounded).
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

const TAIL_LINES: usize = 400;

impl Tail {
    fn push(&self, line: String) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() == TAIL_LINES {
            q.pop_front();
        }
        q.push_back(line);
    }

    fn text(&self) -> String {
        let q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        q.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// Drains `pipe` on a detached thread into `tail`; lines also go to `lines`
/// while its receiver lives (used to wait for the startup line).
fn drain<R: Read + Send + 'static>(pipe: R, tail: Tail, lines: Option<mpsc::Sender<String>>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    if let Some(tx) = &lines {
                        let _ = tx.send(line.clone());
                    }
                    tail.push(line);
                }
            }
        }
    });
}

/// A running child process; killed and reaped on drop.
struct ServerProcess {
    name: &'static str,
    child: Child,
    stdout: Tail,
    stderr: Tail,
    /// Removed (recursively) after the child is reaped.
    temp_dir: Option<PathBuf>,
}

/// Which of the child's streams carries the "I am listening" line.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl ServerProcess {
    /// Spawns `cmd` and waits for a line on `stream` from which `parse`
    /// extracts the listening port. Panics (with the child's output) if the
    /// child exits first or [`STARTUP_TIMEOUT`] passes.
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        stream: Stream,
        temp_dir: Option<PathBuf>,
        parse: impl Fn(&str) -> Option<u16>,
    ) -> (ServerProcess, u16) {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(dir) = &temp_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                panic!("{name}: cannot spawn {cmd:?}: {e}");
            }
        };
        let (tx, rx) = mpsc::channel();
        let stdout = Tail::default();
        let stderr = Tail::default();
        let out: ChildStdout = child.stdout.take().expect("piped stdout");
        let err: ChildStderr = child.stderr.take().expect("piped stderr");
        let (tx_out, tx_err) = match stream {
            Stream::Stdout => (Some(tx), None),
            Stream::Stderr => (None, Some(tx)),
        };
        drain(out, stdout.clone(), tx_out);
        drain(err, stderr.clone(), tx_err);
        let mut proc = ServerProcess {
            name,
            child,
            stdout,
            stderr,
            temp_dir,
        };

        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(port) = parse(&line) {
                        return (proc, port);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stream closed: the child is exiting; let try_wait report it.
                    thread::sleep(Duration::from_millis(50));
                }
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                thread::sleep(Duration::from_millis(100)); // let the drains finish
                proc.fail(&format!("exited with {status} before it was ready"));
            }
            if Instant::now() > deadline {
                proc.fail(&format!("not ready within {STARTUP_TIMEOUT:?}"));
            }
        }
    }

    /// Kills the child (via drop) and panics with its output.
    fn fail(self, why: &str) -> ! {
        let name = self.name;
        let out = self.stdout.text();
        let err = self.stderr.text();
        drop(self);
        panic!("{name} {why}\n--- stdout ---\n{out}--- stderr ---\n{err}");
    }

    fn output(&self) -> String {
        format!(
            "--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout.text(),
            self.stderr.text()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh, empty directory under the system temp dir.
fn unique_temp_dir(prefix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", dir.display()));
    dir
}

/// The port of the last `host:PORT` in `line` after `marker`.
fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let digits: String = rest
        .rsplit(':')
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|p| *p != 0)
}

// ---------------------------------------------------------------------------
// Minimal HTTP/1.1 client (std only)
// ---------------------------------------------------------------------------

/// A response from [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One plain-HTTP request with `Connection: close` (no TLS, no redirects).
/// `url` is `http://host:port/path?query`, already percent-encoded.
/// `Host` and `Content-Length` are added. 30 s read/write timeout.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid("only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid("cannot resolve host"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;

    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head: bool) -> io::Result<HttpResponse> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head_text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("empty response"))?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if head {
        body.clear();
    } else if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Form-encodes `pairs` (`application/x-www-form-urlencoded`).
fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The text of the first `<tag>...</tag>` in `xml`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

// ---------------------------------------------------------------------------
// moto
// ---------------------------------------------------------------------------

/// A `moto_server` on `127.0.0.1`, killed on drop.
///
/// The binary is `<repo>/.venv/bin/moto_server`, or `$CONDLOCK_MOTO_SERVER`.
pub struct MotoServer {
    process: ServerProcess,
    port: u16,
}

/// A key pair moto issued (auth mode); use it to SigV4-sign requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl MotoServer {
    /// Starts moto with auth mode off (signatures not checked) and waits
    /// until it answers HTTP. Panics with moto's output on failure.
    pub fn start() -> MotoServer {
        let bin = match std::env::var_os("CONDLOCK_MOTO_SERVER") {
            Some(p) => PathBuf::from(p),
            None => repo_root().join(".venv/bin/moto_server"),
        };
        require_installed(&bin, "moto_server");
        let mut cmd = Command::new(&bin);
        // Port 0: werkzeug binds a free port and logs
        // " * Running on http://127.0.0.1:PORT" to stderr once it listens.
        cmd.args(["-H", "127.0.0.1", "-p", "0"]);
        let (process, port) = ServerProcess::spawn("moto_server", cmd, Stream::Stderr, None, |l| {
            port_after(l, "Running on http://")
        });
        let server = MotoServer { process, port };
        server.wait_until_answering();
        server
    }

    /// Starts moto with every request handled atomically
    /// (`tests/moto_atomic.py`: moto's own WSGI app, one lock around each
    /// whole request) and waits until it answers HTTP.
    ///
    /// Use it for every test that counts exclusion. Stock `moto_server`
    /// checks `If-None-Match: *` / `If-Match` and then writes, on a threaded
    /// server: two racing conditional PUTs can both get 200 (a double hold
    /// that real S3 never gives), which would make such tests flaky for a
    /// reason that is not condlock's. Otherwise it behaves as [`Self::start`]
    /// (auth mode off; the quirks in the crate docs apply).
    ///
    /// The interpreter is `<repo>/.venv/bin/python`, or `$CONDLOCK_MOTO_PYTHON`.
    pub fn start_atomic() -> MotoServer {
        let python = match std::env::var_os("CONDLOCK_MOTO_PYTHON") {
            Some(p) => PathBuf::from(p),
            None => repo_root().join(".venv/bin/python"),
        };
        require_installed(&python, "the venv's python (with moto)");
        let script = repo_root().join("tests/moto_atomic.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script).args(["-H", "127.0.0.1", "-p", "0"]);
        let (process, port) = ServerProcess::spawn("moto_atomic", cmd, Stream::Stdout, None, |l| {
            l.strip_prefix("LISTENING ")?.trim().parse().ok()
        });
        let server = MotoServer { process, port };
        server.wait_until_answering();
        server
    }

    fn wait_until_answering(&self) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let url = format!("{}/moto-api/data.json", self.endpoint());
            match http_request("GET", &url, &[], b"") {
                Ok(r) if r.status == 200 => return,
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50))
                }
                Ok(r) => panic!(
                    "moto_server answers {} on {url}\n{}",
                    r.status,
                    self.process.output()
                ),
                Err(e) => panic!(
                    "moto_server not answering on {url}: {e}\n{}",
                    self.process.output()
                ),
            }
        }
    }

    /// Starts moto, creates `bucket`, then turns on auth mode and returns an
    /// access key whose user may do `s3:*` on `*`.
    ///
    /// How (moto 5.2): `POST /moto-api/reset-auth`, body `3`,
    /// `Content-Type: text/plain` sets moto's "initial no-auth action count"
    /// to 3 and resets the counter. The next three actions are then free:
    /// IAM `CreateUser`, `CreateAccessKey`, `PutUserPolicy` (query API, form
    /// POST to `/`). They carry a dummy SigV4 `Authorization` header whose
    /// credential scope says `iam`: that is what routes them to IAM (moto has
    /// one endpoint for all services) — the signature itself is not checked.
    /// From the fourth action on, requests must be signed with the returned
    /// key. Checked before returning: a `GET /<bucket>` signed by an unknown
    /// key gets 403 `InvalidAccessKeyId`.
    pub fn start_with_auth(bucket: &str) -> (MotoServer, AccessKey) {
        let server = MotoServer::start();
        server.create_bucket(bucket);

        let ep = server.endpoint();
        let r = http_request(
            "POST",
            &format!("{ep}/moto-api/reset-auth"),
            &[("Content-Type", "text/plain")],
            b"3",
        )
        .expect("POST /moto-api/reset-auth");
        server.check(r.status == 200, "reset-auth", &r);

        let user = "condlock-test";
        let iam = |params: &[(&str, &str)]| -> HttpResponse {
            let mut all = params.to_vec();
            all.push(("Version", "2010-05-08"));
            let body = form_encode(&all);
            let r = http_request(
                "POST",
                &format!("{ep}/"),
                &[
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    ),
                    ("Authorization", MOTO_DUMMY_IAM_AUTHORIZATION),
                ],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("IAM {}: {e}", params[0].1));
            server.check(r.status == 200, params[0].1, &r);
            r
        };
        iam(&[("Action", "CreateUser"), ("UserName", user)]);
        let created = iam(&[("Action", "CreateAccessKey"), ("UserName", user)]).text();
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", user),
            ("PolicyName", "allow-all-s3"),
            ("PolicyDocument", policy),
        ]);
        let key = match (
            xml_text(&created, "AccessKeyId"),
            xml_text(&created, "SecretAccessKey"),
        ) {
            (Some(id), Some(secret)) => AccessKey {
                access_key_id: id.to_string(),
                secret_access_key: secret.to_string(),
            },
            _ => panic!("CreateAccessKey answer without a key: {created}"),
        };

        // Check that auth is on: a request signed by a key moto never issued
        // must get 403 InvalidAccessKeyId. (An *unsigned* request is no good
        // probe: moto 5.2.5 answers it with 500, see the crate docs.)
        let r = http_request(
            "GET",
            &format!("{ep}/{bucket}"),
            &[("Authorization", MOTO_DUMMY_AUTHORIZATION)],
            b"",
        )
        .expect("GET after enabling auth");
        server.check(
            r.status == 403 && r.text().contains("InvalidAccessKeyId"),
            "auth mode check (unknown key must get 403 InvalidAccessKeyId)",
            &r,
        );
        (server, key)
    }

    fn check(&self, ok: bool, what: &str, r: &HttpResponse) {
        if !ok {
            panic!(
                "moto {what}: unexpected {} {}\n{}",
                r.status,
                r.text(),
                self.process.output()
            );
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates `name` (path-style `PUT /name`). Only before auth mode is on.
    pub fn create_bucket(&self, name: &str) {
        let r = http_request(
            "PUT",
            &format!("{}/{name}", self.endpoint()),
            &[("Authorization", MOTO_DUMMY_AUTHORIZATION)],
            b"",
        )
        .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
        self.check(r.status == 200, &format!("create bucket {name}"), &r);
    }

    /// One call of moto's DynamoDB (JSON 1.0 protocol): `operation` such as
    /// `PutItem`, `body` its JSON input. Routed to DynamoDB by the credential
    /// scope of the `Authorization` header (auth mode off: not checked).
    pub fn dynamodb(&self, operation: &str, body: &str) -> HttpResponse {
        http_request(
            "POST",
            &format!("{}/", self.endpoint()),
            &[
                ("Authorization", MOTO_DUMMY_DYNAMODB_AUTHORIZATION),
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", &format!("DynamoDB_20120810.{operation}")),
            ],
            body.as_bytes(),
        )
        .unwrap_or_else(|e| panic!("DynamoDB {operation}: {e}"))
    }

    /// Creates Terraform's lock table: string hash key `key` (Terraform's is
    /// `LockID`; another name makes a table of the wrong shape).
    pub fn create_lock_table(&self, table: &str, key: &str) {
        let body = format!(
            r#"{{"TableName":"{table}","KeySchema":[{{"AttributeName":"{key}","KeyType":"HASH"}}],
            "AttributeDefinitions":[{{"AttributeName":"{key}","AttributeType":"S"}}],
            "BillingMode":"PAY_PER_REQUEST"}}"#
        );
        let r = self.dynamodb("CreateTable", &body);
        self.check(r.status == 200, &format!("create table {table}"), &r);
    }

    /// What the server wrote so far (last lines), for failure messages.
    pub fn output(&self) -> String {
        self.process.output()
    }
}

// ---------------------------------------------------------------------------
// Fault-injecting proxy
// ---------------------------------------------------------------------------

/// `tests/fault_proxy.py` in front of a store, killed on drop: an HTTP/1.1
/// reverse proxy that drops, resets, delays, stalls or answers errors for a
/// seeded random share of requests. See the script's docstring for `args`
/// (`--seed`, `--reset P`, `--drop-response P`, `--delay P:SECONDS`,
/// `--stall P`, `--status500 P`, `--slowdown P`, `--conflict P`,
/// `--only-method M`, `--only-header H`, ...).
///
/// Point the client at [`FaultProxy::endpoint`]; check the store itself at
/// its own endpoint (the proxy may fault the check too).
pub struct FaultProxy {
    process: ServerProcess,
    port: u16,
}

/// Fault counters from `GET /_proxy/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests seen (control requests excluded).
    pub requests: u64,
    /// Requests forwarded to the store (whether or not the answer was then dropped).
    pub forwarded: u64,
    /// `(fault name, count)`: `reset`, `drop_response`, `delay`, `stall`,
    /// `status500`, `slowdown`, `conflict`.
    pub faults: Vec<(String, u64)>,
}

impl FaultStats {
    /// How many times `fault` was injected (0 for an unknown name).
    pub fn count(&self, fault: &str) -> u64 {
        self.faults
            .iter()
            .find(|(k, _)| k == fault)
            .map_or(0, |(_, n)| *n)
    }

    /// All injected faults (delays included).
    pub fn total_faults(&self) -> u64 {
        self.faults.iter().map(|(_, n)| n).sum()
    }
}

impl FaultProxy {
    /// Runs `python3 tests/fault_proxy.py --upstream UPSTREAM --port 0 ARGS...`
    /// (interpreter overridable with `$CONDLOCK_PYTHON`) and waits for its
    /// `LISTENING <port>` line. `upstream` is `http://127.0.0.1:PORT`.
    pub fn start(upstream: &str, args: &[&str]) -> FaultProxy {
        let script = repo_root().join("tests/fault_proxy.py");
        require_installed(&script, "the fault proxy");
        let python = std::env::var_os("CONDLOCK_PYTHON").unwrap_or_else(|| "python3".into());
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .args(["--upstream", upstream, "--port", "0"])
            .args(args);
        let (process, port) = ServerProcess::spawn("fault_proxy", cmd, Stream::Stdout, None, |l| {
            l.strip_prefix("LISTENING ")?.trim().parse().ok()
        });
        FaultProxy { process, port }
    }

    /// `http://127.0.0.1:PORT` (the proxy's own address).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy's counters (`GET /_proxy/stats`, never faulted).
    pub fn stats(&self) -> FaultStats {
        let url = format!("{}/_proxy/stats", self.endpoint());
        let r = http_request("GET", &url, &[], b"")
            .unwrap_or_else(|e| panic!("GET {url}: {e}\n{}", self.output()));
        assert_eq!(r.status, 200, "GET {url}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("stats are not JSON ({e}): {}", r.text()));
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let faults = [
            "reset",
            "drop_response",
            "delay",
            "stall",
            "status500",
            "slowdown",
            "conflict",
        ]
        .iter()
        .map(|k| (k.to_string(), n(k)))
        .collect();
        FaultStats {
            requests: n("requests"),
            forwarded: n("forwarded"),
            faults,
        }
    }

    /// Replaces some settings at run time (`PUT /_proxy/config`), e.g.
    /// `{"stall": 0}` to stop stalling. Panics if the proxy refuses them.
    pub fn configure(&self, json: &str) {
        let url = format!("{}/_proxy/config", self.endpoint());
        let r = http_request("PUT", &url, &[], json.as_bytes())
            .unwrap_or_else(|e| panic!("PUT {url}: {e}\n{}", self.output()));
        assert_eq!(r.status, 200, "PUT {url} {json}: {}", r.text());
    }

    /// What the proxy wrote so far (one stderr line per fault).
    pub fn output(&self) -> String {
        self.process.output()
    }
}

// ---------------------------------------------------------------------------
// s3rver
// ---------------------------------------------------------------------------

/// An s3rver (npm) on `127.0.0.1` with one bucket, data in a temp dir; killed
/// and its temp dir removed on drop. It IGNORES conditional headers.
pub struct S3rver {
    process: ServerProcess,
    port: u16,
    data_dir: PathBuf,
}

impl S3rver {
    /// Runs `node tests/node_modules/.bin/s3rver -d TMP -a 127.0.0.1 -p 0
    /// --silent --configure-bucket BUCKET` and waits for its
    /// `S3rver listening on 127.0.0.1:PORT` line (printed even with --silent).
    pub fn start(bucket: &str) -> S3rver {
        let script = repo_root().join("tests/node_modules/.bin/s3rver");
        require_installed(&script, "s3rver");
        let node = std::env::var_os("CONDLOCK_NODE").unwrap_or_else(|| "node".into());
        let data_dir = unique_temp_dir("condlock-s3rver");
        let mut cmd = Command::new(node);
        cmd.arg(&script).arg("-d").arg(&data_dir).args([
            "-a",
            "127.0.0.1",
            "-p",
            "0",
            "--silent",
            "--configure-bucket",
            bucket,
        ]);
        let (process, port) =
            ServerProcess::spawn("s3rver", cmd, Stream::Stdout, Some(data_dir.clone()), |l| {
                port_after(l, "S3rver listening on ")
            });
        S3rver {
            process,
            port,
            data_dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where s3rver keeps its objects (removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn output(&self) -> String {
        self.process.output()
    }
}

// ---------------------------------------------------------------------------
// Apstra emulator
// ---------------------------------------------------------------------------

/// `tests/apstra_emulator.py` on a free port, killed on drop.
pub struct ApstraEmulator {
    process: ServerProcess,
    url: String,
}

impl ApstraEmulator {
    /// Runs `python3 tests/apstra_emulator.py --port 0 ARGS...` (interpreter
    /// overridable with `$CONDLOCK_PYTHON`) and waits for its `LISTENING <port>`
    /// stdout line. See the script's docstring for `ARGS` (`--user`,
    /// `--blueprint`, `--prefix`, `--token-ttl`, `--no-aaa-login`, TLS, ...).
    pub fn start(args: &[&str]) -> ApstraEmulator {
        let script = repo_root().join("tests/apstra_emulator.py");
        require_installed(&script, "the Apstra emulator");
        let python = std::env::var_os("CONDLOCK_PYTHON").unwrap_or_else(|| "python3".into());
        let mut cmd = Command::new(python);
        cmd.arg(&script).args(["--port", "0"]).args(args);
        let (process, port) =
            ServerProcess::spawn("apstra_emulator", cmd, Stream::Stdout, None, |l| {
                l.strip_prefix("LISTENING ")?.trim().parse().ok()
            });
        let arg = |name: &str| {
            args.iter()
                .position(|a| *a == name)
                .and_then(|i| args.get(i + 1).copied())
        };
        let scheme = if args.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        let host = arg("--host").unwrap_or("127.0.0.1");
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let prefix = arg("--prefix").unwrap_or("").trim_end_matches('/');
        ApstraEmulator {
            process,
            url: format!("{scheme}://{host}:{port}{prefix}"),
        }
    }

    /// Base URL a client is configured with: `http://127.0.0.1:PORT` plus the
    /// `--prefix` if one was given (`https` when `--tls-cert` was given).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn output(&self) -> String {
        self.process.output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports() {
        assert_eq!(
            port_after(" * Running on http://127.0.0.1:34673", "Running on http://"),
            Some(34673)
        );
        assert_eq!(
            port_after(
                "S3rver listening on 127.0.0.1:35019",
                "S3rver listening on "
            ),
            Some(35019)
        );
        assert_eq!(
            port_after("Press CTRL+C to quit", "Running on http://"),
            None
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        let r = parse_response(
            b"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 2\r\nETag: \"x\"\r\n\r\nokEXTRA",
            false,
        )
        .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("etag")),
            (412, &b"ok"[..], Some("\"x\""))
        );
    }

    #[test]
    fn form_and_xml() {
        assert_eq!(form_encode(&[("A", "b c/{\"}")]), "A=b%20c%2F%7B%22%7D");
        assert_eq!(xml_text("<a><B>x</B></a>", "B"), Some("x"));
    }
}
