//! The native addon of the `condlock` npm package (napi-rs).
//!
//! Glue only: options fill the core's settings, the core's driver
//! ([`condlock::drive`]) runs on napi-rs's tokio runtime (off the JavaScript
//! thread), and the core's errors travel to the hand-written JavaScript layer
//! (`index.js`) with their code, message and structured fields, where they
//! become `LockError` subclasses. Nothing is decided here.

mod apstra;
mod credentials;
mod errors;
mod fetch;
mod s3;
mod values;

pub use apstra::{ApstraClientNative, ApstraMutexNative, HeldMutexNative};
pub use s3::{CancelToken, HeldLockNative, S3LockNative};
