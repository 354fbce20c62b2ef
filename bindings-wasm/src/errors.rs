//! `condlock::Error` -> a JavaScript `Error` carrying the core's code,
//! message and structured fields; the package's JS layer (`errors.js`) turns
//! it into the class of that code (`LockHeld`, `LockTimeout`...). The message
//! is the core's [`Error::explain`], in JavaScript's spelling.

use condlock::error::{js_option_name, Context, JavaScript, Kind};
use condlock::s3::{LockHolder, LockInfo};
use condlock::Error;
use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

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
    let e = js_sys::Error::new(&err.explain(ctx, &JavaScript(ctx.kind)));
    let o: &Object = e.unchecked_ref();
    set(o, "code", err.code());
    if let Some(field) = err.field() {
        set(o, "field", js_option_name(field));
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
