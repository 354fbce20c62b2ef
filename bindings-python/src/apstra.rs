//! The Apstra blueprint mutex (the Terraform provider's tag `blueprint <ID>
//! locked` in the global design catalog): `ApstraClientCore`,
//! `ApstraMutexCore` and `HeldMutexCore`, wrapped by `condlock.ApstraClient`,
//! `condlock.ApstraMutex` and `condlock.HeldMutex` in Python.
//!
//! Glue, as [`crate::s3`]: the keyword arguments fill the core's
//! [`ApstraSettings`] / [`MutexSettings`]; the core's [`ApstraClient`] and
//! [`ApstraMutex`] run on the binding's runtime, built per process (a forked
//! child gets its own connection pool and login session).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use condlock::apstra::{
    ApstraServer, BlueprintId, ForceUnlocked, HeldMutex, MutexTag as CoreTag, UnlockOutcome,
};
use condlock::drive::apstra::{ApstraClient, ApstraMutex};
use condlock::drive::Notice;
use condlock::error::{Context, Kind};
use condlock::native::apstra::transport_options;
use condlock::native::{default_who, process_env, NativeIo};
use condlock::settings::{age, wait_policy, ApstraSettings, MutexResolved, MutexSettings};
use condlock::{Cancel, Error, Secret};
use pyo3::prelude::*;

use crate::errors::{self, no_context, PythonSpelling};
use crate::process::{bool_obj, guard, Owner, PerProcess};
use crate::progress::Progress;
use crate::runtime::{
    block_on_acquire, call, ready, spawn_for_asyncio, Caller, Deliver, Operation,
};
use crate::transport::{AnyTransport, TransportSpec};
use crate::values::MutexTag;

type Client = ApstraClient<NativeIo<AnyTransport>>;
type Mutex_ = ApstraMutex<NativeIo<AnyTransport>>;

// ---------------------------------------------------------------------------
// The client: one server, one login session
// ---------------------------------------------------------------------------

struct Shared {
    server: ApstraServer,
    transport: TransportSpec,
    /// What the client's errors are about (the server).
    ctx: Context,
    /// The driver, built per process (own connection pool and session).
    inner: PerProcess<Client>,
}

impl Shared {
    fn client(&self) -> PyResult<Client> {
        self.inner.get_or_build(|| {
            let io = NativeIo::new(self.transport.build(&self.ctx)?);
            Ok(ApstraClient::new(
                self.server.clone(),
                io,
                process_env(),
                default_who(),
            ))
        })
    }
}

fn build_shared(
    py: Python<'_>,
    settings: ApstraSettings,
    transport: Option<Py<PyAny>>,
    async_transport: Option<Py<PyAny>>,
) -> PyResult<Arc<Shared>> {
    let env = process_env();
    let server = settings
        .resolve(&|k: &str| env(k))
        .map_err(|e| errors::to_py(e, &no_context()))?;
    let native = transport_options(&server);
    let transport = TransportSpec::from_args(py, transport, async_transport, native)?;
    let ctx = Context {
        kind: condlock::error::Kind::Apstra,
        target: format!("the Apstra server {}", server.url()),
        endpoint: server.url().to_string(),
    };
    let shared = Arc::new(Shared {
        server,
        transport,
        ctx,
        inner: PerProcess::new(),
    });
    // Build the driver now so transport errors (bad CA bundle) surface here;
    // its context is the core's.
    let client = shared.client()?;
    debug_assert_eq!(client.context(), shared.ctx);
    Ok(shared)
}

fn tags_obj(py: Python<'_>, tags: Vec<CoreTag>) -> PyResult<Py<PyAny>> {
    let list: Vec<MutexTag> = tags.iter().map(MutexTag::from_core).collect();
    Ok(list.into_pyobject(py)?.into_any().unbind())
}

fn opt_tag_obj(py: Python<'_>, tag: Option<CoreTag>) -> PyResult<Py<PyAny>> {
    match tag {
        Some(t) => Ok(Py::new(py, MutexTag::from_core(&t))?.into_any()),
        None => Ok(py.None()),
    }
}

/// A force-unlock's result: the tag deleted by this call, or `None`.
fn unlocked_tag(f: ForceUnlocked) -> Option<CoreTag> {
    match f.outcome {
        UnlockOutcome::Released => f.tag,
        _ => None,
    }
}

fn unlocked_obj(py: Python<'_>, f: ForceUnlocked) -> PyResult<Py<PyAny>> {
    opt_tag_obj(py, unlocked_tag(f))
}

fn older_than_secs(v: f64) -> PyResult<Duration> {
    age("older_than", v).map_err(|e| errors::to_py(e, &no_context()))
}

/// The Rust side of `condlock.ApstraClient`: one Apstra server and the login
/// session its operations share; administration of blueprint mutexes.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct ApstraClientCore {
    shared: Arc<Shared>,
}

#[pymethods]
impl ApstraClientCore {
    #[new]
    #[pyo3(signature = (
        *, url=None, username=None, password=None, verify_tls=None, ca_bundle_pem=None,
        request_timeout=None, transport=None, async_transport=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: Option<String>,
        username: Option<String>,
        password: Option<String>,
        verify_tls: Option<bool>,
        ca_bundle_pem: Option<Vec<u8>>,
        request_timeout: Option<f64>,
        transport: Option<Py<PyAny>>,
        async_transport: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        guard(|| {
            let shared = build_shared(
                py,
                ApstraSettings {
                    url,
                    username,
                    password: password.map(Secret::new),
                    verify_tls,
                    ca_bundle_pem,
                    request_timeout,
                },
                transport,
                async_transport,
            )?;
            Ok(ApstraClientCore { shared })
        })
    }

    /// Every blueprint mutex on the server.
    fn list_mutexes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.admin(
            py,
            None,
            |c| async move { c.list_mutexes().await },
            tags_obj,
        )
    }

    /// `list_mutexes()` for asyncio.
    fn list_mutexes_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let list = |c: Client| async move { c.list_mutexes().await };
        self.admin(py, Some((event_loop, callback)), list, tags_obj)
    }

    /// The mutexes older than `older_than` seconds.
    fn stale_mutexes(&self, py: Python<'_>, older_than: f64) -> PyResult<Py<PyAny>> {
        self.stale(py, None, older_than)
    }

    /// `stale_mutexes()` for asyncio.
    fn stale_mutexes_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        older_than: f64,
    ) -> PyResult<Py<PyAny>> {
        self.stale(py, Some((event_loop, callback)), older_than)
    }

    /// Delete the mutex tag with this ID, whoever holds it; the tag deleted,
    /// or `None` when there was none.
    fn force_unlock_tag(&self, py: Python<'_>, tag_id: String) -> PyResult<Py<PyAny>> {
        let unlock = |c: Client| async move { c.force_unlock_tag(&tag_id).await };
        self.admin(py, None, unlock, unlocked_obj)
    }

    /// `force_unlock_tag()` for asyncio.
    fn force_unlock_tag_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        tag_id: String,
    ) -> PyResult<Py<PyAny>> {
        let unlock = |c: Client| async move { c.force_unlock_tag(&tag_id).await };
        self.admin(py, Some((event_loop, callback)), unlock, unlocked_obj)
    }

    /// Delete the mutex of this blueprint, whoever holds it; the tag deleted,
    /// or `None` when there was none.
    fn force_unlock_blueprint(&self, py: Python<'_>, blueprint_id: String) -> PyResult<Py<PyAny>> {
        self.unlock_blueprint(py, None, blueprint_id)
    }

    /// `force_unlock_blueprint()` for asyncio.
    fn force_unlock_blueprint_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        blueprint_id: String,
    ) -> PyResult<Py<PyAny>> {
        self.unlock_blueprint(py, Some((event_loop, callback)), blueprint_id)
    }

    /// The server's base URL (never with credentials).
    #[getter]
    fn url(&self) -> String {
        self.shared.server.url().to_string()
    }

    /// The user we log in as.
    #[getter]
    fn username(&self) -> String {
        self.shared.server.username().to_string()
    }
}

impl ApstraClientCore {
    /// Run one administration call `op` on this process's client for `caller`.
    fn admin<T, F, Fut>(
        &self,
        py: Python<'_>,
        caller: Caller<'_, '_>,
        op: F,
        convert: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        guard(|| {
            let fut = op(self.shared.client()?);
            call(py, caller, &self.shared.ctx, None, fut, Box::new(convert))
        })
    }

    fn stale(
        &self,
        py: Python<'_>,
        caller: Caller<'_, '_>,
        older_than: f64,
    ) -> PyResult<Py<PyAny>> {
        let age = older_than_secs(older_than)?;
        let stale = move |c: Client| async move { c.stale_mutexes(age).await };
        self.admin(py, caller, stale, tags_obj)
    }

    fn unlock_blueprint(
        &self,
        py: Python<'_>,
        caller: Caller<'_, '_>,
        blueprint_id: String,
    ) -> PyResult<Py<PyAny>> {
        let bp = BlueprintId::new(blueprint_id).map_err(|e| errors::to_py(e, &self.shared.ctx))?;
        let unlock = |c: Client| async move { c.force_unlock_blueprint(&bp).await };
        self.admin(py, caller, unlock, unlocked_obj)
    }
}

// ---------------------------------------------------------------------------
// The mutex of one blueprint
// ---------------------------------------------------------------------------

struct MutexShared {
    client: Arc<Shared>,
    resolved: MutexResolved,
    /// What the mutex's errors are about (the core's context).
    ctx: Context,
}

impl MutexShared {
    fn mutex(&self) -> PyResult<Mutex_> {
        let mutex = self.client.client()?.mutex(self.resolved.blueprint.clone());
        Ok(match &self.resolved.message {
            Some(m) => mutex.with_message(m.clone()),
            None => mutex,
        })
    }

    /// Acquire as configured, waiting as `blocking`/`timeout` say.
    fn acquire(
        &self,
        wait: condlock::Wait,
        token: Cancel,
        on_wait: Option<Py<PyAny>>,
    ) -> PyResult<impl Future<Output = Result<HeldMutex, Error>> + Send + 'static> {
        let mutex = self.mutex()?;
        let mut opts = self.resolved.acquire.clone();
        opts.wait = wait;
        opts.message = mutex.message().to_string();
        let mut progress = Progress::new(&self.ctx.target, on_wait);
        Ok(async move {
            mutex
                .acquire(opts, &token, move |n: Notice| progress.notice(n))
                .await
        })
    }
}

/// The Rust side of `condlock.ApstraMutex`: the mutex of one blueprint.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct ApstraMutexCore {
    shared: Arc<MutexShared>,
}

#[pymethods]
impl ApstraMutexCore {
    #[new]
    #[pyo3(signature = (
        blueprint_id, *, url=None, username=None, password=None, message=None, verify_tls=None,
        ca_bundle_pem=None, request_timeout=None, wait_for_blueprint_unlock=true,
        max_poll_interval=None, client=None, transport=None, async_transport=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        blueprint_id: String,
        url: Option<String>,
        username: Option<String>,
        password: Option<String>,
        message: Option<String>,
        verify_tls: Option<bool>,
        ca_bundle_pem: Option<Vec<u8>>,
        request_timeout: Option<f64>,
        wait_for_blueprint_unlock: bool,
        max_poll_interval: Option<f64>,
        client: Option<PyRef<'_, ApstraClientCore>>,
        transport: Option<Py<PyAny>>,
        async_transport: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        guard(|| {
            let resolved = MutexSettings {
                blueprint_id,
                message,
                wait_for_blueprint_unlock: Some(wait_for_blueprint_unlock),
                max_poll_interval,
            }
            .resolve()
            .map_err(|e| errors::to_py(e, &no_context()))?;
            let settings = ApstraSettings {
                url,
                username,
                password: password.map(Secret::new),
                verify_tls,
                ca_bundle_pem,
                request_timeout,
            };
            let client = match client {
                Some(c) => {
                    let transport = transport.is_some() || async_transport.is_some();
                    settings
                        .check_unused_with_client(transport)
                        .map_err(|e| errors::to_py(e, &no_context()))?;
                    c.shared.clone()
                }
                None => build_shared(py, settings, transport, async_transport)?,
            };
            let mut shared = MutexShared {
                client,
                resolved,
                ctx: no_context(),
            };
            shared.ctx = shared.mutex()?.context();
            Ok(ApstraMutexCore {
                shared: Arc::new(shared),
            })
        })
    }

    /// Acquire the mutex (blocking, GIL released, Ctrl-C cancels);
    /// `on_wait(WaitEvent)` is called (from a worker thread) at each wait.
    #[pyo3(signature = (blocking=true, timeout=None, on_wait=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout: Option<f64>,
        on_wait: Option<Py<PyAny>>,
    ) -> PyResult<HeldMutexCore> {
        guard(|| {
            let ctx = &self.shared.ctx;
            let wait = wait_policy(blocking, timeout).map_err(|e| errors::to_py(e, ctx))?;
            let token = Cancel::new();
            let fut = self.shared.acquire(wait, token.clone(), on_wait)?;
            let result = block_on_acquire(py, fut, &token, &ctx.target, |held| {
                let mutex = self.shared.mutex()?;
                Ok(async move { mutex.release(&held).await })
            })?;
            let held = result.map_err(|e| errors::to_py(e, &self.shared.ctx))?;
            Ok(HeldMutexCore::new(self.shared.clone(), held))
        })
    }

    /// Start an acquisition for asyncio; `callback(ok, value)` runs on `event_loop`.
    #[pyo3(signature = (event_loop, callback, blocking=true, timeout=None, on_wait=None))]
    fn acquire_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
        on_wait: Option<Py<PyAny>>,
    ) -> PyResult<Operation> {
        guard(|| {
            let ctx = &self.shared.ctx;
            let wait = wait_policy(blocking, timeout).map_err(|e| errors::to_py(e, ctx))?;
            let token = Cancel::new();
            let fut = self.shared.acquire(wait, token.clone(), on_wait)?;
            let shared = self.shared.clone();
            let deliver: Deliver<HeldMutex> = Box::new(move |py, held| {
                Ok(Py::new(py, HeldMutexCore::new(shared, held))?.into_any())
            });
            spawn_for_asyncio(py, event_loop, callback, ctx.clone(), token, fut, deliver)
        })
    }

    /// The current mutex tag, or `None` when the mutex is free.
    fn holder(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.read_holder(py, None)
    }

    /// The error (an exception object, not raised) for an acquisition by a
    /// thread or task that already holds this mutex.
    fn not_reentrant(&self, py: Python<'_>) -> Py<PyAny> {
        errors::to_py(Error::NotReentrant, &self.shared.ctx)
            .into_value(py)
            .into_any()
    }

    /// `holder()` for asyncio.
    fn holder_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        self.read_holder(py, Some((event_loop, callback)))
    }

    /// Delete this blueprint's mutex whoever holds it; the tag deleted, or
    /// `None` when there was none.
    fn force_unlock(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.unlock(py, None)
    }

    /// `force_unlock()` for asyncio.
    fn force_unlock_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        self.unlock(py, Some((event_loop, callback)))
    }

    /// The client this mutex uses (server, login session, administration).
    #[getter]
    fn client(&self) -> ApstraClientCore {
        ApstraClientCore {
            shared: self.shared.client.clone(),
        }
    }

    /// The blueprint ID.
    #[getter]
    fn blueprint_id(&self) -> String {
        self.shared.resolved.blueprint.to_string()
    }

    /// The mutex tag's label, `blueprint <ID> locked`.
    #[getter]
    fn label(&self) -> String {
        self.shared.resolved.blueprint.label()
    }

    /// The holder message template (expanded at each acquisition).
    #[getter]
    fn message(&self) -> PyResult<String> {
        Ok(self.shared.mutex()?.message().to_string())
    }

    /// The server's base URL (never with credentials).
    #[getter]
    fn url(&self) -> String {
        self.shared.client.server.url().to_string()
    }

    /// The user we log in as.
    #[getter]
    fn username(&self) -> String {
        self.shared.client.server.username().to_string()
    }

    /// One line naming the mutex, as in messages.
    #[getter]
    fn target(&self) -> String {
        self.shared.ctx.target.clone()
    }
}

impl ApstraMutexCore {
    /// Read the holder for `caller` (cancelled by Ctrl-C or the asyncio task).
    fn read_holder(&self, py: Python<'_>, caller: Caller<'_, '_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            let token = Cancel::new();
            let cancel = token.clone();
            let read = async move { mutex.status(&cancel).await };
            let ctx = &self.shared.ctx;
            call(py, caller, ctx, Some(token), read, Box::new(opt_tag_obj))
        })
    }

    /// Force-unlock this blueprint's mutex for `caller`.
    fn unlock(&self, py: Python<'_>, caller: Caller<'_, '_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            let unlock = async move { mutex.force_unlock().await };
            let ctx = &self.shared.ctx;
            call(py, caller, ctx, None, unlock, Box::new(unlocked_obj))
        })
    }
}

// ---------------------------------------------------------------------------
// A mutex we hold
// ---------------------------------------------------------------------------

/// The Rust side of `condlock.HeldMutex`: a blueprint mutex we hold (an
/// Apstra mutex has no lease: it is held until released or force-unlocked).
#[pyclass(frozen, module = "condlock._condlock")]
pub struct HeldMutexCore {
    shared: Arc<MutexShared>,
    held: HeldMutex,
    released: AtomicBool,
    owner: Owner,
}

impl HeldMutexCore {
    fn new(shared: Arc<MutexShared>, held: HeldMutex) -> Self {
        HeldMutexCore {
            shared,
            held,
            released: AtomicBool::new(false),
            owner: Owner::here(),
        }
    }

    fn outcome(&self, out: UnlockOutcome) -> bool {
        if out == UnlockOutcome::Released {
            true
        } else {
            log::warn!(
                target: "condlock::python",
                "releasing {}: our tag {} was already gone (someone force-unlocked it?)",
                self.shared.ctx.target,
                self.held.tag_id
            );
            false
        }
    }
}

impl HeldMutexCore {
    fn release_for(slf: &Bound<'_, Self>, caller: Caller<'_, '_>) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), slf.get());
        guard(|| {
            this.owner.check(&this.shared.ctx.target)?;
            let mutex = this.shared.mutex()?;
            let ctx = &this.shared.ctx;
            if this.released.swap(true, Ordering::SeqCst) {
                return ready(py, caller, ctx, bool_obj(py, false));
            }
            let held = this.held.clone();
            let me = slf.clone().unbind();
            let deliver: Deliver<Result<UnlockOutcome, Error>> = Box::new(move |py, out| {
                let me = me.bind(py).get();
                match out {
                    Ok(o) => Ok(bool_obj(py, me.outcome(o))),
                    Err(e) => {
                        // Not released: allow another attempt.
                        me.released.store(false, Ordering::SeqCst);
                        Err(errors::to_py_with(py, e, &me.shared.ctx))
                    }
                }
            });
            let fut = async move { Ok(mutex.release(&held).await) };
            call(py, caller, ctx, None, fut, deliver)
        })
    }
}

impl Drop for HeldMutexCore {
    fn drop(&mut self) {
        // A forked child's copy never held the mutex: nothing to say.
        if self.owner.is_here() && !self.released.load(Ordering::SeqCst) {
            log::warn!(
                target: "condlock::python",
                "{}",
                condlock::progress::collected_unreleased(
                    &self.shared.ctx.target,
                    &self.held.tag_id,
                    None,
                    Kind::Apstra,
                    &PythonSpelling(Kind::Apstra)
                )
            );
        }
    }
}

#[pymethods]
impl HeldMutexCore {
    /// Release the mutex (delete our tag; blocking, with a fresh deadline of
    /// its own; not interrupted by Ctrl-C). True when this call deleted it;
    /// False when it was already released or already gone. Safe to call twice.
    fn release(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        Self::release_for(slf, None)
    }

    /// `release()` for asyncio. The release runs to completion on the
    /// runtime even if the awaiting task is cancelled.
    fn release_async(
        slf: &Bound<'_, Self>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        Self::release_for(slf, Some((event_loop, callback)))
    }

    /// Our tag's ID.
    #[getter]
    fn tag_id(&self) -> String {
        self.held.tag_id.clone()
    }

    /// The blueprint ID.
    #[getter]
    fn blueprint_id(&self) -> String {
        self.held.blueprint.to_string()
    }

    /// Our tag's label, `blueprint <ID> locked`.
    #[getter]
    fn label(&self) -> String {
        self.held.label.clone()
    }

    /// The description we wrote (the expanded message and our holder token).
    #[getter]
    fn description(&self) -> String {
        self.held.description.clone()
    }

    /// Our holder token (the suffix of the description).
    #[getter]
    fn token(&self) -> String {
        self.held.token.as_str().to_string()
    }

    /// True when our tag was recognised by its holder token after a lost
    /// create response, rather than from the response itself.
    #[getter]
    fn recovered(&self) -> bool {
        self.held.recovered
    }

    /// True once released.
    #[getter]
    fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// One line naming the mutex, as in messages.
    #[getter]
    fn target(&self) -> String {
        self.shared.ctx.target.clone()
    }
}
