//! Pieces shared by every lock kind: the lock-info value, option parsing,
//! panic containment.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use condlock::backoff::Backoff;
use condlock::s3::{LockHolder, LockInfo as CoreLockInfo};
use condlock::Cancel;
use condlock::Wait;
use pyo3::prelude::*;

use crate::errors;

/// The lock body of a holder (Terraform's LockInfo) plus the object's version.
///
/// Fields are `None` only when the lock object could not be parsed as LockInfo
/// JSON (someone wrote something else there): then `error` says why.
#[pyclass(frozen, module = "condlock", name = "LockInfo")]
#[derive(Clone, Debug)]
pub struct LockInfo {
    /// Lock ID (`ID`), what `force_unlock` takes.
    #[pyo3(get)]
    pub id: Option<String>,
    /// `Operation` (Terraform: `OperationTypeApply`...).
    #[pyo3(get)]
    pub operation: Option<String>,
    /// `Info`: free text left by the holder.
    #[pyo3(get)]
    pub info: Option<String>,
    /// `Who`: `user@hostname`.
    #[pyo3(get)]
    pub who: Option<String>,
    /// `Version` of the tool that wrote the lock.
    #[pyo3(get)]
    pub version: Option<String>,
    /// `Created`: RFC 3339 UTC timestamp.
    #[pyo3(get)]
    pub created: Option<String>,
    /// `Path`: `<bucket>/<state key>`.
    #[pyo3(get)]
    pub path: Option<String>,
    /// The lock object's ETag (quotes included): changes with every holder.
    #[pyo3(get)]
    pub etag: String,
    /// The `Last-Modified` header of the lock object, when known.
    #[pyo3(get)]
    pub last_modified: Option<String>,
    /// Why the lock body could not be read, or `None`.
    #[pyo3(get)]
    pub error: Option<String>,
}

impl LockInfo {
    pub fn from_core(info: &CoreLockInfo, etag: &str, last_modified: Option<String>) -> Self {
        LockInfo {
            id: Some(info.id.clone()),
            operation: Some(info.operation.clone()),
            info: Some(info.info.clone()),
            who: Some(info.who.clone()),
            version: Some(info.version.clone()),
            created: Some(info.created.clone()),
            path: Some(info.path.clone()),
            etag: etag.to_string(),
            last_modified,
            error: None,
        }
    }

    pub fn from_holder(h: &LockHolder) -> Self {
        match &h.info {
            Ok(info) => Self::from_core(info, &h.etag, h.last_modified.clone()),
            Err(e) => LockInfo {
                id: None,
                operation: None,
                info: None,
                who: None,
                version: None,
                created: None,
                path: None,
                etag: h.etag.clone(),
                last_modified: h.last_modified.clone(),
                error: Some(e.to_string()),
            },
        }
    }

    /// One line, as in messages: `ID x, who y, operation z, created t`.
    pub fn describe(&self) -> String {
        match &self.id {
            Some(id) => {
                let mut s = format!("ID {id}");
                for (label, v) in [
                    ("who", &self.who),
                    ("operation", &self.operation),
                    ("created", &self.created),
                    ("info", &self.info),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        s.push_str(&format!(", {label} {v:?}"));
                    }
                }
                s
            }
            None => format!(
                "an unreadable lock (ETag {}: {})",
                self.etag,
                self.error.as_deref().unwrap_or("?")
            ),
        }
    }
}

#[pymethods]
impl LockInfo {
    fn __repr__(&self) -> String {
        match &self.id {
            Some(_) => format!(
                "LockInfo(id={:?}, who={:?}, operation={:?}, info={:?}, created={:?}, path={:?}, etag={:?})",
                self.id.as_deref().unwrap_or_default(),
                self.who.as_deref().unwrap_or_default(),
                self.operation.as_deref().unwrap_or_default(),
                self.info.as_deref().unwrap_or_default(),
                self.created.as_deref().unwrap_or_default(),
                self.path.as_deref().unwrap_or_default(),
                self.etag
            ),
            None => format!(
                "LockInfo(unreadable, etag={:?}, error={:?})",
                self.etag,
                self.error.as_deref().unwrap_or_default()
            ),
        }
    }

    fn __str__(&self) -> String {
        self.describe()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<LockInfo>() {
            Ok(o) => {
                let o = o.get();
                self.id == o.id && self.etag == o.etag && self.created == o.created
            }
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.id, &self.etag, &self.created).hash(&mut h);
        h.finish()
    }
}

/// `acquire(blocking, timeout)` -> the core's wait policy, refusing what
/// `threading.Lock.acquire` refuses.
pub fn wait_policy(blocking: bool, timeout: Option<f64>) -> PyResult<Wait> {
    match (blocking, timeout) {
        (false, None) => Ok(Wait::No),
        (false, Some(_)) => Err(errors::invalid_config(
            "timeout",
            "cannot be given with blocking=False (a non-blocking acquire makes one attempt)",
        )),
        (true, None) => Ok(Wait::Forever),
        (true, Some(-1.0)) => Ok(Wait::Forever),
        (true, Some(t)) if t.is_nan() || t < 0.0 => Err(errors::invalid_config(
            "timeout",
            format!("must be a number of seconds >= 0, or None to wait forever (got {t})"),
        )),
        // Infinite, or longer than any Duration (hundreds of billions of
        // years): forever.
        (true, Some(t)) => Ok(Duration::try_from_secs_f64(t).map_or(Wait::Forever, Wait::For)),
    }
}

/// A positive, finite number of seconds.
pub fn seconds(field: &'static str, value: f64) -> PyResult<Duration> {
    if !(value.is_finite() && value > 0.0) {
        return Err(errors::invalid_config(
            field,
            format!("must be a positive number of seconds (got {value})"),
        ));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| errors::invalid_config(field, format!("is too large ({value} seconds)")))
}

/// The shortest `max_poll_interval` accepted: shorter would flood the store
/// with requests while waiting.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// `max_poll_interval`: seconds, at least [`MIN_POLL_INTERVAL`].
pub fn poll_interval(value: f64) -> PyResult<Duration> {
    let d = seconds("max_poll_interval", value)?;
    if d < MIN_POLL_INTERVAL {
        return Err(errors::invalid_config(
            "max_poll_interval",
            format!(
                "must be at least {} seconds (got {value}): shorter floods the store while waiting",
                MIN_POLL_INTERVAL.as_secs_f64()
            ),
        ));
    }
    Ok(d)
}

/// `fut`, or `Err(Error::Cancelled)` as soon as `token` is cancelled (by
/// Ctrl-C, through `block_on`): for reads whose retries could otherwise last
/// the whole transient budget.
pub async fn or_cancelled<T>(
    token: Cancel,
    fut: impl std::future::Future<Output = Result<T, condlock::Error>>,
) -> Result<T, condlock::Error> {
    tokio::select! {
        r = fut => r,
        _ = token.cancelled() => Err(condlock::Error::Cancelled),
    }
}

/// The process that acquired a lock. A forked child inherits the Python
/// object but not the lock (nor the parent's runtime threads): it must
/// neither release the parent's lock nor wait on the parent's renewal.
pub struct Owner(u32);

impl Owner {
    /// The current process.
    pub fn here() -> Self {
        Owner(std::process::id())
    }

    /// True in the process that acquired the lock.
    pub fn is_here(&self) -> bool {
        self.0 == std::process::id()
    }

    /// `condlock.LockError` unless called in the acquiring process.
    pub fn check(&self, lock: &str) -> PyResult<()> {
        if self.is_here() {
            return Ok(());
        }
        Err(errors::lock_error(format!(
            "{lock} was acquired by process {}; this process ({}) is a fork of it and does not \
             hold the lock: nothing was released (only the acquiring process can release it)",
            self.0,
            std::process::id()
        )))
    }
}

/// Cap the pause between attempts at `max` (the first one too), when given.
pub fn cap_backoff(backoff: &mut Backoff, max: Option<Duration>) {
    if let Some(max) = max {
        backoff.max = max;
        backoff.initial = backoff.initial.min(max);
    }
}

/// A Python `bool`.
pub fn bool_obj(py: Python<'_>, v: bool) -> Py<PyAny> {
    pyo3::types::PyBool::new(py, v)
        .to_owned()
        .into_any()
        .unbind()
}

/// Lock `m`, carrying on past a poisoned lock.
pub fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `f`, turning a Rust panic into `condlock.LockError` instead of letting
/// it cross into Python as `PanicException`.
pub fn guard<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(errors::internal(&panic_text(payload.as_ref()))),
    }
}

pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
