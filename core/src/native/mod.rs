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
#[cfg(feature = "aws-config")]
mod aws_profile;
pub mod blocking;
mod s3;
mod tls;
mod transport;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

pub use crate::drive::s3::{Lease, VerifyConditionalWrites};
pub use apstra::{ApstraClient, ApstraMutex};
#[cfg(feature = "aws-config")]
pub use aws_profile::aws_profile_values;
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
///
/// The user is found as Terraform finds it (Go's `os/user.Current`, built
/// without cgo): the account database entry of the real user ID first, then
/// `$USER` (`$USERNAME` on Windows); unknown is an empty name (`@host`), as
/// Terraform writes it.
pub fn default_who() -> String {
    let user = account_name()
        .or_else(|| nonempty_env("USER"))
        .or_else(|| nonempty_env("USERNAME"))
        .unwrap_or_default();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

fn nonempty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The name of the real user ID in `/etc/passwd` (Linux: the ID from
/// `/proc/self/status`, so no C call is needed).
fn account_name() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = real_uid(&status)?;
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

/// The real user ID from the `Uid:` line of `/proc/<pid>/status`.
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The login name of `uid` in a passwd file (`name:x:uid:gid:...`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        let id: u32 = fields.next()?.parse().ok()?;
        (id == uid && !name.is_empty() && !line.starts_with('#')).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_read_from_the_account_database_as_go_does() {
        let status = "Name:\tcat\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\n";
        assert_eq!(real_uid(status), Some(1000));
        let passwd = "root:x:0:0:root:/root:/bin/bash\n#nobody:x:1000\nalice:x:1000:1000::/home/alice:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("alice"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 4242), None);
    }

    #[test]
    fn who_ignores_an_empty_user_variable() {
        // Whatever the environment, the name never comes out empty while
        // the account database knows the user.
        if let Some(name) = account_name() {
            assert!(default_who().starts_with(&format!("{name}@")));
        }
    }
}
