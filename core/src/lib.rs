//! condlock: distributed locks on conditional writes, compatible with the locks
//! Terraform already uses.
//!
//! The core is sans-IO: it builds signed requests and interprets responses, and
//! never opens a socket or reads a clock (see [`sansio`]). The `native` feature
//! adds a reqwest/tokio driver that runs the state machines ([`native`]).
//!
//! - [`s3`]: Terraform's S3 lock file (`<state key>.tflock`, `If-None-Match: *`).
//! - [`apstra`]: the Apstra blueprint mutex (a `blueprint <id> locked` design tag),
//!   interoperable with the Apstra Terraform provider.

#![deny(missing_docs)]

pub mod apstra;
pub mod backoff;
pub mod drive;
pub mod dynamodb;
mod endpoint;
pub mod error;
mod failfast;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod progress;
pub mod s3;
pub mod sansio;
pub mod secret;
pub mod settings;
pub mod time;

#[cfg(test)]
mod test_logs;

#[cfg(feature = "native")]
pub mod native;

pub use drive::{drive, Cancel, Io};
pub use error::Error;
pub use progress::Notice;
pub use sansio::{Action, Event, Machine, TransportFailure, Wait};
pub use secret::Secret;
pub use time::Now;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
