//! One classifier for every Apstra response.
//!
//! The questions every machine asks: success? token expired (401)? the tag
//! already exists (422 + `already exists`, matched as a substring like the
//! SDK, never on the body's shape)? gone (404)? worth retrying (408, 429, 5xx,
//! with `Retry-After` honoured)? or final?

use std::time::Duration;

use http::Response;
use serde_json::Value;

use crate::sansio::Body;
use crate::secret::Secret;
use crate::time::Now;

/// The longest `Retry-After` honoured; longer values are capped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Error messages are cut to this many characters.
const MAX_MESSAGE: usize = 512;

/// What a response means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// 2xx.
    Success,
    /// 401: the token is missing, unknown or expired (at login: bad credentials).
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// 403: authenticated but not allowed.
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 404.
    NotFound {
        /// The server's message.
        message: String,
    },
    /// 405: the path exists but not with this method (an old login path).
    MethodNotAllowed,
    /// 422 whose body contains `already exists`: the mutex is held.
    AlreadyExists {
        /// The server's message.
        message: String,
    },
    /// 408, 429, 500, 502, 503, 504 and other 5xx: retry later.
    Transient {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// `Retry-After`, when the server sent a usable one (capped at
        /// [`MAX_RETRY_AFTER`]).
        retry_after: Option<Duration>,
    },
    /// Anything else: final.
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

impl Class {
    /// True for statuses after which the request may have been carried out
    /// even though it failed (5xx except 501: a proxy may have timed out on a
    /// request the server went on to process).
    pub fn maybe_applied(&self) -> bool {
        matches!(self, Class::Transient { status, .. } if *status >= 500 && *status != 501)
    }
}

/// Classify a response received at `now` (for `Retry-After` dates).
pub fn classify(resp: &Response<Body>, now: Now) -> Class {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Class::Success;
    }
    let message = error_message(resp);
    match status {
        401 => Class::Unauthorized { message },
        403 => Class::Forbidden { message },
        404 => Class::NotFound { message },
        405 => Class::MethodNotAllowed,
        422 if String::from_utf8_lossy(resp.body()).contains("already exists") => {
            Class::AlreadyExists { message }
        }
        408 | 429 | 500 | 502..=599 => Class::Transient {
            status,
            message,
            retry_after: retry_after(resp, now),
        },
        _ => Class::Rejected { status, message },
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (relative to `now.wall`).
pub fn retry_after(resp: &Response<Body>, now: Now) -> Option<Duration> {
    let value = resp
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now.wall).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A readable message from an error body: `{"errors": ...}` flattened
/// (`"label: Tag ... already exists"`), else the raw text, else the status
/// reason. Cut to a reasonable length.
pub fn error_message(resp: &Response<Body>) -> String {
    let body = resp.body();
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let inner = match &v {
                Value::Object(o) => o
                    .get("errors")
                    .or_else(|| o.get("error"))
                    .or_else(|| o.get("message"))
                    .or_else(|| o.get("detail"))
                    .unwrap_or(&v),
                _ => &v,
            };
            flatten(inner)
        }
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    let text = if text.is_empty() {
        resp.status()
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    } else {
        text
    };
    truncate(&text)
}

fn flatten(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(flatten).collect::<Vec<_>>().join("; "),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}", flatten(v)))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Replace every occurrence of the secret (and of its percent-encoded and
/// JSON-escaped forms) in a server message, so a server that echoes the login
/// body cannot make the password appear in an error.
pub fn scrub(text: &str, secret: &Secret) -> String {
    let s = secret.expose();
    if s.is_empty() {
        return text.to_string();
    }
    let encoded =
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let json = serde_json::to_string(s).unwrap_or_default();
    let json = json.trim_matches('"');
    let mut out = text.to_string();
    for form in [s, encoded.as_str(), json] {
        if !form.is_empty() {
            out = out.replace(form, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn classification_table() {
        let now = Now::virtual_origin();
        let c = |s, b: &str| classify(&resp(s, b, &[]), now);
        assert_eq!(c(201, r#"{"id":"x"}"#), Class::Success);
        assert_eq!(c(204, ""), Class::Success);
        assert!(matches!(c(401, ""), Class::Unauthorized { .. }));
        assert!(matches!(c(403, ""), Class::Forbidden { .. }));
        assert!(matches!(c(404, ""), Class::NotFound { .. }));
        assert_eq!(c(405, ""), Class::MethodNotAllowed);
        assert_eq!(
            c(
                422,
                r#"{"errors": {"label": "Tag with label 'blueprint x locked' already exists"}}"#
            ),
            Class::AlreadyExists {
                message: "label: Tag with label 'blueprint x locked' already exists".into()
            }
        );
        // The substring is what matters, not the shape.
        assert!(matches!(
            c(422, "tag already exists"),
            Class::AlreadyExists { .. }
        ));
        assert_eq!(
            c(
                422,
                r#"{"errors": {"label": "Length must be between 1 and 64."}}"#
            ),
            Class::Rejected {
                status: 422,
                message: "label: Length must be between 1 and 64.".into()
            }
        );
        // 200 with "already exists" in it is still a success.
        assert_eq!(c(200, "already exists"), Class::Success);
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(matches!(c(s, ""), Class::Transient { .. }), "{s}");
        }
        assert!(c(503, "").maybe_applied());
        assert!(!c(429, "").maybe_applied());
        assert!(matches!(c(501, ""), Class::Rejected { status: 501, .. }));
        assert!(matches!(c(400, "bad"), Class::Rejected { status: 400, .. }));
        assert!(matches!(c(409, ""), Class::Rejected { status: 409, .. }));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = Now::virtual_origin();
        let r = |v: &str| retry_after(&resp(503, "", &[("retry-after", v)]), now);
        assert_eq!(r("3"), Some(Duration::from_secs(3)));
        assert_eq!(r("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(r("99999"), Some(MAX_RETRY_AFTER));
        assert_eq!(r("-1"), None);
        assert_eq!(r("soon"), None);
        let at = httpdate::fmt_http_date(now.wall + Duration::from_secs(7));
        assert_eq!(r(&at), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now.wall - Duration::from_secs(7));
        assert_eq!(r(&past), Some(Duration::ZERO));
        assert_eq!(retry_after(&resp(503, "", &[]), now), None);
    }

    #[test]
    fn messages_are_flattened_and_cut() {
        let m = |b: &str| error_message(&resp(400, b, &[]));
        assert_eq!(
            m(r#"{"errors": "Invalid credentials"}"#),
            "Invalid credentials"
        );
        assert_eq!(m(r#"{"errors": ["a", "b"]}"#), "a; b");
        assert_eq!(m("plain text"), "plain text");
        assert_eq!(m(""), "Bad Request");
        assert!(m(&"x".repeat(5000)).len() < 600);
    }

    #[test]
    fn scrub_removes_every_form_of_the_secret() {
        let s = Secret::new("p@ss \"w\"");
        let text = r#"bad login for {"password": "p@ss \"w\""} / p%40ss%20%22w%22 / p@ss "w""#;
        let out = scrub(text, &s);
        assert!(!out.contains("p@ss"), "{out}");
        assert!(!out.contains("p%40ss"), "{out}");
    }
}
