//! The one thread that takes the GIL on behalf of the background runtime.
//!
//! The background runtime has a single worker thread ([`crate::runtime`])
//! that serves every lease renewal and asyncio call in the process. If that
//! worker ever waited for the GIL, a Python thread busy in one long C call (or
//! a slow `logging` handler) would stall every request in flight and could let
//! a lease run out while its holder was healthy. So the worker never touches
//! Python. What must reach Python from there is queued to this thread, which
//! takes the GIL and runs the jobs in the order they were queued:
//!
//! - log records of the `log` crate, handed to `pyo3_log` (the `condlock`
//!   logger tree), which is set up by this thread at the first record: so
//!   `import condlock` does not import `logging` (two thirds of its import
//!   time), and a program that never logs never pays for it;
//! - deliveries of asyncio results (`loop.call_soon_threadsafe`), so a task's
//!   log records always come before its result.
//!
//! A synchronous call runs on its caller's thread ([`crate::runtime`]): its
//! records are kept on that thread ([`Capture`]) and handed to `logging` by
//! the caller itself once it holds the GIL again, with no other thread woken.
//! It also waits, with the GIL released, until the records queued before it
//! returned (by background tasks) have been delivered ([`wait_for_delivery`]):
//! `logging` shows an operation's records by the time the call returns, as it
//! would if they had been logged on the caller's thread.
//!
//! Callbacks written by the user (`on_lost`, user transports) do not run here:
//! they may take long, and run on tokio's blocking pool instead.
//!
//! At interpreter exit ([`stop_at_exit`], an `atexit` hook) the thread
//! finishes the batch it has and then runs nothing more: once finalization
//! has begun, CPython ends a foreign thread that asks for the GIL (even one
//! already inside Python, as `call_soon_threadsafe` re-taking it after a
//! socket write) with `pthread_exit`, and that forced unwind through this
//! thread's Rust frames aborted the process.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::process::{locked, panic_text, PerProcess};

/// How long a synchronous call waits for its log records to be delivered. A
/// handler slower than this (say, one that logs over the network) delays the
/// records, never the call.
const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// At most this many jobs run under one hold of the GIL, so a burst of
/// records does not keep Python threads waiting.
const BATCH: usize = 64;

/// A function to run with the GIL on the Python thread.
pub type GilCall = Box<dyn FnOnce(Python<'_>) + Send>;

/// What the Python thread runs.
enum Job {
    Log(OwnedRecord),
    Call(GilCall),
}

/// A `log::Record` that can cross threads.
struct OwnedRecord {
    level: Level,
    target: String,
    message: String,
    module_path: Option<&'static str>,
    file: Option<&'static str>,
    line: Option<u32>,
}

impl OwnedRecord {
    fn of(record: &Record<'_>) -> Self {
        OwnedRecord {
            level: record.level(),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            module_path: record.module_path_static(),
            file: record.file_static(),
            line: record.line(),
        }
    }

    fn emit(&self, logger: &pyo3_log::Logger) {
        logger.log(
            &Record::builder()
                .args(format_args!("{}", self.message))
                .level(self.level)
                .target(&self.target)
                .module_path_static(self.module_path)
                .file_static(self.file)
                .line(self.line)
                .build(),
        );
    }
}

/// Jobs queued and delivered so far in this process.
#[derive(Default)]
struct Progress {
    queued: u64,
    delivered: u64,
}

/// This process's queue to the Python thread.
struct Queue {
    jobs: Sender<Job>,
    progress: Mutex<Progress>,
    delivered: Condvar,
}

impl Queue {
    fn push(&self, job: Job) {
        // Counting and sending under one lock keeps the count in queue order.
        let mut progress = locked(&self.progress);
        if self.jobs.send(job).is_ok() {
            progress.queued += 1;
        }
    }

    fn mark_delivered(&self, n: u64) {
        locked(&self.progress).delivered += n;
        self.delivered.notify_all();
    }

    fn wait_delivered(&self, upto: u64, patience: Duration) {
        let end = Instant::now() + patience;
        let mut progress = locked(&self.progress);
        while progress.delivered < upto {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            progress = match self.delivered.wait_timeout(progress, left) {
                Ok((p, _)) => p,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Set by [`stop_at_exit`]: from then on jobs are dropped, not run.
static STOPPED: AtomicBool = AtomicBool::new(false);

thread_local! {
    static ON_PYTHON_THREAD: Cell<bool> = const { Cell::new(false) };
    /// Records of the synchronous call this thread is running, if any.
    static CAPTURED: RefCell<Option<Vec<OwnedRecord>>> = const { RefCell::new(None) };
}

/// Keeps this thread's log records for its caller (see the module docs),
/// until dropped.
pub struct Capture {
    outer: Option<Vec<OwnedRecord>>,
}

impl Capture {
    /// Start keeping this thread's records.
    pub fn start() -> Self {
        Capture {
            outer: CAPTURED.with(|c| c.replace(Some(Vec::new()))),
        }
    }

    /// The records kept so far (taken).
    pub fn finish(&mut self) -> Records {
        Records(CAPTURED.with(|c| {
            c.borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        }))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let outer = self.outer.take();
        let _ = CAPTURED.try_with(|c| *c.borrow_mut() = outer);
    }
}

/// Log records kept by a [`Capture`].
pub struct Records(Vec<OwnedRecord>);

impl Records {
    /// Hand the records to `logging`, on this thread. Python code runs
    /// there, and so may a signal handler: what it raised (Ctrl-C's
    /// `KeyboardInterrupt`) is returned, for the caller to raise.
    pub fn emit(self, py: Python<'_>) -> Option<PyErr> {
        if self.0.is_empty() {
            return None;
        }
        if let Some(logger) = python_logger(py) {
            for record in &self.0 {
                record.emit(logger);
            }
        }
        // pyo3_log leaves an exception of the handlers set (it cannot
        // return it); the first is kept.
        PyErr::take(py)
    }
}

/// Keep `record` for this thread's caller, when a [`Capture`] runs here;
/// handed back otherwise.
fn capture(record: OwnedRecord) -> Option<OwnedRecord> {
    let mut record = Some(record);
    let _ = CAPTURED.try_with(|c| {
        if let Some(kept) = c.borrow_mut().as_mut() {
            kept.extend(record.take());
        }
    });
    record
}

/// The Python side of the log bridge, made by the Python thread at the first
/// record (`None`: `logging` could not be set up; records are dropped).
static PY_LOGGER: OnceLock<Option<pyo3_log::Logger>> = OnceLock::new();

/// `pyo3_log`'s logger for the `condlock` targets. Python's levels are read
/// for every record (no caching), so `logging.getLogger("condlock")
/// .setLevel(...)` takes effect at once.
fn python_logger(py: Python<'_>) -> Option<&'static pyo3_log::Logger> {
    PY_LOGGER
        .get_or_init(|| {
            pyo3_log::Logger::new(py, pyo3_log::Caching::Nothing)
                .ok()
                .map(|l| {
                    l.filter(LevelFilter::Off)
                        .filter_target(TARGET.to_string(), MAX_LEVEL)
                })
        })
        .as_ref()
}

/// Only condlock's own records are forwarded (the HTTP stack's debug chatter
/// never reaches Python), down to this level.
const TARGET: &str = "condlock";
const MAX_LEVEL: LevelFilter = LevelFilter::Debug;

/// This process's queue to the Python thread (a forked child starts its own:
/// the parent's thread does not exist there).
static QUEUE: PerProcess<Arc<Queue>> = PerProcess::new();

/// This process's queue, with its thread started the first time.
fn queue() -> Option<Arc<Queue>> {
    QUEUE.get_or_build(start).ok()
}

fn start() -> PyResult<Arc<Queue>> {
    let (tx, rx) = channel();
    let queue = Arc::new(Queue {
        jobs: tx,
        progress: Mutex::new(Progress::default()),
        delivered: Condvar::new(),
    });
    let for_thread = queue.clone();
    std::thread::Builder::new()
        .name("condlock-python".into())
        .spawn(move || run(rx, &for_thread))
        // A lazily built error: this may run on a thread without the GIL.
        .map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start condlock's Python thread: {e}"))
        })?;
    Ok(queue)
}

fn run(rx: Receiver<Job>, queue: &Queue) {
    ON_PYTHON_THREAD.with(|f| f.set(true));
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        // While the interpreter shuts down nothing can be delivered; the jobs
        // are dropped and counted, so that no caller waits for them.
        if STOPPED.load(Ordering::Acquire) {
            drop(batch);
            queue.mark_delivered(n);
            continue;
        }
        let _ = Python::try_attach(|py| {
            for job in batch {
                // A job that panics must not end this thread: every later
                // record and asyncio result would wait for it forever.
                let ran = catch_unwind(AssertUnwindSafe(|| match job {
                    Job::Log(record) => {
                        if let Some(logger) = python_logger(py) {
                            record.emit(logger);
                        }
                    }
                    Job::Call(call) => call(py),
                }));
                if let Err(payload) = ran {
                    eprintln!(
                        "condlock: internal error on the condlock-python thread (please report it): {}",
                        panic_text(payload.as_ref())
                    );
                }
            }
        });
        queue.mark_delivered(n);
    }
}

/// The `atexit` hook: let the batch in progress finish while Python can
/// still run it (waiting at most [`DELIVERY_WAIT`], the GIL released), then
/// stop running jobs, before finalization could end the thread mid-job.
#[pyfunction]
pub fn stop_at_exit(py: Python<'_>) {
    STOPPED.store(true, Ordering::Release);
    let Some(q) = queue() else { return };
    let upto = locked(&q.progress).queued;
    py.detach(|| q.wait_delivered(upto, DELIVERY_WAIT));
}

/// Run `call` with the GIL on the Python thread, after everything queued
/// before it. Never waits for the GIL itself.
pub fn call_with_gil(call: GilCall) {
    match queue() {
        Some(q) => q.push(Job::Call(call)),
        // Only when no thread can be started at all: run it here instead.
        None => Python::attach(call),
    }
}

/// Wait (GIL released) until the log records queued so far are delivered,
/// for at most [`DELIVERY_WAIT`]. Called by synchronous operations before they
/// return to Python.
pub fn wait_for_delivery(py: Python<'_>) {
    if ON_PYTHON_THREAD.with(Cell::get) {
        // A logging handler that itself calls condlock: the records it would
        // wait for are queued behind the handler now running.
        return;
    }
    // Nothing was ever queued (a program whose calls are all synchronous):
    // the thread is not started just to find that out.
    let Some(q) = QUEUE.get() else { return };
    let upto = {
        let progress = locked(&q.progress);
        if progress.delivered >= progress.queued {
            return;
        }
        progress.queued
    };
    py.detach(|| q.wait_delivered(upto, DELIVERY_WAIT));
}

/// The `log` front end: keeps condlock's records (no GIL needed) and queues
/// them for the Python thread.
struct QueuedLogger;

impl Log for QueuedLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let ours = target
            .strip_prefix(TARGET)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        ours && metadata.level() <= MAX_LEVEL
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(record) = capture(OwnedRecord::of(record)) else {
            return;
        };
        if let Some(q) = queue() {
            q.push(Job::Log(record));
        }
    }

    fn flush(&self) {}
}

/// Bridge the `log` crate to Python's `logging` through the Python thread.
///
/// Core targets like `condlock::s3::acquire` become loggers
/// `condlock.s3.acquire`, children of `condlock`. A second initialisation
/// (sub-interpreter, reload) keeps the first bridge.
pub fn install_logger() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if log::set_logger(&QueuedLogger).is_ok() {
            log::set_max_level(MAX_LEVEL);
        }
    });
}
