//! The native driver: the core's operations ([`crate::drive`]) on tokio, with
//! reqwest as the HTTP client.
//!
//! - [`NativeIo`]: the [`Io`](crate::drive::Io) of tokio: an
//!   [`HttpTransport`] (reqwest's [`Transport`] by default, or one a binding
//!   brings), tokio's timers, the OS clocks and the OS's randomness.
//! - [`S3Lock`]: the async S3 lock; [`blocking::S3Lock`] for synchronous
//!   callers. Leases are renewed by a tokio task.
//! - [`ApstraMutex`] and [`ApstraClient`]: the Apstra blueprint mutex and its
//!   administration; [`apstra::blocking::ApstraMutex`] for synchronous callers.
//! - [`default_who`], [`process_env`]: what Terraform reads from the OS.

pub mod apstra;
pub mod blocking;
mod s3;
mod tls;
mod transport;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

pub use crate::drive::s3::{Lease, VerifyConditionalWrites};
pub use apstra::{ApstraClient, ApstraMutex};
pub use s3::{CredentialSource, S3Lock};
pub use transport::{HttpTransport, Transport, TransportOptions};

use crate::drive::{Io, TransportFailure};
use crate::sansio::Body;
use crate::time::Now;

/// The driver's clocks: wall time from the OS, monotonic time from an origin.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// The current time for a machine step.
    pub fn now(&self) -> Now {
        Now::new(SystemTime::now(), self.origin.elapsed())
    }

    /// The `Instant` of a monotonic reading.
    pub fn instant(&self, monotonic: Duration) -> Instant {
        self.origin + monotonic
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The core's [`Io`] on tokio over an [`HttpTransport`].
#[derive(Clone, Debug)]
pub struct NativeIo<T = Transport> {
    transport: T,
    clock: Clock,
}

impl<T: HttpTransport> NativeIo<T> {
    /// Requests go through `transport`; time is the OS's.
    pub fn new(transport: T) -> Self {
        NativeIo {
            transport,
            clock: Clock::new(),
        }
    }

    /// The transport (for its request counter).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The clocks.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

// The futures are declared `Send` so that tokio can run the operations on
// any worker: the refinement is the point.
#[allow(refining_impl_trait)]
impl<T: HttpTransport> Io for NativeIo<T> {
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Body>, TransportFailure>> + Send {
        self.transport.send(request)
    }

    fn sleep_until(&self, monotonic: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            self.clock.instant(monotonic),
        ))
    }

    fn now(&self) -> Now {
        self.clock.now()
    }

    fn fill_random(&self, buf: &mut [u8]) {
        // getrandom only fails on platforms without an entropy source; the
        // clock and the process ID still make IDs that do not collide in
        // practice.
        if getrandom::fill(buf).is_err() {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                ^ ((std::process::id() as u128) << 64);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8);
            }
        }
    }
}

/// The process environment, as the core's environment lookup.
pub fn process_env() -> crate::drive::apstra::Env {
    std::sync::Arc::new(|name: &str| std::env::var(name).ok())
}

/// `user@hostname`, as Terraform fills `Who`.
pub fn default_who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}
