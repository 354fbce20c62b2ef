//! `condlock::Error` -> a JavaScript `Error` carrying the core's code,
//! message and structured fields; the package's JS layer (`errors.js`) turns
//! it into the class of that code (`LockHeld`, `LockTimeout`...). The message
//! is the core's [`Error::explain`], in JavaScript's spelling.

use condlock::error::{Context, Kind, Spelling};
use condlock::s3::{LockHolder, LockInfo};
use condlock::Error;
use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

/// How JavaScript spells what the core's messages suggest.
pub struct JsSpelling;

impl Spelling for JsSpelling {
    fn force_unlock(&self, lock_id: Option<&str>) -> String {
        match lock_id {
            Some(id) => format!("forceUnlock('{id}')"),
            None => "forceUnlock(lockId)".into(),
        }
    }
    fn force_unlock_tag(&self, tag_id: &str) -> String {
        format!("ApstraClient.forceUnlockTag('{tag_id}')")
    }
    fn wait(&self) -> String {
        "acquire({ timeoutMs })".into()
    }
    fn skip_blueprint_wait(&self) -> String {
        "pass waitForBlueprintUnlock: false".into()
    }
    fn argument(&self, name: &str) -> String {
        format!("the {} option", option_name(name))
    }
}

/// The JavaScript option a core field name stands for (the core names
/// fields in snake case, with durations in seconds; JS options are camel
/// case, with durations in milliseconds).
pub fn option_name(field: &str) -> String {
    match field {
        "access_key_id" => "credentials.accessKeyId".into(),
        "secret_access_key" => "credentials.secretAccessKey".into(),
        "session_token" => "credentials.sessionToken".into(),
        "timeout" => "timeoutMs".into(),
        "lease" => "leaseMs".into(),
        "stale_after" => "staleAfterMs".into(),
        "max_poll_interval" => "maxPollIntervalMs".into(),
        other => {
            let mut out = String::with_capacity(other.len());
            let mut upper = false;
            for c in other.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    // Field names are ASCII snake case; the ASCII mapping
                    // keeps Unicode's case tables (about 12 KB) out of the
                    // package.
                    out.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
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

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// A lock's body as the `LockInfo` object of the API.
pub fn lock_info(info: &LockInfo, etag: Option<&str>) -> JsValue {
    let o = Object::new();
    set(&o, "id", info.id.as_str());
    set(&o, "operation", info.operation.as_str());
    set(&o, "info", info.info.as_str());
    set(&o, "who", info.who.as_str());
    set(&o, "version", info.version.as_str());
    set(&o, "created", info.created.as_str());
    set(&o, "path", info.path.as_str());
    if let Some(etag) = etag {
        set(&o, "etag", etag);
    }
    o.into()
}

/// A holder seen on the store. A lock object that is not LockInfo JSON has
/// empty fields, and `error` says why.
pub fn holder(h: &LockHolder) -> JsValue {
    let v = match &h.info {
        Ok(info) => lock_info(info, Some(&h.etag)),
        Err(e) => {
            let v = lock_info(&LockInfo::default(), Some(&h.etag));
            set(v.unchecked_ref(), "error", e.to_string());
            v
        }
    };
    if let Some(lm) = &h.last_modified {
        set(v.unchecked_ref(), "lastModified", lm.as_str());
    }
    v
}

use wasm_bindgen::JsCast;

/// The `Error` for a core error about `ctx`: `name`, `message`, `code` and
/// the fields of that code (`field`, `holder`, `waitedMs`, `reason`,
/// `status`, `awsCode`).
pub fn to_js(err: &Error, ctx: &Context) -> JsValue {
    let e = js_sys::Error::new(&err.explain(ctx, &JsSpelling));
    let o: &Object = e.unchecked_ref();
    set(o, "code", err.code());
    if let Some(field) = err.field() {
        set(o, "field", option_name(field));
    }
    if matches!(err.code(), "held" | "timeout" | "not_owned") {
        set(o, "holder", err.holder().map_or(JsValue::NULL, holder));
    }
    if let Some(w) = err.waited() {
        set(o, "waitedMs", w.as_secs_f64() * 1000.0);
    }
    if let Some(reason) = err.lost_reason() {
        set(o, "reason", reason.kind());
    }
    if let Some((status, code)) = err.status_and_code() {
        set(o, "status", status);
        set(o, "awsCode", code);
    }
    if let Some((maybe_sent, permanent)) = err.transport_failure() {
        set(o, "maybeSent", maybe_sent);
        set(o, "permanent", permanent);
    }
    e.into()
}

#[cfg(test)]
mod tests {
    use super::option_name;

    #[test]
    fn core_fields_become_the_javascript_option_names() {
        for (field, option) in [
            ("kms_key_id", "kmsKeyId"),
            ("sse_customer_key", "sseCustomerKey"),
            ("workspace_key_prefix", "workspaceKeyPrefix"),
            ("bucket", "bucket"),
            ("timeout", "timeoutMs"),
            ("access_key_id", "credentials.accessKeyId"),
        ] {
            assert_eq!(option_name(field), option, "{field}");
        }
    }
}
