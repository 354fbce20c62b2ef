//! Shared pieces of the fuzz targets: arbitrary HTTP responses (raw, or
//! shaped like what S3 and Apstra send so the machines get past their first
//! parse), and a driver that runs any [`Machine`] on a virtual clock with
//! fuzzer-chosen events.
//!
//! The property every target checks is the core's promise: whatever a server
//! sends, parsing and classification return a value or an error, never a
//! panic; a machine answers every event with an action and, once cancelled,
//! finishes.

use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use condlock::{Action, Event, Machine, Now};
use http::{HeaderName, HeaderValue, Response};

/// The lock ID bytes our S3 acquisitions use, so response bodies can claim
/// the lock is ours (the machines then take their "it is ours" paths).
pub const OUR_LOCK_ID: [u8; 16] = [0xab; 16];
/// The same as text.
pub const OUR_LOCK_ID_TEXT: &str = "abababab-abab-abab-abab-abababababab";
/// The Apstra holder token our acquisitions use (12 hex digits).
pub const OUR_TOKEN: [u8; 6] = [0x4f, 0x9c, 0x2a, 0x1b, 0x7e, 0x03];
/// The blueprint the Apstra machines lock.
pub const BLUEPRINT: &str = "bp-1";

/// A status code: usually one the classifiers care about, sometimes any
/// value `http` accepts (100 to 999).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum FuzzStatus {
    /// One of the statuses with a meaning in the classifiers.
    Known(u8),
    /// Anything.
    Any(u16),
}

const KNOWN_STATUSES: [u16; 22] = [
    200, 201, 204, 301, 304, 307, 400, 401, 403, 404, 405, 408, 409, 412, 422, 429, 500, 501, 502,
    503, 504, 599,
];

impl FuzzStatus {
    /// The status as a number accepted by `http`.
    pub fn code(self) -> u16 {
        match self {
            FuzzStatus::Known(i) => KNOWN_STATUSES[i as usize % KNOWN_STATUSES.len()],
            FuzzStatus::Any(n) => 100 + n % 900,
        }
    }
}

/// A header name: one the core reads, or anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzHeaderName {
    /// `ETag`.
    Etag,
    /// `Last-Modified`.
    LastModified,
    /// `Date`.
    Date,
    /// `Retry-After`.
    RetryAfter,
    /// `x-amz-bucket-region`.
    BucketRegion,
    /// `Content-Type`.
    ContentType,
    /// Any name (skipped when `http` refuses it).
    Other(String),
}

/// A header value: a few shapes the core parses, or any bytes.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzHeaderValue {
    /// One of a few ETags, so successive responses agree or differ.
    Etag(u8),
    /// An HTTP date this many seconds from the virtual origin.
    HttpDate(i32),
    /// Delay-seconds.
    Seconds(u32),
    /// An HTTP date this many seconds after 1970 (up to the end of 9999).
    HttpDateAbs(u64),
    /// Any bytes (skipped when `http` refuses them; non-UTF-8 allowed).
    Raw(Vec<u8>),
}

/// The last second the servers' date formats can write: 9999-12-31T23:59:59Z.
pub const LAST_SECOND: u64 = 253_402_300_799;

fn epoch_plus(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.min(LAST_SECOND))
}

/// A timestamp as a server writes one (`<ServerTime>`): RFC 3339 for any
/// second from 1970 to the end of 9999, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzTime {
    /// RFC 3339, this many seconds after 1970 (capped at [`LAST_SECOND`]).
    Rfc3339(u64),
    /// Any text.
    Any(String),
}

impl FuzzTime {
    fn text(&self) -> String {
        match self {
            FuzzTime::Rfc3339(secs) => {
                let secs = (*secs).min(LAST_SECOND);
                let (y, m, d) = civil_from_days((secs / 86_400) as i64);
                let rem = secs % 86_400;
                format!(
                    "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
                    rem / 3600,
                    rem % 3600 / 60,
                    rem % 60
                )
            }
            FuzzTime::Any(s) => s.clone(),
        }
    }
}

/// An S3 error `<Code>`: one the classifier knows, or anything.
#[derive(Arbitrary, Debug, Clone)]
pub enum S3Code {
    /// A known code.
    Known(u8),
    /// Any text.
    Any(String),
}

const S3_CODES: [&str; 16] = [
    "NoSuchKey",
    "NoSuchBucket",
    "PreconditionFailed",
    "ConditionalRequestConflict",
    "OperationAborted",
    "RequestTimeTooSkewed",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "NotImplemented",
    "AccessDenied",
    "ExpiredToken",
    "SlowDown",
    "InternalError",
    "RequestTimeout",
    "InvalidArgument",
    "",
];

impl S3Code {
    fn text(&self) -> &str {
        match self {
            S3Code::Known(i) => S3_CODES[*i as usize % S3_CODES.len()],
            S3Code::Any(s) => s,
        }
    }
}

/// A `LockInfo`-shaped body.
#[derive(Arbitrary, Debug, Clone)]
pub struct LockBody {
    /// Claim our lock ID (else `other`).
    pub ours: bool,
    /// The ID when not ours.
    pub other: String,
    /// `Who`.
    pub who: String,
    /// `Created`.
    pub created: String,
    /// `Lease`: (DurationMs, Generation, Renewals).
    pub lease: Option<(u64, u64, u64)>,
}

/// An Apstra tag object.
#[derive(Arbitrary, Debug, Clone)]
pub struct TagBody {
    /// `id`, or none.
    pub id: Option<String>,
    /// Label `blueprint bp-1 locked` (else `label`).
    pub our_label: bool,
    /// The label otherwise.
    pub label: String,
    /// Description ending with our token (else `description` as is).
    pub our_token: bool,
    /// The description (or the message before our token).
    pub description: String,
    /// `created_at`.
    pub created_at: Option<String>,
}

/// A response body: raw bytes or one of the shapes the servers send.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzBody {
    /// Any bytes.
    Raw(Vec<u8>),
    /// `<Error><Code>..</Code><Message>..</Message>...</Error>`.
    S3Error {
        /// `<Code>`.
        code: S3Code,
        /// `<Message>`.
        message: String,
        /// `<ServerTime>`.
        server_time: Option<FuzzTime>,
        /// `<Region>`.
        region: Option<String>,
    },
    /// A lock file body.
    Lock(LockBody),
    /// `{"items": [tags]}`.
    TagList(Vec<TagBody>),
    /// One tag object.
    Tag(TagBody),
    /// A blueprint lock-status.
    LockStatus {
        /// `lock_status` selector (`unlocked`, `locked`, ... or `other`).
        status: u8,
        /// Any other `lock_status` text.
        other: String,
        /// `user_id`.
        user_id: String,
    },
    /// A login response.
    Login {
        /// `token`.
        token: String,
        /// `id`.
        id: Option<String>,
    },
    /// `{"errors": "..."}` (with `already exists` when asked).
    Errors {
        /// Append ` already exists`.
        exists: bool,
        /// The text.
        text: String,
    },
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` as a JSON string literal.
fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl TagBody {
    fn json(&self) -> String {
        let mut fields = Vec::new();
        if let Some(id) = &self.id {
            fields.push(format!("\"id\":{}", json(id)));
        }
        let label = if self.our_label {
            format!("blueprint {BLUEPRINT} locked")
        } else {
            self.label.clone()
        };
        fields.push(format!("\"label\":{}", json(&label)));
        let description = if self.our_token {
            format!("{} [condlock:{}]", self.description, hex(&OUR_TOKEN))
        } else {
            self.description.clone()
        };
        fields.push(format!("\"description\":{}", json(&description)));
        if let Some(c) = &self.created_at {
            fields.push(format!("\"created_at\":{}", json(c)));
        }
        format!("{{{}}}", fields.join(","))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl FuzzBody {
    /// The body bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            FuzzBody::Raw(b) => b.clone(),
            FuzzBody::S3Error {
                code,
                message,
                server_time,
                region,
            } => {
                let mut x = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>",
                    xml_escape(code.text()),
                    xml_escape(message)
                );
                if let Some(t) = server_time {
                    x += &format!("<ServerTime>{}</ServerTime>", xml_escape(&t.text()));
                }
                if let Some(r) = region {
                    x += &format!("<Region>{}</Region>", xml_escape(r));
                }
                x += "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
                x.into_bytes()
            }
            FuzzBody::Lock(l) => {
                let id = if l.ours {
                    OUR_LOCK_ID_TEXT
                } else {
                    l.other.as_str()
                };
                let mut j = format!(
                    "{{\"ID\":{},\"Operation\":\"OperationTypeApply\",\"Info\":\"\",\"Who\":{},\"Version\":\"1.11.4\",\"Created\":{},\"Path\":\"tfstate/k\"",
                    json(id),
                    json(&l.who),
                    json(&l.created)
                );
                if let Some((d, g, r)) = l.lease {
                    j += &format!(
                        ",\"Lease\":{{\"DurationMs\":{d},\"Generation\":{g},\"Renewed\":\"2026-11-22T03:00:00Z\",\"Renewals\":{r}}}"
                    );
                }
                j += "}";
                j.into_bytes()
            }
            FuzzBody::TagList(tags) => {
                let items: Vec<String> = tags.iter().map(TagBody::json).collect();
                format!("{{\"items\":[{}]}}", items.join(",")).into_bytes()
            }
            FuzzBody::Tag(t) => t.json().into_bytes(),
            FuzzBody::LockStatus {
                status,
                other,
                user_id,
            } => {
                let s = match status % 6 {
                    0 => "unlocked",
                    1 => "locked",
                    2 => "locked_by_admin",
                    3 => "locked_by_deleted_user",
                    4 => "locked_by_restricted_user",
                    _ => other.as_str(),
                };
                format!(
                    "{{\"lock_status\":{},\"lock_type\":\"session\",\"username\":\"u\",\"user_id\":{},\"possible_override\":false}}",
                    json(s),
                    json(user_id)
                )
                .into_bytes()
            }
            FuzzBody::Login { token, id } => match id {
                Some(id) => format!("{{\"token\":{},\"id\":{}}}", json(token), json(id)),
                None => format!("{{\"token\":{}}}", json(token)),
            }
            .into_bytes(),
            FuzzBody::Errors { exists, text } => {
                let text = if *exists {
                    format!("{text} already exists")
                } else {
                    text.clone()
                };
                format!("{{\"errors\":{}}}", json(&text)).into_bytes()
            }
        }
    }
}

/// An arbitrary response.
#[derive(Arbitrary, Debug, Clone)]
pub struct FuzzResponse {
    /// Status.
    pub status: FuzzStatus,
    /// Headers, in order (invalid names or values are skipped).
    pub headers: Vec<(FuzzHeaderName, FuzzHeaderValue)>,
    /// Body.
    pub body: FuzzBody,
}

/// The virtual origin every target starts from.
pub fn origin() -> Now {
    Now::virtual_origin()
}

/// `origin` shifted by `secs` (saturating at the ends of `SystemTime`).
pub fn wall_at(secs: i64) -> SystemTime {
    let base = origin().wall;
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 {
        base.checked_add(d)
    } else {
        base.checked_sub(d)
    };
    t.unwrap_or(base)
}

fn http_date(secs: i32) -> String {
    let t = wall_at(secs as i64);
    // httpdate cannot format dates before 1970.
    if t < SystemTime::UNIX_EPOCH {
        return "Thu, 01 Jan 1970 00:00:00 GMT".into();
    }
    httpdate_fmt(t)
}

fn httpdate_fmt(t: SystemTime) -> String {
    // A tiny formatter keeps the fuzz crate's dependencies to the core's.
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .min(253_402_300_799);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        d,
        MO[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl FuzzResponse {
    /// The `http::Response`.
    pub fn build(&self) -> Response<Vec<u8>> {
        let mut resp = Response::new(self.body.bytes());
        *resp.status_mut() =
            http::StatusCode::from_u16(self.status.code()).unwrap_or(http::StatusCode::IM_A_TEAPOT);
        for (name, value) in &self.headers {
            let name = match name {
                FuzzHeaderName::Etag => http::header::ETAG,
                FuzzHeaderName::LastModified => http::header::LAST_MODIFIED,
                FuzzHeaderName::Date => http::header::DATE,
                FuzzHeaderName::RetryAfter => http::header::RETRY_AFTER,
                FuzzHeaderName::BucketRegion => HeaderName::from_static("x-amz-bucket-region"),
                FuzzHeaderName::ContentType => http::header::CONTENT_TYPE,
                FuzzHeaderName::Other(n) => match HeaderName::from_bytes(n.as_bytes()) {
                    Ok(n) => n,
                    Err(_) => continue,
                },
            };
            let value = match value {
                FuzzHeaderValue::Etag(i) => {
                    HeaderValue::from_str(&format!("\"etag-{}\"", i % 4)).ok()
                }
                FuzzHeaderValue::HttpDate(s) => HeaderValue::from_str(&http_date(*s)).ok(),
                FuzzHeaderValue::HttpDateAbs(s) => {
                    HeaderValue::from_str(&httpdate_fmt(epoch_plus(*s))).ok()
                }
                FuzzHeaderValue::Seconds(s) => HeaderValue::from_str(&s.to_string()).ok(),
                FuzzHeaderValue::Raw(b) => HeaderValue::from_bytes(b).ok(),
            };
            if let Some(v) = value {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}

/// What the fuzzer does at one step of a machine.
#[derive(Arbitrary, Debug, Clone)]
pub enum FuzzEvent {
    /// Answer the request (after `latency_ms` on both clocks).
    Respond {
        /// Time the request took.
        latency_ms: u16,
        /// The answer.
        response: FuzzResponse,
    },
    /// The request failed in transport.
    TransportFailed,
    /// The caller cancels (the previous action is not carried out).
    Cancel,
    /// Our wall clock jumps by this many seconds (not the monotonic clock),
    /// then the next event is taken.
    WallJump(i32),
}

/// Step `machine` to the end with `events`; when they run out, cancel and
/// keep failing requests: the machine must finish. Panics (a finding) when
/// the machine sleeps into the past or does not finish after cancellation.
pub fn drive<M: Machine>(machine: &mut M, u: &mut Unstructured<'_>) {
    let mut now = origin();
    let mut event = Event::Start;
    let mut cancelled = false;
    for _ in 0..10_000 {
        let action = machine.step(event, now);
        let mut fuzz = next_event(u);
        while let Some(FuzzEvent::WallJump(secs)) = fuzz {
            now.wall = shift(now.wall, secs as i64);
            fuzz = next_event(u);
        }
        event = match (action, fuzz) {
            (Action::Done(result), _) => {
                // Stepping a finished machine is a misuse error, not a panic.
                if let Action::Done(r) = machine.step(Event::TimerFired, now) {
                    assert!(r.is_err(), "a finished machine succeeded again");
                } else {
                    panic!("a finished machine asked for more work");
                }
                let _ = result.map_err(|e| e.to_string());
                return;
            }
            (Action::SleepUntil(t), fuzz) => {
                assert!(t >= now.monotonic, "sleep into the past: {t:?} < {now:?}");
                if matches!(fuzz, Some(FuzzEvent::Cancel)) && !cancelled {
                    cancelled = true;
                    Event::Cancelled
                } else {
                    now = advance(now, t - now.monotonic);
                    Event::TimerFired
                }
            }
            (Action::Send(req), fuzz) => {
                let _ = format!("{req:?}");
                match fuzz {
                    Some(FuzzEvent::Respond {
                        latency_ms,
                        response,
                    }) => {
                        now = advance(now, Duration::from_millis(latency_ms as u64));
                        Event::Response(response.build())
                    }
                    Some(FuzzEvent::Cancel) if !cancelled => {
                        cancelled = true;
                        Event::Cancelled
                    }
                    None if !cancelled => {
                        cancelled = true;
                        Event::Cancelled
                    }
                    _ => {
                        now = advance(now, Duration::from_millis(100));
                        Event::TransportFailed(condlock::sansio::TransportFailure::maybe_sent(
                            "connection reset",
                        ))
                    }
                }
            }
        };
    }
    panic!("the machine did not finish within 10000 steps (cancelled: {cancelled})");
}

fn next_event(u: &mut Unstructured<'_>) -> Option<FuzzEvent> {
    if u.is_empty() {
        None
    } else {
        FuzzEvent::arbitrary(u).ok()
    }
}

fn advance(now: Now, d: Duration) -> Now {
    Now::new(
        now.wall.checked_add(d).unwrap_or(now.wall),
        now.monotonic.saturating_add(d),
    )
}

fn shift(t: SystemTime, secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        t.checked_add(d)
    } else {
        t.checked_sub(d)
    }
    .unwrap_or(t)
}
