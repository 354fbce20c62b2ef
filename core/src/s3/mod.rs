//! Terraform's S3 lock file, sans-IO.
//!
//! - [`config`]: the lock target (bucket, key, workspace, endpoint, encryption...).
//! - [`lockinfo`]: the LockInfo JSON body.
//! - [`request`]: building and signing PUT/GET/DELETE of the lock object.
//! - [`response`]: classifying every response.
//! - [`acquire`], [`unlock`], [`status`]: the operations as state machines.
//! - [`verdict`]: remembering which stores proved they enforce conditional writes.

pub mod acquire;
pub mod config;
pub mod lockinfo;
pub mod request;
pub mod response;
mod retry;
pub mod status;
pub mod unlock;
pub mod verdict;

pub use acquire::{Acquire, AcquireOptions, Entropy, HeldLock};
pub use config::{Addressing, Credentials, Encryption, S3LockConfig, S3LockConfigBuilder};
pub use lockinfo::{LockHolder, LockInfo, LockInfoError};
pub use status::Status;
pub use unlock::{Unlock, UnlockOutcome};
pub use verdict::ConditionalWriteVerdicts;
