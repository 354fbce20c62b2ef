//! The HTTP transport under a lock: the core's reqwest driver, or a user's
//! Python callable.
//!
//! A reqwest client's pooled connections are served by tasks of the runtime
//! that opened them, and stall while that runtime is not driven. So the
//! built-in client is one per runtime ([`NativeTransport`]): each thread's
//! synchronous calls use clients of that thread (shared by its locks with the
//! same transport settings, so they also share connections), and the
//! background runtime (renewals, asyncio) uses one of its own per lock.
//!
//! A sync callable `(method, url, headers, body) -> (status, headers, body)`
//! runs in tokio's blocking pool with the GIL. An async callable (a coroutine
//! function with the same signature) runs on the asyncio loop of the operation
//! when it was started from asyncio (`asyncio.run_coroutine_threadsafe`), or
//! with `asyncio.run` in a blocking-pool thread when it was started from the
//! synchronous API.

use std::sync::{Arc, Mutex};

use condlock::error::Context;
use condlock::native::{HttpTransport, Transport, TransportOptions};
use condlock::sansio::{Body, TransportFailure};
use condlock::settings::TransportSettings;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyCFunction, PyString, PyTuple};

use crate::errors::{invalid_config, to_py};
use crate::process::locked;
use crate::runtime::{driving_here, in_context_here, EVENT_LOOP};

tokio::task_local! {
    /// Where a user transport records a programming error of the operation
    /// being run (see [`Abort`]).
    pub static ABORT: Abort;
}

/// A user transport's programming error (a malformed return value, or an
/// exception that is not an `OSError`), recorded for the operation that made
/// the call. Recording cancels the operation's token, so the caller fails fast
/// with the recorded exception instead of retrying it as a transport failure
/// until the deadline. `OSError` (and asyncio timeouts/cancellation) stay
/// transport failures, retried as usual.
#[derive(Clone, Default)]
pub struct Abort {
    token: condlock::Cancel,
    error: Arc<Mutex<Option<PyErr>>>,
}

impl Abort {
    /// Record on `token` (cancelled when the first error is recorded).
    pub fn new(token: condlock::Cancel) -> Self {
        Abort {
            token,
            error: Arc::default(),
        }
    }

    fn record(&self, e: PyErr) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(e);
        }
        self.token.cancel();
    }

    /// The recorded error, if any (taken once).
    pub fn take(&self) -> Option<PyErr> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }

    /// Resolves once an error was recorded.
    pub async fn aborted(&self) {
        self.token.cancelled().await
    }

    fn current() -> Option<Abort> {
        ABORT.try_with(|a| a.clone()).ok()
    }
}

/// True for exceptions that mean "the request failed" (retried) rather than
/// "the transport is broken" (a programming error).
fn is_transport_failure(py: Python<'_>, e: &PyErr) -> bool {
    if e.is_instance_of::<pyo3::exceptions::PyOSError>(py) {
        return true;
    }
    let kinds = || -> PyResult<bool> {
        let asyncio = py.import("asyncio")?;
        let futures = py.import("concurrent.futures")?;
        for (m, name) in [
            (&asyncio, "TimeoutError"),
            (&asyncio, "CancelledError"),
            (&futures, "TimeoutError"),
            (&futures, "CancelledError"),
        ] {
            if e.matches(py, m.getattr(name)?)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    kinds().unwrap_or(false)
}

/// A failed call of the user's transport: retried when it is a transport
/// failure; otherwise recorded (failing the operation fast with `e`).
fn call_failed(py: Python<'_>, abort: Option<&Abort>, e: PyErr) -> TransportFailure {
    let text = describe_exception(py, &e);
    if !is_transport_failure(py, &e) {
        if let Some(a) = abort {
            a.record(e);
        }
        // A programming error: the same call fails the same way next time.
        return TransportFailure {
            message: text,
            maybe_sent: true,
            permanent: true,
        };
    }
    classify_exception(py, &e, text)
}

/// What a transport exception says about the request. An exception may say
/// it outright with boolean `maybe_sent` / `permanent` attributes; otherwise
/// the standard library's kinds are recognised: a refused connection or a
/// failed name lookup never sent anything (and a name that does not exist
/// stays so), a rejected certificate stays rejected. Anything else may have
/// reached the server, the safe assumption.
fn classify_exception(py: Python<'_>, e: &PyErr, message: String) -> TransportFailure {
    let value = e.value(py);
    let flag = |name: &str| -> Option<bool> {
        value
            .getattr(name)
            .ok()
            .and_then(|v| v.extract::<bool>().ok())
    };
    let is = |module: &str, name: &str| -> bool {
        py.import(module)
            .and_then(|m| m.getattr(name))
            .map(|kind| e.matches(py, kind).unwrap_or(false))
            .unwrap_or(false)
    };
    let mut failure = if is("ssl", "SSLCertVerificationError") {
        TransportFailure::permanent(message)
    } else if is("socket", "gaierror") {
        let no_such_name = py
            .import("socket")
            .and_then(|m| m.getattr("EAI_NONAME"))
            .and_then(|n| n.extract::<i64>())
            .ok()
            .zip(errno_of(py, e))
            .is_some_and(|(nonexistent, errno)| nonexistent == errno);
        if no_such_name {
            TransportFailure::permanent(message)
        } else {
            TransportFailure::not_sent(message)
        }
    } else if e.is_instance_of::<pyo3::exceptions::PyConnectionRefusedError>(py) {
        TransportFailure::not_sent(message)
    } else {
        TransportFailure::maybe_sent(message)
    };
    if let Some(maybe_sent) = flag("maybe_sent") {
        failure.maybe_sent = maybe_sent;
    }
    if let Some(permanent) = flag("permanent") {
        failure.permanent = permanent;
    }
    failure
}

/// `e.errno` as an integer, when it has one.
fn errno_of(py: Python<'_>, e: &PyErr) -> Option<i64> {
    e.value(py)
        .getattr("errno")
        .ok()
        .and_then(|v| v.extract::<i64>().ok())
}

/// A malformed return value: a `TypeError` for the caller. The request was
/// answered, and the transport would answer the same way again.
fn malformed(abort: Option<&Abort>, why: String) -> TransportFailure {
    if let Some(a) = abort {
        a.record(pyo3::exceptions::PyTypeError::new_err(why.clone()));
    }
    TransportFailure {
        message: why,
        maybe_sent: true,
        permanent: true,
    }
}

/// The call could not even be made (its arguments could not be built, or the
/// loop refused it): nothing was sent, and nothing will be next time.
fn not_called(py: Python<'_>, e: &PyErr) -> TransportFailure {
    TransportFailure::permanent(describe_exception(py, e))
}

/// The built-in client's options from the core's resolved settings.
pub fn native_options(s: TransportSettings) -> TransportOptions {
    // The native driver's options are the core's settings.
    s
}

/// How to (re)build a lock's transport: kept so a forked child gets its own.
pub enum TransportSpec {
    /// The built-in client, with these settings (resolved by the core).
    Native(TransportOptions),
    Sync(Arc<Py<PyAny>>),
    Async(Arc<Py<PyAny>>),
}

impl TransportSpec {
    /// From the `transport` / `async_transport` arguments (at most one, a
    /// callable); the built-in client with `native` when neither is given.
    pub fn from_args(
        py: Python<'_>,
        transport: Option<Py<PyAny>>,
        async_transport: Option<Py<PyAny>>,
        native: TransportOptions,
    ) -> PyResult<Self> {
        let callable = |t: Py<PyAny>| {
            if t.bind(py).is_callable() {
                Ok(Arc::new(t))
            } else {
                Err(invalid_config("transport", "must be callable"))
            }
        };
        match (transport, async_transport) {
            (Some(_), Some(_)) => Err(invalid_config(
                "transport",
                "give a synchronous or an asynchronous transport, not both",
            )),
            (Some(t), None) => Ok(TransportSpec::Sync(callable(t)?)),
            (None, Some(t)) => Ok(TransportSpec::Async(callable(t)?)),
            (None, None) => Ok(TransportSpec::Native(native)),
        }
    }

    /// A transport for this process; errors are about `ctx`.
    pub fn build(&self, ctx: &Context) -> PyResult<AnyTransport> {
        Ok(match self {
            TransportSpec::Native(opts) => AnyTransport::Native(NativeTransport::new(opts, ctx)?),
            TransportSpec::Sync(f) => AnyTransport::Sync(f.clone()),
            TransportSpec::Async(f) => AnyTransport::Async(f.clone()),
        })
    }
}

/// The most transport settings whose clients a thread keeps. Programs use
/// one or two; more are rebuilt when needed.
const CLIENTS_PER_THREAD: usize = 4;

thread_local! {
    /// This thread's clients for its synchronous calls, by settings, with
    /// the process they belong to (a forked child must not use its parent's
    /// connections).
    static CLIENTS: std::cell::RefCell<(u32, Vec<(TransportOptions, Transport)>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

/// This thread's client for `opts`, built (in the current runtime's context)
/// when it has none.
fn client_here(opts: &TransportOptions) -> Result<Transport, condlock::Error> {
    let pid = std::process::id();
    CLIENTS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != pid {
            // The parent's, in a forked child: leaked, never dropped (closing
            // them would close connections the parent still uses).
            std::mem::forget(std::mem::take(&mut c.1));
            c.0 = pid;
        }
        if let Some((_, t)) = c.1.iter().find(|(o, _)| o == opts) {
            return Ok(t.clone());
        }
        let t = Transport::new(opts)?;
        if c.1.len() >= CLIENTS_PER_THREAD {
            c.1.remove(0);
        }
        c.1.push((opts.clone(), t.clone()));
        Ok(t)
    })
}

/// The built-in client for one lock: this thread's during a synchronous call,
/// the background runtime's otherwise (see the module docs).
pub struct NativeTransport {
    opts: TransportOptions,
    background: Mutex<Option<Transport>>,
}

impl NativeTransport {
    /// Checks `opts` by building this thread's client for them now, so a
    /// bad CA bundle is reported by the lock's constructor.
    fn new(opts: &TransportOptions, ctx: &Context) -> PyResult<Self> {
        in_context_here(|| client_here(opts))?.map_err(|e| to_py(e, ctx))?;
        Ok(NativeTransport {
            opts: opts.clone(),
            background: Mutex::new(None),
        })
    }

    /// The client for the runtime running the caller.
    fn client(&self) -> Result<Transport, TransportFailure> {
        let built = if driving_here() {
            client_here(&self.opts)
        } else {
            let mut slot = locked(&self.background);
            match slot.as_ref() {
                Some(t) => Ok(t.clone()),
                None => Transport::new(&self.opts).inspect(|t| *slot = Some(t.clone())),
            }
        };
        // The settings were checked by `new`: only a failing system (no
        // memory, no TLS roots) gets here.
        built.map_err(|e| TransportFailure::permanent(e.to_string()))
    }
}

/// Which transport carries a lock's requests.
pub enum AnyTransport {
    /// reqwest, GIL-free.
    Native(NativeTransport),
    /// A Python callable returning the response.
    Sync(Arc<Py<PyAny>>),
    /// A Python coroutine function returning the response.
    Async(Arc<Py<PyAny>>),
}

impl std::fmt::Debug for AnyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyTransport::Native(_) => "AnyTransport::Native",
            AnyTransport::Sync(_) => "AnyTransport::Sync",
            AnyTransport::Async(_) => "AnyTransport::Async",
        })
    }
}

struct Parts {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn split(req: http::Request<Body>) -> Parts {
    let (head, body) = req.into_parts();
    let headers = head
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Parts {
        method: head.method.as_str().to_string(),
        url: head.uri.to_string(),
        headers,
        body,
    }
}

fn args<'py>(py: Python<'py>, p: &Parts) -> PyResult<Bound<'py, PyTuple>> {
    let headers: Vec<(&str, &str)> = p
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    (
        p.method.as_str(),
        p.url.as_str(),
        headers,
        PyBytes::new(py, &p.body),
    )
        .into_pyobject(py)
}

fn describe_exception(py: Python<'_>, e: &PyErr) -> String {
    let name = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    format!("the transport raised {name}: {}", e.value(py))
}

fn bytes_of(v: &Bound<'_, PyAny>) -> Result<Vec<u8>, String> {
    if v.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s
            .to_str()
            .map(|s| s.as_bytes().to_vec())
            .map_err(|_| "the response body is not valid text".into());
    }
    // memoryview and other buffer objects.
    v.call_method0("tobytes")
        .ok()
        .and_then(|b| b.cast::<PyBytes>().ok().map(|b| b.as_bytes().to_vec()))
        .ok_or_else(|| "the response body must be bytes".to_string())
}

/// `(status, headers, body)` -> an HTTP response. Headers may be a mapping
/// (anything with `items()`) or an iterable of `(name, value)` pairs.
fn response_of(r: &Bound<'_, PyAny>) -> Result<http::Response<Body>, String> {
    const SHAPE: &str = "the transport must return (status: int, headers, body: bytes)";
    let (status, headers, body): (u16, Bound<'_, PyAny>, Bound<'_, PyAny>) =
        r.extract().map_err(|_| SHAPE.to_string())?;
    let mut builder = http::Response::builder().status(status);
    let pairs = if headers.hasattr("items").unwrap_or(false) {
        headers
            .call_method0("items")
            .map_err(|_| SHAPE.to_string())?
    } else {
        headers
    };
    for pair in pairs.try_iter().map_err(|_| SHAPE.to_string())? {
        let (k, v): (String, String) = pair
            .and_then(|p| p.extract())
            .map_err(|_| "response headers must be (str, str) pairs".to_string())?;
        builder = builder.header(k, v);
    }
    let mut body = bytes_of(&body)?;
    body.truncate(condlock::drive::MAX_RESPONSE_BODY);
    builder
        .body(body)
        .map_err(|e| format!("the transport returned an invalid response: {e}"))
}

fn call_sync(
    py: Python<'_>,
    f: &Py<PyAny>,
    p: &Parts,
    abort: Option<&Abort>,
) -> Result<http::Response<Body>, TransportFailure> {
    let a = args(py, p).map_err(|e| not_called(py, &e))?;
    let r = f.bind(py).call1(a).map_err(|e| call_failed(py, abort, e))?;
    response_of(&r).map_err(|why| malformed(abort, why))
}

fn call_async_in_new_loop(
    py: Python<'_>,
    f: &Py<PyAny>,
    p: &Parts,
    abort: Option<&Abort>,
) -> Result<http::Response<Body>, TransportFailure> {
    let run = || -> PyResult<Bound<'_, PyAny>> {
        let coro = f.bind(py).call1(args(py, p)?)?;
        py.import("asyncio")?.call_method1("run", (coro,))
    };
    let r = run().map_err(|e| call_failed(py, abort, e))?;
    response_of(&r).map_err(|why| malformed(abort, why))
}

async fn call_async_on_loop(
    event_loop: Arc<Py<PyAny>>,
    f: Arc<Py<PyAny>>,
    p: Parts,
    abort: Option<Abort>,
) -> Result<http::Response<Body>, TransportFailure> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx: ReplySlot = Arc::new(Mutex::new(Some(tx)));
    // Submitting the coroutine needs the GIL: on the blocking pool, never on
    // the I/O worker (which must not wait for it).
    let submitted =
        tokio::task::spawn_blocking(move || submit_on_loop(&event_loop, &f, &p, abort, tx))
            .await
            .unwrap_or_else(|e| {
                Err(TransportFailure::maybe_sent(format!(
                    "the transport task failed: {e}"
                )))
            });
    submitted?;
    rx.await.unwrap_or_else(|_| {
        Err(TransportFailure::maybe_sent(
            "the async transport was abandoned (event loop closed?)",
        ))
    })
}

/// Where the loop's done-callback puts the transport's answer (once).
type ReplySlot = Arc<
    Mutex<Option<tokio::sync::oneshot::Sender<Result<http::Response<Body>, TransportFailure>>>>,
>;

/// Start `f(...)` on `event_loop` with `run_coroutine_threadsafe`; its result
/// is sent through `tx` from the loop's done-callback.
fn submit_on_loop(
    event_loop: &Py<PyAny>,
    f: &Py<PyAny>,
    p: &Parts,
    abort: Option<Abort>,
    tx: ReplySlot,
) -> Result<(), TransportFailure> {
    Python::attach(|py| -> Result<(), TransportFailure> {
        let fail = |e: PyErr| not_called(py, &e);
        let coro = f
            .bind(py)
            .call1(args(py, p).map_err(fail)?)
            .map_err(|e| call_failed(py, abort.as_ref(), e))?;
        let cf = py
            .import("asyncio")
            .and_then(|a| a.call_method1("run_coroutine_threadsafe", (coro, event_loop.bind(py))))
            .map_err(fail)?;
        let tx = tx.clone();
        let abort = abort.clone();
        let done = PyCFunction::new_closure(py, None, None, move |a, _kw| -> PyResult<()> {
            let py = a.py();
            let fut = a.get_item(0)?;
            let outcome = match fut.call_method0("result") {
                Ok(r) => response_of(&r).map_err(|why| malformed(abort.as_ref(), why)),
                Err(e) => Err(call_failed(py, abort.as_ref(), e)),
            };
            if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                let _ = tx.send(outcome);
            }
            Ok(())
        })
        .map_err(fail)?;
        cf.call_method1("add_done_callback", (done,))
            .map_err(fail)?;
        Ok(())
    })
}

impl HttpTransport for AnyTransport {
    // The trait spells out `+ Send`; keep the signature identical.
    #[allow(clippy::manual_async_fn)]
    fn send(
        &self,
        req: http::Request<Body>,
    ) -> impl std::future::Future<Output = Result<http::Response<Body>, TransportFailure>> + Send
    {
        async move {
            match self {
                AnyTransport::Native(t) => t.client()?.send(req).await,
                AnyTransport::Sync(f) => {
                    let f = f.clone();
                    let p = split(req);
                    let abort = Abort::current();
                    tokio::task::spawn_blocking(move || {
                        Python::attach(|py| call_sync(py, &f, &p, abort.as_ref()))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(TransportFailure::maybe_sent(format!(
                            "the transport task failed: {e}"
                        )))
                    })
                }
                AnyTransport::Async(f) => {
                    let p = split(req);
                    let abort = Abort::current();
                    let event_loop = EVENT_LOOP.try_with(Arc::clone).ok();
                    match event_loop {
                        Some(l) => call_async_on_loop(l, f.clone(), p, abort).await,
                        None => {
                            let f = f.clone();
                            tokio::task::spawn_blocking(move || {
                                Python::attach(|py| {
                                    call_async_in_new_loop(py, &f, &p, abort.as_ref())
                                })
                            })
                            .await
                            .unwrap_or_else(|e| {
                                Err(TransportFailure::maybe_sent(format!(
                                    "the transport task failed: {e}"
                                )))
                            })
                        }
                    }
                }
            }
        }
    }
}
