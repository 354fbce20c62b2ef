//! One classifier for every DynamoDB response, and reading the holder from
//! an item.
//!
//! DynamoDB answers errors with HTTP 400 (or 5xx) and a JSON body whose
//! `__type` ends in the error's name (`...#ConditionalCheckFailedException`);
//! the classes below are what each name means for a lock.

use http::Response;
use serde_json::Value;
use sha2::Digest as _;

use super::config::DynamoDbTable;
use crate::error::Error;
use crate::s3::response::Secrets;
use crate::s3::{Credentials, LockHolder, LockInfo, LockInfoError};
use crate::sansio::Body;

/// Error bodies beyond this size are not parsed.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The permissions the lock needs on the table, as IAM spells them.
pub const PERMISSIONS: &str = "dynamodb:GetItem, dynamodb:PutItem and dynamodb:DeleteItem";

/// What a DynamoDB response means for a lock operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Class {
    /// 200: the operation's output.
    Success(Value),
    /// `ConditionalCheckFailedException`: the item exists (PutItem), or is
    /// not ours (DeleteItem).
    ConditionFailed,
    /// `ResourceNotFoundException`: the table does not exist (here).
    TableMissing {
        /// The server's message.
        message: String,
    },
    /// Throttling (`ProvisionedThroughputExceededException`,
    /// `ThrottlingException`, `RequestLimitExceeded`), internal errors and
    /// every 5xx: retry with backoff.
    Transient {
        /// HTTP status.
        status: u16,
        /// Error name.
        code: String,
        /// Server message.
        message: String,
    },
    /// Our clock is too far from the server's (`InvalidSignatureException`:
    /// "Signature expired" or "Signature not yet current"): re-sign with the
    /// server's time, once known.
    ClockSkewed {
        /// The server's time, from the message or the `Date` header.
        server_time: Option<std::time::SystemTime>,
        /// The server's message.
        message: String,
    },
    /// Credentials refused or lacking permission: final.
    Denied {
        /// Error name.
        code: String,
        /// Server message.
        message: String,
    },
    /// Anything else (`ValidationException` among them): final.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Error name.
        code: String,
        /// Server message.
        message: String,
    },
}

/// Classify a response, with every secret of `credentials` struck from the
/// server's code and message: those texts reach errors and logs as they are,
/// and a hostile or buggy server can echo what we sent it.
pub(crate) fn classify_redacted(resp: &Response<Body>, credentials: &Credentials) -> Class {
    let secrets = Secrets::of_credentials(credentials);
    let r = |text: String| secrets.redact(text);
    match classify(resp) {
        Class::TableMissing { message } => Class::TableMissing {
            message: r(message),
        },
        Class::Transient {
            status,
            code,
            message,
        } => Class::Transient {
            status,
            code: r(code),
            message: r(message),
        },
        Class::ClockSkewed {
            server_time,
            message,
        } => Class::ClockSkewed {
            server_time,
            message: r(message),
        },
        Class::Denied { code, message } => Class::Denied {
            code: r(code),
            message: r(message),
        },
        Class::Rejected {
            status,
            code,
            message,
        } => Class::Rejected {
            status,
            code: r(code),
            message: r(message),
        },
        other => other,
    }
}

/// Classify a response.
pub fn classify(resp: &Response<Body>) -> Class {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return match serde_json::from_slice::<Value>(resp.body()) {
            Ok(v) => Class::Success(v),
            // An empty 200 (a proxy?) carries no item: read as an empty output.
            Err(_) if resp.body().iter().all(u8::is_ascii_whitespace) => {
                Class::Success(Value::Object(Default::default()))
            }
            Err(e) => Class::Rejected {
                status,
                code: "MalformedResponse".into(),
                message: format!("a 200 whose body is not JSON ({e})"),
            },
        };
    }
    let (code, message) = error_fields(resp);
    if code == "InvalidSignatureException"
        && (message.contains("Signature expired") || message.contains("Signature not yet current"))
    {
        let server_time = server_time_in(&message).or_else(|| {
            resp.headers()
                .get(http::header::DATE)
                .and_then(|d| d.to_str().ok())
                .and_then(|d| httpdate::parse_http_date(d).ok())
        });
        return Class::ClockSkewed {
            server_time,
            message,
        };
    }
    match code.as_str() {
        "ConditionalCheckFailedException" => Class::ConditionFailed,
        "ResourceNotFoundException" => Class::TableMissing { message },
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "TransactionConflictException" => Class::Transient {
            status,
            code,
            message,
        },
        c if crate::error::is_dynamodb_denial(c) || status == 403 => {
            Class::Denied { code, message }
        }
        _ if status >= 500 || status == 429 => Class::Transient {
            status,
            code,
            message,
        },
        _ => Class::Rejected {
            status,
            code,
            message,
        },
    }
}

/// The server's time in DynamoDB's skew message: "Signature expired:
/// 20260101T000000Z is now earlier than 20260101T001500Z (20260101T002000Z -
/// 5 min.)" names it in parentheses, compact ISO 8601.
fn server_time_in(message: &str) -> Option<std::time::SystemTime> {
    let inside = message.rsplit_once('(')?.1;
    let t = inside.split_whitespace().next()?;
    let b = t.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13],
        &t[13..15]
    );
    humantime::parse_rfc3339_weak(&iso).ok()
}

/// The error name (after `#` in `__type`, else the `x-amzn-ErrorType`
/// header) and message of an error response.
fn error_fields(resp: &Response<Body>) -> (String, String) {
    let parsed = if resp.body().len() <= MAX_ERROR_BODY {
        serde_json::from_slice::<Value>(resp.body()).ok()
    } else {
        None
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let from_body = parsed.as_ref().and_then(|v| text(v.get("__type")));
    let from_header = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        // `Name:http://internal.amazon.com/...`
        .map(|v| v.split(':').next().unwrap_or(v).to_string());
    let code = from_body
        .or(from_header)
        .map(|t| t.rsplit('#').next().unwrap_or(&t).to_string())
        .unwrap_or_else(|| format!("HTTP{}", resp.status().as_u16()));
    let message = parsed
        .as_ref()
        .and_then(|v| text(v.get("message")).or_else(|| text(v.get("Message"))))
        .unwrap_or_else(|| {
            resp.status()
                .canonical_reason()
                .unwrap_or("no message")
                .to_string()
        });
    (code, message)
}

impl Class {
    /// The caller-facing error of a final class, about `table`.
    pub fn into_error(self, table: &DynamoDbTable) -> Error {
        match self {
            Class::TableMissing { message } => Error::config(
                "dynamodb_table",
                format!(
                    "table {:?} does not exist at {} ({message}); create it with a string hash \
                     key named LockID, or fix dynamodb_table",
                    table.table(),
                    table.endpoint_display()
                ),
            ),
            Class::ClockSkewed { message, .. } => Error::AccessDenied {
                code: "InvalidSignatureException".into(),
                message: format!(
                    "{message} (our clock is too far from the server's, and signing with \
                     the server's time did not help: check this machine's clock)"
                ),
            },
            Class::Denied { code, message } => Error::AccessDenied {
                code,
                message: format!(
                    "{message} (DynamoDB table {}: the credentials need {PERMISSIONS})",
                    table.table()
                ),
            },
            Class::Transient {
                status,
                code,
                message,
            } => Error::Server {
                status,
                code,
                message,
            },
            Class::Rejected {
                status,
                code,
                message,
            } if code == "ValidationException" => Error::Rejected {
                status,
                code,
                message: format!(
                    "{message} (table {}: Terraform's lock table has a string hash key named \
                     LockID and no sort key; is this that table?)",
                    table.table()
                ),
            },
            Class::Rejected {
                status,
                code,
                message,
            } => Error::Rejected {
                status,
                code,
                message,
            },
            Class::ConditionFailed => Error::Rejected {
                status: 400,
                code: "ConditionalCheckFailedException".into(),
                message: "the condition did not hold".into(),
            },
            Class::Success(_) => Error::Misuse("a success is not an error"),
        }
    }
}

/// What a `GetItem` found: `None` when there is no item.
pub struct Found {
    /// The `Info` attribute exactly as stored (a delete is conditioned on it).
    pub info: Option<String>,
    /// The holder read from it.
    pub holder: LockHolder,
}

/// Read the item of a `GetItem` output.
pub fn found_item(output: &Value) -> Result<Option<Found>, Error> {
    let Some(item) = output.get("Item") else {
        return Ok(None);
    };
    if !item.is_object() {
        return Err(Error::malformed("GetItem: Item is not an object"));
    }
    let info = item
        .get("Info")
        .and_then(|v| v.get("S"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let holder = match &info {
        Some(text) => holder_of(text),
        None => LockHolder {
            info: Err(LockInfoError::NotLockJson(
                "the item has no string attribute Info".into(),
            )),
            etag: item_identity(""),
            last_modified: None,
        },
    };
    Ok(Some(Found { info, holder }))
}

/// The holder described by an item's `Info`. The item has no ETag: its
/// place (which only tells holders apart) is taken by a digest of `Info`.
pub fn holder_of(info: &str) -> LockHolder {
    LockHolder {
        info: LockInfo::parse(info.as_bytes()),
        etag: item_identity(info),
        last_modified: None,
    }
}

fn item_identity(info: &str) -> String {
    let digest = sha2::Sha256::digest(info.as_bytes());
    format!("dynamodb-item-{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, ty: &str, message: &str) -> Response<Body> {
        Response::builder()
            .status(status)
            .body(
                serde_json::json!({"__type": ty, "message": message})
                    .to_string()
                    .into_bytes(),
            )
            .unwrap()
    }

    fn table() -> DynamoDbTable {
        DynamoDbTable::new("tf-locks", None, "us-east-1").unwrap()
    }

    #[test]
    fn every_error_name_has_its_class() {
        let p = "com.amazonaws.dynamodb.v20120810#";
        assert_eq!(
            classify(&error(
                400,
                &format!("{p}ConditionalCheckFailedException"),
                "x"
            )),
            Class::ConditionFailed
        );
        for throttled in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            assert!(
                matches!(
                    classify(&error(400, &format!("{p}{throttled}"), "slow down")),
                    Class::Transient { .. }
                ),
                "{throttled}"
            );
        }
        assert!(matches!(
            classify(&error(500, "InternalServerError", "oops")),
            Class::Transient { status: 500, .. }
        ));
        assert!(matches!(
            classify(&error(503, "", "")),
            Class::Transient { .. }
        ));
        assert!(matches!(
            classify(&error(400, &format!("{p}AccessDeniedException"), "no")),
            Class::Denied { .. }
        ));
        assert!(matches!(
            classify(&error(
                400,
                "com.amazon.coral.service#UnrecognizedClientException",
                "?"
            )),
            Class::Denied { .. }
        ));
        assert!(matches!(
            classify(&error(400, &format!("{p}ValidationException"), "bad key")),
            Class::Rejected { .. }
        ));
    }

    #[test]
    fn final_errors_say_what_to_do() {
        let p = "com.amazonaws.dynamodb.v20120810#";
        let missing = classify(&error(
            400,
            &format!("{p}ResourceNotFoundException"),
            "Requested resource not found",
        ))
        .into_error(&table());
        assert_eq!(missing.code(), "invalid_config");
        assert_eq!(missing.field(), Some("dynamodb_table"));
        assert!(missing.to_string().contains("\"tf-locks\""), "{missing}");
        assert!(missing.to_string().contains("LockID"), "{missing}");

        let denied = classify(&error(400, &format!("{p}AccessDeniedException"), "User: x"))
            .into_error(&table());
        assert_eq!(denied.code(), "access_denied");
        for perm in [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
        ] {
            assert!(denied.to_string().contains(perm), "{denied}");
        }

        let wrong_key = classify(&error(
            400,
            &format!("{p}ValidationException"),
            "One of the required keys was not given a value",
        ))
        .into_error(&table());
        assert_eq!(wrong_key.code(), "rejected");
        assert!(
            wrong_key.to_string().contains("hash key named LockID"),
            "{wrong_key}"
        );
    }

    #[test]
    fn a_skewed_signature_names_the_servers_time() {
        let resp = error(
            400,
            "com.amazon.coral.service#InvalidSignatureException",
            "Signature expired: 20260101T000000Z is now earlier than 20260101T001500Z \
             (20260101T002000Z - 5 min.)",
        );
        let Class::ClockSkewed { server_time, .. } = classify(&resp) else {
            panic!("{:?}", classify(&resp));
        };
        let expected = humantime::parse_rfc3339("2026-01-01T00:20:00Z").unwrap();
        assert_eq!(server_time, Some(expected));
        // Another signature problem stays a denial.
        let wrong = error(
            400,
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        );
        assert!(matches!(classify(&wrong), Class::Denied { .. }));
    }

    #[test]
    fn secrets_echoed_by_the_server_are_struck() {
        let creds = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: crate::secret::Secret::from("the-secret-key"),
            session_token: Some(crate::secret::Secret::from("the-session-token")),
        };
        let resp = error(
            400,
            "AccessDeniedException",
            "denied for the-session-token signed with the-secret-key",
        );
        let err = classify_redacted(&resp, &creds).into_error(&table());
        let text = err.to_string();
        assert!(!text.contains("the-session-token"), "{text}");
        assert!(!text.contains("the-secret-key"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn the_header_names_the_error_when_the_body_does_not() {
        let resp = Response::builder()
            .status(400)
            .header(
                "x-amzn-ErrorType",
                "ConditionalCheckFailedException:http://internal.amazon.com/coral/",
            )
            .body(Vec::new())
            .unwrap();
        assert_eq!(classify(&resp), Class::ConditionFailed);
    }

    #[test]
    fn an_item_written_by_terraform_is_its_holder() {
        let info = r#"{"ID":"5c2b1f70-0c2b-7b8e-4c1d-0a8e6f1b2c3d","Operation":"OperationTypeApply","Info":"","Who":"alice@ci","Version":"1.9.8","Created":"2026-01-02T03:04:05.123456789Z","Path":"b/k"}"#;
        let out = serde_json::json!({"Item": {"LockID": {"S": "b/k"}, "Info": {"S": info}}});
        let found = found_item(&out).unwrap().unwrap();
        assert_eq!(found.info.as_deref(), Some(info));
        assert_eq!(
            found.holder.id(),
            Some("5c2b1f70-0c2b-7b8e-4c1d-0a8e6f1b2c3d")
        );
        assert!(found.holder.to_string().contains("alice@ci"));
        assert!(found_item(&serde_json::json!({})).unwrap().is_none());
        let no_info = found_item(&serde_json::json!({"Item": {"LockID": {"S": "b/k"}}}))
            .unwrap()
            .unwrap();
        assert!(no_info.info.is_none());
        assert!(no_info.holder.info.is_err());
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Whatever a server answers, classifying it and reading an item
            /// from it end in a class or an error, never a panic.
            #[test]
            fn whatever_the_server_answers(
                status in 100u16..600,
                body in prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..200),
                    "[ -~]{0,80}".prop_map(String::into_bytes),
                    Just(br#"{"Item":{"LockID":{"S":"b/k"},"Info":{"S":"{"}}}"#.to_vec()),
                    Just(br#"{"Item":{"Info":{"S":7}}}"#.to_vec()),
                    Just(br#"{"Item":[]}"#.to_vec()),
                    Just(br##"{"__type":"#","message":null}"##.to_vec()),
                ],
                error_type in prop::option::of("[ -~]{0,40}"),
            ) {
                let mut b = Response::builder().status(status);
                if let Some(t) = &error_type {
                    b = b.header("x-amzn-errortype", t.as_str());
                }
                let resp = b.body(body).unwrap();
                let class = classify(&resp);
                if let Class::Success(output) = &class {
                    let _ = found_item(output);
                }
                let _ = class.into_error(&table()).to_string();
            }
        }
    }
}
