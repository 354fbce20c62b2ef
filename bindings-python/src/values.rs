//! The values Python sees: the holder of an S3 lock (`LockInfo`), of an
//! Apstra mutex (`MutexTag`, `BlueprintLockStatus`). Conversions only.

use condlock::apstra::{Blocker, LockStatus, MutexTag as CoreTag};
use condlock::s3::{LockHolder, LockInfo as CoreLockInfo};
use pyo3::prelude::*;
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// The core's one-line description (as in messages).
    display: String,
    /// `created` as a time, when readable.
    created_time: Option<SystemTime>,
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
            display: info.to_string(),
            last_modified,
            error: None,
            created_time: info.created_time(),
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
                display: h.to_string(),
                created_time: None,
            },
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
        self.display.clone()
    }

    /// `created` as a timezone-aware UTC `datetime` (microseconds), or
    /// `None` when the holder wrote no readable time.
    #[getter]
    fn created_at(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let Some(t) = self.created_time else {
            return Ok(None);
        };
        let epoch = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        let dt = datetime
            .getattr("datetime")?
            .call_method1("fromtimestamp", (epoch, utc))?;
        Ok(Some(dt.unbind()))
    }

    /// Seconds since `created`, on this machine's clock, now (negative when
    /// the holder's clock is ahead of ours), or `None` without a readable
    /// time.
    #[getter]
    fn age(&self) -> Option<f64> {
        let t = self.created_time?;
        Some(match SystemTime::now().duration_since(t) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        })
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

/// A blueprint mutex tag found in Apstra's design catalog: who holds the
/// mutex of `blueprint_id`.
#[pyclass(frozen, module = "condlock", name = "MutexTag")]
#[derive(Clone, Debug)]
pub struct MutexTag {
    /// The tag ID (what `ApstraClient.force_unlock_tag` takes).
    #[pyo3(get)]
    pub id: String,
    /// The locked blueprint's ID (from the label).
    #[pyo3(get)]
    pub blueprint_id: String,
    /// The label, `blueprint <ID> locked`.
    #[pyo3(get)]
    pub label: String,
    /// The description exactly as stored: the holder's message (plus
    /// condlock's holder token when a condlock client created it).
    #[pyo3(get)]
    pub description: String,
    /// The description without condlock's holder token.
    #[pyo3(get)]
    pub message: String,
    /// condlock's holder token, or `None` when the tag was not created by
    /// condlock (the Terraform provider, the web UI...).
    #[pyo3(get)]
    pub token: Option<String>,
    /// `created_at` exactly as the server sent it.
    #[pyo3(get)]
    pub created_at: Option<String>,
    /// Seconds since `created_at` when the tag was read (our clock minus the
    /// server's), or `None` when unknown.
    #[pyo3(get)]
    pub age: Option<f64>,
    display: String,
}

impl MutexTag {
    pub fn from_core(t: &CoreTag) -> Self {
        MutexTag {
            id: t.id.clone(),
            blueprint_id: t.blueprint.clone(),
            label: t.label.clone(),
            description: t.description.clone(),
            message: t.message.clone(),
            token: t.token.as_ref().map(|t| t.as_str().to_string()),
            created_at: t.created_at.clone(),
            age: t.age.map(|a| a.as_secs_f64()),
            display: t.to_string(),
        }
    }
}

#[pymethods]
impl MutexTag {
    /// True when a condlock client created this tag (it carries a holder token).
    #[getter]
    fn carries_condlock_token(&self) -> bool {
        self.token.is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "MutexTag(id={:?}, blueprint_id={:?}, description={:?}, created_at={:?}, age={}, \
             carries_condlock_token={})",
            self.id,
            self.blueprint_id,
            self.description,
            self.created_at.as_deref().unwrap_or_default(),
            self.age
                .map(|a| format!("{a:.1}"))
                .unwrap_or_else(|| "None".into()),
            if self.token.is_some() {
                "True"
            } else {
                "False"
            }
        )
    }

    fn __str__(&self) -> String {
        self.display.clone()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<MutexTag>() {
            Ok(o) => {
                let o = o.get();
                self.id == o.id && self.description == o.description && self.label == o.label
            }
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.id, &self.description, &self.label).hash(&mut h);
        h.finish()
    }
}

/// Apstra's own blueprint lock (taken in the web UI), reported as the holder
/// when it keeps a mutex from being taken.
#[pyclass(frozen, module = "condlock", name = "BlueprintLockStatus")]
#[derive(Clone, Debug)]
pub struct BlueprintLockStatus {
    /// `unlocked`, `locked`, `locked_by_admin`, `locked_by_deleted_user` or
    /// `locked_by_restricted_user`.
    #[pyo3(get)]
    pub lock_status: String,
    /// The lock type, as the server reports it.
    #[pyo3(get)]
    pub lock_type: String,
    /// Who holds it.
    #[pyo3(get)]
    pub username: String,
    /// The holder's first name.
    #[pyo3(get)]
    pub first_name: String,
    /// The holder's last name.
    #[pyo3(get)]
    pub last_name: String,
    /// The holder's user ID.
    #[pyo3(get)]
    pub user_id: String,
    /// Whether the lock may be overridden.
    #[pyo3(get)]
    pub possible_override: bool,
    display: String,
}

impl BlueprintLockStatus {
    pub fn from_core(s: &LockStatus) -> Self {
        BlueprintLockStatus {
            lock_status: s.lock_status.clone(),
            lock_type: s.lock_type.clone(),
            username: s.username.clone(),
            first_name: s.first_name.clone(),
            last_name: s.last_name.clone(),
            user_id: s.user_id.clone(),
            possible_override: s.possible_override,
            display: format!("Apstra's own blueprint lock is {s}"),
        }
    }
}

#[pymethods]
impl BlueprintLockStatus {
    fn __repr__(&self) -> String {
        format!(
            "BlueprintLockStatus(lock_status={:?}, username={:?}, user_id={:?}, lock_type={:?})",
            self.lock_status, self.username, self.user_id, self.lock_type
        )
    }

    fn __str__(&self) -> String {
        self.display.clone()
    }
}

/// The Python object describing what blocks a mutex: a `MutexTag` or a
/// `BlueprintLockStatus`.
pub fn blocker_obj(py: Python<'_>, b: &Blocker) -> Py<PyAny> {
    let made = match b {
        Blocker::Tag(t) => Py::new(py, MutexTag::from_core(t)).map(Py::into_any),
        Blocker::BlueprintLock(s) => {
            Py::new(py, BlueprintLockStatus::from_core(s)).map(Py::into_any)
        }
    };
    made.unwrap_or_else(|_| py.None())
}
