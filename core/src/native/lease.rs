//! Background renewal of a lock held with a lease.
//!
//! [`Lease`] owns a tokio task that renews the lock at the cadence of its
//! [`LeaseTerms`](crate::s3::LeaseTerms) and publishes a [`LostReason`] the
//! moment the lock is known lost. Release stops the task first and waits for
//! an in-flight renewal to finish, so it deletes the latest version. Renewals
//! are `PUT If-Match`, which can never create a lock: a renewal that completes
//! after release cannot bring the lock back.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::s3::{HeldLock, LostReason};

/// A lock held with a lease and kept alive in the background.
///
/// Dropping a `Lease` without releasing it stops renewing: the lock then
/// expires after its lease and can be taken over.
#[derive(Debug)]
pub struct Lease {
    pub(super) held: Arc<Mutex<HeldLock>>,
    pub(super) lost: watch::Receiver<Option<LostReason>>,
    pub(super) stop: CancellationToken,
    pub(super) task: Option<JoinHandle<()>>,
}

impl Lease {
    /// The lock as currently held (its ETag changes with each renewal).
    pub fn held(&self) -> HeldLock {
        match self.held.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fencing token: (generation, current ETag). See [`crate::s3::lease`] for
    /// what it does and does not guarantee.
    pub fn fencing_token(&self) -> (u64, String) {
        let h = self.held();
        (h.generation(), h.etag)
    }

    /// Why the lock was lost, if it was (non-blocking).
    pub fn lost(&self) -> Option<LostReason> {
        self.lost.borrow().clone()
    }

    /// Wait until the lock is lost. Never returns while the lease is healthy.
    pub async fn wait_lost(&self) -> LostReason {
        let mut rx = self.lost.clone();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The renewal task ended without a loss (stopped): wait forever,
                // as the caller asked to be told about a loss only.
                std::future::pending::<()>().await;
            }
        }
    }

    /// A receiver that changes to `Some(reason)` when the lock is lost.
    pub fn subscribe(&self) -> watch::Receiver<Option<LostReason>> {
        self.lost.clone()
    }

    /// Stop renewing and wait for an in-flight renewal to finish.
    pub(super) async fn stop_renewing(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
