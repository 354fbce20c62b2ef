//! Set-once signals that any runtime can wait on: [`Cancel`] (the caller wants
//! an operation to stop) and [`Latch`] (a value published once, such as the
//! reason a lease was lost).
//!
//! They hold only a mutex and the wakers of their waiters, so they work under
//! tokio, in a browser's event loop, or in a test that polls by hand: the core
//! names no runtime in its public API.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

struct State<T> {
    value: Option<T>,
    wakers: Vec<Waker>,
}

/// A value set once and observed by any number of waiters. Clones share it.
pub struct Latch<T> {
    state: Arc<Mutex<State<T>>>,
}

impl<T> Clone for Latch<T> {
    fn clone(&self) -> Self {
        Latch {
            state: self.state.clone(),
        }
    }
}

impl<T> Default for Latch<T> {
    fn default() -> Self {
        Latch {
            state: Arc::new(Mutex::new(State {
                value: None,
                wakers: Vec::new(),
            })),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Latch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Latch").field(&self.lock().value).finish()
    }
}

impl<T> Latch<T> {
    /// An unset latch.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        super::locked(&self.state)
    }

    /// Publish `value` and wake every waiter. The first value set stays:
    /// later calls return `false` and change nothing.
    pub fn set(&self, value: T) -> bool {
        let wakers = {
            let mut s = self.lock();
            if s.value.is_some() {
                return false;
            }
            s.value = Some(value);
            std::mem::take(&mut s.wakers)
        };
        for w in wakers {
            w.wake();
        }
        true
    }

    /// Whether a value was set.
    pub fn is_set(&self) -> bool {
        self.lock().value.is_some()
    }
}

impl<T: Clone> Latch<T> {
    /// The value, if one was set (does not wait).
    pub fn get(&self) -> Option<T> {
        self.lock().value.clone()
    }

    /// Wait until a value is set, and return it.
    pub fn wait(&self) -> LatchWait<'_, T> {
        LatchWait { latch: self }
    }
}

/// The future of [`Latch::wait`].
pub struct LatchWait<'a, T> {
    latch: &'a Latch<T>,
}

impl<T: Clone> Future for LatchWait<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut s = self.latch.lock();
        match &s.value {
            Some(v) => Poll::Ready(v.clone()),
            None => {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

/// A request to stop an operation, shared by the caller (who cancels) and
/// the driver (who checks it while sleeping and before each request).
///
/// Cancelling never loses a lock: a machine that may have written one reads
/// it back and removes it before finishing with [`crate::Error::Cancelled`].
#[derive(Clone, Debug, Default)]
pub struct Cancel(Latch<()>);

impl Cancel {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask the operation to stop (idempotent).
    pub fn cancel(&self) {
        self.0.set(());
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_set()
    }

    /// Resolves once cancelled.
    pub fn cancelled(&self) -> impl Future<Output = ()> + '_ {
        self.0.wait()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountWakes(AtomicUsize);
    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_waiter_is_woken_once_and_sees_the_first_value() {
        let latch = Latch::new();
        let counter = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wait = std::pin::pin!(latch.wait());
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Pending);
        assert!(latch.set(1));
        assert!(!latch.set(2), "the first value stays");
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "registered once");
        assert_eq!(wait.as_mut().poll(&mut cx), Poll::Ready(1));
        assert_eq!(latch.get(), Some(1));
    }

    #[test]
    fn cancel_is_shared_by_clones() {
        let cancel = Cancel::new();
        let seen = cancel.clone();
        assert!(!seen.is_cancelled());
        cancel.cancel();
        cancel.cancel();
        assert!(seen.is_cancelled());
    }
}
