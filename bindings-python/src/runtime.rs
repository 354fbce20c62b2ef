//! Where the Rust futures run, and how Python waits for them.
//!
//! - Synchronous calls ([`block_on`]) run on the calling thread: each Python
//!   thread that makes one gets its own current-thread tokio runtime (and,
//!   in [`crate::transport`], its own HTTP clients, whose connections live
//!   on that runtime). The thread drives the operation itself with the GIL
//!   released, so an uncontended request costs no wake-up of another thread
//!   (measured: about 2 context switches per lock+unlock cycle, the waits
//!   for the two answers, against 9-12 when every request went through an
//!   I/O thread; see BENCHMARKS.md). With an interrupt token it comes back
//!   every 50 ms, outside the runtime, to run Python's signal handlers:
//!   Ctrl-C cancels the operation through its `Cancel`, waits for the core's
//!   cleanup, then raises `KeyboardInterrupt`. (A handler that itself makes
//!   a synchronous call drives the same runtime meanwhile.)
//! - What must run while the caller does something else runs on one
//!   background runtime per process ([`runtime`], one worker thread, started
//!   at first need): lease renewal, lost-lock watches, and asyncio calls
//!   ([`spawn_for_asyncio`]), which return at once; their result is handed
//!   to the event loop with `loop.call_soon_threadsafe(callback, ok, value)`
//!   from the Python thread ([`crate::python_thread`]), so neither the loop
//!   nor the worker blocks. The returned [`Operation`] cancels the token
//!   when the asyncio task is cancelled.
//! - A synchronous call made where a runtime is already running on the
//!   thread (a user transport or credentials callback calling condlock: they
//!   run in a runtime's blocking pool) cannot drive a runtime there: it runs
//!   on the background runtime and waits for it, as every call did before.
//! - Both kinds are rebuilt in a forked child, whose copies of the parent's
//!   runtimes share the parent's epoll instance and sockets (and lack its
//!   threads): those copies are leaked, never dropped.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
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

/// The process's background runtime (built at first use).
pub fn runtime() -> PyResult<Arc<Runtime>> {
    // In a forked child, the parent's worker threads were not copied: dropping
    // that runtime would wait for them forever, so it is leaked on purpose.
    static RT: PerProcess<Arc<Runtime>> = PerProcess::new();
    RT.get_or_build(build_runtime)
}

fn build_runtime() -> PyResult<Arc<Runtime>> {
    // One worker: everything on it is I/O-bound and rare (renewals, asyncio
    // calls), and each extra worker adds cross-thread wake-ups to every
    // request (measured: ~85 µs of CPU per lock+unlock cycle against moto).
    // User transports run on the blocking pool, not on the worker.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("condlock-io")
        .enable_all()
        .build()
        .map_err(|e| errors::internal(&format!("cannot start the I/O runtime: {e}")))?;
    Ok(Arc::new(rt))
}

/// A thread's runtime for its synchronous calls.
struct Here {
    pid: u32,
    rt: Runtime,
}

thread_local! {
    /// This thread's runtime, built at its first synchronous call.
    static HERE: RefCell<Option<Rc<Here>>> = const { RefCell::new(None) };
    /// True while this thread drives its own runtime.
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

/// True while the current thread drives its own runtime (a synchronous call
/// in progress): HTTP clients must then be this thread's.
pub fn driving_here() -> bool {
    DRIVING.with(Cell::get)
}

/// This thread's runtime, or `None` where one cannot be driven (the thread
/// is already inside a runtime).
fn here() -> PyResult<Option<Rc<Here>>> {
    if driving_here() || tokio::runtime::Handle::try_current().is_ok() {
        return Ok(None);
    }
    let pid = std::process::id();
    HERE.with(|slot| {
        let mut slot = slot.borrow_mut();
        if let Some(h) = slot.as_ref() {
            if h.pid == pid {
                return Ok(Some(h.clone()));
            }
            // A forked child's copy of its parent's: see the module docs.
            if let Some(old) = slot.take() {
                std::mem::forget(old);
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| errors::internal(&format!("cannot start the I/O runtime: {e}")))?;
        let h = Rc::new(Here { pid, rt });
        *slot = Some(h.clone());
        Ok(Some(h))
    })
}

/// Run `f` inside this thread's runtime context (so what it builds belongs
/// to the runtime of this thread's synchronous calls), or as is where this
/// thread cannot have one.
pub fn in_context_here<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    Ok(match here()? {
        Some(h) => {
            let _guard = h.rt.enter();
            f()
        }
        None => f(),
    })
}

/// Marks the thread as driving its runtime and captures its log records,
/// until dropped (also on unwind).
struct Driving {
    capture: python_thread::Capture,
}

impl Driving {
    fn enter() -> Self {
        DRIVING.with(|d| d.set(true));
        Driving {
            capture: python_thread::Capture::start(),
        }
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.set(false));
    }
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
    match here()? {
        Some(h) => run_here(py, &h, fut, interrupt),
        None => block_on_background(py, fut, interrupt),
    }
}

/// Drive `fut` on this thread's runtime, GIL released. With `interrupt`, the
/// thread comes back every [`SIGNAL_POLL`] to run signal handlers (the
/// future is kept between the rounds).
fn run_here<T, F>(
    py: Python<'_>,
    here: &Here,
    fut: F,
    interrupt: Option<&Cancel>,
) -> PyResult<(T, Option<PyErr>)>
where
    T: Send,
    F: Future<Output = T> + Send,
{
    let mut fut = std::pin::pin!(fut);
    let mut signal: Option<PyErr> = None;
    loop {
        let (step, records) = py.detach(|| {
            let mut driving = Driving::enter();
            let step = here.rt.block_on(async {
                if interrupt.is_some() {
                    tokio::time::timeout(SIGNAL_POLL, fut.as_mut()).await.ok()
                } else {
                    Some(fut.as_mut().await)
                }
            });
            let records = driving.capture.finish();
            (step, records)
        });
        // The operation's log records reach `logging` from the caller's own
        // thread, before the caller goes on. A signal handler may run in
        // there: what it raised counts as the signal.
        let raised = records.emit(py);
        match step {
            Some(value) => {
                // Records of background tasks (a renewal) queued meanwhile.
                python_thread::wait_for_delivery(py);
                // A signal that came with the result is still the caller's
                // to see, with the result, so an acquisition can be given
                // back before it is raised.
                if signal.is_none() {
                    signal = raised;
                }
                if signal.is_none() && interrupt.is_some() {
                    signal = py.check_signals().err();
                }
                return Ok((value, signal));
            }
            None => {
                if signal.is_none() {
                    if let Some(token) = interrupt {
                        if let Err(e) = raised.map_or_else(|| py.check_signals(), Err) {
                            interrupted(token);
                            signal = Some(e);
                        }
                    }
                }
            }
        }
    }
}

fn interrupted(token: &Cancel) {
    log::info!(
        target: "condlock::python",
        "interrupted: cancelling the operation and cleaning up"
    );
    token.cancel();
}

/// [`block_on_raw`] on the background runtime: the caller waits on a channel
/// with the GIL released, waking every [`SIGNAL_POLL`] to run signal
/// handlers. For a thread that cannot drive a runtime of its own.
pub fn block_on_background<T, F>(
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
                            interrupted(token);
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
