//! Process-level plumbing: values built once per process (fork-safe), the
//! process that owns a held lock, panic containment.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use pyo3::prelude::*;

use crate::errors;

/// A value built once per process: a forked child builds its own, and the
/// parent's copy is leaked, never dropped (its threads, pooled sockets or
/// runtime do not exist in the child).
pub struct PerProcess<T>(Mutex<Option<(u32, T)>>);

impl<T: Clone> PerProcess<T> {
    pub const fn new() -> Self {
        PerProcess(Mutex::new(None))
    }

    /// This process's value, if it was built.
    pub fn get(&self) -> Option<T> {
        let pid = std::process::id();
        match locked(&self.0).as_ref() {
            Some((owner, value)) if *owner == pid => Some(value.clone()),
            _ => None,
        }
    }

    /// This process's value, built by `build` the first time.
    pub fn get_or_build(&self, build: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
        let pid = std::process::id();
        let mut slot = locked(&self.0);
        if let Some((owner, value)) = slot.as_ref() {
            if *owner == pid {
                return Ok(value.clone());
            }
        }
        let value = build()?;
        if let Some((_, old)) = slot.replace((pid, value.clone())) {
            std::mem::forget(old);
        }
        Ok(value)
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
