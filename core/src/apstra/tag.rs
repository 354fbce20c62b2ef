//! The mutex tag: its label, its description with condlock's holder token, and
//! reading tags back from the design catalog.
//!
//! The Terraform provider and the web UI show a tag's description as is, so it
//! must stay readable: condlock writes the human message, then a space, then a
//! short holder token in brackets:
//!
//! ```text
//! locked by alice@ci (condlock) at 2026-11-22 03:26:23.96 +0000 UTC [condlock:4f9c2a1b7e03]
//! ```
//!
//! The token is random per acquisition. It is how a client recognises its own
//! tag after a lost response (a create that timed out, then a 422 whose tag
//! carries our token, means the first create landed), and how an administrator
//! tells condlock's tags from the provider's.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::config::{LABEL_PREFIX, LABEL_SUFFIX};
use crate::error::Error;

/// The marker that opens a holder token in a description.
pub const TOKEN_OPEN: &str = "[condlock:";
/// The marker that closes it.
pub const TOKEN_CLOSE: &str = "]";

/// Bodies of tag lists beyond this size are refused.
pub const MAX_LIST_BODY: usize = 8 * 1024 * 1024;

/// The blueprint ID of a mutex label (`blueprint <ID> locked`, matched
/// exactly: one space each side, an ID without white space), or `None` for any
/// other label.
pub fn blueprint_of_label(label: &str) -> Option<&str> {
    let id = label
        .strip_prefix(LABEL_PREFIX)?
        .strip_suffix(LABEL_SUFFIX)?;
    if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(id)
}

/// A short random token naming one acquisition (12 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HolderToken(String);

impl HolderToken {
    /// The token for 6 random bytes (the core has no randomness of its own).
    pub fn from_random(bytes: [u8; 6]) -> Self {
        HolderToken(hex::encode(bytes))
    }

    /// A token read back from a description: 8 to 32 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (8..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| HolderToken(text.to_ascii_lowercase()))
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HolderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The description condlock writes: the message exactly as given (trailing
/// spaces included), a space, `[condlock:<token>]`.
pub fn compose_description(message: &str, token: &HolderToken) -> String {
    if message.is_empty() {
        format!("{TOKEN_OPEN}{token}{TOKEN_CLOSE}")
    } else {
        format!("{message} {TOKEN_OPEN}{token}{TOKEN_CLOSE}")
    }
}

/// Split a description into the human message and condlock's token, if it
/// ends with one. The message is returned exactly as it was composed: only
/// the one space [`compose_description`] put before the token is removed.
pub fn split_description(description: &str) -> (&str, Option<HolderToken>) {
    // White space after the token is tolerated (a server may add some);
    // white space inside the message is the holder's and is kept.
    let trimmed = description.trim_end();
    if let Some(inner) = trimmed.strip_suffix(TOKEN_CLOSE) {
        if let Some(open) = inner.rfind(TOKEN_OPEN) {
            if let Some(token) = HolderToken::parse(&inner[open + TOKEN_OPEN.len()..]) {
                let message = &inner[..open];
                return (message.strip_suffix(' ').unwrap_or(message), Some(token));
            }
        }
    }
    (description, None)
}

/// A blueprint mutex found in the design catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MutexTag {
    /// The tag ID (what unlocking deletes).
    pub id: String,
    /// The locked blueprint's ID, from the label.
    pub blueprint: String,
    /// The label, `blueprint <ID> locked`.
    pub label: String,
    /// The description exactly as stored: the holder's message.
    pub description: String,
    /// The description without condlock's token.
    pub message: String,
    /// condlock's holder token, when a condlock client created the tag.
    pub token: Option<HolderToken>,
    /// `created_at` exactly as the server sent it.
    pub created_at: Option<String>,
    /// `created_at` parsed, when it could be.
    pub created: Option<SystemTime>,
    /// How old the tag was when it was read: our wall clock minus `created`.
    /// Only as good as the agreement between our clock and the server's.
    pub age: Option<Duration>,
}

impl MutexTag {
    /// True when a condlock client created this tag.
    pub fn carries_token(&self) -> bool {
        self.token.is_some()
    }

    /// True when this is the tag of the acquisition with `token`.
    pub fn is_ours(&self, token: &HolderToken) -> bool {
        self.token.as_ref() == Some(token)
    }

    /// True when the tag is known to be older than `older_than`. A tag whose
    /// creation time is unknown is never called stale.
    pub fn is_stale(&self, older_than: Duration) -> bool {
        self.age.is_some_and(|a| a > older_than)
    }

    /// Read a tag object; `None` when its label is not a blueprint mutex.
    pub(crate) fn from_raw(raw: RawTag, now: SystemTime) -> Option<MutexTag> {
        let blueprint = blueprint_of_label(&raw.label)?.to_string();
        let (message, token) = split_description(&raw.description);
        let message = message.to_string();
        let created = raw.created_at.as_deref().and_then(parse_timestamp);
        let age = created.map(|c| now.duration_since(c).unwrap_or(Duration::ZERO));
        Some(MutexTag {
            id: raw.id,
            blueprint,
            label: raw.label,
            description: raw.description,
            message,
            token,
            created_at: raw.created_at,
            created,
            age,
        })
    }
}

impl fmt::Display for MutexTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (tag {}", self.description, self.id)?;
        if let Some(c) = &self.created_at {
            write!(f, ", created {c}")?;
        }
        if let Some(age) = self.age {
            let secs = Duration::from_secs(age.as_secs());
            write!(f, ", {} ago", humantime::format_duration(secs))?;
        }
        if self.token.is_none() {
            f.write_str(", not created by condlock")?;
        }
        f.write_str(")")
    }
}

/// A design tag as the API returns it; missing or `null` fields are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawTag {
    pub id: String,
    pub label: String,
    pub description: String,
    pub created_at: Option<String>,
}

fn string_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RawTag {
    pub(crate) fn from_value(v: &Value) -> Option<RawTag> {
        let obj = v.as_object()?;
        Some(RawTag {
            id: string_field(obj, "id")?,
            label: string_field(obj, "label").unwrap_or_default(),
            description: string_field(obj, "description").unwrap_or_default(),
            created_at: string_field(obj, "created_at").filter(|s| !s.is_empty()),
        })
    }
}

/// Parse `GET /api/design/tags`: `{"items": [...]}` (a bare list is accepted
/// too). Items without an `id` are skipped.
pub(crate) fn parse_tag_list(body: &[u8]) -> Result<Vec<RawTag>, Error> {
    if body.len() > MAX_LIST_BODY {
        return Err(Error::malformed(format!(
            "the tag list is {} bytes, more than {MAX_LIST_BODY}",
            body.len()
        )));
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| Error::malformed(format!("the tag list is not JSON: {e}")))?;
    let items = match &doc {
        Value::Object(o) => o.get("items").and_then(Value::as_array),
        Value::Array(a) => Some(a),
        _ => None,
    }
    .ok_or_else(|| Error::malformed("the tag list has no \"items\" array"))?;
    Ok(items.iter().filter_map(RawTag::from_value).collect())
}

/// Parse one tag object (`GET /api/design/tags/{id}`).
pub(crate) fn parse_tag(body: &[u8]) -> Result<RawTag, Error> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| Error::malformed(format!("the tag is not JSON: {e}")))?;
    RawTag::from_value(&doc).ok_or_else(|| Error::malformed("the tag object has no \"id\""))
}

/// The mutex tags in a list whose label is a blueprint mutex.
pub(crate) fn mutexes(tags: Vec<RawTag>, now: SystemTime) -> Vec<MutexTag> {
    tags.into_iter()
        .filter_map(|t| MutexTag::from_raw(t, now))
        .collect()
}

/// Parse a server timestamp: RFC 3339 / ISO 8601 with `Z`, a numeric offset
/// (`+00:00`, `+0000`) or none (taken as UTC); `T` or a space between date and
/// time; any fraction.
pub fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    // Split off a numeric offset after the time part.
    let (body, offset_secs) = match text.rfind(['+', '-']) {
        Some(i) if i > 10 => {
            let (b, off) = text.split_at(i);
            let sign: i64 = if off.starts_with('-') { -1 } else { 1 };
            let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            (b, sign * (h * 3600 + m * 60))
        }
        _ => (text, 0),
    };
    let body = body.trim_end_matches(['Z', 'z']);
    let t = humantime::parse_rfc3339_weak(body).ok()?;
    if offset_secs >= 0 {
        t.checked_sub(Duration::from_secs(offset_secs as u64))
    } else {
        t.checked_add(Duration::from_secs(offset_secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_exactly() {
        assert_eq!(blueprint_of_label("blueprint abc-1 locked"), Some("abc-1"));
        for not in [
            "blueprint  abc locked",
            "blueprint abc  locked",
            "blueprint abc locked ",
            " blueprint abc locked",
            "Blueprint abc locked",
            "blueprint  locked",
            "blueprint locked",
            "blueprint a b locked",
            "blueprint abc unlocked",
            "xblueprint abc locked",
        ] {
            assert_eq!(blueprint_of_label(not), None, "{not:?}");
        }
    }

    #[test]
    fn descriptions_round_trip_and_stay_readable() {
        let token = HolderToken::from_random([0x4f, 0x9c, 0x2a, 0x1b, 0x7e, 0x03]);
        assert_eq!(token.as_str(), "4f9c2a1b7e03");
        let d = compose_description(
            "locked by terraform at 2026-11-22 03:26:23 +0000 UTC",
            &token,
        );
        assert_eq!(
            d,
            "locked by terraform at 2026-11-22 03:26:23 +0000 UTC [condlock:4f9c2a1b7e03]"
        );
        assert_eq!(
            split_description(&d),
            (
                "locked by terraform at 2026-11-22 03:26:23 +0000 UTC",
                Some(token.clone())
            )
        );
        assert_eq!(compose_description("", &token), "[condlock:4f9c2a1b7e03]");
        assert_eq!(
            split_description("[condlock:4f9c2a1b7e03]"),
            ("", Some(token))
        );
        // The provider's own description carries no token.
        let plain = "locked by terraform at 2026-11-22 03:26:23 +0000 UTC";
        assert_eq!(split_description(plain), (plain, None));
        // Lookalikes are not tokens.
        for fake in [
            "x [condlock:xyz]",
            "x [condlock:1234]",
            "x [condlock:4f9c2a1b7e03] trailing",
            "x [condlock:]",
        ] {
            assert_eq!(split_description(fake).1, None, "{fake}");
        }
    }

    #[test]
    fn trailing_spaces_of_the_message_are_kept() {
        let token = HolderToken::from_random([0x4f, 0x9c, 0x2a, 0x1b, 0x7e, 0x03]);
        for message in ["deploy  ", " ", "a\t", "  both  "] {
            let d = compose_description(message, &token);
            assert_eq!(d, format!("{message} [condlock:4f9c2a1b7e03]"));
            assert_eq!(split_description(&d), (message, Some(token.clone())));
        }
        // A description without our token is the message, spaces and all.
        assert_eq!(split_description("by hand  "), ("by hand  ", None));
    }

    #[test]
    fn tag_lists_are_read_leniently() {
        let body = br#"{"items": [
            {"id": "t1", "label": "blueprint bp1 locked", "description": "hi [condlock:0123456789ab]",
             "created_at": "2026-11-22T03:00:00.000000Z", "last_modified_at": null},
            {"id": 7, "label": "blueprint bp2 locked", "description": null},
            {"label": "no id"},
            {"id": "t3", "label": "prod", "description": "not a mutex"},
            "garbage"
        ]}"#;
        let raw = parse_tag_list(body).unwrap();
        assert_eq!(raw.len(), 3);
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_316_400 + 90);
        let m = mutexes(raw, now);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].blueprint, "bp1");
        assert_eq!(m[0].message, "hi");
        assert!(m[0].carries_token());
        assert_eq!(m[0].age, Some(Duration::from_secs(90)));
        assert!(m[0].is_stale(Duration::from_secs(60)));
        assert!(!m[0].is_stale(Duration::from_secs(120)));
        assert_eq!(m[1].id, "7");
        assert_eq!(m[1].description, "");
        assert_eq!(m[1].age, None);
        assert!(!m[1].is_stale(Duration::ZERO));
        assert!(m[1].to_string().contains("not created by condlock"));
        assert!(parse_tag_list(b"[]").unwrap().is_empty());
        assert!(parse_tag_list(b"{}").is_err());
        assert!(parse_tag_list(b"<html>").is_err());
    }

    #[test]
    fn timestamps_in_several_shapes() {
        let want = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_316_400);
        for text in [
            "2026-11-22T03:00:00Z",
            "2026-11-22T03:00:00.000000Z",
            "2026-11-22T03:00:00",
            "2026-11-22 03:00:00",
            "2026-11-22T03:00:00+00:00",
            "2026-11-22T05:00:00+02:00",
            "2026-11-22T01:30:00-0130",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2026-11-22T03:00:00+2"), None);
    }
}
