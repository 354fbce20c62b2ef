//! Where the Rust futures run, and how Python waits for them.
//!
//! - One multi-threaded tokio runtime per process (re-created in a forked
//!   child, whose parent's worker threads do not exist).
//! - Synchronous calls ([`block_on`]) spawn the operation on the runtime and
//!   wait on a channel with the GIL released, waking every 50 ms to run
//!   Python's signal handlers: Ctrl-C cancels the operation through its
//!   `Cancel`, waits for the core's cleanup, then raises
//!   `KeyboardInterrupt`.
//! - asyncio calls ([`spawn_for_asyncio`]) spawn the operation and return at
//!   once; the result is handed to the event loop with
//!   `loop.call_soon_threadsafe(callback, ok, value)` from the Python thread
//!   ([`crate::python_thread`]), so neither the loop nor the worker blocks.
//!   The returned [`Operation`] cancels the token when the asyncio task is
//!   cancelled.

use std::future::Future;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use condlock::Cancel;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors;
use crate::process::{panic_text, PerProcess};
use crate::python_thread;
use condlock::error::Context;

/// How often a blocked synchronous call wakes up to run signal handlers.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

tokio::task_local! {
    /// The asyncio event loop of the operation being run, when it was started
    /// from asyncio: an async user transport runs its coroutines there.
    /// (Shared, so the worker can hand it on without the GIL.)
    pub static EVENT_LOOP: Arc<Py<PyAny>>;
}

/// The process's runtime.
pub fn runtime() -> PyResult<Arc<Runtime>> {
    // In a forked child, the parent's worker threads were not copied: dropping
    // that runtime would wait for them forever, so it is leaked on purpose.
    static RT: PerProcess<Arc<Runtime>> = PerProcess::new();
    RT.get_or_build(build_runtime)
}

fn build_runtime() -> PyResult<Arc<Runtime>> {
    // One worker: every operation is I/O-bound, and each extra worker adds
    // cross-thread wake-ups to every request (measured: ~85 µs of CPU per
    // lock+unlock cycle against moto). User transports run on the blocking
    // pool, not on the worker.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("condlock-io")
        .enable_all()
        .build()
        .map_err(|e| errors::internal(&format!("cannot start the I/O runtime: {e}")))?;
    Ok(Arc::new(rt))
}

/// Run `fut` on the runtime and wait for it with the GIL released.
///
/// With `interrupt`, a pending signal (Ctrl-C) cancels that token; the wait
/// then continues until `fut` has finished its cleanup, and the signal's
/// exception (`KeyboardInterrupt`) is raised. Without it, the call runs to
/// completion and signals are handled afterwards by Python.
pub fn block_on<T, F>(py: Python<'_>, fut: F, interrupt: Option<&Cancel>) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    match block_on_raw(py, fut, interrupt)? {
        (_, Some(signal)) => Err(signal),
        (value, None) => Ok(value),
    }
}

/// [`block_on`], handing back the result even when a signal arrived (the
/// operation may have succeeded just before it saw the cancellation, and the
/// caller must then undo it).
pub fn block_on_raw<T, F>(
    py: Python<'_>,
    fut: F,
    interrupt: Option<&Cancel>,
) -> PyResult<(T, Option<PyErr>)>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let rt = runtime()?;
    let (tx, rx) = sync_channel(1);
    rt.spawn(async move {
        let result = tokio::spawn(fut).await;
        let _ = tx.send(result);
    });
    let mut signal: Option<PyErr> = None;
    let mut rx = rx;
    loop {
        let (back, got) = py.detach(move || {
            let got = rx.recv_timeout(SIGNAL_POLL);
            (rx, got)
        });
        rx = back;
        if got.is_ok() {
            // The operation's log records reach `logging` before the caller
            // goes on.
            python_thread::wait_for_delivery(py);
        }
        match got {
            Ok(Ok(value)) => {
                // A signal that came with the result (in the same poll) is
                // still the caller's to see, with the result, so an
                // acquisition can be given back before it is raised.
                if signal.is_none() && interrupt.is_some() {
                    signal = py.check_signals().err();
                }
                return Ok((value, signal));
            }
            Ok(Err(join)) => return Err(join_error(join)),
            Err(RecvTimeoutError::Timeout) => {
                if signal.is_none() {
                    if let Some(token) = interrupt {
                        if let Err(e) = py.check_signals() {
                            log::info!(
                                target: "condlock::python",
                                "interrupted: cancelling the operation and cleaning up"
                            );
                            token.cancel();
                            signal = Some(e);
                        }
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(errors::internal("the I/O task vanished"))
            }
        }
    }
}

/// [`block_on_raw`] for an acquisition that Ctrl-C cancels through `token`.
/// When the signal came just as the lock was taken, `release` gives it back
/// (a failure is logged) before the signal is raised.
pub fn block_on_acquire<H, E, F, R, U>(
    py: Python<'_>,
    fut: F,
    token: &Cancel,
    what: &str,
    release: impl FnOnce(H) -> PyResult<R>,
) -> PyResult<Result<H, E>>
where
    H: Send + 'static,
    E: Send + 'static,
    F: Future<Output = Result<H, E>> + Send + 'static,
    U: Send + 'static,
    R: Future<Output = Result<U, condlock::Error>> + Send + 'static,
{
    let (result, signal) = block_on_raw(py, fut, Some(token))?;
    let Some(signal) = signal else {
        return Ok(result);
    };
    // Interrupted just as the lock was taken: give it back first.
    if let Ok(held) = result {
        if let Ok(Err(e)) = block_on(py, release(held)?, None) {
            log::error!(
                target: "condlock::python",
                "could not release {what} after an interrupt: {e}"
            );
        }
    }
    Err(signal)
}

fn join_error(e: tokio::task::JoinError) -> PyErr {
    if e.is_panic() {
        errors::internal(&panic_text(e.into_panic().as_ref()))
    } else {
        errors::internal("the I/O task was cancelled")
    }
}

/// An operation started from asyncio. `cancel()` asks it to stop; the core
/// then removes any lock it may have written before the result is delivered.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct Operation {
    token: Cancel,
}

#[pymethods]
impl Operation {
    /// Ask the operation to stop (idempotent).
    fn cancel(&self) {
        self.token.cancel();
    }

    /// True once `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
}

/// Converts a successful result into the Python value handed to the callback.
pub type Deliver<T> = Box<dyn FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send>;

/// Start `make(token)` on the runtime for an asyncio caller. When it ends,
/// `callback(ok, value)` is scheduled on `event_loop` with
/// `call_soon_threadsafe`: `ok` True with the converted value, or False with
/// an exception instance.
pub fn spawn_for_asyncio<T, F>(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    ctx: Context,
    token: Cancel,
    fut: F,
    deliver: Deliver<T>,
) -> PyResult<Operation>
where
    T: Send + 'static,
    F: Future<Output = Result<T, condlock::Error>> + Send + 'static,
{
    let rt = runtime()?;
    let loop_for_transport = Arc::new(event_loop.clone().unbind());
    let event_loop = event_loop.clone().unbind();
    let callback = callback.clone().unbind();
    let _ = py;
    rt.spawn(async move {
        let joined = tokio::spawn(EVENT_LOOP.scope(loop_for_transport, fut)).await;
        // Converted and handed over on the Python thread: the worker never
        // waits for the GIL, and the task's log records come first.
        python_thread::call_with_gil(Box::new(move |py| {
            let (ok, value): (bool, Py<PyAny>) = match joined {
                Ok(Ok(v)) => match deliver(py, v) {
                    Ok(obj) => (true, obj),
                    Err(e) => (false, e.into_value(py).into_any()),
                },
                Ok(Err(e)) => (
                    false,
                    errors::to_py_with(py, e, &ctx).into_value(py).into_any(),
                ),
                Err(join) => (false, join_error(join).into_value(py).into_any()),
            };
            if let Err(e) = event_loop
                .bind(py)
                .call_method1("call_soon_threadsafe", (callback.bind(py), ok, value))
            {
                log::warn!(
                    target: "condlock::python",
                    "could not hand a result to the asyncio event loop (closed?): {e}"
                );
            }
        }));
    });
    Ok(Operation { token })
}

/// Where an operation was called from: `None` for a synchronous caller,
/// `Some((event_loop, callback))` for asyncio.
pub type Caller<'a, 'py> = Option<(&'a Bound<'py, PyAny>, &'a Bound<'py, PyAny>)>;

/// Run `fut` for `caller`: wait for it with the GIL released (Ctrl-C cancels
/// `interrupt` when given) and return `convert`'s value, or start it for
/// asyncio and return its [`Operation`]. Errors are about `ctx`.
pub fn call<T, F>(
    py: Python<'_>,
    caller: Caller<'_, '_>,
    ctx: &Context,
    interrupt: Option<Cancel>,
    fut: F,
    convert: Deliver<T>,
) -> PyResult<Py<PyAny>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, condlock::Error>> + Send + 'static,
{
    match caller {
        Some((event_loop, callback)) => {
            let token = interrupt.unwrap_or_default();
            let op = spawn_for_asyncio(py, event_loop, callback, ctx.clone(), token, fut, convert)?;
            Ok(Py::new(py, op)?.into_any())
        }
        None => {
            let value = block_on(py, fut, interrupt.as_ref())?;
            convert(py, value.map_err(|e| errors::to_py_with(py, e, ctx))?)
        }
    }
}

/// `value` for `caller`: returned, or handed to asyncio like any result (for
/// an operation with nothing left to do).
pub fn ready(
    py: Python<'_>,
    caller: Caller<'_, '_>,
    ctx: &Context,
    value: Py<PyAny>,
) -> PyResult<Py<PyAny>> {
    let deliver: Deliver<()> = Box::new(move |_, ()| Ok(value));
    call(py, caller, ctx, None, async { Ok(()) }, deliver)
}
