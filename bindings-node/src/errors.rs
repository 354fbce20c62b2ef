//! `condlock::Error` -> a rejection the JavaScript layer turns into its
//! `LockError` subclass.
//!
//! The core decides the code, the fields and the message
//! ([`condlock::Error::explain`], in JavaScript's spelling). A napi-rs error
//! carries one string, so the error travels as JSON after [`MARKER`]; the
//! JavaScript layer (`errors.js`) maps the code to its class. A message
//! without the marker never comes from here.

use condlock::error::{js_option_name, Context, JavaScript, Kind};
use condlock::Error;
use serde_json::{json, Map, Value};

use crate::values::{holder_json, lost_json};

/// Prefix of every error message that carries a core error as JSON.
pub const MARKER: &str = "\u{1}condlock-error:";

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
        err.explain(ctx, &JavaScript(ctx.kind)).into(),
    );
    if let Some(field) = err.field() {
        fields.insert("field".into(), js_option_name(field).into());
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
