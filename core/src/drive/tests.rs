//! The drive loop and the S3 operations on a virtual clock, over an `Io`
//! that is not `Send` (as in a browser).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::s3::{S3Lock, VerifyConditionalWrites, EXIT_RELEASE_BUDGET, RELEASE_BUDGET};
use super::testing::{block_on, MemoryStore};
use super::{Cancel, Io, Notice, TransportFailure};
use crate::error::Error;
use crate::s3::{Credentials, LeaseTerms, LostReason, S3LockConfig, UnlockOutcome};
use crate::sansio::Body;
use crate::time::Now;
use crate::Wait;

type Sent = Rc<RefCell<Vec<(Duration, String)>>>;
type Stall = Box<dyn Fn(&http::Request<Body>) -> bool>;

/// A store on a virtual clock; requests for which `stall` is true never get
/// an answer.
struct StoreIo {
    seed: u8,
    now: RefCell<Now>,
    store: Rc<RefCell<MemoryStore>>,
    stall: Stall,
    sent: Sent,
}

impl StoreIo {
    fn new(store: Rc<RefCell<MemoryStore>>) -> Self {
        StoreIo {
            seed: 0x5a,
            now: RefCell::new(Now::virtual_origin()),
            store,
            stall: Box::new(|_| false),
            sent: Rc::default(),
        }
    }
}

impl Io for StoreIo {
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl Future<Output = Result<http::Response<Body>, TransportFailure>> {
        let now = self.now.borrow().monotonic;
        let conditional = ["if-match", "if-none-match"]
            .iter()
            .find(|h| request.headers().contains_key(**h))
            .map_or("", |h| *h);
        self.sent
            .borrow_mut()
            .push((now, format!("{} {conditional}", request.method())));
        let fut: Pin<Box<dyn Future<Output = _>>> = if (self.stall)(&request) {
            Box::pin(std::future::pending())
        } else {
            let response = self.store.borrow_mut().handle(&request);
            Box::pin(std::future::ready(Ok(response)))
        };
        fut
    }

    fn sleep_until(&self, monotonic: Duration) -> impl Future<Output = ()> {
        // The clock moves when the sleep is polled, not when it is created
        // (a sleep that loses a race never happened), and a sleep yields once
        // first, as a real timer would: a renewal loop then gives control
        // back between renewals.
        let mut yielded = false;
        std::future::poll_fn(move |cx| {
            if !yielded {
                yielded = true;
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            let now = *self.now.borrow();
            if monotonic > now.monotonic {
                *self.now.borrow_mut() = now.advanced(monotonic - now.monotonic);
            }
            std::task::Poll::Ready(())
        })
    }

    fn now(&self) -> Now {
        *self.now.borrow()
    }

    fn fill_random(&self, buf: &mut [u8]) {
        buf.iter_mut().for_each(|b| *b = self.seed);
    }
}

fn lock(io: StoreIo) -> Arc<S3Lock<StoreIo, Credentials>> {
    let config = S3LockConfig::builder("tfstate", "k")
        .endpoint("http://127.0.0.1:9000")
        .build()
        .unwrap();
    let creds = Credentials::new("AKID", "secret", None).unwrap();
    let lock = S3Lock::new(config, creds, io, "me@host");
    lock.set_verify_conditional_writes(VerifyConditionalWrites::TrustWithoutProof);
    // The lease API takes an `Arc` whatever the runtime; this one is
    // single-threaded on purpose.
    #[allow(clippy::arc_with_non_send_sync)]
    Arc::new(lock)
}

#[test]
fn an_uncontended_cycle_is_two_requests_on_a_runtime_without_send() {
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let io = StoreIo::new(store.clone());
    let sent = io.sent.clone();
    let lock = lock(io);
    let mut opts = lock.options();
    opts.wait = Wait::No;
    let held = block_on(lock.acquire(opts, &Cancel::new(), |_| {})).unwrap();
    assert!(store.borrow().object.is_some());
    let outcome = block_on(lock.release(&held, RELEASE_BUDGET)).unwrap();
    assert_eq!(outcome, UnlockOutcome::Released);
    assert!(store.borrow().object.is_none());
    let sent: Vec<String> = sent.borrow().iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(sent, ["PUT if-none-match", "DELETE if-match"]);
}

#[test]
fn waiting_for_a_holder_is_reported_as_notices() {
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let other = lock(StoreIo::new(store.clone()));
    let mut opts = other.options();
    opts.wait = Wait::No;
    block_on(other.acquire(opts, &Cancel::new(), |_| {})).unwrap();

    let mut io = StoreIo::new(store);
    io.seed = 0x77;
    let me = lock(io);
    let mut opts = me.options();
    opts.wait = Wait::For(Duration::from_secs(5));
    let mut notices = Vec::new();
    let err = block_on(me.acquire(opts, &Cancel::new(), |n| notices.push(n))).unwrap_err();
    assert_eq!(err.code(), "timeout");
    let waits: Vec<_> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::Waiting {
                holder, new_holder, ..
            } => Some((holder.to_string(), *new_holder)),
            _ => None,
        })
        .collect();
    assert!(waits.len() >= 2, "{notices:?}");
    assert!(waits[0].0.contains("me@host"), "{waits:?}");
    assert!(waits[0].1, "the first sight of a holder is new");
    assert!(waits[1..].iter().all(|(_, new)| !new), "{waits:?}");
}

#[test]
fn a_stalled_renewal_is_abandoned_at_the_give_up_instant() {
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let mut io = StoreIo::new(store);
    // Every renewal (PUT If-Match) is black-holed by the network.
    io.stall =
        Box::new(|r| r.method() == http::Method::PUT && r.headers().contains_key("if-match"));
    let sent = io.sent.clone();
    let lock = lock(io);
    let mut opts = lock.options();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let mut losses = Vec::new();
    let (lease, renewal) = block_on(lock.acquire_lease(opts, &Cancel::new(), |n| {
        if let Notice::Lost { reason } = n {
            losses.push(reason)
        }
    }))
    .unwrap();
    let written_at = lease.held().written_at;
    block_on(renewal.run());
    let lost = lease.lost().expect("the lease is reported lost");
    assert!(matches!(lost, LostReason::RenewalFailed { .. }), "{lost:?}");
    // It was lost at the give-up instant (lease minus the safety margin),
    // not when the stalled request would have ended.
    let terms = LeaseTerms::new(Duration::from_secs(3));
    let now = lock.io().now().monotonic;
    assert_eq!(now, terms.give_up_at(written_at), "lost at {now:?}");
    let renewals: Vec<_> = sent
        .borrow()
        .iter()
        .filter(|(_, r)| r == "PUT if-match")
        .cloned()
        .collect();
    assert_eq!(
        renewals.len(),
        1,
        "one stalled renewal: {:?}",
        sent.borrow()
    );
    assert_eq!(losses.len(), 1, "the loss is a notice too");
}

#[test]
fn releasing_a_lease_stops_renewal_and_deletes_the_last_version() {
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let io = StoreIo::new(store.clone());
    let lock = lock(io);
    let mut opts = lock.options();
    opts.wait = Wait::No;
    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let (lease, renewal) = block_on(lock.acquire_lease(opts, &Cancel::new(), |_| {})).unwrap();
    // Run the renewal by hand until it has renewed once, then release.
    let mut renewal = std::pin::pin!(renewal.run());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let first_etag = lease.held().etag;
    for _ in 0..10 {
        assert!(renewal.as_mut().poll(&mut cx).is_pending());
        if lease.held().etag != first_etag {
            break;
        }
    }
    assert_ne!(lease.held().etag, first_etag, "renewed");
    // Release: renewal stops (the future is dropped here as a runtime would
    // cancel it; the lease's own stop signal is what release uses).
    lease_stop_and_release(&lock, &lease, renewal);
    assert!(store.borrow().object.is_none());
}

fn lease_stop_and_release(
    lock: &Arc<S3Lock<StoreIo, Credentials>>,
    lease: &super::s3::Lease,
    renewal: Pin<&mut impl Future<Output = ()>>,
) {
    let mut renewal = renewal;
    let mut renewal_done = false;
    let release = lock.release_lease(lease, EXIT_RELEASE_BUDGET);
    let mut release = std::pin::pin!(release);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..100 {
        if !renewal_done {
            renewal_done = renewal.as_mut().poll(&mut cx).is_ready();
        }
        if let std::task::Poll::Ready(r) = release.as_mut().poll(&mut cx) {
            assert_eq!(r.unwrap(), UnlockOutcome::Released);
            return;
        }
    }
    panic!("release did not finish");
}

#[test]
fn an_acquisition_that_lands_as_the_caller_cancels_is_given_back() {
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let lock = lock(StoreIo::new(store.clone()));
    let cancel = Cancel::new();
    let mut opts = lock.options();
    opts.wait = Wait::No;
    // The caller cancels while the PUT is in flight: the PUT lands.
    let result = block_on(async {
        let acquire = lock.acquire(opts, &cancel, |_| {});
        cancel.cancel();
        acquire.await
    });
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(store.borrow().object.is_none(), "nothing left behind");
}

#[test]
fn a_holding_is_leased_only_when_the_options_ask_for_a_lease() {
    use super::s3::Holding;
    let store = Rc::new(RefCell::new(MemoryStore::new()));
    let lock = lock(StoreIo::new(store.clone()));
    let mut opts = lock.options();
    opts.wait = Wait::No;
    let (holding, renewal) =
        block_on(lock.acquire_holding(opts.clone(), &Cancel::new(), |_| {})).unwrap();
    assert!(matches!(holding, Holding::Plain(_)) && renewal.is_none());
    assert!(holding.loss_watch().is_none());
    let outcome = block_on(lock.release_holding(&holding, RELEASE_BUDGET)).unwrap();
    assert_eq!(outcome, UnlockOutcome::Released);
    assert!(store.borrow().object.is_none());

    opts.lease = Some(LeaseTerms::new(Duration::from_secs(3)));
    let (holding, renewal) = block_on(lock.acquire_holding(opts, &Cancel::new(), |_| {})).unwrap();
    assert!(matches!(holding, Holding::Leased(_)) && renewal.is_some());
    assert_eq!(holding.held().generation(), 1);
    assert!(holding.loss_watch().is_some_and(|w| w.get().is_none()));
    // Released after its renewal was dropped without running (a runtime
    // that shut down): release must not wait for it (it did, forever, before
    // a dropped Renewal said it was finished).
    drop(renewal);
    let outcome = block_on(lock.release_holding(&holding, RELEASE_BUDGET)).unwrap();
    assert_eq!(outcome, UnlockOutcome::Released);
    assert!(store.borrow().object.is_none());
}
