//! `condlock::Error` -> the exception classes of `condlock._errors`.
//!
//! The classes are plain Python (so they can inherit from `TimeoutError`,
//! `OSError`, `ValueError`); they are looked up once and built with keyword
//! attributes. Messages say what happened and what to do; no variant of the
//! core error carries a secret, and nothing here adds one.

use condlock::Error;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};
use pyo3::BoundObject;

use crate::common::LockInfo;

/// What a message should call the lock and its store.
#[derive(Clone, Debug)]
pub struct Context {
    /// e.g. `s3://tfstate/envs/dev/terraform.tfstate.tflock`.
    pub lock: String,
    /// The endpoint, without credentials.
    pub endpoint: String,
}

fn errors_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    MODULE
        .get_or_try_init(py, || Ok(py.import("condlock._errors")?.unbind()))
        .map(|m| m.bind(py))
}

/// Build `condlock.<class>(message, **attrs)`.
fn build(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let cls = errors_module(py)?.getattr(class)?;
        let kwargs = PyDict::new(py);
        for (k, v) in attrs {
            kwargs.set_item(*k, v.bind(py))?;
        }
        let exc = cls.call((message.clone(),), Some(&kwargs))?;
        Ok(PyErr::from_value(exc))
    })();
    match made {
        Ok(e) => e,
        // Cannot happen unless the package is broken; still raise something useful.
        Err(e) => pyo3::exceptions::PyRuntimeError::new_err(format!(
            "{message} (and condlock._errors.{class} could not be built: {e})"
        )),
    }
}

fn obj<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    match v.into_pyobject(py) {
        Ok(b) => b.into_any().unbind(),
        Err(_) => py.None(),
    }
}

fn holder_obj(py: Python<'_>, holder: Option<&LockInfo>) -> Py<PyAny> {
    match holder {
        Some(h) => match Py::new(py, h.clone()) {
            Ok(p) => p.into_any(),
            Err(_) => py.None(),
        },
        None => py.None(),
    }
}

/// `condlock.InvalidConfiguration` naming `field`.
pub fn invalid_config(field: &str, reason: impl std::fmt::Display) -> PyErr {
    Python::attach(|py| {
        build(
            py,
            "InvalidConfiguration",
            format!("invalid {field}: {reason}"),
            &[("field", obj(py, field))],
        )
    })
}

/// A plain `condlock.LockError` saying `message`.
pub fn lock_error(message: String) -> PyErr {
    Python::attach(|py| build(py, "LockError", message, &[]))
}

/// `condlock.LockError` for a bug inside condlock (a caught panic).
pub fn internal(what: &str) -> PyErr {
    Python::attach(|py| {
        build(
            py,
            "LockError",
            format!("internal error in condlock: {what}; this is a bug, please report it"),
            &[],
        )
    })
}

/// The exception for a core error.
pub fn to_py(err: Error, ctx: &Context) -> PyErr {
    Python::attach(|py| to_py_with(py, err, ctx))
}

fn force_unlock_hint(holder: Option<&LockInfo>) -> String {
    match holder.and_then(|h| h.id.as_deref()) {
        Some(id) => format!("force_unlock({id:?})"),
        None => "force_unlock(<lock ID>)".to_string(),
    }
}

fn by(holder: Option<&LockInfo>) -> String {
    match holder {
        Some(h) => format!(" by {}", h.describe()),
        None => String::new(),
    }
}

pub fn to_py_with(py: Python<'_>, err: Error, ctx: &Context) -> PyErr {
    let lock = &ctx.lock;
    let holder = err.holder().map(LockInfo::from_holder);
    let holder_ref = holder.as_ref();
    match err {
        Error::InvalidConfig { field, reason } => build(
            py,
            "InvalidConfiguration",
            format!("invalid {field}: {reason}"),
            &[("field", obj(py, field))],
        ),
        Error::Held { .. } => build(
            py,
            "LockHeld",
            format!(
                "{lock} is held{}; wait for it with acquire(blocking=True, timeout=...), \
                 or, if that holder is gone for good, remove its lock with {}",
                by(holder_ref),
                force_unlock_hint(holder_ref)
            ),
            &[("holder", holder_obj(py, holder_ref))],
        ),
        Error::Timeout { waited, .. } => {
            build(
                py,
                "LockTimeout",
                format!(
                "timed out after {:.1}s waiting for {lock}, held{}; wait longer (timeout=...), \
                 or, if that holder is gone for good, remove its lock with {}",
                waited.as_secs_f64(),
                if holder_ref.is_some() { by(holder_ref) } else { " by someone else".into() },
                force_unlock_hint(holder_ref)
            ),
                &[
                    ("holder", holder_obj(py, holder_ref)),
                    ("waited", obj(py, waited.as_secs_f64())),
                ],
            )
        }
        Error::Cancelled => build(
            py,
            "LockError",
            format!("the operation on {lock} was cancelled; no lock of ours was left behind"),
            &[],
        ),
        Error::ConditionalWritesUnsupported { endpoint, bucket } => build(
            py,
            "ConditionalWritesUnsupported",
            format!(
                "the store at {endpoint} (bucket {bucket}) ignores If-None-Match, so it cannot \
                 provide a lock (two clients could both hold it); the lock we wrote was removed. \
                 Use a store that enforces conditional writes (AWS S3, MinIO, moto...)"
            ),
            &[("endpoint", obj(py, endpoint)), ("bucket", obj(py, bucket))],
        ),
        Error::NotOwned { .. } => build(
            py,
            "NotOwned",
            format!(
                "{lock} is not ours{}, so it was left alone; to remove someone else's lock use \
                 {} with that lock's ID",
                by(holder_ref),
                force_unlock_hint(holder_ref)
            ),
            &[("holder", holder_obj(py, holder_ref))],
        ),
        e @ Error::AccessDenied { .. } => {
            let (code, text) = match &e {
                Error::AccessDenied { code, .. } => (code.clone(), e.to_string()),
                _ => unreachable!(),
            };
            build(
                py,
                "AccessDenied",
                format!(
                    "{text}; check the credentials, and that they allow s3:GetObject, \
                     s3:PutObject and s3:DeleteObject on {lock}"
                ),
                &[("status", obj(py, 403u16)), ("code", obj(py, code))],
            )
        }
        Error::NoSuchBucket { bucket } => build(
            py,
            "InvalidConfiguration",
            format!(
                "invalid bucket: {bucket:?} does not exist at {}; create it, or fix bucket=",
                ctx.endpoint
            ),
            &[("field", obj(py, "bucket"))],
        ),
        e @ Error::WrongRegion { .. } => build(
            py,
            "InvalidConfiguration",
            format!("invalid region: {e}"),
            &[("field", obj(py, "region"))],
        ),
        Error::Server {
            status,
            code,
            message,
        } => build(
            py,
            "ServerError",
            format!(
                "the store at {} kept failing with {status} ({code}): {message}; \
                 it may be overloaded or down: retry later",
                ctx.endpoint
            ),
            &[("status", obj(py, status)), ("code", obj(py, code))],
        ),
        Error::Rejected {
            status,
            code,
            message,
        } => build(
            py,
            "RequestRejected",
            format!(
                "the store at {} rejected the request on {lock} with {status} ({code}): {message}",
                ctx.endpoint
            ),
            &[("status", obj(py, status)), ("code", obj(py, code))],
        ),
        Error::Transport { message, .. } => build(
            py,
            "TransportError",
            format!(
                "cannot talk to the store at {}: {message}; check the endpoint, the network \
                 and TLS settings",
                ctx.endpoint
            ),
            &[],
        ),
        Error::MalformedResponse { what } => build(
            py,
            "MalformedResponse",
            format!(
                "the store at {} answered something condlock cannot interpret ({what}); \
                 is the endpoint an S3-compatible store?",
                ctx.endpoint
            ),
            &[],
        ),
        Error::Lost { reason } => build(
            py,
            "LockLost",
            format!(
                "{lock} is no longer ours ({reason}); stop the work that relied on it \
                 (another holder may be running), and acquire the lock again if needed"
            ),
            &[("reason", lost_reason(py, &reason))],
        ),
        // Raised by the Apstra driver only; its module words them.
        e @ (Error::BlueprintLocked { .. }
        | Error::BlueprintLockTimeout { .. }
        | Error::LoginRefused { .. }
        | Error::NoSuchBlueprint { .. }) => apstra_to_py_with(py, e, ctx),
        other => build(
            py,
            "LockError",
            format!("{other} (on {lock}); this is a bug in condlock, please report it"),
            &[],
        ),
    }
}

/// `condlock.LostReason(kind, message=..., holder=...)` for a lost lease.
pub fn lost_reason(py: Python<'_>, reason: &condlock::s3::LostReason) -> Py<PyAny> {
    let holder = match reason {
        condlock::s3::LostReason::Stolen { holder: Some(h) } => Some(LockInfo::from_holder(h)),
        _ => None,
    };
    let made = (|| -> PyResult<Py<PyAny>> {
        let cls = errors_module(py)?.getattr("LostReason")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("message", reason.to_string())?;
        kwargs.set_item("holder", holder_obj(py, holder.as_ref()))?;
        Ok(cls.call((reason.kind(),), Some(&kwargs))?.unbind())
    })();
    made.unwrap_or_else(|_| obj(py, reason.kind()))
}

// --- Apstra blueprint mutex -------------------------------------------------

fn apstra_unlock_hint(blocker: Option<&condlock::apstra::Blocker>) -> String {
    use condlock::apstra::Blocker;
    match blocker {
        Some(Blocker::Tag(t)) => format!(
            "if that holder is gone for good, remove its tag with force_unlock() \
             (or ApstraClient.force_unlock_tag({:?}))",
            t.id
        ),
        Some(Blocker::BlueprintLock(s)) => format!(
            "Apstra's own blueprint lock is taken{}: unlock the blueprint in the Apstra UI, \
             or pass wait_for_blueprint_unlock=False",
            if s.username.is_empty() {
                String::new()
            } else {
                format!(" by {}", s.username)
            }
        ),
        None => "if the holder is gone for good, remove its tag with force_unlock()".into(),
    }
}

/// The exception for an error of the Apstra blueprint mutex: the Apstra
/// variants (`BlueprintLocked`, `BlueprintLockTimeout`, `LoginRefused`,
/// `NoSuchBlueprint`) and messages about the Apstra server for the generic
/// ones; everything else as [`to_py_with`].
pub fn apstra_to_py(err: Error, ctx: &Context) -> PyErr {
    Python::attach(|py| apstra_to_py_with(py, err, ctx))
}

/// [`apstra_to_py`] with the GIL held.
pub fn apstra_to_py_with(py: Python<'_>, err: Error, ctx: &Context) -> PyErr {
    let lock = &ctx.lock;
    let url = &ctx.endpoint;
    let holder = match err.blocker() {
        Some(b) => crate::apstra::blocker_obj(py, b),
        None => py.None(),
    };
    let hint = apstra_unlock_hint(err.blocker());
    match err {
        Error::BlueprintLocked { blocker, .. } => build(
            py,
            "LockHeld",
            format!(
                "{lock} is held: {blocker}; wait for it with acquire(blocking=True, \
                 timeout=...), or, {hint}"
            ),
            &[("holder", holder)],
        ),
        Error::BlueprintLockTimeout {
            waited, blocker, ..
        } => build(
            py,
            "LockTimeout",
            format!(
                "timed out after {:.1}s waiting for {lock}, {}; wait longer (timeout=...), \
                 or, {hint}",
                waited.as_secs_f64(),
                match &blocker {
                    Some(b) => b.to_string(),
                    None => "held by someone else".into(),
                }
            ),
            &[
                ("holder", holder),
                ("waited", obj(py, waited.as_secs_f64())),
            ],
        ),
        Error::LoginRefused {
            url,
            username,
            message,
        } => build(
            py,
            "AccessDenied",
            format!(
                "{url} refused the login of user {username:?} ({message}): check username= \
                 and password= (or APSTRA_USER / APSTRA_PASS, or the credentials in the URL)"
            ),
            &[
                ("status", obj(py, 401u16)),
                ("code", obj(py, "LoginRefused")),
            ],
        ),
        Error::NoSuchBlueprint { url, blueprint } => build(
            py,
            "InvalidConfiguration",
            format!(
                "invalid blueprint_id: blueprint {blueprint:?} does not exist on {url}; check \
                 the ID (the UUID in the blueprint's address in the Apstra UI)"
            ),
            &[("field", obj(py, "blueprint_id"))],
        ),
        Error::AccessDenied { code, message } => build(
            py,
            "AccessDenied",
            format!(
                "the Apstra server at {url} refused a request on {lock} ({code}): {message}; \
                 the user needs permission to read blueprints and to create, read and delete \
                 design tags"
            ),
            &[
                (
                    "status",
                    obj(
                        py,
                        if code == "Unauthorized" {
                            401u16
                        } else {
                            403u16
                        },
                    ),
                ),
                ("code", obj(py, code)),
            ],
        ),
        Error::Server {
            status,
            code,
            message,
        } => build(
            py,
            "ServerError",
            format!(
                "the Apstra server at {url} kept failing with {status} ({message}); it may be \
                 overloaded or down: retry later"
            ),
            &[("status", obj(py, status)), ("code", obj(py, code))],
        ),
        Error::Rejected {
            status,
            code,
            message,
        } => build(
            py,
            "RequestRejected",
            format!(
                "the Apstra server at {url} rejected a request on {lock} with {status}: {message}"
            ),
            &[("status", obj(py, status)), ("code", obj(py, code))],
        ),
        Error::Transport { message, .. } => build(
            py,
            "TransportError",
            format!(
                "cannot talk to the Apstra server at {url}: {message}; check url=, the network \
                 and TLS settings (verify_tls=, ca_bundle=)"
            ),
            &[],
        ),
        Error::MalformedResponse { what } => build(
            py,
            "MalformedResponse",
            format!(
                "the server at {url} answered something condlock cannot interpret ({what}); \
                 is url= an Apstra server (with its path prefix, if any)?"
            ),
            &[],
        ),
        Error::Cancelled => build(
            py,
            "LockError",
            format!("the operation on {lock} was cancelled; no mutex tag of ours was left behind"),
            &[],
        ),
        other => to_py_with(py, other, ctx),
    }
}
