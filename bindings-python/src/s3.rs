//! The S3 lock file (Terraform-compatible): `S3LockCore` and `HeldLockCore`,
//! wrapped by `condlock.S3Lock` / `condlock.HeldLock` in Python.
//!
//! Glue only: the keyword arguments fill [`S3Settings`], the core resolves
//! them; the core's [`S3Lock`] acquires, releases and renews; this module
//! runs it on the binding's runtime and converts values and errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use condlock::drive::s3::{Holding, S3Lock, EXIT_RELEASE_BUDGET, RELEASE_BUDGET};
use condlock::drive::Notice;
use condlock::error::{Context, Kind};
use condlock::native::{default_who, process_env, CredentialSource, NativeIo};
use condlock::s3::{HeldLock, LockHolder, LostReason, UnlockOutcome};
use condlock::settings::{
    optional_seconds, wait_policy, CredentialPlan, CredentialSettings, S3Resolved, S3Settings,
};
use condlock::{Cancel, Error, Secret};
use pyo3::prelude::*;

use crate::credentials::PyCredentials;
use crate::errors::{self, no_context, PythonSpelling};
use crate::process::{bool_obj, guard, locked, Owner, PerProcess};
use crate::progress::Progress;
use crate::runtime::{
    block_on, block_on_acquire, block_on_background, call, ready, runtime, spawn_for_asyncio,
    Caller, Deliver, Operation,
};
use crate::transport::{native_options, Abort, AnyTransport, TransportSpec, ABORT};
use crate::values::LockInfo;

type Lock = S3Lock<NativeIo<AnyTransport>, CredentialSource>;

use condlock::drive::s3::BROKEN_TRANSPORT_GRACE as ABORT_GRACE;

/// Run `fut` with a user transport's programming errors recorded in `abort`
/// (whose token the operation should also be cancelled by, when it takes
/// one). Once one is recorded, the operation gets `grace` to clean up, then is
/// dropped.
async fn abortable<T>(
    abort: Abort,
    grace: Duration,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let watch = abort.clone();
    ABORT
        .scope(abort, async move {
            tokio::select! {
                r = fut => r,
                _ = async { watch.aborted().await; tokio::time::sleep(grace).await } => {
                    Err(Error::Cancelled)
                }
            }
        })
        .await
}

/// The Python result of an operation run with [`abortable`]: the transport's
/// recorded error first, else the core's.
fn outcome<T>(abort: &Abort, r: Result<T, Error>, ctx: &Context) -> PyResult<T> {
    if let Some(e) = abort.take() {
        return Err(e);
    }
    r.map_err(|e| errors::to_py(e, ctx))
}

/// [`outcome`] for asyncio delivery (the value carries the Python error).
type Outcome<T> = Result<T, PyErr>;

async fn abortable_for_asyncio<T>(
    abort: Abort,
    grace: Duration,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<Outcome<T>, Error> {
    let r = abortable(abort.clone(), grace, fut).await;
    match abort.take() {
        Some(e) => Ok(Err(e)),
        None => r.map(Ok),
    }
}

/// Everything a lock and the locks it hands out share.
struct Shared {
    resolved: S3Resolved,
    credentials: CredentialSource,
    transport: TransportSpec,
    ctx: Context,
    /// The driver, built for the process that uses it (a forked child must
    /// not share the parent's connection pool).
    inner: PerProcess<Arc<Lock>>,
}

impl Shared {
    fn lock(&self) -> PyResult<Arc<Lock>> {
        self.inner.get_or_build(|| {
            let transport = self.transport.build(&self.ctx)?;
            let lock = S3Lock::new(
                self.resolved.config.clone(),
                self.credentials.clone(),
                NativeIo::new(transport),
                self.resolved.acquire.who.clone(),
            );
            lock.set_verify_conditional_writes(self.resolved.verify);
            Ok(Arc::new(lock))
        })
    }

    /// Acquire (with a lease when configured) and start the lease's renewal
    /// on the runtime.
    fn acquire(
        &self,
        wait: condlock::Wait,
        token: Cancel,
        on_wait: Option<Py<PyAny>>,
    ) -> PyResult<impl std::future::Future<Output = Result<Holding, Error>> + Send + 'static> {
        let lock = self.lock()?;
        let mut opts = self.resolved.acquire.clone();
        opts.wait = wait;
        let mut progress = Progress::new(&self.ctx.target, on_wait);
        // A lease is renewed on the background runtime: a synchronous
        // caller's runtime is only driven while the caller is in a call.
        let background = match opts.lease {
            Some(_) => Some(runtime()?),
            None => None,
        };
        Ok(async move {
            let (holding, renewal) = lock
                .acquire_holding(opts, &token, move |n: Notice| progress.notice(n))
                .await?;
            if let (Some(renewal), Some(rt)) = (renewal, background) {
                rt.spawn(renewal.run());
            }
            Ok(holding)
        })
    }
}

/// The Rust side of `condlock.S3Lock`: a Terraform S3 lock file.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct S3LockCore {
    shared: Arc<Shared>,
}

#[pymethods]
impl S3LockCore {
    #[new]
    #[pyo3(signature = (
        bucket, key, *, region=None, endpoint=None, access_key_id=None, secret_access_key=None,
        session_token=None, credentials_provider=None, workspace=None,
        workspace_key_prefix=None, sse_customer_key=None, kms_key_id=None, encrypt=false,
        acl=None, tags=None, checksum=true, path_style=None, operation=None, info=None,
        who=None, transport=None, async_transport=None, verify_conditional_writes=None,
        request_timeout=None, connect_timeout=None, verify_tls=true, ca_bundle_pem=None,
        max_poll_interval=None, lease=None, takeover=false, stale_after=None,
        dynamodb_table=None, dynamodb_endpoint=None, use_lockfile=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        bucket: String,
        key: String,
        region: Option<String>,
        endpoint: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        session_token: Option<String>,
        credentials_provider: Option<Py<PyAny>>,
        workspace: Option<String>,
        workspace_key_prefix: Option<String>,
        sse_customer_key: Option<String>,
        kms_key_id: Option<String>,
        encrypt: bool,
        acl: Option<String>,
        tags: Option<Vec<(String, String)>>,
        checksum: bool,
        path_style: Option<bool>,
        operation: Option<String>,
        info: Option<String>,
        who: Option<String>,
        transport: Option<Py<PyAny>>,
        async_transport: Option<Py<PyAny>>,
        verify_conditional_writes: Option<String>,
        request_timeout: Option<f64>,
        connect_timeout: Option<f64>,
        verify_tls: bool,
        ca_bundle_pem: Option<Vec<u8>>,
        max_poll_interval: Option<f64>,
        lease: Option<f64>,
        takeover: bool,
        stale_after: Option<f64>,
        dynamodb_table: Option<String>,
        dynamodb_endpoint: Option<String>,
        use_lockfile: Option<bool>,
    ) -> PyResult<Self> {
        guard(|| {
            // The profile's region and endpoint come after explicit values and
            // the environment (settings::resolve decides); read only when an
            // explicit value is missing.
            let aws_profile = if region.is_none() || endpoint.is_none() {
                block_on(py, condlock::native::aws_profile_values(None), None)?
                    .map_err(|e| errors::to_py(e, &no_context()))?
            } else {
                Default::default()
            };
            let settings = S3Settings {
                bucket,
                key,
                region,
                endpoint,
                aws_profile,
                credentials: CredentialSettings {
                    access_key_id,
                    secret_access_key: secret_access_key.map(Secret::new),
                    session_token: session_token.map(Secret::new),
                    provider: credentials_provider.as_ref().map(|_| "boto3_session"),
                },
                workspace,
                workspace_key_prefix,
                sse_customer_key: sse_customer_key.map(Secret::new),
                kms_key_id,
                encrypt,
                acl,
                tags: tags.unwrap_or_default(),
                checksum: Some(checksum),
                path_style,
                operation,
                info,
                who,
                verify_conditional_writes,
                request_timeout,
                connect_timeout,
                verify_tls: Some(verify_tls),
                ca_bundle_pem,
                max_poll_interval,
                lease,
                takeover,
                stale_after,
                dynamodb_table,
                dynamodb_endpoint,
                use_lockfile,
            };
            let env = process_env();
            let resolved = settings
                .resolve(&|k: &str| env(k), &default_who())
                .map_err(|e| errors::to_py(e, &no_context()))?;
            let credentials = match (&resolved.credentials, credentials_provider) {
                (CredentialPlan::Static(c), _) => CredentialSource::Static(c.clone()),
                (CredentialPlan::Provider, Some(p)) => CredentialSource::Chain(
                    aws_credential_types::provider::SharedCredentialsProvider::new(
                        PyCredentials::new(p),
                    ),
                ),
                _ => {
                    let region = resolved.region.clone();
                    let chain = async move { CredentialSource::from_aws_chain_in(&region).await };
                    // Built on the background runtime, where the chain then
                    // fetches: it keeps running between synchronous calls.
                    block_on_background(py, chain, None)?.0
                }
            };
            let transport = TransportSpec::from_args(
                py,
                transport,
                async_transport,
                native_options(resolved.transport.clone()),
            )?;
            let ctx = Context {
                kind: condlock::error::Kind::S3,
                target: format!(
                    "s3://{}/{}",
                    resolved.config.bucket(),
                    resolved.config.lock_key()
                ),
                endpoint: resolved.config.endpoint_display(),
            };
            let shared = Arc::new(Shared {
                resolved,
                credentials,
                transport,
                ctx,
                inner: PerProcess::new(),
            });
            // Build the driver now so transport errors (bad CA bundle) surface here.
            shared.lock()?;
            Ok(S3LockCore { shared })
        })
    }

    /// Acquire the lock (blocking, GIL released, Ctrl-C cancels);
    /// `on_wait(WaitEvent)` is called (from a worker thread) at each wait.
    #[pyo3(signature = (blocking=true, timeout=None, on_wait=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout: Option<f64>,
        on_wait: Option<Py<PyAny>>,
    ) -> PyResult<HeldLockCore> {
        guard(|| {
            let ctx = &self.shared.ctx;
            let wait = wait_policy(blocking, timeout).map_err(|e| errors::to_py(e, ctx))?;
            let token = Cancel::new();
            let abort = Abort::new(token.clone());
            let fut = abortable(
                abort.clone(),
                ABORT_GRACE,
                self.shared.acquire(wait, token.clone(), on_wait)?,
            );
            let result = block_on_acquire(py, fut, &token, &ctx.target, |holding| {
                let lock = self.shared.lock()?;
                Ok(async move { lock.release_holding(&holding, EXIT_RELEASE_BUDGET).await })
            })?;
            let holding = outcome(&abort, result, ctx)?;
            Ok(HeldLockCore::new(self.shared.clone(), holding))
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
            let fut = abortable_for_asyncio(
                Abort::new(token.clone()),
                ABORT_GRACE,
                self.shared.acquire(wait, token.clone(), on_wait)?,
            );
            let shared = self.shared.clone();
            let deliver: Deliver<Outcome<Holding>> = Box::new(move |py, holding| {
                Ok(Py::new(py, HeldLockCore::new(shared, holding?))?.into_any())
            });
            spawn_for_asyncio(py, event_loop, callback, ctx.clone(), token, fut, deliver)
        })
    }

    /// The current holder, or `None` when the lock is free.
    fn holder(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.read_holder(py, None)
    }

    /// The error (an exception object, not raised) for an acquisition by a
    /// thread or task that already holds this lock.
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

    /// Remove the lock whose ID is `lock_id` (like `terraform force-unlock`).
    /// True when it was deleted, False when there was no lock.
    fn force_unlock(&self, py: Python<'_>, lock_id: String) -> PyResult<Py<PyAny>> {
        self.unlock(py, None, lock_id)
    }

    /// `force_unlock()` for asyncio.
    fn force_unlock_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        lock_id: String,
    ) -> PyResult<Py<PyAny>> {
        self.unlock(py, Some((event_loop, callback)), lock_id)
    }

    /// The bucket.
    #[getter]
    fn bucket(&self) -> String {
        self.shared.resolved.config.bucket().to_string()
    }

    /// The state key after workspace expansion.
    #[getter]
    fn key(&self) -> String {
        self.shared.resolved.config.state_key().to_string()
    }

    /// The lock object's key (`<state key>.tflock`).
    #[getter]
    fn lock_key(&self) -> String {
        self.shared.resolved.config.lock_key().to_string()
    }

    /// The signing region: explicit, else AWS_REGION / AWS_DEFAULT_REGION,
    /// else the AWS profile's region, else us-east-1 (logged).
    #[getter]
    fn region(&self) -> String {
        self.shared.resolved.config.region().to_string()
    }

    /// The endpoint (never with credentials).
    #[getter]
    fn endpoint(&self) -> String {
        self.shared.resolved.config.endpoint_display()
    }

    /// `Who` written into our locks.
    #[getter]
    fn who(&self) -> String {
        self.shared.resolved.acquire.who.clone()
    }

    /// `s3://bucket/lock key`.
    #[getter]
    fn url(&self) -> String {
        self.shared.ctx.target.clone()
    }

    /// The lease duration in seconds, or `None` (Terraform-style, no lease).
    #[getter]
    fn lease(&self) -> Option<f64> {
        self.shared
            .resolved
            .acquire
            .lease
            .map(|t| t.duration.as_secs_f64())
    }

    /// Whether acquisitions take over expired leases.
    #[getter]
    fn takeover(&self) -> bool {
        self.shared.resolved.acquire.takeover.expired_leases
    }

    /// The staleness age (seconds) after which a lock without a lease is taken
    /// over, or `None` (never).
    #[getter]
    fn stale_after(&self) -> Option<f64> {
        self.shared
            .resolved
            .acquire
            .takeover
            .stale_without_lease
            .map(|d| d.as_secs_f64())
    }
}

impl S3LockCore {
    /// Run `fut` for `caller` with a user transport's errors recorded.
    fn run<T, F>(
        &self,
        py: Python<'_>,
        caller: Caller<'_, '_>,
        interrupt: Option<Cancel>,
        fut: F,
        convert: fn(Python<'_>, T) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    {
        let fut = abortable_for_asyncio(Abort::new(Cancel::new()), Duration::ZERO, fut);
        let deliver: Deliver<Outcome<T>> = Box::new(move |py, v| convert(py, v?));
        call(py, caller, &self.shared.ctx, interrupt, fut, deliver)
    }

    /// Read the holder for `caller` (cancelled by Ctrl-C or the asyncio task).
    fn read_holder(&self, py: Python<'_>, caller: Caller<'_, '_>) -> PyResult<Py<PyAny>> {
        guard(|| {
            let lock = self.shared.lock()?;
            let token = Cancel::new();
            let cancel = token.clone();
            let read = async move { lock.status(&cancel).await };
            self.run(
                py,
                caller,
                Some(token),
                read,
                |py, h: Option<LockHolder>| {
                    Ok(h.map(|h| LockInfo::from_holder(&h))
                        .into_pyobject(py)?
                        .into_any()
                        .unbind())
                },
            )
        })
    }

    /// Force-unlock `lock_id` for `caller`.
    fn unlock(
        &self,
        py: Python<'_>,
        caller: Caller<'_, '_>,
        lock_id: String,
    ) -> PyResult<Py<PyAny>> {
        guard(|| {
            let lock = self.shared.lock()?;
            let unlock = async move { lock.force_unlock(&lock_id).await };
            self.run(py, caller, None, unlock, |py, out| {
                Ok(bool_obj(py, out == UnlockOutcome::Released))
            })
        })
    }
}

/// The Rust side of `condlock.HeldLock`: an S3 lock we hold, with or without
/// a lease renewed in the background.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct HeldLockCore {
    shared: Arc<Shared>,
    info: LockInfo,
    /// What release gives back; `None` while a release runs.
    holding: Mutex<Option<Holding>>,
    /// The lock as last known (while a release runs too).
    last: Mutex<HeldLock>,
    /// Changes to `Some(reason)` when a leased lock is lost.
    lost: Option<condlock::drive::s3::LossWatch>,
    /// The lease duration, when held with one.
    lease_duration: Option<Duration>,
    released: AtomicBool,
    /// What a release found instead of our lock: `Gone` (someone removed
    /// it) or `Stolen` (another holder's lock is there). A leased lock's loss
    /// is in `lost`.
    found: Mutex<Option<LostReason>>,
    owner: Owner,
}

impl HeldLockCore {
    fn new(shared: Arc<Shared>, holding: Holding) -> Self {
        let held = holding.held();
        HeldLockCore {
            shared,
            info: LockInfo::from_core(&held.info, &held.etag, None),
            lost: holding.loss_watch(),
            lease_duration: held.lease.map(|t| t.duration),
            holding: Mutex::new(Some(holding)),
            last: Mutex::new(held),
            released: AtomicBool::new(false),
            found: Mutex::new(None),
            owner: Owner::here(),
        }
    }

    /// The lock as held now (its ETag changes with each renewal).
    fn current(&self) -> HeldLock {
        let holding = locked(&self.holding);
        let mut last = locked(&self.last);
        if let Some(h) = holding.as_ref() {
            *last = h.held();
        }
        last.clone()
    }

    /// Take what release needs, once: `None` when already released (or a
    /// release is running).
    fn take(&self) -> PyResult<Option<(Arc<Lock>, Holding)>> {
        self.owner.check(&self.shared.ctx.target)?;
        let lock = self.shared.lock()?;
        if self.released.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        self.current();
        Ok(locked(&self.holding).take().map(|h| (lock, h)))
    }

    /// Turn a release's outcome into the Python result. A lost lock stays
    /// "released" (nothing of ours is left to delete), and so does one found
    /// gone or replaced by another holder's (recorded as `lost`, so the
    /// first release that found it says so apart from a second release);
    /// any other failure keeps the lock for another `release()` to retry.
    fn settle(
        &self,
        abort: &Abort,
        r: Result<UnlockOutcome, Error>,
        holding: Holding,
    ) -> PyResult<bool> {
        let failed = match (abort.take(), r) {
            (None, Ok(UnlockOutcome::AlreadyGone)) => {
                *locked(&self.found) = Some(LostReason::Gone);
                return Ok(false);
            }
            (None, Ok(o)) => return Ok(o == UnlockOutcome::Released),
            (None, Err(e @ Error::Lost { .. })) => return Err(errors::to_py(e, &self.shared.ctx)),
            (None, Err(Error::NotOwned { holder })) => {
                *locked(&self.found) = Some(LostReason::Stolen {
                    holder: holder.clone(),
                });
                return Err(errors::to_py(Error::NotOwned { holder }, &self.shared.ctx));
            }
            (Some(e), _) => e,
            (None, Err(e)) => errors::to_py(e, &self.shared.ctx),
        };
        *locked(&self.holding) = Some(holding);
        self.released.store(false, Ordering::SeqCst);
        Err(failed)
    }
}

impl HeldLockCore {
    fn release_for(
        slf: &Bound<'_, Self>,
        caller: Caller<'_, '_>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let (py, this) = (slf.py(), slf.get());
        guard(|| {
            let budget = release_budget(timeout)?;
            let ctx = &this.shared.ctx;
            let Some((lock, holding)) = this.take()? else {
                return ready(py, caller, ctx, bool_obj(py, false));
            };
            let me = slf.clone().unbind();
            let abort = Abort::new(Cancel::new());
            let fut = release(lock, holding, budget, abort.clone());
            let deliver: Deliver<(Result<UnlockOutcome, Error>, Holding)> =
                Box::new(move |py, (r, holding)| {
                    let released = me.bind(py).get().settle(&abort, r, holding)?;
                    Ok(bool_obj(py, released))
                });
            call(py, caller, ctx, None, async move { Ok(fut.await) }, deliver)
        })
    }
}

fn release_budget(timeout: Option<f64>) -> PyResult<Duration> {
    Ok(optional_seconds("timeout", timeout)
        .map_err(|e| errors::to_py(e, &no_context()))?
        .unwrap_or(RELEASE_BUDGET))
}

/// Release `holding` with a user transport's errors recorded.
async fn release(
    lock: Arc<Lock>,
    holding: Holding,
    budget: Duration,
    abort: Abort,
) -> (Result<UnlockOutcome, Error>, Holding) {
    let r = abortable(abort, Duration::ZERO, async {
        lock.release_holding(&holding, budget).await
    })
    .await;
    (r, holding)
}

impl Drop for HeldLockCore {
    fn drop(&mut self) {
        if !self.owner.is_here() {
            // A forked child's copy: the renewal belongs to the parent's
            // runtime, whose threads do not exist here. Leave it untouched.
            if let Some(holding) = locked(&self.holding).take() {
                std::mem::forget(holding);
            }
            return;
        }
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let id = locked(&self.last).info.id.clone();
        let url = &self.shared.ctx.target;
        // Dropping a leased lock stops its renewal (the core says so).
        log::warn!(
            target: "condlock::python",
            "{}",
            condlock::progress::collected_unreleased(
                url,
                &id,
                self.lease_duration,
                Kind::S3,
                &PythonSpelling(Kind::S3)
            )
        );
    }
}

#[pymethods]
impl HeldLockCore {
    /// Release the lock (blocking, with a fresh deadline of its own: `timeout`
    /// seconds, default 30; not interrupted by Ctrl-C). True when this call
    /// deleted it; False when it was already released or already gone. A
    /// leased lock that was lost raises `LockLost`. Safe to call twice.
    #[pyo3(signature = (timeout=None))]
    fn release(slf: &Bound<'_, Self>, timeout: Option<f64>) -> PyResult<Py<PyAny>> {
        Self::release_for(slf, None, timeout)
    }

    /// `release()` for asyncio. The release runs to completion on the
    /// runtime even if the awaiting task is cancelled.
    #[pyo3(signature = (event_loop, callback, timeout=None))]
    fn release_async(
        slf: &Bound<'_, Self>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        Self::release_for(slf, Some((event_loop, callback)), timeout)
    }

    /// Call `callback(reason)` (from a worker thread, with the GIL) once, when
    /// a leased lock is lost. Never called for a lock without a lease, nor
    /// after a normal release.
    fn watch_lost(&self, callback: Py<PyAny>) -> PyResult<()> {
        let Some(watch) = self.lost.clone() else {
            return Ok(());
        };
        let url = self.shared.ctx.target.clone();
        runtime()?.spawn(async move {
            // Released normally: nothing to call. The callback is dropped
            // without attaching (pyo3 defers the decref): attaching here could
            // happen during interpreter finalization, which ends the thread
            // with pthread_exit.
            let Some(reason) = watch.wait().await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || {
                let _ = Python::try_attach(|py| {
                    let r = errors::lost_reason(py, &reason);
                    if let Err(e) = callback.bind(py).call1((r,)) {
                        log::error!(
                            target: "condlock::python",
                            "the lost-lock callback of {url} raised: {e}"
                        );
                    }
                    drop(callback);
                });
            })
            .await;
        });
        Ok(())
    }

    /// Why the lock was lost (`condlock.LostReason`): a leased lock as soon
    /// as it is lost; any lock when its release found it gone or replaced.
    /// `None` while held and after a normal release.
    #[getter]
    fn lost(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let reason = self
            .lost
            .as_ref()
            .and_then(|w| w.get())
            .or_else(|| locked(&self.found).clone())?;
        Some(errors::lost_reason(py, &reason))
    }

    /// The lease duration in seconds, or `None` for a lock held without one.
    #[getter]
    fn lease(&self) -> Option<f64> {
        self.lease_duration.map(|d| d.as_secs_f64())
    }

    /// Fencing token: `(generation, current ETag)`.
    #[getter]
    fn fencing_token(&self) -> (u64, String) {
        let h = self.current();
        (h.generation(), h.etag)
    }

    /// The fencing generation: 1 for a fresh lock, +1 per takeover; 0 without
    /// a lease.
    #[getter]
    fn generation(&self) -> u64 {
        self.current().generation()
    }

    /// Our lock ID (the `ID` in the lock body).
    #[getter]
    fn lock_id(&self) -> String {
        self.info.id.clone().unwrap_or_default()
    }

    /// The current ETag of our lock object (changes with each renewal).
    #[getter]
    fn etag(&self) -> String {
        self.current().etag
    }

    /// The lock body we wrote.
    #[getter]
    fn info(&self) -> LockInfo {
        self.info.clone()
    }

    /// True once released (or found lost at release).
    #[getter]
    fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// `s3://bucket/lock key`.
    #[getter]
    fn url(&self) -> String {
        self.shared.ctx.target.clone()
    }
}
