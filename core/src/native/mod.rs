//! The native driver: runs the sans-IO machines over reqwest on tokio.
//!
//! - [`Transport`]: one HTTP client, request counting, body size limits.
//! - [`run`]: the loop that feeds a machine events and carries out its actions,
//!   honouring cancellation without losing a lock.
//! - [`S3Lock`]: the async S3 lock API; [`blocking::S3Lock`] wraps it for
//!   synchronous callers.
//! - [`ApstraMutex`] and [`ApstraClient`]: the Apstra blueprint mutex and its
//!   administration; [`apstra::blocking::ApstraMutex`] for synchronous callers.

pub mod apstra;
pub mod blocking;
mod lease;
mod s3;
mod tls;
mod transport;

use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

pub use apstra::{ApstraClient, ApstraMutex};
pub use lease::Lease;
pub use s3::{CredentialSource, S3Lock, VerifyConditionalWrites};
pub use transport::{HttpTransport, Transport, TransportOptions};

use crate::error::Error;
use crate::sansio::{Action, Event, Machine};
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

/// Hooks a caller can attach to a run.
#[allow(async_fn_in_trait)] // only used generically, never as `dyn`
pub trait RunHooks<M: Machine> {
    /// Called before each sleep, with the machine (to ask why it sleeps).
    fn before_sleep(&mut self, _machine: &M, _until: Duration) {}
    /// Called before each request is sent (e.g. to refresh credentials).
    async fn before_send(&mut self, _machine: &mut M) {}
}

/// No hooks.
pub struct NoHooks;
impl<M: Machine> RunHooks<M> for NoHooks {}

/// Drive `machine` to completion over `transport`.
///
/// Cancellation is checked while sleeping and before each send; an in-flight
/// request is allowed to finish (bounded by the transport timeout) so its
/// outcome is known. After cancellation the machine's cleanup actions are still
/// carried out; they are short and bounded by the machine's own deadline.
pub async fn run<M: Machine, T: HttpTransport>(
    machine: &mut M,
    transport: &T,
    clock: &Clock,
    cancel: &CancellationToken,
    hooks: &mut impl RunHooks<M>,
) -> Result<M::Output, Error> {
    let mut event = Event::Start;
    let mut cancel_delivered = false;
    loop {
        let action = machine.step(event, clock.now());
        event = match action {
            Action::Done(result) => return result,
            Action::Send(_) if cancel.is_cancelled() && !cancel_delivered => {
                cancel_delivered = true;
                Event::Cancelled
            }
            Action::Send(req) => {
                hooks.before_send(machine).await;
                match transport.send(req).await {
                    Ok(resp) => Event::Response(resp),
                    Err(e) => Event::TransportFailed(e),
                }
            }
            Action::SleepUntil(until) => {
                hooks.before_sleep(machine, until);
                let deadline = tokio::time::Instant::from_std(clock.instant(until));
                if cancel_delivered {
                    tokio::time::sleep_until(deadline).await;
                    Event::TimerFired
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => Event::TimerFired,
                        _ = cancel.cancelled() => { cancel_delivered = true; Event::Cancelled }
                    }
                }
            }
        };
    }
}

/// `user@hostname`, as Terraform fills `Who`.
pub fn default_who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// Fresh randomness for a lock ID and jitter.
pub fn entropy() -> crate::s3::Entropy {
    let mut bytes = [0u8; 24];
    // getrandom only fails on platforms without an entropy source; a lock ID
    // from the clock is still unique enough to not collide in practice.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        bytes[16..].copy_from_slice(&(std::process::id() as u64).to_le_bytes());
    }
    let mut lock_id = [0u8; 16];
    lock_id.copy_from_slice(&bytes[..16]);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&bytes[16..]);
    crate::s3::Entropy {
        lock_id,
        jitter_seed: u64::from_le_bytes(seed),
    }
}
