//! One drive loop for every runtime.
//!
//! The machines ([`crate::Machine`]) decide everything; something still has to
//! send their requests, sleep their sleeps and read the clocks. That is the
//! [`Io`] trait: four small capabilities a runtime provides. [`drive`] runs
//! any machine to completion over an `Io`, honouring a [`Cancel`] and handing
//! every [`Notice`] to the caller.
//!
//! - tokio + reqwest: [`crate::native`] (also what the Python and Node
//!   bindings use);
//! - a browser: `fetch`, `setTimeout`, `performance.now()`, `Date.now()` and
//!   `crypto.getRandomValues` (the wasm binding);
//! - tests: a virtual clock and scripted replies.
//!
//! The futures of an `Io` need not be `Send` (a browser's are not); a runtime
//! whose futures are `Send` gets `Send` operations, because every future here
//! is generic over the concrete `Io`.
//!
//! On top of the loop sit the operations bindings call, for each lock kind:
//! [`s3::S3Lock`] (the lock file, Terraform's DynamoDB item, or both) and
//! [`apstra::ApstraClient`]: credentials refreshed before
//! each request, the once-per-store proof remembered, locks acquired just as
//! the caller cancelled given back, leases renewed on their schedule and cut
//! off at their give-up instant whatever the network does.

pub mod apstra;
mod latch;
pub mod s3;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

pub use latch::{Cancel, Latch, LatchWait};

use crate::error::Error;
pub use crate::progress::{Holder, Notice};
pub use crate::sansio::TransportFailure;
use crate::sansio::{Action, Body, Event, Machine};
use crate::time::Now;

/// What a runtime provides to run the machines.
///
/// Implementations: [`crate::native::NativeIo`] (tokio + reqwest, or any
/// [`crate::native::HttpTransport`]), the wasm binding's `fetch` I/O, and the
/// virtual clocks of tests.
pub trait Io {
    /// Send one request and return the whole response (bodies are capped at
    /// [`MAX_RESPONSE_BODY`]: a longer one is cut, and then fails to parse
    /// with a clear error).
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Body>, TransportFailure>>;

    /// Resolve once the monotonic clock ([`Io::now`]) reads `monotonic`.
    fn sleep_until(&self, monotonic: Duration) -> impl Future<Output = ()>;

    /// Both clocks: wall time for signatures and lock bodies, monotonic time
    /// for every wait and deadline.
    fn now(&self) -> Now;

    /// Fill `buf` with unpredictable bytes (lock IDs, jitter seeds, Apstra
    /// holder tokens).
    fn fill_random(&self, buf: &mut [u8]);
}

/// Responses larger than this are cut: a misbehaving server must not make a
/// client buffer gigabytes. Generous, because an Apstra tag list holds the
/// whole design catalog. One value for every transport.
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// How long a release may keep retrying transient failures (S3 lock file and
/// Apstra mutex alike).
pub const RELEASE_BUDGET: Duration = Duration::from_secs(30);

/// Lock a mutex whose critical sections are plain assignments or clones: a
/// panic elsewhere cannot have left the value half-written, so a poisoned
/// lock is used as it is.
pub(crate) fn locked<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a caller can attach to one run of a machine.
pub trait Hooks<M: Machine> {
    /// Called before each request is sent (e.g. to refresh credentials).
    fn before_send(&mut self, machine: &mut M) -> impl Future<Output = ()> {
        let _ = machine;
        async {}
    }

    /// A notice from the machine or the driver.
    fn notice(&mut self, notice: Notice) {
        let _ = notice;
    }
}

/// No hooks: notices are dropped (they are also in the `log` records).
pub struct NoHooks;
impl<M: Machine> Hooks<M> for NoHooks {}

/// Hooks that only pass notices to a function.
pub struct OnNotice<F>(pub F);
impl<M: Machine, F: FnMut(Notice)> Hooks<M> for OnNotice<F> {
    fn notice(&mut self, notice: Notice) {
        (self.0)(notice)
    }
}

/// Run `machine` to completion over `io`.
///
/// - Cancellation is looked at while sleeping and before each request; the
///   machine then gets [`Event::Cancelled`] once, and its cleanup requests
///   (removing a lock it may have written) are still carried out under their
///   own short deadline.
/// - A request in flight is allowed to finish so that its outcome is known,
///   except past the machine's [`Machine::abandon_request_at`] instant (a
///   lease renewal at its give-up time): then it is abandoned and reported
///   as a failure that may have reached the server.
/// - After each step the machine's notices go to `hooks`.
pub async fn drive<M: Machine, I: Io + ?Sized>(
    machine: &mut M,
    io: &I,
    cancel: &Cancel,
    hooks: &mut impl Hooks<M>,
) -> Result<M::Output, Error> {
    let mut event = Event::Start;
    let mut cancel_delivered = false;
    loop {
        let action = machine.step(event, io.now());
        while let Some(notice) = machine.poll_notice() {
            hooks.notice(notice);
        }
        event = match action {
            Action::Done(result) => return result,
            Action::Send(_) if cancel.is_cancelled() && !cancel_delivered => {
                cancel_delivered = true;
                Event::Cancelled
            }
            Action::Send(request) => {
                hooks.before_send(machine).await;
                let abandon_at = machine.abandon_request_at();
                let outcome = match abandon_at {
                    None => Some(io.send(request).await),
                    Some(at) => match race(io.send(request), io.sleep_until(at)).await {
                        Either::Left(outcome) => Some(outcome),
                        Either::Right(()) => None,
                    },
                };
                match outcome {
                    Some(Ok(response)) => Event::Response(response),
                    Some(Err(failure)) => Event::TransportFailed(failure),
                    None => Event::TransportFailed(TransportFailure::maybe_sent(
                        "no answer by the time the operation had to give up; the request \
                         was abandoned",
                    )),
                }
            }
            Action::SleepUntil(until) => {
                if cancel_delivered {
                    io.sleep_until(until).await;
                    Event::TimerFired
                } else {
                    match race(io.sleep_until(until), cancel.cancelled()).await {
                        Either::Left(()) => Event::TimerFired,
                        Either::Right(()) => {
                            cancel_delivered = true;
                            Event::Cancelled
                        }
                    }
                }
            }
        };
    }
}

/// Which of two futures finished first.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Poll both futures; the first to finish wins and the other is dropped.
/// `a` is polled first, so it wins a tie.
pub(crate) async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}

/// Fresh randomness for a lock ID and backoff jitter, from the runtime.
pub fn entropy<I: Io + ?Sized>(io: &I) -> crate::s3::Entropy {
    let mut bytes = [0u8; 24];
    io.fill_random(&mut bytes);
    let mut lock_id = [0u8; 16];
    lock_id.copy_from_slice(&bytes[..16]);
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&bytes[16..]);
    crate::s3::Entropy {
        lock_id,
        jitter_seed: u64::from_le_bytes(seed),
    }
}

#[cfg(test)]
mod pair_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
