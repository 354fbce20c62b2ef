//! The Apstra blueprint mutex (the Terraform provider's tag `blueprint <ID>
//! locked` in the global design catalog): `ApstraClientCore`,
//! `ApstraMutexCore`, `ApstraLeaseCore` and the values `MutexTag` and
//! `BlueprintLockStatus`, wrapped by `condlock.ApstraClient`,
//! `condlock.ApstraMutex` and `condlock.ApstraLease` in Python.
//!
//! Same shape as [`crate::s3`]: the driver is built per process (a forked
//! child gets its own connection pool and login session), synchronous calls
//! release the GIL and honour Ctrl-C through the operation's
//! `Cancel`, asyncio calls complete through the event loop.
//! Errors go through [`errors::apstra_to_py`] so messages talk about Apstra.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use condlock::apstra::{
    AcquireOptions, ApstraServer, Blocker, BlueprintId, ForceUnlocked, HeldMutex, LockStatus,
    MutexTag as CoreTag, UnlockOutcome,
};
use condlock::native::apstra::{default_message, server_from_env, transport_options};
use condlock::native::{self, ApstraClient};
use condlock::Cancel;
use condlock::{Error, Wait};
use pyo3::prelude::*;

use crate::common::{
    bool_obj, cap_backoff, guard, or_cancelled, poll_interval, seconds, wait_policy, Owner,
};
use crate::errors::{self, invalid_config, Context};
use crate::runtime::{
    block_on, block_on_acquire, deliver_now, spawn_for_asyncio, Deliver, Operation, PerProcess,
};
use crate::transport::{AnyTransport, TransportSpec};

type Client = ApstraClient<AnyTransport>;
type Mutex_ = native::ApstraMutex<AnyTransport>;

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The client: one server, one login session
// ---------------------------------------------------------------------------

struct Shared {
    server: ApstraServer,
    /// The built-in client is made from `server`.
    transport: TransportSpec<()>,
    ctx: Context,
    inner: PerProcess<Client>,
}

impl Shared {
    fn client(&self) -> PyResult<Client> {
        self.inner.get_or_build(|| {
            let transport = self.transport.build(|()| {
                native::Transport::new(&transport_options(&self.server))
                    .map_err(|e| errors::apstra_to_py(e, &self.ctx))
            })?;
            Ok(ApstraClient::over(self.server.clone(), transport))
        })
    }

    /// Wait for `fut` (not interrupted by Ctrl-C), with Apstra's messages.
    fn run<T: Send + 'static>(
        &self,
        py: Python<'_>,
        fut: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> PyResult<T> {
        block_on(py, fut, None)?.map_err(|e| errors::apstra_to_py(e, &self.ctx))
    }
}

#[allow(clippy::too_many_arguments)]
fn build_shared(
    py: Python<'_>,
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    verify_tls: Option<bool>,
    ca_bundle_pem: Option<Vec<u8>>,
    request_timeout: Option<f64>,
    transport: Option<Py<PyAny>>,
    async_transport: Option<Py<PyAny>>,
) -> PyResult<Arc<Shared>> {
    let mut b = server_from_env();
    if let Some(u) = url {
        b = b.url(u);
    }
    if let Some(u) = username {
        b = b.username(u);
    }
    if let Some(p) = password {
        b = b.password(p);
    }
    if let Some(v) = verify_tls {
        b = b.verify_tls(v);
    }
    if let Some(pem) = ca_bundle_pem {
        b = b.ca_bundle_pem(pem);
    }
    if let Some(t) = request_timeout {
        b = b.request_timeout(seconds("request_timeout", t)?);
    }
    let server = b.build().map_err(|e| {
        errors::apstra_to_py(
            e,
            &Context {
                lock: "the Apstra server".into(),
                endpoint: "?".into(),
            },
        )
    })?;
    let transport = TransportSpec::from_args(py, transport, async_transport, || Ok(()))?;
    let ctx = Context {
        lock: format!("the Apstra server {}", server.url()),
        endpoint: server.url().to_string(),
    };
    let shared = Arc::new(Shared {
        server,
        transport,
        ctx,
        inner: PerProcess::new(),
    });
    // Build the driver now so transport errors (bad CA bundle) surface here.
    shared.client()?;
    Ok(shared)
}

/// Start `fut` for asyncio, mapping its error with the Apstra messages and
/// its value with `convert`.
fn spawn<T, F, C>(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    callback: &Bound<'_, PyAny>,
    ctx: &Context,
    token: Cancel,
    fut: F,
    convert: C,
) -> PyResult<Operation>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let ctx2 = ctx.clone();
    let deliver: Deliver<Result<T, Error>> = Box::new(move |py, r| match r {
        Ok(v) => convert(py, v),
        Err(e) => Err(errors::apstra_to_py_with(py, e, &ctx2)),
    });
    spawn_for_asyncio(
        py,
        event_loop,
        callback,
        ctx.clone(),
        token,
        async move { Ok(fut.await) },
        deliver,
    )
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

fn older_than_secs(v: f64) -> PyResult<Duration> {
    if v == 0.0 {
        return Ok(Duration::ZERO);
    }
    seconds("older_than", v)
}

fn nonempty_id(field: &'static str, v: &str) -> PyResult<()> {
    if v.trim().is_empty() {
        Err(invalid_config(field, "must not be empty"))
    } else {
        Ok(())
    }
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
                url,
                username,
                password,
                verify_tls,
                ca_bundle_pem,
                request_timeout,
                transport,
                async_transport,
            )?;
            Ok(ApstraClientCore { shared })
        })
    }

    /// Every blueprint mutex on the server.
    fn list_mutexes(&self, py: Python<'_>) -> PyResult<Vec<MutexTag>> {
        guard(|| {
            let client = self.shared.client()?;
            let tags = self
                .shared
                .run(py, async move { client.list_mutexes().await })?;
            Ok(tags.iter().map(MutexTag::from_core).collect())
        })
    }

    /// `list_mutexes()` for asyncio.
    fn list_mutexes_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Operation> {
        guard(|| {
            let client = self.shared.client()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { client.list_mutexes().await },
                tags_obj,
            )
        })
    }

    /// The mutexes older than `older_than` seconds.
    fn stale_mutexes(&self, py: Python<'_>, older_than: f64) -> PyResult<Vec<MutexTag>> {
        guard(|| {
            let age = older_than_secs(older_than)?;
            let client = self.shared.client()?;
            let tags = self
                .shared
                .run(py, async move { client.stale_mutexes(age).await })?;
            Ok(tags.iter().map(MutexTag::from_core).collect())
        })
    }

    /// `stale_mutexes()` for asyncio.
    fn stale_mutexes_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        older_than: f64,
    ) -> PyResult<Operation> {
        guard(|| {
            let age = older_than_secs(older_than)?;
            let client = self.shared.client()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { client.stale_mutexes(age).await },
                tags_obj,
            )
        })
    }

    /// Delete the mutex tag with this ID, whoever holds it; the tag deleted,
    /// or `None` when there was none.
    fn force_unlock_tag(&self, py: Python<'_>, tag_id: String) -> PyResult<Option<MutexTag>> {
        guard(|| {
            nonempty_id("tag_id", &tag_id)?;
            let client = self.shared.client()?;
            let out = self
                .shared
                .run(py, async move { client.force_unlock_tag(&tag_id).await })?;
            Ok(unlocked_tag(out).as_ref().map(MutexTag::from_core))
        })
    }

    /// `force_unlock_tag()` for asyncio.
    fn force_unlock_tag_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        tag_id: String,
    ) -> PyResult<Operation> {
        guard(|| {
            nonempty_id("tag_id", &tag_id)?;
            let client = self.shared.client()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { client.force_unlock_tag(&tag_id).await },
                |py, out| opt_tag_obj(py, unlocked_tag(out)),
            )
        })
    }

    /// Delete the mutex of this blueprint, whoever holds it; the tag deleted,
    /// or `None` when there was none.
    fn force_unlock_blueprint(
        &self,
        py: Python<'_>,
        blueprint_id: String,
    ) -> PyResult<Option<MutexTag>> {
        guard(|| {
            let bp = BlueprintId::new(blueprint_id)
                .map_err(|e| errors::apstra_to_py(e, &self.shared.ctx))?;
            let client = self.shared.client()?;
            let out = self
                .shared
                .run(py, async move { client.force_unlock_blueprint(&bp).await })?;
            Ok(unlocked_tag(out).as_ref().map(MutexTag::from_core))
        })
    }

    /// `force_unlock_blueprint()` for asyncio.
    fn force_unlock_blueprint_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        blueprint_id: String,
    ) -> PyResult<Operation> {
        guard(|| {
            let bp = BlueprintId::new(blueprint_id)
                .map_err(|e| errors::apstra_to_py(e, &self.shared.ctx))?;
            let client = self.shared.client()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { client.force_unlock_blueprint(&bp).await },
                |py, out| opt_tag_obj(py, unlocked_tag(out)),
            )
        })
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

// ---------------------------------------------------------------------------
// The mutex of one blueprint
// ---------------------------------------------------------------------------

struct MutexShared {
    client: Arc<Shared>,
    blueprint: BlueprintId,
    message: String,
    wait_for_blueprint_unlock: bool,
    max_poll_interval: Option<Duration>,
    ctx: Context,
}

impl MutexShared {
    fn mutex(&self) -> PyResult<Mutex_> {
        Ok(self
            .client
            .client()?
            .mutex(self.blueprint.clone())
            .with_message(self.message.clone()))
    }

    fn options(&self, wait: Wait) -> AcquireOptions {
        let mut opts = AcquireOptions::new(self.message.clone());
        opts.wait = wait;
        opts.wait_for_blueprint_unlock = self.wait_for_blueprint_unlock;
        cap_backoff(&mut opts.wait_backoff, self.max_poll_interval);
        opts
    }
}

/// Acquire; if the caller cancelled after the mutex was in fact taken, give
/// it back before reporting the cancellation.
async fn acquire_task(
    mutex: Mutex_,
    opts: AcquireOptions,
    token: Cancel,
    what: String,
) -> Result<HeldMutex, Error> {
    let result = mutex
        .acquire_with(opts, &token, |n: condlock::Notice| {
            if let condlock::Notice::Waiting {
                new_holder: true, ..
            } = &n
            {
                log::info!(target: "condlock::python", "{what}: {n}");
            }
        })
        .await;
    if token.is_cancelled() {
        if let Ok(held) = &result {
            log::info!(
                target: "condlock::python",
                "acquired {what} as the caller cancelled: releasing it"
            );
            if let Err(e) = mutex.release(held).await {
                log::error!(
                    target: "condlock::python",
                    "could not release {what} (tag {}) after cancellation: {e}; \
                     remove it with force_unlock",
                    held.tag_id
                );
            }
            return Err(Error::Cancelled);
        }
    }
    if let Ok(held) = &result {
        if held.recovered {
            log::info!(
                target: "condlock::python",
                "acquired {what}: tag {} recognised as ours by its holder token \
                 (the create response was lost)",
                held.tag_id
            );
        }
    }
    result
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
            let blueprint = BlueprintId::new(blueprint_id).map_err(|e| {
                errors::apstra_to_py(
                    e,
                    &Context {
                        lock: "the blueprint mutex".into(),
                        endpoint: "?".into(),
                    },
                )
            })?;
            let client = match client {
                Some(c) => {
                    let mut given = Vec::new();
                    for (name, set) in [
                        ("url", url.is_some()),
                        ("username", username.is_some()),
                        ("password", password.is_some()),
                        ("verify_tls", verify_tls.is_some()),
                        ("ca_bundle", ca_bundle_pem.is_some()),
                        ("request_timeout", request_timeout.is_some()),
                        (
                            "transport",
                            transport.is_some() || async_transport.is_some(),
                        ),
                    ] {
                        if set {
                            given.push(name);
                        }
                    }
                    if !given.is_empty() {
                        return Err(invalid_config(
                            "client",
                            format!(
                                "cannot be combined with {} (the client has its own server \
                                 settings): give one or the other",
                                given.join(", ")
                            ),
                        ));
                    }
                    c.shared.clone()
                }
                None => build_shared(
                    py,
                    url,
                    username,
                    password,
                    verify_tls,
                    ca_bundle_pem,
                    request_timeout,
                    transport,
                    async_transport,
                )?,
            };
            let message = message.unwrap_or_else(default_message);
            if message.chars().any(|c| c.is_control() && c != '\t') {
                return Err(invalid_config(
                    "message",
                    "must not contain control characters (it is shown as is by Apstra's UI)",
                ));
            }
            let ctx = Context {
                lock: format!(
                    "the mutex of blueprint {blueprint} on {}",
                    client.server.url()
                ),
                endpoint: client.server.url().to_string(),
            };
            Ok(ApstraMutexCore {
                shared: Arc::new(MutexShared {
                    client,
                    blueprint,
                    message,
                    wait_for_blueprint_unlock,
                    max_poll_interval: max_poll_interval.map(poll_interval).transpose()?,
                    ctx,
                }),
            })
        })
    }

    /// Acquire the mutex (blocking, GIL released, Ctrl-C cancels).
    #[pyo3(signature = (blocking=true, timeout=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout: Option<f64>,
    ) -> PyResult<ApstraLeaseCore> {
        guard(|| {
            let wait = wait_policy(blocking, timeout)?;
            let mutex = self.shared.mutex()?;
            let token = Cancel::new();
            let fut = acquire_task(
                mutex,
                self.shared.options(wait),
                token.clone(),
                self.shared.ctx.lock.clone(),
            );
            let result = block_on_acquire(py, fut, &token, &self.shared.ctx.lock, |held| {
                let mutex = self.shared.mutex()?;
                Ok(async move { mutex.release(&held).await })
            })?;
            let held = result.map_err(|e| errors::apstra_to_py(e, &self.shared.ctx))?;
            Ok(ApstraLeaseCore::new(self.shared.clone(), held))
        })
    }

    /// Start an acquisition for asyncio; `callback(ok, value)` runs on `event_loop`.
    #[pyo3(signature = (event_loop, callback, blocking=true, timeout=None))]
    fn acquire_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        blocking: bool,
        timeout: Option<f64>,
    ) -> PyResult<Operation> {
        guard(|| {
            let wait = wait_policy(blocking, timeout)?;
            let mutex = self.shared.mutex()?;
            let token = Cancel::new();
            let fut = acquire_task(
                mutex,
                self.shared.options(wait),
                token.clone(),
                self.shared.ctx.lock.clone(),
            );
            let shared = self.shared.clone();
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                token,
                fut,
                move |py, held| Ok(Py::new(py, ApstraLeaseCore::new(shared, held))?.into_any()),
            )
        })
    }

    /// The current mutex tag, or `None` when the mutex is free.
    fn holder(&self, py: Python<'_>) -> PyResult<Option<MutexTag>> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            let token = Cancel::new();
            let read = or_cancelled(token.clone(), async move { mutex.status().await });
            let h = block_on(py, read, Some(&token))?
                .map_err(|e| errors::apstra_to_py(e, &self.shared.ctx))?;
            Ok(h.as_ref().map(MutexTag::from_core))
        })
    }

    /// `holder()` for asyncio.
    fn holder_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Operation> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { mutex.status().await },
                opt_tag_obj,
            )
        })
    }

    /// Delete this blueprint's mutex whoever holds it; the tag deleted, or
    /// `None` when there was none.
    fn force_unlock(&self, py: Python<'_>) -> PyResult<Option<MutexTag>> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            let out = block_on(py, async move { mutex.force_unlock().await }, None)?
                .map_err(|e| errors::apstra_to_py(e, &self.shared.ctx))?;
            Ok(unlocked_tag(out).as_ref().map(MutexTag::from_core))
        })
    }

    /// `force_unlock()` for asyncio.
    fn force_unlock_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Operation> {
        guard(|| {
            let mutex = self.shared.mutex()?;
            spawn(
                py,
                event_loop,
                callback,
                &self.shared.ctx,
                Cancel::new(),
                async move { mutex.force_unlock().await },
                |py, out| opt_tag_obj(py, unlocked_tag(out)),
            )
        })
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
        self.shared.blueprint.to_string()
    }

    /// The mutex tag's label, `blueprint <ID> locked`.
    #[getter]
    fn label(&self) -> String {
        self.shared.blueprint.label()
    }

    /// The holder message template (expanded at each acquisition).
    #[getter]
    fn message(&self) -> String {
        self.shared.message.clone()
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

    /// One line naming the mutex and the server, as in messages.
    #[getter]
    fn target(&self) -> String {
        self.shared.ctx.lock.clone()
    }
}

// ---------------------------------------------------------------------------
// A mutex we hold
// ---------------------------------------------------------------------------

/// The Rust side of `condlock.ApstraLease`: a blueprint mutex we hold.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct ApstraLeaseCore {
    shared: Arc<MutexShared>,
    held: HeldMutex,
    released: AtomicBool,
    owner: Owner,
}

impl ApstraLeaseCore {
    fn new(shared: Arc<MutexShared>, held: HeldMutex) -> Self {
        ApstraLeaseCore {
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
                self.shared.ctx.lock,
                self.held.tag_id
            );
            false
        }
    }
}

impl Drop for ApstraLeaseCore {
    fn drop(&mut self) {
        // A forked child's copy never held the mutex: nothing to say.
        if self.owner.is_here() && !self.released.load(Ordering::SeqCst) {
            log::warn!(
                target: "condlock::python",
                "a lease on {} (tag {}) was garbage-collected without release(): \
                 the mutex stays until it is released or force-unlocked",
                self.shared.ctx.lock,
                self.held.tag_id
            );
        }
    }
}

#[pymethods]
impl ApstraLeaseCore {
    /// Release the mutex (delete our tag; blocking, with a fresh deadline of
    /// its own; not interrupted by Ctrl-C). True when this call deleted it;
    /// False when it was already released or already gone. Safe to call twice.
    fn release(&self, py: Python<'_>) -> PyResult<bool> {
        guard(|| {
            self.owner.check(&self.shared.ctx.lock)?;
            let mutex = self.shared.mutex()?;
            if self.released.swap(true, Ordering::SeqCst) {
                return Ok(false);
            }
            let held = self.held.clone();
            let out = block_on(py, async move { mutex.release(&held).await }, None)
                .and_then(|r| r.map_err(|e| errors::apstra_to_py(e, &self.shared.ctx)));
            match out {
                Ok(o) => Ok(self.outcome(o)),
                Err(e) => {
                    // Not released: allow another attempt.
                    self.released.store(false, Ordering::SeqCst);
                    Err(e)
                }
            }
        })
    }

    /// `release()` for asyncio. The release runs to completion on the
    /// runtime even if the awaiting task is cancelled.
    fn release_async(
        slf: Bound<'_, Self>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<Operation> {
        let py = slf.py();
        let this = slf.get();
        guard(|| {
            this.owner.check(&this.shared.ctx.lock)?;
            let mutex = this.shared.mutex()?;
            if this.released.swap(true, Ordering::SeqCst) {
                let ctx = this.shared.ctx.clone();
                return deliver_now(py, event_loop, callback, ctx, bool_obj(py, false));
            }
            let held = this.held.clone();
            let me = slf.clone().unbind();
            let deliver: Deliver<Result<UnlockOutcome, Error>> = Box::new(move |py, out| {
                let me = me.bind(py).get();
                match out {
                    Ok(o) => Ok(bool_obj(py, me.outcome(o))),
                    Err(e) => {
                        me.released.store(false, Ordering::SeqCst);
                        Err(errors::apstra_to_py_with(py, e, &me.shared.ctx))
                    }
                }
            });
            spawn_for_asyncio(
                py,
                event_loop,
                callback,
                this.shared.ctx.clone(),
                Cancel::new(),
                async move { Ok(mutex.release(&held).await) },
                deliver,
            )
        })
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

    /// One line naming the mutex and the server, as in messages.
    #[getter]
    fn target(&self) -> String {
        self.shared.ctx.lock.clone()
    }
}
