//! What each store proved about conditional requests.
//!
//! Proving it costs requests (see [`super::acquire`]), so a process proves it
//! once per endpoint and bucket and remembers the verdict here:
//! - whether `PUT If-None-Match: *` is enforced (a second create got 412);
//! - whether `DELETE If-Match` is enforced ([`ConditionalDelete::Proven`]:
//!   a DELETE naming a wrong ETag got 412), or not
//!   ([`ConditionalDelete::Unsupported`]: the store deleted anyway, as Ceph
//!   radosgw does, or refused the header with 501). Releases then use
//!   Terraform's GET-compare-DELETE instead of trusting `If-Match`.
//!
//! A store that failed the PUT proof is never remembered as good: every
//! acquire against it proves it again and fails again.
//!
//! It also remembers which warnings were already logged for a store, so a
//! process says once, not on every acquire or release, that it trusts a store
//! without proof or falls back to GET-compare-DELETE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::S3LockConfig;

/// What a store does with `DELETE If-Match: <etag>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConditionalDelete {
    /// Not proven yet: releases send `DELETE If-Match` and trust it.
    #[default]
    Unknown,
    /// A DELETE naming a wrong ETag got 412: releases are conditional.
    Proven,
    /// The store ignores `If-Match` on DELETE (it deleted our lock although
    /// the ETag did not match) or refuses it (501): releases read the lock,
    /// compare its ID, then delete unconditionally, as Terraform does.
    Unsupported,
}

#[derive(Clone, Copy, Debug, Default)]
struct StoreVerdict {
    put_proven: bool,
    delete: ConditionalDelete,
    warned_unproven: bool,
    warned_delete_fallback: bool,
}

/// A process-wide (or driver-wide) memory of what stores proved, keyed by
/// endpoint and bucket. Clones share the same memory, so a driver can hand a
/// clone to each state machine it runs.
#[derive(Clone, Debug, Default)]
pub struct ConditionalWriteVerdicts {
    stores: Arc<Mutex<HashMap<(String, String), StoreVerdict>>>,
}

impl ConditionalWriteVerdicts {
    /// An empty memory.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(config: &S3LockConfig) -> (String, String) {
        (config.endpoint_display(), config.bucket().to_string())
    }

    fn read(&self, config: &S3LockConfig) -> StoreVerdict {
        match self.stores.lock() {
            Ok(map) => map.get(&Self::key(config)).copied().unwrap_or_default(),
            Err(p) => p
                .into_inner()
                .get(&Self::key(config))
                .copied()
                .unwrap_or_default(),
        }
    }

    /// Change the verdict of `config`'s store; returns what `change` returns.
    fn update<R>(&self, config: &S3LockConfig, change: impl FnOnce(&mut StoreVerdict) -> R) -> R {
        let mut map = match self.stores.lock() {
            Ok(map) => map,
            // A panic elsewhere while holding the lock cannot leave a verdict
            // half-written (every change is a field assignment): keep going.
            Err(p) => p.into_inner(),
        };
        change(map.entry(Self::key(config)).or_default())
    }

    /// True when the store of `config` completed the proof in this process:
    /// `If-None-Match` enforced, and the fate of `DELETE If-Match` known
    /// (proven or unsupported). Drivers skip the proof for such stores.
    pub fn is_verified(&self, config: &S3LockConfig) -> bool {
        let v = self.read(config);
        v.put_proven && v.delete != ConditionalDelete::Unknown
    }

    /// True when the store of `config` proved that it enforces
    /// `If-None-Match` (whatever it does with conditional DELETE).
    pub fn is_put_proven(&self, config: &S3LockConfig) -> bool {
        self.read(config).put_proven
    }

    /// Remember that the store of `config` enforces `If-None-Match`. The
    /// conditional-DELETE half of the proof is recorded by the acquire
    /// machine itself (see [`super::Acquire::with_verdicts`]).
    pub fn mark_verified(&self, config: &S3LockConfig) {
        self.update(config, |v| v.put_proven = true);
    }

    /// What the store of `config` is known to do with `DELETE If-Match`.
    pub fn conditional_delete(&self, config: &S3LockConfig) -> ConditionalDelete {
        self.read(config).delete
    }

    /// Remember what the store of `config` does with `DELETE If-Match`.
    /// `Unsupported` is never overturned: a store seen deleting despite a
    /// wrong ETag is not trusted again in this process.
    pub fn record_conditional_delete(&self, config: &S3LockConfig, verdict: ConditionalDelete) {
        self.update(config, |v| {
            if v.delete != ConditionalDelete::Unsupported {
                v.delete = verdict;
            }
        });
    }

    /// Called when an acquire trusts the store of `config` without proving
    /// it (`VerifyConditionalWrites::TrustWithoutProof`): logs a WARNING the
    /// first time per store, unless the store proved itself earlier. Returns
    /// true when it logged.
    pub fn warn_trusted_without_proof(&self, config: &S3LockConfig) -> bool {
        let first = self.update(config, |v| {
            let first = !v.put_proven && !v.warned_unproven;
            v.warned_unproven |= first;
            first
        });
        if first {
            log::warn!(
                "trusting {} (bucket {}) to enforce If-None-Match without proof: if it ignores \
                 conditional writes, two holders can hold {} at once and nothing will say so",
                config.endpoint_display(),
                config.bucket(),
                config.lock_key()
            );
        }
        first
    }

    /// Called each time a release (or cleanup) of a lock on `config`'s store
    /// falls back to GET-compare-DELETE: a WARNING the first time per store,
    /// DEBUG afterwards. Returns true when it logged the warning.
    pub fn warn_delete_fallback(&self, config: &S3LockConfig) -> bool {
        let first = self.update(config, |v| {
            let first = !v.warned_delete_fallback;
            v.warned_delete_fallback = true;
            first
        });
        log_delete_fallback(config, first);
        first
    }
}

/// The GET-compare-DELETE fallback, at WARNING when `loud`, else DEBUG.
pub(crate) fn log_delete_fallback(config: &S3LockConfig, loud: bool) {
    let level = if loud {
        log::Level::Warn
    } else {
        log::Level::Debug
    };
    log::log!(
        level,
        "{} (bucket {}) does not enforce DELETE If-Match; removing {} by GET-compare-DELETE, as \
         Terraform does (a release racing a takeover could delete the new holder's lock)",
        config.endpoint_display(),
        config.bucket(),
        config.lock_key()
    );
}
