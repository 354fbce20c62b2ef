//! Synchronous wrappers over the async driver, for callers without tokio.
//!
//! Each wrapper owns a small runtime with one worker thread (so that lease
//! renewal keeps running between calls) and blocks on it.

use std::sync::Arc;

use crate::drive::{Cancel, Notice};
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
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<HeldLock, Error> {
        self.runtime
            .block_on(self.inner.acquire_with(opts, cancel, on_notice))
    }

    /// Acquire, returning a guard that releases the lock when dropped.
    pub fn lock(&self, opts: AcquireOptions) -> Result<Guard<'_, Self>, Error> {
        let held = self.acquire_with(opts, &Cancel::new(), |_| {})?;
        Ok(Guard::new(self, held))
    }

    /// Acquire with a lease (`opts.lease` set) renewed in the background.
    pub fn acquire_lease_with(
        &self,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice) + Send + 'static,
    ) -> Result<Lease, Error> {
        self.runtime
            .block_on(self.inner.acquire_lease_with(opts, cancel, on_notice))
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

/// Something that can release what it handed out: the blocking S3 lock and
/// the blocking Apstra mutex. [`Guard`] is generic over it.
pub trait Releaser {
    /// What a successful acquisition hands out.
    type Held: std::fmt::Debug;

    /// Release `held` now.
    fn release_held(&self, held: &Self::Held) -> Result<UnlockOutcome, Error>;

    /// Names `held` in a log line when releasing on drop fails.
    fn describe(&self, held: &Self::Held) -> String;
}

impl Releaser for S3Lock {
    type Held = HeldLock;

    fn release_held(&self, held: &HeldLock) -> Result<UnlockOutcome, Error> {
        self.release(held)
    }

    fn describe(&self, _held: &HeldLock) -> String {
        self.inner.config().lock_key().to_string()
    }
}

/// A held lock or mutex that is released when dropped (errors on drop are
/// logged).
#[derive(Debug)]
pub struct Guard<'a, L: Releaser + std::fmt::Debug> {
    lock: &'a L,
    held: L::Held,
    released: bool,
}

impl<'a, L: Releaser + std::fmt::Debug> Guard<'a, L> {
    pub(crate) fn new(lock: &'a L, held: L::Held) -> Self {
        Guard {
            lock,
            held,
            released: false,
        }
    }

    /// What we hold.
    pub fn held(&self) -> &L::Held {
        &self.held
    }

    /// Release now and report how it went.
    pub fn release(mut self) -> Result<UnlockOutcome, Error> {
        self.released = true;
        self.lock.release_held(&self.held)
    }
}

impl<L: Releaser + std::fmt::Debug> Drop for Guard<'_, L> {
    fn drop(&mut self) {
        if !self.released {
            match self.lock.release_held(&self.held) {
                Ok(UnlockOutcome::Released) => {}
                // Nobody sees the outcome of a release on drop: say it here
                // (the machines leave this warning to their caller).
                Ok(UnlockOutcome::AlreadyGone) => log::warn!(
                    "releasing {} on drop: it was already gone (force-unlocked?)",
                    self.lock.describe(&self.held)
                ),
                Err(e) => log::error!(
                    "releasing {} on drop failed: {e}",
                    self.lock.describe(&self.held)
                ),
            }
        }
    }
}
