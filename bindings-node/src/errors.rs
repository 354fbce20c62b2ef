//! `condlock::Error` -> a rejection the JavaScript layer turns into its
//! `LockError` subclass.
//!
//! The core decides the code, the fields and the message
//! ([`condlock::Error::explain`], in JavaScript's spelling). A napi-rs error
//! carries one string, so the error travels as JSON after [`MARKER`]; the
//! JavaScript layer (`errors.js`) maps the code to its class. A message
//! without the marker never comes from here.

use condlock::error::{Context, Kind, Spelling};
use condlock::Error;
use serde_json::{json, Map, Value};

use crate::values::{holder_json, lost_json};

/// Prefix of every error message that carries a core error as JSON.
pub const MARKER: &str = "\u{1}condlock-error:";

/// How JavaScript spells what the core's messages suggest.
pub struct JsSpelling(pub Kind);

impl Spelling for JsSpelling {
    fn force_unlock(&self, lock_id: Option<&str>) -> String {
        match (lock_id, self.0) {
            (Some(id), _) => format!("forceUnlock({})", Value::from(id)),
            (None, Kind::S3) => "forceUnlock(<lock ID>)".into(),
            (None, Kind::Apstra) => "forceUnlock()".into(),
        }
    }
    fn force_unlock_tag(&self, tag_id: &str) -> String {
        format!("ApstraClient.forceUnlockTag({})", Value::from(tag_id))
    }
    fn wait(&self) -> String {
        "acquire({ timeoutMs })".into()
    }
    fn skip_blueprint_wait(&self) -> String {
        "pass waitForBlueprintUnlock: false".into()
    }
    fn argument(&self, name: &str) -> String {
        format!("option {}", js_name(name))
    }
}

/// The JavaScript option named by one of the core's field names: camelCase,
/// with `Ms` on durations (JavaScript takes milliseconds). A field that is
/// an environment variable (`AWS_CONFIG_FILE`) is no option: kept as it is.
pub fn js_name(field: &str) -> String {
    if !field.chars().any(|c| c.is_ascii_lowercase()) {
        return field.to_string();
    }
    let ms = matches!(
        field,
        "lease"
            | "stale_after"
            | "max_poll_interval"
            | "timeout"
            | "request_timeout"
            | "connect_timeout"
            | "older_than"
    );
    let mut out = String::with_capacity(field.len() + 2);
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if ms {
        out.push_str("Ms");
    }
    out
}

/// What configuration errors raised before a lock exists are about (their
/// message names only the field).
pub fn no_context() -> Context {
    Context {
        kind: Kind::S3,
        target: "the lock".into(),
        endpoint: "?".into(),
    }
}

/// The rejection for a core error about `ctx`.
pub fn to_napi(err: Error, ctx: &Context) -> napi::Error {
    let mut fields = Map::new();
    fields.insert("code".into(), err.code().into());
    fields.insert(
        "message".into(),
        err.explain(ctx, &JsSpelling(ctx.kind)).into(),
    );
    if let Some(field) = err.field() {
        fields.insert("field".into(), js_name(field).into());
    }
    if let Some(h) = err.holder() {
        fields.insert("holder".into(), holder_json(h));
    } else if let Some(b) = err.blocker() {
        fields.insert("holder".into(), crate::values::blocker_json(b));
    }
    if let Some(waited) = err.waited() {
        fields.insert("waitedMs".into(), json!(waited.as_millis() as f64));
    }
    if let Some(reason) = err.lost_reason() {
        fields.insert("reason".into(), reason.kind().into());
        fields.insert("lost".into(), lost_json(reason));
    }
    if let Some((status, code)) = err.status_and_code() {
        fields.insert("status".into(), status.into());
        fields.insert("awsCode".into(), code.into());
    }
    if let Some((maybe_sent, permanent)) = err.transport_failure() {
        fields.insert("maybeSent".into(), maybe_sent.into());
        fields.insert("permanent".into(), permanent.into());
    }
    if let Some((endpoint, bucket)) = err.store() {
        fields.insert("endpoint".into(), endpoint.into());
        fields.insert("bucket".into(), bucket.into());
    }
    napi::Error::new(
        napi::Status::GenericFailure,
        format!("{MARKER}{}", Value::Object(fields)),
    )
}
