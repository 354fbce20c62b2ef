//! The S3 lock over reqwest: the API Rust callers and the bindings use.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{entropy, run, Clock, HttpTransport, Lease, RunHooks, Transport, TransportOptions};
use crate::error::Error;
use crate::s3::{
    Acquire, AcquireOptions, ConditionalWriteVerdicts, Credentials, HeldLock, LockHolder,
    LostReason, Renew, S3LockConfig, Status, Unlock, UnlockOutcome,
};
use crate::sansio::Machine;
#[cfg(feature = "aws-config")]
use crate::secret::Secret;
use crate::time::ClockOffset;

/// Where credentials come from.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// Fixed keys.
    Static(Credentials),
    /// The standard AWS chain (environment, profiles, SSO, web identity,
    /// container and instance metadata), resolved and refreshed by `aws-config`.
    #[cfg(feature = "aws-config")]
    Chain(aws_credential_types::provider::SharedCredentialsProvider),
}

impl CredentialSource {
    /// Load the standard AWS credential chain (honours `AWS_PROFILE` etc.).
    #[cfg(feature = "aws-config")]
    pub async fn from_aws_chain() -> Result<Self, Error> {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        conf.credentials_provider()
            .map(CredentialSource::Chain)
            .ok_or_else(|| {
                Error::config("credentials", "the AWS credential chain is not configured")
            })
    }

    async fn resolve(&self) -> Result<Credentials, Error> {
        match self {
            CredentialSource::Static(c) => Ok(c.clone()),
            #[cfg(feature = "aws-config")]
            CredentialSource::Chain(p) => {
                use aws_credential_types::provider::ProvideCredentials as _;
                let c = p.provide_credentials().await.map_err(|e| {
                    Error::config(
                        "credentials",
                        format!("the AWS credential chain failed: {e}"),
                    )
                })?;
                Credentials::new(
                    c.access_key_id(),
                    Secret::new(c.secret_access_key()),
                    c.session_token().map(Secret::new),
                )
            }
        }
    }

    fn refreshes(&self) -> bool {
        !matches!(self, CredentialSource::Static(_))
    }
}

/// When to prove that a store enforces `If-None-Match`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyConditionalWrites {
    /// On the first successful acquire per endpoint and bucket in this process
    /// (one extra request, once).
    #[default]
    OncePerStore,
    /// On every acquire.
    EveryAcquire,
    /// Never: trust the store. An explicit opt-out, for stores known to be
    /// correct where the extra request is unwanted.
    TrustWithoutProof,
}

fn verdicts() -> &'static ConditionalWriteVerdicts {
    static VERDICTS: OnceLock<ConditionalWriteVerdicts> = OnceLock::new();
    VERDICTS.get_or_init(ConditionalWriteVerdicts::new)
}

/// An S3 lock file (Terraform-compatible) driven over HTTP through `T`
/// (reqwest by default).
#[derive(Debug)]
pub struct S3Lock<T: HttpTransport = Transport> {
    config: Arc<S3LockConfig>,
    credentials: CredentialSource,
    transport: T,
    clock: Clock,
    offset: Mutex<ClockOffset>,
    verify: Mutex<VerifyConditionalWrites>,
    who: String,
    release_budget: Duration,
}

/// Keeps credentials fresh and reports waits during a run.
struct Hooks<'a, F> {
    source: &'a CredentialSource,
    on_wait: F,
    last_reported: Option<String>,
}

trait SignedOperation: Machine {
    fn set_credentials(&mut self, c: Credentials);
    fn clock_offset(&self) -> ClockOffset;
    fn holder_waited_on(&self) -> Option<&LockHolder> {
        None
    }
}

impl SignedOperation for Acquire {
    fn set_credentials(&mut self, c: Credentials) {
        Acquire::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Acquire::clock_offset(self)
    }
    fn holder_waited_on(&self) -> Option<&LockHolder> {
        self.waiting_for()
    }
}
impl SignedOperation for Unlock {
    fn set_credentials(&mut self, c: Credentials) {
        Unlock::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Unlock::clock_offset(self)
    }
}
impl SignedOperation for Renew {
    fn set_credentials(&mut self, c: Credentials) {
        Renew::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Renew::clock_offset(self)
    }
}
impl SignedOperation for Status {
    fn set_credentials(&mut self, _c: Credentials) {}
    fn clock_offset(&self) -> ClockOffset {
        Status::clock_offset(self)
    }
}

impl<M: SignedOperation, F: FnMut(&LockHolder)> RunHooks<M> for Hooks<'_, F> {
    fn before_sleep(&mut self, machine: &M, _until: Duration) {
        if let Some(holder) = machine.holder_waited_on() {
            if self.last_reported.as_deref() != Some(holder.etag.as_str()) {
                self.last_reported = Some(holder.etag.clone());
                (self.on_wait)(holder);
            }
        }
    }

    async fn before_send(&mut self, machine: &mut M) {
        if self.source.refreshes() {
            match self.source.resolve().await {
                Ok(c) => machine.set_credentials(c),
                Err(e) => log::warn!("could not refresh credentials, using the previous ones: {e}"),
            }
        }
    }
}

impl S3Lock<Transport> {
    /// A lock on `config`'s lock file with default transport settings.
    pub fn new(config: S3LockConfig, credentials: CredentialSource) -> Result<Self, Error> {
        Self::with_transport(config, credentials, &TransportOptions::default())
    }

    /// A lock with custom transport settings (timeouts, TLS).
    pub fn with_transport(
        config: S3LockConfig,
        credentials: CredentialSource,
        transport: &TransportOptions,
    ) -> Result<Self, Error> {
        Ok(Self::over(config, credentials, Transport::new(transport)?))
    }
}

impl<T: HttpTransport> S3Lock<T> {
    /// A lock whose requests go through a transport of the caller's.
    pub fn over(config: S3LockConfig, credentials: CredentialSource, transport: T) -> Self {
        S3Lock {
            config: Arc::new(config),
            credentials,
            transport,
            clock: Clock::new(),
            offset: Mutex::new(ClockOffset::default()),
            verify: Mutex::new(VerifyConditionalWrites::default()),
            who: super::default_who(),
            release_budget: Duration::from_secs(30),
        }
    }

    /// Choose when the store's conditional-write support is proved.
    pub fn verify_conditional_writes(self, verify: VerifyConditionalWrites) -> Self {
        self.set_verify_conditional_writes(verify);
        self
    }

    /// Change when the store's conditional-write support is proved.
    pub fn set_verify_conditional_writes(&self, verify: VerifyConditionalWrites) {
        match self.verify.lock() {
            Ok(mut v) => *v = verify,
            Err(p) => *p.into_inner() = verify,
        }
    }

    /// The lock target.
    pub fn config(&self) -> &S3LockConfig {
        &self.config
    }

    /// The transport (for its request counter).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Default acquire options for this lock (`Who` = user@hostname).
    pub fn options(&self) -> AcquireOptions {
        AcquireOptions::new(self.who.clone())
    }

    fn clock_offset(&self) -> ClockOffset {
        self.offset.lock().map(|o| *o).unwrap_or_default()
    }

    fn learn_clock(&self, offset: ClockOffset) {
        if let Ok(mut o) = self.offset.lock() {
            *o = offset;
        }
    }

    /// Acquire the lock as `opts` says (wait forever by default).
    pub async fn acquire(&self, opts: AcquireOptions) -> Result<HeldLock, Error> {
        self.acquire_with(opts, &CancellationToken::new(), |_| {})
            .await
    }

    /// Acquire once, without waiting for a holder.
    pub async fn try_acquire(&self, mut opts: AcquireOptions) -> Result<HeldLock, Error> {
        opts.wait = crate::Wait::No;
        self.acquire(opts).await
    }

    /// Acquire, cancellable through `cancel`, calling `on_wait` each time the
    /// lock is found held by a new holder.
    pub async fn acquire_with(
        &self,
        mut opts: AcquireOptions,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&LockHolder),
    ) -> Result<HeldLock, Error> {
        let policy = self.verify.lock().map(|v| *v).unwrap_or_default();
        let verify = match policy {
            VerifyConditionalWrites::OncePerStore => !verdicts().is_verified(&self.config),
            VerifyConditionalWrites::EveryAcquire => true,
            VerifyConditionalWrites::TrustWithoutProof => false,
        };
        opts.verify_conditional_writes = verify;
        let credentials = self.credentials.resolve().await?;
        let mut machine = Acquire::new(
            self.config.clone(),
            credentials,
            opts,
            entropy(),
            self.clock_offset(),
            self.clock.now(),
        )
        .with_verdicts(verdicts().clone());
        let result = self.drive(&mut machine, cancel, on_wait).await;
        if let Ok(held) = &result {
            if held.verified_conditional_writes {
                verdicts().mark_verified(&self.config);
            }
        }
        result
    }

    /// Release a lock we hold: one `DELETE If-Match`, retried on transient
    /// failures for up to 30 s.
    pub async fn release(&self, lock: &HeldLock) -> Result<UnlockOutcome, Error> {
        self.release_within(lock, self.release_budget).await
    }

    /// [`Self::release`] with a deadline of the caller's: on exit paths
    /// (cancellation, Ctrl-C) a fresh short deadline keeps shutdown prompt.
    pub async fn release_within(
        &self,
        lock: &HeldLock,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        let credentials = self.credentials.resolve().await?;
        let mut machine = Unlock::release(
            self.config.clone(),
            credentials,
            &lock.info,
            &lock.etag,
            budget,
            entropy().jitter_seed,
            self.clock_offset(),
        )
        .with_verdicts(verdicts().clone());
        self.run_unlock(&mut machine).await
    }

    /// Delete the lock whose ID is `lock_id`, as `terraform force-unlock` does:
    /// only if the current lock carries that ID, conditioned on its ETag.
    pub async fn force_unlock(&self, lock_id: &str) -> Result<UnlockOutcome, Error> {
        if lock_id.trim().is_empty() {
            return Err(Error::config("lock_id", "must not be empty"));
        }
        let credentials = self.credentials.resolve().await?;
        let mut machine = Unlock::force(
            self.config.clone(),
            credentials,
            lock_id,
            self.release_budget,
            entropy().jitter_seed,
            self.clock_offset(),
        )
        .with_verdicts(verdicts().clone());
        self.run_unlock(&mut machine).await
    }

    async fn run_unlock(&self, machine: &mut Unlock) -> Result<UnlockOutcome, Error> {
        self.drive(machine, &CancellationToken::new(), |_| {}).await
    }

    /// Who holds the lock now, without taking it (`None`: free).
    pub async fn status(&self) -> Result<Option<LockHolder>, Error> {
        let credentials = self.credentials.resolve().await?;
        let mut machine = Status::new(
            self.config.clone(),
            credentials,
            Duration::from_secs(30),
            entropy().jitter_seed,
            self.clock_offset(),
        );
        self.drive(&mut machine, &CancellationToken::new(), |_| {})
            .await
    }

    /// Run one operation to completion: credentials refreshed before each
    /// request, waits reported to `on_wait`, the learnt clock offset kept.
    async fn drive<M: SignedOperation>(
        &self,
        machine: &mut M,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&LockHolder),
    ) -> Result<M::Output, Error> {
        let mut hooks = Hooks {
            source: &self.credentials,
            on_wait,
            last_reported: None,
        };
        let result = run(machine, &self.transport, &self.clock, cancel, &mut hooks).await;
        self.learn_clock(machine.clock_offset());
        result
    }

    /// Start renewing `held` in the background (it must have been acquired
    /// with a lease). Needs a tokio runtime.
    pub fn keep_alive(self: &Arc<Self>, held: HeldLock) -> Result<Lease, Error>
    where
        T: 'static,
    {
        let terms = held
            .lease
            .ok_or_else(|| Error::config("lease", "the lock was acquired without a lease"))?;
        terms.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Misuse("keep_alive needs a tokio runtime"))?;
        let shared = Arc::new(Mutex::new(held));
        let (lost_tx, lost_rx) = tokio::sync::watch::channel(None);
        let stop = CancellationToken::new();
        let task = runtime.spawn(self.clone().renew_until_stopped(
            shared.clone(),
            lost_tx,
            stop.clone(),
        ));
        Ok(Lease {
            held: shared,
            lost: lost_rx,
            stop,
            task: Some(task),
        })
    }

    /// Acquire with a lease (`opts.lease` must be set) and keep it alive.
    pub async fn acquire_lease(self: &Arc<Self>, opts: AcquireOptions) -> Result<Lease, Error>
    where
        T: 'static,
    {
        self.acquire_lease_with(opts, &CancellationToken::new(), |_| {})
            .await
    }

    /// [`Self::acquire_lease`], cancellable and reporting waits.
    pub async fn acquire_lease_with(
        self: &Arc<Self>,
        opts: AcquireOptions,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&LockHolder),
    ) -> Result<Lease, Error>
    where
        T: 'static,
    {
        let terms = opts
            .lease
            .ok_or_else(|| Error::config("lease", "acquire_lease needs opts.lease"))?;
        terms.validate()?;
        let held = self.acquire_with(opts, cancel, on_wait).await?;
        match self.keep_alive(held.clone()) {
            Ok(lease) => Ok(lease),
            Err(e) => {
                // Never keep a lock we cannot look after.
                let _ = self.release(&held).await;
                Err(e)
            }
        }
    }

    /// Stop renewing and release. Reports [`Error::Lost`] with its reason if
    /// the lock was lost meanwhile (nothing is deleted then).
    pub async fn release_lease(&self, lease: Lease) -> Result<UnlockOutcome, Error> {
        self.release_lease_within(lease, self.release_budget).await
    }

    /// [`Self::release_lease`] with a deadline of the caller's.
    pub async fn release_lease_within(
        &self,
        mut lease: Lease,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        lease.stop_renewing().await;
        match lease.lost() {
            None => self.release_within(&lease.held(), budget).await,
            // Renewals failed (store unreachable?), yet the lock may still be
            // ours: a conditional delete of our last version is safe and
            // frees it now instead of at lease expiry. The loss is reported
            // either way.
            Some(reason @ LostReason::RenewalFailed { .. }) => {
                match self.release_within(&lease.held(), budget).await {
                    Ok(outcome) => log::info!("after a failed renewal, release gave {outcome:?}"),
                    Err(e) => log::warn!("after a failed renewal, release failed too: {e}"),
                }
                Err(Error::Lost { reason })
            }
            // Stolen or gone: nothing of ours is left to delete.
            Some(reason) => Err(Error::Lost { reason }),
        }
    }

    async fn renew_until_stopped(
        self: Arc<Self>,
        shared: Arc<Mutex<HeldLock>>,
        lost: tokio::sync::watch::Sender<Option<LostReason>>,
        stop: CancellationToken,
    ) {
        let current = |shared: &Mutex<HeldLock>| match shared.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        loop {
            let held = current(&shared);
            let Some(terms) = held.lease else { return };
            let wake =
                tokio::time::Instant::from_std(self.clock.instant(terms.renew_at(held.written_at)));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.cancelled() => return,
            }
            let credentials = match self.credentials.resolve().await {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("cannot refresh credentials for renewal: {e}");
                    match held.lease {
                        Some(t) if self.clock.now().monotonic < t.give_up_at(held.written_at) => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            continue;
                        }
                        _ => {
                            let _ = lost.send(Some(LostReason::RenewalFailed {
                                last_error: e.to_string(),
                            }));
                            return;
                        }
                    }
                }
            };
            let mut machine = match Renew::new(
                self.config.clone(),
                credentials,
                &held,
                super::entropy().jitter_seed,
                self.clock_offset(),
                self.clock.now(),
            ) {
                Ok(m) => m,
                Err(e) => {
                    let _ = lost.send(Some(LostReason::RenewalFailed {
                        last_error: e.to_string(),
                    }));
                    return;
                }
            };
            match self.drive(&mut machine, &stop, |_| {}).await {
                Ok(renewed) => match shared.lock() {
                    Ok(mut h) => *h = renewed,
                    Err(p) => *p.into_inner() = renewed,
                },
                Err(Error::Cancelled) => return,
                Err(Error::Lost { reason }) => {
                    let _ = lost.send(Some(reason));
                    return;
                }
                Err(other) => {
                    let _ = lost.send(Some(LostReason::RenewalFailed {
                        last_error: other.to_string(),
                    }));
                    return;
                }
            }
        }
    }
}
