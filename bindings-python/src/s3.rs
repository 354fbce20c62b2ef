//! The S3 lock file (Terraform-compatible): `S3LockCore` and `S3LeaseCore`,
//! wrapped by `condlock.S3Lock` / `condlock.Lease` in Python.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use condlock::native::{self, CredentialSource, TransportOptions, VerifyConditionalWrites};
use condlock::s3::{
    AcquireOptions, Addressing, Credentials, Encryption, HeldLock, LeaseTerms, LockHolder,
    S3LockConfig, Takeover, UnlockOutcome,
};
use condlock::Cancel;
use condlock::{Error, Secret, Wait};
use pyo3::prelude::*;

use crate::common::{
    bool_obj, cap_backoff, guard, locked, or_cancelled, poll_interval, seconds, wait_policy,
    LockInfo, Owner,
};
use crate::credentials::{aws_chain, PyCredentials};
use crate::errors::{self, invalid_config, Context};
use crate::runtime::{
    block_on, block_on_acquire, deliver_now, runtime, spawn_for_asyncio, Deliver, Operation,
    PerProcess,
};
use crate::transport::{Abort, AnyTransport, TransportSpec, ABORT};

/// The deadline of a release on the way out of a `with` / `async with` block
/// (after an exception, cancellation or Ctrl-C too): short, so leaving stays
/// prompt when the store is unreachable. Python passes it as `timeout`
/// (`condlock._s3.EXIT_RELEASE_TIMEOUT`); plain `release()` keeps the 30 s
/// default.
pub const DEFAULT_RELEASE_TIMEOUT: Duration = Duration::from_secs(30);

/// After a user transport's programming error cancelled an acquisition, how
/// long its cleanup (removing a lock it may have written) may still run.
const ABORT_GRACE: Duration = Duration::from_secs(2);

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

fn optional_seconds(field: &'static str, v: Option<f64>) -> PyResult<Option<Duration>> {
    v.map(|s| seconds(field, s)).transpose()
}

type Lock = native::S3Lock<AnyTransport>;

/// Everything a lock and its leases share.
struct Shared {
    config: S3LockConfig,
    credentials: CredentialSource,
    transport: TransportSpec<TransportOptions>,
    verify: VerifyConditionalWrites,
    operation: String,
    info: String,
    who: String,
    /// Longest pause between attempts while someone else holds the lock.
    max_poll_interval: Option<std::time::Duration>,
    /// Hold our locks with this lease (renewed in the background).
    lease: Option<LeaseTerms>,
    /// Which expired/stale locks our acquisitions may take over.
    takeover: Takeover,
    ctx: Context,
    /// The driver, built for the process that uses it (a forked child must
    /// not share the parent's connection pool).
    inner: PerProcess<Arc<Lock>>,
}

impl Shared {
    fn lock(&self) -> PyResult<Arc<Lock>> {
        self.inner.get_or_build(|| {
            let transport = self.transport.build(|opts| {
                native::Transport::new(opts).map_err(|e| errors::to_py(e, &self.ctx))
            })?;
            Ok(Arc::new(
                native::S3Lock::over(self.config.clone(), self.credentials.clone(), transport)
                    .verify_conditional_writes(self.verify),
            ))
        })
    }

    fn options(&self, wait: Wait) -> AcquireOptions {
        let mut opts = AcquireOptions::new(self.who.clone());
        opts.operation = self.operation.clone();
        opts.info = self.info.clone();
        opts.wait = wait;
        opts.lease = self.lease;
        opts.takeover = self.takeover;
        cap_backoff(&mut opts.wait_backoff, self.max_poll_interval);
        opts
    }
}

/// A lock just acquired: plain (Terraform-style), or with a lease renewed in
/// the background.
pub enum Holding {
    Plain(Box<HeldLock>),
    Leased(native::Lease),
}

impl Holding {
    fn held(&self) -> HeldLock {
        match self {
            Holding::Plain(h) => (**h).clone(),
            Holding::Leased(l) => l.held(),
        }
    }
}

/// Release whatever `holding` is, within `budget`.
async fn release_holding(
    lock: &Lock,
    holding: Holding,
    budget: Duration,
) -> Result<UnlockOutcome, Error> {
    match holding {
        Holding::Plain(h) => lock.release_within(&h, budget).await,
        Holding::Leased(l) => lock.release_lease_within(l, budget).await,
    }
}

/// Acquire (with a lease when configured); if the caller cancelled after the
/// lock was in fact taken, give it back before reporting the cancellation.
async fn acquire_task(
    lock: Arc<Lock>,
    opts: AcquireOptions,
    token: Cancel,
    what: String,
) -> Result<Holding, Error> {
    let on_wait = move |n: condlock::Notice| {
        if let condlock::Notice::Waiting {
            new_holder: true, ..
        } = &n
        {
            log::info!(target: "condlock::python", "{n}");
        }
    };
    let result = if opts.lease.is_some() {
        lock.acquire_lease_with(opts, &token, on_wait)
            .await
            .map(Holding::Leased)
    } else {
        lock.acquire_with(opts, &token, on_wait)
            .await
            .map(|h| Holding::Plain(Box::new(h)))
    };
    if token.is_cancelled() {
        if let Ok(holding) = result {
            let id = holding.held().info.id;
            log::info!(
                target: "condlock::python",
                "acquired {what} as the caller cancelled: releasing it"
            );
            if let Err(e) = release_holding(&lock, holding, DEFAULT_RELEASE_TIMEOUT).await {
                log::error!(
                    target: "condlock::python",
                    "could not release {what} (lock ID {id}) after cancellation: {e}; \
                     remove it with force_unlock",
                );
            }
            return Err(Error::Cancelled);
        }
    }
    result
}

fn opt_nonempty(field: &'static str, v: Option<String>) -> PyResult<Option<String>> {
    match v {
        Some(s) if s.trim().is_empty() => Err(invalid_config(
            field,
            "must not be empty when given (omit it instead)",
        )),
        other => Ok(other),
    }
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
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
        max_poll_interval=None, lease=None, takeover=false, stale_after=None
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
    ) -> PyResult<Self> {
        guard(|| {
            let region = region
                .or_else(|| env_first(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
                .unwrap_or_else(|| "us-east-1".to_string());
            let endpoint =
                endpoint.or_else(|| env_first(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]));
            let mut b = S3LockConfig::builder(bucket, key)
                .region(region.clone())
                .checksum(checksum);
            if let Some(ws) = workspace {
                b = b.workspace(ws);
            }
            if let Some(p) = workspace_key_prefix {
                b = b.workspace_key_prefix(p);
            }
            if let Some(e) = endpoint {
                b = b.endpoint(e);
            }
            if let Some(ps) = path_style {
                b = b.addressing(if ps {
                    Addressing::PathStyle
                } else {
                    Addressing::VirtualHosted
                });
            }
            let kms_key_id = opt_nonempty("kms_key_id", kms_key_id)?;
            match (encrypt, kms_key_id) {
                (false, Some(_)) => {
                    return Err(invalid_config("kms_key_id", "requires encrypt=True"));
                }
                (true, Some(k)) => b = b.encryption(Encryption::Kms { key_id: Some(k) }),
                (true, None) if sse_customer_key.is_none() => {
                    b = b.encryption(Encryption::S3Managed)
                }
                _ => {}
            }
            if let Some(k) = sse_customer_key {
                b = b.sse_customer_key(Secret::new(k));
            }
            if let Some(acl) = acl {
                b = b.acl(acl);
            }
            for (k, v) in tags.unwrap_or_default() {
                b = b.tag(k, v);
            }
            let config = b.build().map_err(|e| {
                errors::to_py(
                    e,
                    &Context {
                        lock: "the lock".into(),
                        endpoint: "?".into(),
                    },
                )
            })?;
            let ctx = Context {
                lock: format!("s3://{}/{}", config.bucket(), config.lock_key()),
                endpoint: config.endpoint_display(),
            };
            let to_py = |e: Error| errors::to_py(e, &ctx);

            let explicit = access_key_id.is_some() || secret_access_key.is_some();
            if explicit && credentials_provider.is_some() {
                return Err(invalid_config(
                    "boto3_session",
                    "cannot be combined with access_key_id/secret_access_key: give one or the other",
                ));
            }
            let credentials = match (access_key_id, secret_access_key, credentials_provider) {
                (_, _, Some(p)) => {
                    if session_token.is_some() {
                        return Err(invalid_config(
                            "session_token",
                            "cannot be combined with boto3_session (the session has its own)",
                        ));
                    }
                    CredentialSource::Chain(
                        aws_credential_types::provider::SharedCredentialsProvider::new(
                            PyCredentials::new(p),
                        ),
                    )
                }
                (Some(id), Some(secret), None) => CredentialSource::Static(
                    Credentials::new(id, Secret::new(secret), session_token.map(Secret::new))
                        .map_err(to_py)?,
                ),
                (Some(_), None, None) => {
                    return Err(invalid_config(
                        "secret_access_key",
                        "is required when access_key_id is given",
                    ))
                }
                (None, Some(_), None) => {
                    return Err(invalid_config(
                        "access_key_id",
                        "is required when secret_access_key is given",
                    ))
                }
                (None, None, None) => {
                    if session_token.is_some() {
                        return Err(invalid_config(
                            "session_token",
                            "needs access_key_id and secret_access_key",
                        ));
                    }
                    CredentialSource::Chain(block_on(py, aws_chain(region.clone()), None)?)
                }
            };

            let transport = TransportSpec::from_args(py, transport, async_transport, || {
                let mut opts = TransportOptions {
                    verify_tls,
                    ca_bundle_pem,
                    ..TransportOptions::default()
                };
                if let Some(t) = request_timeout {
                    opts.request_timeout = seconds("request_timeout", t)?;
                }
                if let Some(t) = connect_timeout {
                    opts.connect_timeout = seconds("connect_timeout", t)?;
                }
                Ok(opts)
            })?;
            let verify = match verify_conditional_writes.as_deref() {
                None | Some("once") => VerifyConditionalWrites::OncePerStore,
                Some("always") => VerifyConditionalWrites::EveryAcquire,
                Some("never") => VerifyConditionalWrites::TrustWithoutProof,
                Some(other) => {
                    return Err(invalid_config(
                        "verify_conditional_writes",
                        format!("{other:?} is not one of \"once\", \"always\", \"never\""),
                    ))
                }
            };
            let operation = operation.unwrap_or_else(|| "condlock".to_string());
            if operation.trim().is_empty() {
                return Err(invalid_config("operation", "must not be empty"));
            }
            let who = match who {
                Some(w) if w.trim().is_empty() => {
                    return Err(invalid_config("who", "must not be empty when given"))
                }
                Some(w) => w,
                None => native::default_who(),
            };
            let lease = match optional_seconds("lease", lease)? {
                Some(d) => {
                    let terms = LeaseTerms::new(d);
                    terms.validate().map_err(|e| errors::to_py(e, &ctx))?;
                    Some(terms)
                }
                None => None,
            };
            let takeover = Takeover {
                expired_leases: takeover,
                stale_without_lease: optional_seconds("stale_after", stale_after)?,
            };
            let shared = Arc::new(Shared {
                config,
                credentials,
                transport,
                verify,
                operation,
                info: info.unwrap_or_default(),
                who,
                max_poll_interval: max_poll_interval.map(poll_interval).transpose()?,
                lease,
                takeover,
                ctx,
                inner: PerProcess::new(),
            });
            // Build the driver now so transport errors (bad CA bundle) surface here.
            shared.lock()?;
            Ok(S3LockCore { shared })
        })
    }

    /// Acquire the lock (blocking, GIL released, Ctrl-C cancels).
    #[pyo3(signature = (blocking=true, timeout=None))]
    fn acquire(
        &self,
        py: Python<'_>,
        blocking: bool,
        timeout: Option<f64>,
    ) -> PyResult<S3LeaseCore> {
        guard(|| {
            let wait = wait_policy(blocking, timeout)?;
            let lock = self.shared.lock()?;
            let token = Cancel::new();
            let abort = Abort::new(token.clone());
            let fut = abortable(
                abort.clone(),
                ABORT_GRACE,
                acquire_task(
                    lock,
                    self.shared.options(wait),
                    token.clone(),
                    self.shared.ctx.lock.clone(),
                ),
            );
            let result = block_on_acquire(py, fut, &token, &self.shared.ctx.lock, |holding| {
                let lock = self.shared.lock()?;
                Ok(async move { release_holding(&lock, holding, DEFAULT_RELEASE_TIMEOUT).await })
            })?;
            let holding = outcome(&abort, result, &self.shared.ctx)?;
            Ok(S3LeaseCore::new(self.shared.clone(), holding))
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
            let lock = self.shared.lock()?;
            let token = Cancel::new();
            let fut = abortable_for_asyncio(
                Abort::new(token.clone()),
                ABORT_GRACE,
                acquire_task(
                    lock,
                    self.shared.options(wait),
                    token.clone(),
                    self.shared.ctx.lock.clone(),
                ),
            );
            let shared = self.shared.clone();
            let deliver: Deliver<Outcome<Holding>> = Box::new(move |py, holding| {
                Ok(Py::new(py, S3LeaseCore::new(shared, holding?))?.into_any())
            });
            spawn_for_asyncio(
                py,
                event_loop,
                callback,
                self.shared.ctx.clone(),
                token,
                fut,
                deliver,
            )
        })
    }

    /// The current holder, or `None` when the lock is free.
    fn holder(&self, py: Python<'_>) -> PyResult<Option<LockInfo>> {
        guard(|| {
            let lock = self.shared.lock()?;
            let token = Cancel::new();
            let abort = Abort::new(Cancel::new());
            let read = or_cancelled(token.clone(), async move { lock.status().await });
            let fut = abortable(abort.clone(), Duration::ZERO, read);
            let h = outcome(&abort, block_on(py, fut, Some(&token))?, &self.shared.ctx)?;
            Ok(h.as_ref().map(LockInfo::from_holder))
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
            let lock = self.shared.lock()?;
            let deliver: Deliver<Outcome<Option<LockHolder>>> = Box::new(|py, h| match h? {
                Some(h) => Ok(Py::new(py, LockInfo::from_holder(&h))?.into_any()),
                None => Ok(py.None()),
            });
            let abort = Abort::new(Cancel::new());
            spawn_for_asyncio(
                py,
                event_loop,
                callback,
                self.shared.ctx.clone(),
                Cancel::new(),
                abortable_for_asyncio(abort, Duration::ZERO, async move { lock.status().await }),
                deliver,
            )
        })
    }

    /// Remove the lock whose ID is `lock_id` (like `terraform force-unlock`).
    /// True when it was deleted, False when there was no lock.
    fn force_unlock(&self, py: Python<'_>, lock_id: String) -> PyResult<bool> {
        guard(|| {
            let lock = self.shared.lock()?;
            let abort = Abort::new(Cancel::new());
            let fut = abortable(abort.clone(), Duration::ZERO, async move {
                lock.force_unlock(&lock_id).await
            });
            let out = outcome(&abort, block_on(py, fut, None)?, &self.shared.ctx)?;
            Ok(out == UnlockOutcome::Released)
        })
    }

    /// `force_unlock()` for asyncio.
    fn force_unlock_async(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        lock_id: String,
    ) -> PyResult<Operation> {
        guard(|| {
            let lock = self.shared.lock()?;
            let deliver: Deliver<Outcome<UnlockOutcome>> =
                Box::new(|py, out| Ok(bool_obj(py, out? == UnlockOutcome::Released)));
            let abort = Abort::new(Cancel::new());
            spawn_for_asyncio(
                py,
                event_loop,
                callback,
                self.shared.ctx.clone(),
                Cancel::new(),
                abortable_for_asyncio(abort, Duration::ZERO, async move {
                    lock.force_unlock(&lock_id).await
                }),
                deliver,
            )
        })
    }

    /// The bucket.
    #[getter]
    fn bucket(&self) -> String {
        self.shared.config.bucket().to_string()
    }

    /// The state key after workspace expansion.
    #[getter]
    fn key(&self) -> String {
        self.shared.config.state_key().to_string()
    }

    /// The lock object's key (`<state key>.tflock`).
    #[getter]
    fn lock_key(&self) -> String {
        self.shared.config.lock_key().to_string()
    }

    /// The signing region.
    #[getter]
    fn region(&self) -> String {
        self.shared.config.region().to_string()
    }

    /// The endpoint (never with credentials).
    #[getter]
    fn endpoint(&self) -> String {
        self.shared.config.endpoint_display()
    }

    /// `Who` written into our locks.
    #[getter]
    fn who(&self) -> String {
        self.shared.who.clone()
    }

    /// `s3://bucket/lock key`.
    #[getter]
    fn url(&self) -> String {
        self.shared.ctx.lock.clone()
    }

    /// The lease duration in seconds, or `None` (Terraform-style, no lease).
    #[getter]
    fn lease(&self) -> Option<f64> {
        self.shared.lease.map(|t| t.duration.as_secs_f64())
    }

    /// Whether acquisitions take over expired leases.
    #[getter]
    fn takeover(&self) -> bool {
        self.shared.takeover.expired_leases
    }

    /// The staleness age (seconds) after which a lock without a lease is taken
    /// over, or `None` (never).
    #[getter]
    fn stale_after(&self) -> Option<f64> {
        self.shared
            .takeover
            .stale_without_lease
            .map(|d| d.as_secs_f64())
    }
}

/// The Rust side of `condlock.Lease`: a lock we hold, with or without a
/// lease renewed in the background.
#[pyclass(frozen, module = "condlock._condlock")]
pub struct S3LeaseCore {
    shared: Arc<Shared>,
    info: LockInfo,
    /// The background renewal, until release takes it.
    lease: Mutex<Option<native::Lease>>,
    /// The lock as last known (refreshed from `lease` while it renews; after
    /// a failed release, what a retry releases).
    held: Mutex<HeldLock>,
    /// Changes to `Some(reason)` when a leased lock is lost.
    lost: Option<condlock::drive::s3::LossWatch>,
    /// The lease duration, when held with one.
    lease_duration: Option<Duration>,
    released: AtomicBool,
    owner: Owner,
}

impl S3LeaseCore {
    fn new(shared: Arc<Shared>, holding: Holding) -> Self {
        let held = holding.held();
        let (lease, lost) = match holding {
            Holding::Plain(_) => (None, None),
            Holding::Leased(l) => {
                let rx = l.loss_watch();
                (Some(l), Some(rx))
            }
        };
        let info = LockInfo::from_core(&held.info, &held.etag, None);
        S3LeaseCore {
            shared,
            info,
            lease_duration: held.lease.map(|t| t.duration),
            lease: Mutex::new(lease),
            held: Mutex::new(held),
            lost,
            released: AtomicBool::new(false),
            owner: Owner::here(),
        }
    }

    /// The lock as held now (its ETag changes with each renewal).
    fn current(&self) -> HeldLock {
        let lease = locked(&self.lease);
        let mut held = locked(&self.held);
        if let Some(l) = lease.as_ref() {
            *held = l.held();
        }
        held.clone()
    }

    /// Take what release needs: the renewal (stopped by the release), or the
    /// plain lock.
    fn take(&self) -> (Holding, HeldLock) {
        let snapshot = self.current();
        match locked(&self.lease).take() {
            Some(l) => (Holding::Leased(l), snapshot),
            None => (Holding::Plain(Box::new(snapshot.clone())), snapshot),
        }
    }

    /// Turn a release's outcome into the Python result. A lost lock stays
    /// "released" (nothing of ours is left to delete); any other failure
    /// leaves the lock for another `release()` to retry.
    fn settle(
        &self,
        abort: &Abort,
        r: Result<UnlockOutcome, Error>,
        snapshot: HeldLock,
    ) -> PyResult<bool> {
        if let Some(e) = abort.take() {
            self.unreleased(snapshot);
            return Err(e);
        }
        match r {
            Ok(o) => Ok(o == UnlockOutcome::Released),
            Err(e @ Error::Lost { .. }) => Err(errors::to_py(e, &self.shared.ctx)),
            Err(e) => {
                self.unreleased(snapshot);
                Err(errors::to_py(e, &self.shared.ctx))
            }
        }
    }

    /// A release that did not happen: keep the lock for another `release()`
    /// (a plain release of the last known version).
    fn unreleased(&self, snapshot: HeldLock) {
        *locked(&self.held) = snapshot;
        self.released.store(false, Ordering::SeqCst);
    }
}

fn release_budget(timeout: Option<f64>) -> PyResult<Duration> {
    Ok(optional_seconds("timeout", timeout)?.unwrap_or(DEFAULT_RELEASE_TIMEOUT))
}

impl Drop for S3LeaseCore {
    fn drop(&mut self) {
        if !self.owner.is_here() {
            // A forked child's copy: the renewal belongs to the parent's
            // runtime, whose threads do not exist here. Leave it untouched.
            if let Some(lease) = locked(&self.lease).take() {
                std::mem::forget(lease);
            }
            return;
        }
        if self.released.load(Ordering::SeqCst) {
            return;
        }
        let id = locked(&self.held).info.id.clone();
        match self.lease_duration {
            // Dropping the native lease stops renewing.
            Some(d) => log::warn!(
                target: "condlock::python",
                "a lease on {} (lock ID {id}) was garbage-collected without release(): \
                 renewal stopped, the lock expires {:.1}s after its last renewal and can then \
                 be taken over (takeover=True), or removed with force_unlock",
                self.shared.ctx.lock,
                d.as_secs_f64()
            ),
            None => log::warn!(
                target: "condlock::python",
                "a lease on {} (lock ID {id}) was garbage-collected without release(): \
                 the lock stays until it is released or force-unlocked",
                self.shared.ctx.lock,
            ),
        }
    }
}

#[pymethods]
impl S3LeaseCore {
    /// Release the lock (blocking, with a fresh deadline of its own: `timeout`
    /// seconds, default 30; not interrupted by Ctrl-C). True when this call
    /// deleted it; False when it was already released or already gone. A
    /// leased lock that was lost raises `LockLost`. Safe to call twice.
    #[pyo3(signature = (timeout=None))]
    fn release(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        guard(|| {
            let budget = release_budget(timeout)?;
            self.owner.check(&self.shared.ctx.lock)?;
            let lock = self.shared.lock()?;
            if self.released.swap(true, Ordering::SeqCst) {
                return Ok(false);
            }
            let (holding, snapshot) = self.take();
            let abort = Abort::new(Cancel::new());
            let fut = abortable(abort.clone(), Duration::ZERO, async move {
                release_holding(&lock, holding, budget).await
            });
            match block_on(py, fut, None) {
                Ok(r) => self.settle(&abort, r, snapshot),
                Err(e) => {
                    self.unreleased(snapshot);
                    Err(e)
                }
            }
        })
    }

    /// `release()` for asyncio. The release runs to completion on the
    /// runtime even if the awaiting task is cancelled.
    #[pyo3(signature = (event_loop, callback, timeout=None))]
    fn release_async(
        slf: Bound<'_, Self>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<Operation> {
        let py = slf.py();
        let this = slf.get();
        guard(|| {
            let budget = release_budget(timeout)?;
            this.owner.check(&this.shared.ctx.lock)?;
            let lock = this.shared.lock()?;
            if this.released.swap(true, Ordering::SeqCst) {
                let ctx = this.shared.ctx.clone();
                return deliver_now(py, event_loop, callback, ctx, bool_obj(py, false));
            }
            let (holding, snapshot) = this.take();
            let me = slf.clone().unbind();
            let abort = Abort::new(Cancel::new());
            let abort_in = abort.clone();
            let deliver: Deliver<Result<UnlockOutcome, Error>> = Box::new(move |py, out| {
                let released = me.bind(py).get().settle(&abort, out, snapshot)?;
                Ok(bool_obj(py, released))
            });
            spawn_for_asyncio(
                py,
                event_loop,
                callback,
                this.shared.ctx.clone(),
                Cancel::new(),
                async move {
                    Ok(abortable(abort_in, Duration::ZERO, async move {
                        release_holding(&lock, holding, budget).await
                    })
                    .await)
                },
                deliver,
            )
        })
    }

    /// Call `callback(reason)` (from a worker thread, with the GIL) once, when
    /// a leased lock is lost. Never called for a lock without a lease, nor
    /// after a normal release.
    fn watch_lost(&self, callback: Py<PyAny>) -> PyResult<()> {
        let Some(watch) = self.lost.clone() else {
            return Ok(());
        };
        let url = self.shared.ctx.lock.clone();
        runtime()?.spawn(async move {
            let reason = watch.wait().await;
            let _ = tokio::task::spawn_blocking(move || {
                Python::attach(|py| {
                    if let Some(reason) = reason {
                        let r = errors::lost_reason(py, &reason);
                        if let Err(e) = callback.bind(py).call1((r,)) {
                            log::error!(
                                target: "condlock::python",
                                "the lost-lock callback of {url} raised: {e}"
                            );
                        }
                    }
                    drop(callback);
                })
            })
            .await;
        });
        Ok(())
    }

    /// Why the leased lock was lost (`condlock.LostReason`), or `None`.
    #[getter]
    fn lost(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let reason = self.lost.as_ref()?.get()?;
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
        self.shared.ctx.lock.clone()
    }
}
