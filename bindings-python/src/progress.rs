//! Feedback while an acquisition waits: the core's [`Notice`]s become log
//! records on the `condlock` logger and, when asked, `WaitEvent`s handed to
//! the caller's `on_wait` callback.
//!
//! The words are the core's ([`Notice::acquiring_line`] for the first wait,
//! the notice's `Display` afterwards); this module only chooses the level and
//! converts the values.

use std::sync::Arc;
use std::time::Duration;

use condlock::drive::Notice;
use condlock::progress::Holder;
use pyo3::prelude::*;

use crate::values::{blocker_obj, LockInfo};

/// One wait of an acquisition, as the `on_wait` callback receives it.
#[pyclass(frozen, module = "condlock", name = "WaitEvent")]
pub struct WaitEvent {
    /// Who holds the lock: a `LockInfo` (S3), a `MutexTag` or a
    /// `BlueprintLockStatus` (Apstra), or `None`.
    #[pyo3(get)]
    holder: Py<PyAny>,
    /// Seconds this acquisition has waited so far.
    #[pyo3(get)]
    waited: f64,
    /// Seconds until the next attempt.
    #[pyo3(get)]
    next_try_in: f64,
    /// True the first time this acquisition sees this holder.
    #[pyo3(get)]
    new_holder: bool,
    /// The core's one-line description of this wait.
    #[pyo3(get)]
    message: String,
}

#[pymethods]
impl WaitEvent {
    fn __repr__(&self) -> String {
        format!(
            "WaitEvent(waited={:.1}, next_try_in={:.1}, new_holder={}, message={:?})",
            self.waited,
            self.next_try_in,
            if self.new_holder { "True" } else { "False" },
            self.message
        )
    }

    fn __str__(&self) -> String {
        self.message.clone()
    }
}

/// What an acquisition does with its notices.
pub struct Progress {
    /// The lock, as named in messages.
    target: String,
    /// No wait seen yet: the next one is announced at INFO.
    first: bool,
    /// The caller's `on_wait(WaitEvent)`, if any (shared without the GIL).
    on_wait: Option<Arc<Py<PyAny>>>,
}

impl Progress {
    pub fn new(target: &str, on_wait: Option<Py<PyAny>>) -> Self {
        Progress {
            target: target.to_string(),
            first: true,
            on_wait: on_wait.map(Arc::new),
        }
    }

    /// Handle one notice (called on the I/O worker: never takes the GIL here).
    pub fn notice(&mut self, n: Notice) {
        let Notice::Waiting {
            holder,
            waited,
            next_try_in,
            new_holder,
        } = &n
        else {
            return;
        };
        let message = n.to_string();
        match n.acquiring_line(&self.target) {
            Some(line) if self.first => log::info!(target: "condlock::python", "{line}"),
            // A new holder is worth telling as much as the first one.
            _ if *new_holder => log::info!(target: "condlock::python", "{message}"),
            _ => log::debug!(target: "condlock::python", "{message}"),
        }
        self.first = false;
        let Some(callback) = &self.on_wait else {
            return;
        };
        let callback = callback.clone();
        let (holder, waited, next_try_in, new_holder) =
            (holder.clone(), *waited, *next_try_in, *new_holder);
        let target = self.target.clone();
        // A user's callback may take long: it runs on tokio's blocking pool
        // (like `on_lost`), never on the I/O worker.
        let run = move || {
            Python::attach(|py| {
                let event = WaitEvent {
                    holder: holder_obj(py, &holder),
                    waited: seconds(waited),
                    next_try_in: seconds(next_try_in),
                    new_holder,
                    message,
                };
                let r = Py::new(py, event).and_then(|e| callback.bind(py).call1((e,)));
                if let Err(e) = r {
                    log::error!(
                        target: "condlock::python",
                        "the on_wait callback of {target} raised: {e}"
                    );
                }
                drop(callback);
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(run)),
            Err(_) => run(),
        }
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn holder_obj(py: Python<'_>, h: &Holder) -> Py<PyAny> {
    match h {
        Holder::S3(h) => Py::new(py, LockInfo::from_holder(h))
            .map(Py::into_any)
            .unwrap_or_else(|_| py.None()),
        Holder::Apstra(b) => blocker_obj(py, b),
        _ => py.None(),
    }
}
