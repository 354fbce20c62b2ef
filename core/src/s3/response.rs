//! One classifier for every S3 response, shared by all operations.
//!
//! Each state machine asks the same question of a response: did it succeed,
//! did the precondition fail, is it worth retrying, or is it final? Answering
//! it in one place keeps the operations consistent (a 409 is a retry
//! everywhere, a 412 is never an error by itself) and makes the table testable.

use std::time::SystemTime;

use base64::Engine as _;
use http::Response;

use super::config::{Credentials, Encryption, S3LockConfig};
use crate::error::Error;
use crate::sansio::Body;

/// What replaces a secret found in a server's error code or message.
pub const REDACTED: &str = "[redacted]";

/// Error bodies beyond this size are not parsed (a store answering with a
/// megabyte of XML is not telling us anything useful).
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// The fields of an S3 XML error body we use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3ErrorBody {
    /// `<Code>`.
    pub code: String,
    /// `<Message>`.
    pub message: String,
    /// `<ServerTime>` of `RequestTimeTooSkewed`.
    pub server_time: Option<String>,
    /// `<Region>` of region errors.
    pub region: Option<String>,
}

/// What a response means for a lock operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// 2xx.
    Success {
        /// `ETag` header, exactly as sent.
        etag: Option<String>,
        /// `Last-Modified` header.
        last_modified: Option<String>,
    },
    /// 412 PreconditionFailed, or 304 Not Modified (Cloudflare R2's answer to a
    /// failed `If-None-Match`): the condition did not hold.
    PreconditionFailed,
    /// 409 ConditionalRequestConflict (or another 409): a concurrent write won
    /// the race; retry.
    Conflict,
    /// 404 NoSuchKey (or a 404 without a body).
    NoSuchKey,
    /// 404 NoSuchBucket.
    NoSuchBucket,
    /// 501, or 400 with `NotImplemented`: the store refuses the request's
    /// feature (e.g. conditional DELETE).
    NotImplemented {
        /// Error code.
        code: String,
        /// Server message.
        message: String,
    },
    /// Our clock is too far from the server's; resign with the server time.
    ClockSkewed {
        /// The server's time, when the body or `Date` header told it.
        server_time: Option<SystemTime>,
    },
    /// The bucket is in another region.
    WrongRegion {
        /// The region the server named (header `x-amz-bucket-region` or body).
        region: Option<String>,
    },
    /// 403 and credential errors: final.
    Denied {
        /// Error code.
        code: String,
        /// Server message.
        message: String,
    },
    /// 429, 503 SlowDown, 500, 502, 504...: retry with backoff.
    Transient {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Server message.
        message: String,
    },
    /// Anything else: final.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Server message.
        message: String,
    },
}

impl ResponseClass {
    /// Turn a final class into the caller-facing error.
    pub fn into_error(self, bucket: &str, region: &str) -> Error {
        match self {
            ResponseClass::Denied { code, message } => Error::AccessDenied { code, message },
            ResponseClass::NoSuchBucket => Error::NoSuchBucket {
                bucket: bucket.to_string(),
            },
            ResponseClass::WrongRegion { region: actual } => Error::WrongRegion {
                bucket: bucket.to_string(),
                configured: region.to_string(),
                actual,
            },
            ResponseClass::Transient {
                status,
                code,
                message,
            } => Error::Server {
                status,
                code,
                message,
            },
            ResponseClass::Conflict => Error::Server {
                status: 409,
                code: "ConditionalRequestConflict".into(),
                message: "concurrent writes kept conflicting until the deadline".into(),
            },
            ResponseClass::ClockSkewed { .. } => Error::Rejected {
                status: 403,
                code: "RequestTimeTooSkewed".into(),
                message: "the clock is still too far from the server's after correction".into(),
            },
            ResponseClass::NotImplemented { code, message } => Error::Rejected {
                status: 501,
                code,
                message,
            },
            ResponseClass::Rejected {
                status,
                code,
                message,
            } => Error::Rejected {
                status,
                code,
                message,
            },
            ResponseClass::NoSuchKey => Error::Rejected {
                status: 404,
                code: "NoSuchKey".into(),
                message: "the lock object does not exist".into(),
            },
            ResponseClass::PreconditionFailed => Error::Rejected {
                status: 412,
                code: "PreconditionFailed".into(),
                message: "precondition failed".into(),
            },
            ResponseClass::Success { .. } => Error::Misuse("a success is not an error"),
        }
    }
}

impl ResponseClass {
    /// The same class with every secret in `secrets` struck from the server's
    /// code and message. Those texts reach errors and logs as they are, and a
    /// hostile or buggy server can echo what we sent it, session token and
    /// SSE-C key included.
    pub(crate) fn redacted(self, secrets: &Secrets) -> Self {
        let r = |text: String| secrets.redact(text);
        match self {
            ResponseClass::NotImplemented { code, message } => ResponseClass::NotImplemented {
                code: r(code),
                message: r(message),
            },
            ResponseClass::Denied { code, message } => ResponseClass::Denied {
                code: r(code),
                message: r(message),
            },
            ResponseClass::Transient {
                status,
                code,
                message,
            } => ResponseClass::Transient {
                status,
                code: r(code),
                message: r(message),
            },
            ResponseClass::Rejected {
                status,
                code,
                message,
            } => ResponseClass::Rejected {
                status,
                code: r(code),
                message: r(message),
            },
            ResponseClass::WrongRegion { region } => ResponseClass::WrongRegion {
                region: region.map(r),
            },
            other => other,
        }
    }
}

/// The secrets a server could echo back, in every form we send or hold them:
/// the secret access key and session token (as given, and base64-encoded),
/// the SSE-C key (base64, as sent in its header, and its raw bytes when they
/// happen to be text).
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// The secrets of requests signed with `credentials` for `config`.
    pub(crate) fn of(config: &S3LockConfig, credentials: &Credentials) -> Self {
        let Secrets(mut all) = Secrets::of_credentials(credentials);
        if let Encryption::CustomerKey(key) = config.encryption() {
            let encoded = key.key_base64().expose();
            all.push(encoded.to_string());
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded) {
                if let Ok(text) = String::from_utf8(raw) {
                    all.push(text);
                }
            }
        }
        all.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is struck whole.
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets(all)
    }

    /// The secrets of requests signed with `credentials` (the secret key and
    /// session token, as sent and base64-encoded), longest first.
    pub(crate) fn of_credentials(credentials: &Credentials) -> Self {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut all = Vec::new();
        let mut add_with_base64 = |s: &str| {
            all.push(s.to_string());
            all.push(b64(s));
        };
        add_with_base64(credentials.secret_access_key.expose());
        if let Some(token) = &credentials.session_token {
            add_with_base64(token.expose());
        }
        all.retain(|s| !s.is_empty());
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets(all)
    }

    /// `text` with every secret struck out.
    pub(crate) fn redact(&self, mut text: String) -> String {
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

/// [`classify`], with our secrets struck from whatever text the server sent
/// (see [`ResponseClass::redacted`]). What every state machine uses.
pub(crate) fn classify_redacted(
    resp: &Response<Body>,
    config: &S3LockConfig,
    credentials: &Credentials,
) -> ResponseClass {
    classify(resp).redacted(&Secrets::of(config, credentials))
}

/// Classify a response. Never panics, whatever the body.
pub fn classify(resp: &Response<Body>) -> ResponseClass {
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if (200..300).contains(&status) {
        return ResponseClass::Success {
            etag: header("etag"),
            last_modified: header("last-modified"),
        };
    }
    let body = parse_error_body(resp.body());
    let code = body.code.clone();
    let message = if body.message.is_empty() {
        resp.status().canonical_reason().unwrap_or("").to_string()
    } else {
        body.message.clone()
    };
    match (status, code.as_str()) {
        (304, _) | (412, _) => ResponseClass::PreconditionFailed,
        (409, "ConditionalRequestConflict") | (409, "OperationAborted") => ResponseClass::Conflict,
        (404, "NoSuchBucket") => ResponseClass::NoSuchBucket,
        (404, "NoSuchKey") | (404, "") => ResponseClass::NoSuchKey,
        (_, "RequestTimeTooSkewed") => ResponseClass::ClockSkewed {
            server_time: body
                .server_time
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok())
                .or_else(|| header("date").and_then(|d| httpdate::parse_http_date(&d).ok())),
        },
        (301, _)
        | (307, _)
        | (_, "PermanentRedirect")
        | (_, "AuthorizationHeaderMalformed")
        | (_, "IllegalLocationConstraintException") => ResponseClass::WrongRegion {
            region: header("x-amz-bucket-region").or(body.region),
        },
        (501, _) | (_, "NotImplemented") => ResponseClass::NotImplemented { code, message },
        (403, _)
        | (401, _)
        | (_, "AccessDenied")
        | (_, "InvalidAccessKeyId")
        | (_, "SignatureDoesNotMatch")
        | (_, "ExpiredToken")
        | (_, "InvalidToken")
        | (_, "TokenRefreshRequired") => ResponseClass::Denied {
            code: if code.is_empty() {
                "AccessDenied".into()
            } else {
                code
            },
            message,
        },
        (409, _) => ResponseClass::Conflict,
        (429, _)
        | (500..=599, _)
        | (_, "SlowDown")
        | (_, "InternalError")
        | (_, "RequestTimeout") => ResponseClass::Transient {
            status,
            code,
            message,
        },
        _ => ResponseClass::Rejected {
            status,
            code,
            message,
        },
    }
}

/// Read the interesting fields of an S3 XML error body, leniently: a missing,
/// truncated, huge or non-XML body gives empty fields.
pub fn parse_error_body(body: &[u8]) -> S3ErrorBody {
    if body.is_empty() || body.len() > MAX_ERROR_BODY {
        return S3ErrorBody::default();
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return S3ErrorBody::default();
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return S3ErrorBody::default();
    };
    let root = doc.root_element();
    let field = |name: &str| {
        root.children()
            .find(|n| n.is_element() && n.tag_name().name() == name)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
    };
    S3ErrorBody {
        code: field("Code").unwrap_or_default(),
        message: field("Message").unwrap_or_default(),
        server_time: field("ServerTime"),
        region: field("Region"),
    }
}
