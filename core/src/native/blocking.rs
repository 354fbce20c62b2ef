//! Synchronous wrappers over the async driver, for callers without tokio.
//!
//! Each wrapper owns a small runtime with one worker thread (so that lease
//! renewal keeps running between calls) and blocks on it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::s3::{AcquireOptions, HeldLock, LockHolder, S3LockConfig, UnlockOutcome};

use super::{CredentialSource, Lease, TransportOptions, VerifyConditionalWrites};

/// Blocking form of [`super::S3Lock`].
#[derive(Debug)]
pub struct S3Lock {
    inner: Arc<super::S3Lock>,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl S3Lock {
    /// A blocking lock with default transport settings.
    pub fn new(config: S3LockConfig, credentials: CredentialSource) -> Result<Self, Error> {
        Self::with_transport(config, credentials, &TransportOptions::default())
    }

    /// A blocking lock with custom transport settings.
    pub fn with_transport(
        config: S3LockConfig,
        credentials: CredentialSource,
        transport: &TransportOptions,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("condlock-io")
            .enable_all()
            .build()
            .map_err(|e| Error::config("runtime", format!("cannot start the I/O runtime: {e}")))?;
        // reqwest's client must be created inside a runtime context.
        let inner = {
            let _guard = runtime.enter();
            super::S3Lock::with_transport(config, credentials, transport)?
        };
        Ok(S3Lock {
            inner: Arc::new(inner),
            runtime: Arc::new(runtime),
        })
    }

    /// Choose when the store's conditional-write support is proved.
    pub fn verify_conditional_writes(self, verify: VerifyConditionalWrites) -> Self {
        self.inner.set_verify_conditional_writes(verify);
        self
    }

    /// The async lock inside.
    pub fn inner(&self) -> &super::S3Lock {
        &self.inner
    }

    /// Default acquire options.
    pub fn options(&self) -> AcquireOptions {
        self.inner.options()
    }

    /// Acquire (see [`super::S3Lock::acquire_with`]).
    pub fn acquire_with(
        &self,
        opts: AcquireOptions,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&LockHolder),
    ) -> Result<HeldLock, Error> {
        self.runtime
            .block_on(self.inner.acquire_with(opts, cancel, on_wait))
    }

    /// Acquire, returning a guard that releases the lock when dropped.
    pub fn lock(&self, opts: AcquireOptions) -> Result<Guard<'_>, Error> {
        let held = self.acquire_with(opts, &CancellationToken::new(), |_| {})?;
        Ok(Guard {
            lock: self,
            held,
            released: false,
        })
    }

    /// Acquire with a lease (`opts.lease` set) renewed in the background.
    pub fn acquire_lease_with(
        &self,
        opts: AcquireOptions,
        cancel: &CancellationToken,
        on_wait: impl FnMut(&LockHolder),
    ) -> Result<Lease, Error> {
        self.runtime
            .block_on(self.inner.acquire_lease_with(opts, cancel, on_wait))
    }

    /// Stop renewing and release; [`Error::Lost`] if the lock was lost.
    pub fn release_lease(&self, lease: Lease) -> Result<UnlockOutcome, Error> {
        self.runtime.block_on(self.inner.release_lease(lease))
    }

    /// Release a lock we hold.
    pub fn release(&self, lock: &HeldLock) -> Result<UnlockOutcome, Error> {
        self.runtime.block_on(self.inner.release(lock))
    }

    /// Force-unlock by lock ID.
    pub fn force_unlock(&self, lock_id: &str) -> Result<UnlockOutcome, Error> {
        self.runtime.block_on(self.inner.force_unlock(lock_id))
    }

    /// Read the current holder.
    pub fn status(&self) -> Result<Option<LockHolder>, Error> {
        self.runtime.block_on(self.inner.status())
    }
}

/// A held lock that is released when dropped (errors on drop are logged).
#[derive(Debug)]
pub struct Guard<'a> {
    lock: &'a S3Lock,
    held: HeldLock,
    released: bool,
}

impl Guard<'_> {
    /// The lock we hold.
    pub fn held(&self) -> &HeldLock {
        &self.held
    }

    /// Release now and report how it went.
    pub fn release(mut self) -> Result<UnlockOutcome, Error> {
        self.released = true;
        self.lock.release(&self.held)
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.released {
            if let Err(e) = self.lock.release(&self.held) {
                log::error!(
                    "releasing {} on drop failed: {e}",
                    self.lock.inner.config().lock_key()
                );
            }
        }
    }
}
