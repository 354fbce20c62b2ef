//! `condlock::Error` -> the exception classes of `condlock._errors`.
//!
//! The core decides everything: the error's code, its attributes and its
//! message ([`condlock::Error::explain`], in Python's spelling). This module is
//! a table from code to class, plus the conversion of the attributes. The
//! classes are plain Python (so they can inherit from `TimeoutError`,
//! `OSError`, `ValueError`).

use condlock::error::{Context, Kind, Spelling};
use condlock::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::values::{blocker_obj, LockInfo};

/// The exception class of each of the core's error codes
/// ([`condlock::error::CODES`]).
const CLASSES: &[(&str, &str)] = &[
    ("invalid_config", "InvalidConfiguration"),
    ("held", "LockHeld"),
    ("timeout", "LockTimeout"),
    ("cancelled", "LockError"),
    (
        "conditional_writes_unsupported",
        "ConditionalWritesUnsupported",
    ),
    ("not_owned", "NotOwned"),
    ("access_denied", "AccessDenied"),
    ("login_refused", "AccessDenied"),
    ("no_such_bucket", "InvalidConfiguration"),
    ("wrong_region", "InvalidConfiguration"),
    ("no_such_blueprint", "InvalidConfiguration"),
    ("server", "ServerError"),
    ("rejected", "RequestRejected"),
    ("transport", "TransportError"),
    ("malformed_response", "MalformedResponse"),
    ("misuse", "LockError"),
    ("not_reentrant", "LockError"),
    ("lost", "LockLost"),
];

/// How Python spells what the core's messages suggest.
pub struct PythonSpelling(pub Kind);

impl Spelling for PythonSpelling {
    fn force_unlock(&self, lock_id: Option<&str>) -> String {
        match (lock_id, self.0) {
            (Some(id), _) => format!("force_unlock({id:?})"),
            (None, Kind::S3) => "force_unlock(<lock ID>)".into(),
            (None, Kind::Apstra) => "force_unlock()".into(),
        }
    }
    fn force_unlock_tag(&self, tag_id: &str) -> String {
        format!("ApstraClient.force_unlock_tag({tag_id:?})")
    }
    fn wait(&self) -> String {
        "acquire(blocking=True, timeout=...)".into()
    }
    fn skip_blueprint_wait(&self) -> String {
        "pass wait_for_blueprint_unlock=False".into()
    }
    fn argument(&self, name: &str) -> String {
        format!("{name}=")
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

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("condlock._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// Build `condlock.<class>(message, **attrs)`.
fn build(py: Python<'_>, class: &str, message: String, attrs: &Bound<'_, PyDict>) -> PyErr {
    let made = errors_module(py)
        .and_then(|m| m.getattr(class))
        .and_then(|cls| cls.call((message.clone(),), Some(attrs)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        // Cannot happen unless the package is broken; still raise something useful.
        Err(e) => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{message} (and condlock._errors.{class} could not be built: {e})"
        )),
    }
}

/// The exception for a core error about `ctx`.
pub fn to_py(err: Error, ctx: &Context) -> PyErr {
    Python::attach(|py| to_py_with(py, err, ctx))
}

/// [`to_py`] with the GIL held.
pub fn to_py_with(py: Python<'_>, err: Error, ctx: &Context) -> PyErr {
    let message = err.explain(ctx, &PythonSpelling(ctx.kind));
    let class = CLASSES
        .iter()
        .find(|(code, _)| *code == err.code())
        .map_or("LockError", |(_, class)| class);
    let attrs = PyDict::new(py);
    let _ = set_attributes(py, &err, &attrs);
    build(py, class, message, &attrs)
}

/// The core's structured fields as keyword attributes (each class takes
/// those its errors carry).
fn set_attributes(py: Python<'_>, err: &Error, attrs: &Bound<'_, PyDict>) -> PyResult<()> {
    if let Some(field) = err.field() {
        attrs.set_item("field", field)?;
    }
    if let Some(h) = err.holder() {
        attrs.set_item("holder", Py::new(py, LockInfo::from_holder(h))?)?;
    }
    if let Some(b) = err.blocker() {
        attrs.set_item("holder", blocker_obj(py, b))?;
    }
    if let Some(waited) = err.waited() {
        attrs.set_item("waited", waited.as_secs_f64())?;
    }
    if let Some((status, code)) = err.status_and_code() {
        attrs.set_item("status", status)?;
        attrs.set_item("code", code)?;
    }
    if let Some((endpoint, bucket)) = err.store() {
        attrs.set_item("endpoint", endpoint)?;
        attrs.set_item("bucket", bucket)?;
    }
    if let Some(reason) = err.lost_reason() {
        attrs.set_item("reason", lost_reason(py, reason))?;
    }
    Ok(())
}

/// `condlock.InvalidConfiguration` naming `field`.
pub fn invalid_config(field: &'static str, reason: impl Into<String>) -> PyErr {
    to_py(
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        },
        &no_context(),
    )
}

/// A plain `condlock.LockError` saying `message`.
pub fn lock_error(message: String) -> PyErr {
    Python::attach(|py| build(py, "LockError", message, &PyDict::new(py)))
}

/// `condlock.LockError` for a bug inside condlock (a caught panic).
pub fn internal(what: &str) -> PyErr {
    lock_error(format!(
        "internal error in condlock: {what}; this is a bug, please report it"
    ))
}

/// `condlock.LostReason(kind, message=..., holder=...)` for a lost lease.
pub fn lost_reason(py: Python<'_>, reason: &condlock::s3::LostReason) -> Py<PyAny> {
    let holder = match reason {
        condlock::s3::LostReason::Stolen { holder: Some(h) } => {
            Py::new(py, LockInfo::from_holder(h)).map(Py::into_any).ok()
        }
        _ => None,
    };
    let made = (|| -> PyResult<Py<PyAny>> {
        let cls = errors_module(py)?.getattr("LostReason")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("message", reason.to_string())?;
        kwargs.set_item("holder", holder)?;
        Ok(cls.call((reason.kind(),), Some(&kwargs))?.unbind())
    })();
    made.unwrap_or_else(|_| {
        reason
            .kind()
            .into_pyobject(py)
            .map_or_else(|_| py.None(), |s| s.into_any().unbind())
    })
}
