//! Terraform's `LockInfo`: the JSON body of an S3 lock file.
//!
//! Terraform writes compact JSON with Go field names in this order:
//! `ID, Operation, Info, Who, Version, Created, Path`. We write exactly that, so
//! a Terraform user who meets our lock sees a normal lock. Parsing is lenient the
//! way Go's decoder is (missing fields and `null` become empty, unknown fields
//! are ignored) but refuses anything that is not a JSON object, with an error
//! rather than a panic.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::time::format_go_rfc3339_nano;

/// The biggest lock body we agree to parse. Terraform's bodies are ~250 bytes.
pub const MAX_LOCK_BODY: usize = 64 * 1024;

/// The longest `Info` we write, in bytes: room for a sentence or two, and a
/// lock body that stays far below [`MAX_LOCK_BODY`] (Terraform's are ~250 bytes).
pub const MAX_INFO_LEN: usize = 4096;

/// The longest `Who` and `Operation` we write, in bytes.
pub const MAX_WHO_LEN: usize = 1024;

/// Check the holder-supplied LockInfo fields before a lock is written.
///
/// Control characters (C0, DEL, C1) are refused: whoever finds the lock held
/// reads these fields on a terminal, where they would rewrite the screen
/// (`ESC`, `CSI`) or forge extra lines. The size caps keep our own lock body
/// readable by [`LockInfo::parse`].
pub fn validate_holder_fields(operation: &str, info: &str, who: &str) -> Result<(), Error> {
    for (field, value, max) in [
        ("operation", operation, MAX_WHO_LEN),
        ("info", info, MAX_INFO_LEN),
        ("who", who, MAX_WHO_LEN),
    ] {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(Error::config(
                field,
                format!(
                    "contains the control character {c:?}: use printable text \
                     (it is shown to whoever finds the lock held)"
                ),
            ));
        }
        if value.len() > max {
            return Err(Error::config(
                field,
                format!(
                    "is {} bytes; at most {max} bytes ({} KiB) are allowed",
                    value.len(),
                    max / 1024
                ),
            ));
        }
    }
    Ok(())
}

/// Terraform's lock information, field for field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Unique lock ID, UUID-shaped.
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    pub id: String,
    /// What the holder is doing (`OperationTypeApply`, or free text).
    #[serde(rename = "Operation", default, deserialize_with = "nullable")]
    pub operation: String,
    /// Free-form details from the holder.
    #[serde(rename = "Info", default, deserialize_with = "nullable")]
    pub info: String,
    /// `user@hostname` of the holder.
    #[serde(rename = "Who", default, deserialize_with = "nullable")]
    pub who: String,
    /// Version of the tool that wrote the lock.
    #[serde(rename = "Version", default, deserialize_with = "nullable")]
    pub version: String,
    /// RFC 3339 creation time (UTC, nanoseconds, as Go writes it).
    #[serde(rename = "Created", default, deserialize_with = "nullable")]
    pub created: String,
    /// `<bucket>/<state key>` (the state, not the lock file).
    #[serde(rename = "Path", default, deserialize_with = "nullable")]
    pub path: String,
    /// condlock's lease, written after Terraform's seven fields (Terraform
    /// ignores unknown fields). Absent on locks without a lease, such as
    /// Terraform's own.
    #[serde(
        rename = "Lease",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_lease"
    )]
    pub lease: Option<LeaseInfo>,
}

/// The lease a holder recorded in its lock body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// How long the lock stays valid without renewal, in milliseconds.
    #[serde(rename = "DurationMs")]
    pub duration_ms: u64,
    /// Fencing generation: 1 for a fresh lock, the previous holder's + 1 on
    /// each takeover.
    #[serde(rename = "Generation")]
    pub generation: u64,
    /// Wall time of the last renewal (informational: nobody trusts another
    /// machine's clock for expiry).
    #[serde(rename = "Renewed")]
    pub renewed: String,
    /// Renewals so far. Every renewal changes the body, hence the ETag, which
    /// is what waiters watch to see that the holder is alive.
    #[serde(rename = "Renewals")]
    pub renewals: u64,
}

impl LeaseInfo {
    /// The lease duration.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.duration_ms)
    }
}

/// A malformed `Lease` (another tool's field of the same name, say) is treated
/// as no lease rather than making the whole lock unreadable.
fn lenient_lease<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LeaseInfo>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Why a lock body could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockInfoError {
    /// The body is larger than [`MAX_LOCK_BODY`].
    #[error("lock body is {0} bytes, more than the {MAX_LOCK_BODY} a lock file can reasonably be")]
    TooLarge(usize),
    /// The body is not a JSON object with string fields.
    #[error("lock body is not Terraform lock JSON: {0}")]
    NotLockJson(String),
}

impl LockInfo {
    /// A new lock description. `random` supplies the ID's 16 random bytes (the
    /// core has no randomness of its own); `created` is the wall time.
    pub fn new(
        random: [u8; 16],
        operation: impl Into<String>,
        info: impl Into<String>,
        who: impl Into<String>,
        path: impl Into<String>,
        created: SystemTime,
    ) -> Self {
        LockInfo {
            id: format_lock_id(random),
            operation: operation.into(),
            info: info.into(),
            who: who.into(),
            version: concat!("condlock-", env!("CARGO_PKG_VERSION")).to_string(),
            created: format_go_rfc3339_nano(created),
            path: path.into(),
            lease: None,
        }
    }

    /// The body as Terraform writes it: compact JSON, Go field order.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parse a lock body, leniently as Go does, never panicking.
    pub fn parse(body: &[u8]) -> Result<LockInfo, LockInfoError> {
        if body.len() > MAX_LOCK_BODY {
            return Err(LockInfoError::TooLarge(body.len()));
        }
        // serde would also accept a JSON array for a struct; Go would not.
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(LockInfoError::NotLockJson("not a JSON object".into()));
        }
        serde_json::from_slice::<LockInfo>(body)
            .map_err(|e| LockInfoError::NotLockJson(e.to_string()))
    }
}

/// Format 16 random bytes as Terraform's UUID-shaped lock ID (8-4-4-4-12 hex).
pub fn format_lock_id(random: [u8; 16]) -> String {
    uuid::Uuid::from_bytes(random).hyphenated().to_string()
}

impl LockInfo {
    /// `Created` as a time, when it is a readable RFC 3339 timestamp.
    pub fn created_time(&self) -> Option<std::time::SystemTime> {
        crate::apstra::tag::parse_timestamp(&self.created)
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (ID {}",
            display_or(&self.who, "unknown holder"),
            self.id
        )?;
        if !self.operation.is_empty() {
            write!(f, ", operation {}", self.operation)?;
        }
        if !self.created.is_empty() {
            write!(f, ", created {}", self.created)?;
        }
        if !self.info.is_empty() {
            write!(f, ", info {:?}", self.info)?;
        }
        f.write_str(")")
    }
}

fn display_or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() {
        fallback
    } else {
        s
    }
}

/// The current holder of a lock as read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// The parsed body, or why it could not be parsed (someone wrote a lock
    /// file that is not Terraform JSON).
    pub info: Result<LockInfo, LockInfoError>,
    /// The lock object's ETag, exactly as the server sent it (quotes included).
    pub etag: String,
    /// The `Last-Modified` header, as sent.
    pub last_modified: Option<String>,
}

impl LockHolder {
    /// The holder's lock ID, if the body could be parsed.
    pub fn id(&self) -> Option<&str> {
        self.info.as_ref().ok().map(|i| i.id.as_str())
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.info {
            Ok(info) => write!(f, "{info}"),
            Err(e) => write!(f, "an unreadable lock (ETag {}: {e})", self.etag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TERRAFORM_1_11_4: &str = r#"{"ID":"6e2f9a53-fdfb-3451-f77a-25cd696a5968","Operation":"OperationTypeApply","Info":"","Who":"root@vm","Version":"1.11.4","Created":"2026-11-22T03:26:23.961866795Z","Path":"tfstate/envs/dev/terraform.tfstate"}"#;

    #[test]
    fn created_reads_as_a_time_with_its_nanoseconds() {
        let info = LockInfo::parse(TERRAFORM_1_11_4.as_bytes()).unwrap();
        let t = info.created_time().unwrap();
        let since = t.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(since, Duration::new(1_795_317_983, 961_866_795));
        let garbage = LockInfo {
            created: "yesterday".into(),
            ..info
        };
        assert_eq!(garbage.created_time(), None);
    }

    #[test]
    fn terraform_golden_body_round_trips_byte_for_byte() {
        let info = LockInfo::parse(TERRAFORM_1_11_4.as_bytes()).unwrap();
        assert_eq!(info.id, "6e2f9a53-fdfb-3451-f77a-25cd696a5968");
        assert_eq!(info.path, "tfstate/envs/dev/terraform.tfstate");
        assert_eq!(String::from_utf8(info.to_json()).unwrap(), TERRAFORM_1_11_4);
    }

    #[test]
    fn new_lock_looks_like_terraforms() {
        let created = SystemTime::UNIX_EPOCH + Duration::new(1_795_317_983, 961_866_795);
        let info = LockInfo::new(
            [
                0x6e, 0x2f, 0x9a, 0x53, 0xfd, 0xfb, 0x34, 0x51, 0xf7, 0x7a, 0x25, 0xcd, 0x69, 0x6a,
                0x59, 0x68,
            ],
            "OperationTypeApply",
            "",
            "root@vm",
            "tfstate/envs/dev/terraform.tfstate",
            created,
        );
        let json = String::from_utf8(info.to_json()).unwrap();
        let expected = TERRAFORM_1_11_4.replace(
            r#""Version":"1.11.4""#,
            &format!(r#""Version":"condlock-{}""#, env!("CARGO_PKG_VERSION")),
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn lenient_like_go_missing_null_and_unknown_fields() {
        let info =
            LockInfo::parse(br#"{"ID":"x","Who":null,"Lease":{"a":1},"Extra":[1,2]}"#).unwrap();
        assert_eq!(info.id, "x");
        assert_eq!(info.who, "");
        assert_eq!(LockInfo::parse(b"{}").unwrap(), LockInfo::default());
    }

    #[test]
    fn lease_fields_follow_terraforms_seven_and_are_optional() {
        let mut info = LockInfo::parse(TERRAFORM_1_11_4.as_bytes()).unwrap();
        assert_eq!(info.lease, None);
        info.lease = Some(LeaseInfo {
            duration_ms: 30_000,
            generation: 2,
            renewed: "2026-11-22T03:26:53Z".into(),
            renewals: 1,
        });
        let json = String::from_utf8(info.to_json()).unwrap();
        let (terraform_part, lease_part) = json.split_at(TERRAFORM_1_11_4.len() - 1);
        assert_eq!(format!("{terraform_part}}}"), TERRAFORM_1_11_4);
        assert_eq!(
            lease_part,
            r#","Lease":{"DurationMs":30000,"Generation":2,"Renewed":"2026-11-22T03:26:53Z","Renewals":1}}"#
        );
        assert_eq!(LockInfo::parse(json.as_bytes()).unwrap(), info);
        // Someone else's "Lease" of another shape: no lease, lock still readable.
        let odd = LockInfo::parse(br#"{"ID":"x","Lease":"forever"}"#).unwrap();
        assert_eq!((odd.id.as_str(), odd.lease), ("x", None));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for body in [
            &b""[..],
            b"null",
            b"[]",
            b"\"ID\"",
            b"{\"ID\":",
            b"{\"ID\":42}",
            b"\xff\xfe\x00",
            b"<Error><Code>NoSuchKey</Code></Error>",
        ] {
            assert!(
                matches!(LockInfo::parse(body), Err(LockInfoError::NotLockJson(_))),
                "{body:?}"
            );
        }
        let huge = vec![b' '; MAX_LOCK_BODY + 1];
        assert_eq!(
            LockInfo::parse(&huge),
            Err(LockInfoError::TooLarge(MAX_LOCK_BODY + 1))
        );
        let deep = "[".repeat(60_000);
        assert!(LockInfo::parse(deep.as_bytes()).is_err());
    }
}
