//! Terraform's S3 lock file, sans-IO.
//!
//! - [`config`]: the lock target (bucket, key, workspace, endpoint, encryption...).
//! - [`lockinfo`]: the LockInfo JSON body.
//! - [`request`]: building and signing PUT/GET/DELETE of the lock object.
//! - [`response`]: classifying every response.
//! - [`acquire`], [`unlock`], [`status`]: the operations as state machines.
//! - [`list`]: `ListObjectsV2` of the lock files under a prefix (the "what is
//!   stuck" report).
//! - [`lease`]: opt-in leases: renewal, lost-lock reasons, takeover of expired locks.
//! - [`verdict`]: remembering which stores proved they enforce conditional writes.

pub mod acquire;
pub mod config;
pub mod lease;
pub mod list;
pub mod lockinfo;
pub mod request;
pub mod response;
pub(crate) mod retry;
pub mod status;
mod terms;
pub mod unlock;
pub mod verdict;

#[cfg(test)]
mod classify_tests;
#[cfg(test)]
mod log_capture;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod validation_tests;

pub use acquire::{Acquire, AcquireOptions, Entropy, HeldLock};
pub use config::{Addressing, Credentials, Encryption, S3LockConfig, S3LockConfigBuilder};
pub use lease::{LeaseTerms, LostReason, Renew, Takeover};
pub use lockinfo::{LeaseInfo, LockHolder, LockInfo, LockInfoError};
pub use status::Status;
pub use unlock::{Unlock, UnlockOutcome};
pub use verdict::{ConditionalDelete, ConditionalWriteVerdicts};
#[cfg(test)]
mod lease_tests;
