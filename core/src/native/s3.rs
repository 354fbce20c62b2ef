//! The S3 lock on tokio: [`crate::drive::s3::S3Lock`] over [`NativeIo`], with
//! credentials from fixed keys or the AWS chain, and lease renewal on a tokio
//! task.

use std::sync::Arc;
use std::time::Duration;

use super::{default_who, HttpTransport, NativeIo, Transport, TransportOptions};
use crate::drive::s3::{self as drive_s3, Lease, VerifyConditionalWrites, RELEASE_BUDGET};
use crate::drive::{Cancel, Notice};
use crate::error::Error;
use crate::s3::{AcquireOptions, Credentials, HeldLock, LockHolder, S3LockConfig, UnlockOutcome};
#[cfg(feature = "aws-config")]
use crate::secret::Secret;

/// Where credentials come from.
#[derive(Clone, Debug)]
pub enum CredentialSource {
    /// Fixed keys.
    Static(Credentials),
    /// The standard AWS chain (environment, profiles, SSO, web identity,
    /// container and instance metadata), resolved and refreshed by `aws-config`,
    /// or any other `aws-config` provider (a binding's boto3 session).
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
                Error::config(
                    "credentials",
                    format!(
                        "the AWS credential chain is not configured; {}",
                        super::aws_profile::chain_sources(None)
                    ),
                )
            })
    }
}

impl CredentialSource {
    /// The standard AWS chain for `region` (environment, profiles, SSO, web
    /// identity, container and instance metadata), with resolved credentials
    /// kept until five minutes before they expire (15 minutes when they carry
    /// no expiry): they are asked for before every request, and reading
    /// profiles or metadata each time would cost a file read or a request.
    ///
    /// Credentials are fetched on the runtime this is called on (when there
    /// is one), wherever they are asked for: the chain's HTTP connections are
    /// served by tasks of the runtime that opened them, so a caller driving a
    /// runtime of its own only while it waits (a current-thread runtime per
    /// thread) must not leave them to stall in its pool. Call it on a runtime
    /// that keeps running.
    #[cfg(feature = "aws-config")]
    pub async fn from_aws_chain_in(region: &str) -> Self {
        let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
            .region(aws_config::Region::new(region.to_string()))
            .build()
            .await;
        CredentialSource::Chain(
            aws_credential_types::provider::SharedCredentialsProvider::new(Cached::new(chain)),
        )
    }
}

impl CredentialSource {
    /// A binding's own provider (a boto3 session, an AWS SDK v3 provider
    /// function), asked again only shortly before its credentials expire, as
    /// the AWS chain is (see [`CredentialSource::from_aws_chain_in`]).
    #[cfg(feature = "aws-config")]
    pub fn cached_provider(
        provider: impl aws_credential_types::provider::ProvideCredentials + 'static,
    ) -> Self {
        CredentialSource::Chain(
            aws_credential_types::provider::SharedCredentialsProvider::new(Cached::new(provider)),
        )
    }
}

/// A credentials provider whose answers are kept until shortly before they
/// expire, fetched on the runtime it was made on.
#[cfg(feature = "aws-config")]
struct Cached<P> {
    inner: Arc<P>,
    /// Where fetches run (see [`CredentialSource::from_aws_chain_in`]).
    home: Option<tokio::runtime::Handle>,
    cached: tokio::sync::Mutex<Option<(aws_credential_types::Credentials, std::time::SystemTime)>>,
}

#[cfg(feature = "aws-config")]
impl<P> Cached<P> {
    fn new(inner: P) -> Self {
        Cached {
            inner: Arc::new(inner),
            home: tokio::runtime::Handle::try_current().ok(),
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

#[cfg(feature = "aws-config")]
impl<P> std::fmt::Debug for Cached<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachedCredentials")
    }
}

#[cfg(feature = "aws-config")]
impl<P: aws_credential_types::provider::ProvideCredentials + 'static>
    aws_credential_types::provider::ProvideCredentials for Cached<P>
{
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let now = std::time::SystemTime::now();
            let mut slot = self.cached.lock().await;
            if let Some((c, until)) = slot.as_ref() {
                if now < *until {
                    return Ok(c.clone());
                }
            }
            let c = match &self.home {
                Some(home) => {
                    let inner = self.inner.clone();
                    home.spawn(async move { inner.provide_credentials().await })
                        .await
                        .map_err(|e| {
                            aws_credential_types::provider::error::CredentialsError::unhandled(
                                format!("the credentials task failed: {e}"),
                            )
                        })??
                }
                None => self.inner.provide_credentials().await?,
            };
            let until = match c.expiry() {
                Some(exp) => exp
                    .checked_sub(crate::settings::CREDENTIALS_REFRESH_BEFORE_EXPIRY)
                    .unwrap_or(now),
                None => now + crate::settings::CREDENTIALS_KEPT_WITHOUT_EXPIRY,
            };
            *slot = Some((c.clone(), until));
            Ok(c)
        })
    }
}

#[cfg(all(test, feature = "aws-config"))]
mod tests {
    use super::*;
    use aws_credential_types::provider::{future, ProvideCredentials};
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: AtomicU32,
        expiry: Option<std::time::SystemTime>,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.calls.fetch_add(1, Ordering::SeqCst);
            future::ProvideCredentials::ready(Ok(aws_credential_types::Credentials::new(
                "AKID",
                "secret",
                None,
                self.expiry,
                "test",
            )))
        }
    }

    fn calls_after_two_asks(expiry: Option<std::time::SystemTime>) -> u32 {
        let cached = Cached::new(Counting {
            calls: AtomicU32::new(0),
            expiry,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            cached.provide_credentials().await.unwrap();
            cached.provide_credentials().await.unwrap();
        });
        cached.inner.calls.load(Ordering::SeqCst)
    }

    /// Answers with the name of the thread it was asked on.
    #[derive(Debug)]
    struct WhereAsked;

    impl ProvideCredentials for WhereAsked {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            future::ProvideCredentials::ready(Ok(aws_credential_types::Credentials::new(
                thread, "secret", None, None, "test",
            )))
        }
    }

    #[test]
    fn chain_credentials_are_fetched_on_the_runtime_that_made_the_chain() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("home-runtime")
            .build()
            .unwrap();
        let cached = home.block_on(async { Cached::new(WhereAsked) });
        // Asked from another thread's own runtime, as a caller driving its
        // requests itself does.
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let c = caller.block_on(cached.provide_credentials()).unwrap();
        assert_eq!(c.access_key_id(), "home-runtime");
    }

    #[test]
    fn chain_credentials_are_kept_until_shortly_before_they_expire() {
        let now = std::time::SystemTime::now();
        assert_eq!(calls_after_two_asks(None), 1, "no expiry: kept");
        assert_eq!(
            calls_after_two_asks(Some(now + Duration::from_secs(3600))),
            1,
            "an hour left: kept"
        );
        assert_eq!(
            calls_after_two_asks(Some(now + Duration::from_secs(60))),
            2,
            "about to expire: asked again"
        );
    }
}

impl drive_s3::CredentialSource for CredentialSource {
    async fn credentials(&self) -> Result<Credentials, Error> {
        match self {
            CredentialSource::Static(c) => Ok(c.clone()),
            #[cfg(feature = "aws-config")]
            CredentialSource::Chain(p) => {
                use aws_credential_types::provider::ProvideCredentials as _;
                let c = p.provide_credentials().await.map_err(|e| {
                    Error::config(
                        "credentials",
                        format!(
                            "the AWS credential chain found no usable credentials ({}); {}",
                            error_chain(&e),
                            super::aws_profile::chain_sources(None)
                        ),
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

#[cfg(feature = "aws-config")]
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

type Core<T> = drive_s3::S3Lock<NativeIo<T>, CredentialSource>;

/// An S3 lock file (Terraform-compatible) on tokio, over `T` (reqwest by
/// default).
#[derive(Debug)]
pub struct S3Lock<T: HttpTransport = Transport> {
    core: Arc<Core<T>>,
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
            core: Arc::new(drive_s3::S3Lock::new(
                config,
                credentials,
                NativeIo::new(transport),
                default_who(),
            )),
        }
    }

    /// Choose when the store's conditional-write support is proved.
    pub fn verify_conditional_writes(self, verify: VerifyConditionalWrites) -> Self {
        self.set_verify_conditional_writes(verify);
        self
    }

    /// Change when the store's conditional-write support is proved.
    pub fn set_verify_conditional_writes(&self, verify: VerifyConditionalWrites) {
        self.core.set_verify_conditional_writes(verify)
    }

    /// The runtime-neutral lock inside.
    pub fn core(&self) -> &Arc<Core<T>> {
        &self.core
    }

    /// The lock target.
    pub fn config(&self) -> &S3LockConfig {
        self.core.config()
    }

    /// The transport (for its request counter).
    pub fn transport(&self) -> &T {
        self.core.io().transport()
    }

    /// Default acquire options for this lock (`Who` = user@hostname).
    pub fn options(&self) -> AcquireOptions {
        self.core.options()
    }

    /// Acquire the lock as `opts` says (wait forever by default).
    pub async fn acquire(&self, opts: AcquireOptions) -> Result<HeldLock, Error> {
        self.acquire_with(opts, &Cancel::new(), |_| {}).await
    }

    /// Acquire once, without waiting for a holder.
    pub async fn try_acquire(&self, mut opts: AcquireOptions) -> Result<HeldLock, Error> {
        opts.wait = crate::Wait::No;
        self.acquire(opts).await
    }

    /// Acquire, cancellable through `cancel`, with progress (waiting for a
    /// holder, retries) to `on_notice`.
    pub async fn acquire_with(
        &self,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<HeldLock, Error> {
        self.core.acquire(opts, cancel, on_notice).await
    }

    /// Release a lock we hold: one `DELETE If-Match` (and, with a DynamoDB
    /// table, one `DeleteItem` conditioned on our `Info`), retried on
    /// transient failures for up to 30 s.
    pub async fn release(&self, lock: &HeldLock) -> Result<UnlockOutcome, Error> {
        self.release_within(lock, RELEASE_BUDGET).await
    }

    /// [`Self::release`] with a deadline of the caller's: on exit paths
    /// (cancellation, Ctrl-C) a fresh short deadline keeps shutdown prompt.
    pub async fn release_within(
        &self,
        lock: &HeldLock,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        self.core.release(lock, budget).await
    }

    /// Delete the lock whose ID is `lock_id`, as `terraform force-unlock` does:
    /// only if the current lock carries that ID, conditioned on its ETag (the
    /// DynamoDB item: on the `Info` read).
    pub async fn force_unlock(&self, lock_id: &str) -> Result<UnlockOutcome, Error> {
        self.core.force_unlock(lock_id).await
    }

    /// Who holds the lock now, without taking it (`None`: free); with a
    /// DynamoDB table, a holder of the file or of the item.
    pub async fn status(&self) -> Result<Option<LockHolder>, Error> {
        self.core.status(&Cancel::new()).await
    }

    /// Start renewing `held` on a tokio task (it must have been acquired
    /// with a lease). Needs a tokio runtime.
    pub fn keep_alive(&self, held: HeldLock) -> Result<Lease, Error>
    where
        T: 'static,
    {
        self.keep_alive_with(held, |_| {})
    }

    /// [`Self::keep_alive`], with the loss notice to `on_notice` (called on
    /// the renewal task).
    pub fn keep_alive_with(
        &self,
        held: HeldLock,
        on_notice: impl FnMut(Notice) + Send + 'static,
    ) -> Result<Lease, Error>
    where
        T: 'static,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Misuse("keep_alive needs a tokio runtime"))?;
        let (lease, renewal) = self.core.keep_alive(held, on_notice)?;
        runtime.spawn(renewal.run());
        Ok(lease)
    }

    /// Acquire with a lease (`opts.lease` must be set) and keep it alive.
    pub async fn acquire_lease(&self, opts: AcquireOptions) -> Result<Lease, Error>
    where
        T: 'static,
    {
        self.acquire_lease_with(opts, &Cancel::new(), |_| {}).await
    }

    /// [`Self::acquire_lease`], cancellable, with progress to `on_notice`
    /// (also called from the renewal task when the lock is lost).
    pub async fn acquire_lease_with(
        &self,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice) + Send + 'static,
    ) -> Result<Lease, Error>
    where
        T: 'static,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Misuse("acquire_lease needs a tokio runtime"))?;
        let (lease, renewal) = self.core.acquire_lease(opts, cancel, on_notice).await?;
        runtime.spawn(renewal.run());
        Ok(lease)
    }

    /// Stop renewing and release. Reports [`Error::Lost`] with its reason if
    /// the lock was lost meanwhile.
    pub async fn release_lease(&self, lease: Lease) -> Result<UnlockOutcome, Error> {
        self.release_lease_within(lease, RELEASE_BUDGET).await
    }

    /// [`Self::release_lease`] with a deadline of the caller's.
    pub async fn release_lease_within(
        &self,
        lease: Lease,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        self.core.release_lease(&lease, budget).await
    }
}
