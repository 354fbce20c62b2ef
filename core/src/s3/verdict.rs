//! Which stores proved that they enforce `If-None-Match`.
//!
//! Proving it costs one request (see [`super::acquire`]), so a process proves it
//! once per endpoint and bucket and remembers the verdict here. A store that
//! failed the proof is never remembered as good: every acquire against it
//! proves it again and fails again.

use std::collections::HashSet;
use std::sync::Mutex;

use super::config::S3LockConfig;

/// A process-wide (or driver-wide) memory of verified stores.
#[derive(Debug, Default)]
pub struct ConditionalWriteVerdicts {
    verified: Mutex<HashSet<(String, String)>>,
}

impl ConditionalWriteVerdicts {
    /// An empty memory.
    pub fn new() -> Self {
        ConditionalWriteVerdicts {
            verified: Mutex::new(HashSet::new()),
        }
    }

    fn key(config: &S3LockConfig) -> (String, String) {
        (config.endpoint_display(), config.bucket().to_string())
    }

    /// True when the store of `config` already proved itself in this process.
    pub fn is_verified(&self, config: &S3LockConfig) -> bool {
        self.verified
            .lock()
            .map(|set| set.contains(&Self::key(config)))
            .unwrap_or(false)
    }

    /// Remember that the store of `config` enforces conditional writes.
    pub fn mark_verified(&self, config: &S3LockConfig) {
        if let Ok(mut set) = self.verified.lock() {
            set.insert(Self::key(config));
        }
    }
}
