//! The Apstra blueprint mutex, sans-IO.
//!
//! A blueprint is locked when a tag labelled `blueprint <ID> locked` exists in
//! Apstra's global design catalog (`/api/design/tags`): the convention of the
//! Apstra Go SDK and Terraform provider, so condlock and `terraform apply`
//! exclude each other. The tag's description is the holder's message; condlock
//! appends a short holder token so it recognises its own tag after a lost
//! response and so administrators can tell its tags apart.
//!
//! - [`config`]: the server (URL, credentials, TLS, timeout), the blueprint ID,
//!   and the message expansion (`$VAR`, `${VAR}`, `$DATE`).
//! - [`tag`]: labels, the holder token, reading tags back.
//! - [`request`], [`response`]: the REST calls and the response classifier.
//! - [`login`]: the [`Session`] carried between operations (login, re-login
//!   on 401, `/api/aaa/login` with a fallback to `/api/user/login`).
//! - [`acquire`], [`release`], [`admin`]: the operations as state machines
//!   ([`crate::Machine`]): they emit requests and sleeps, take responses and
//!   the time, and never do I/O or read a clock.
//!
//! What the mutex does and does not guarantee: mutual exclusion rests on the
//! server refusing a second tag with the same label (422). There is no lease:
//! a holder that dies leaves its tag behind until someone releases it by hand
//! ([`ForceUnlock`]); [`admin::stale`] reports old tags so a human can decide.

pub mod acquire;
pub mod admin;
pub mod config;
pub mod login;
pub mod release;
pub mod request;
pub mod response;
mod script;
pub mod tag;

#[cfg(test)]
mod machine_tests;

pub use acquire::{Acquire, AcquireOptions, Blocker, HeldMutex, LockStatus};
pub use admin::{stale, ForceUnlock, ForceUnlocked, ListMutexes};
pub use config::{
    expand_message, format_go_time_utc, ApstraServer, ApstraServerBuilder, BlueprintId,
    DEFAULT_MESSAGE,
};
pub use login::Session;
pub use release::Release;
pub use request::LoginPath;
pub use tag::{HolderToken, MutexTag};

/// How a release ended when it did not fail (shared with the S3 lock).
pub use crate::s3::UnlockOutcome;
