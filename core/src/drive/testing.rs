//! Test helpers for the drivers: a poll loop for virtual-clock futures and a
//! tiny atomic S3 store.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use crate::sansio::Body;

/// Run a future that never waits for anything outside itself (a virtual
/// clock) to completion.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("a virtual-clock future kept waiting");
}

/// A tiny in-memory S3 store with atomic conditional writes, for driver
/// tests: one object, ETags `"1"`, `"2"`... `stall` makes matching requests
/// never answer.
pub(crate) struct MemoryStore {
    pub(crate) object: Option<(String, Vec<u8>)>,
    next: u64,
}

impl MemoryStore {
    pub(crate) fn new() -> Self {
        MemoryStore {
            object: None,
            next: 0,
        }
    }

    pub(crate) fn handle(&mut self, req: &http::Request<Body>) -> http::Response<Body> {
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        let status = |code: u16| {
            http::Response::builder()
                .status(code)
                .body(Vec::new())
                .unwrap()
        };
        let current = self.object.as_ref().map(|(e, _)| e.clone());
        match *req.method() {
            http::Method::PUT => {
                let ok = match (header("if-none-match"), header("if-match")) {
                    (Some("*"), _) => current.is_none(),
                    (_, Some(m)) => current.as_deref() == Some(m),
                    _ => true,
                };
                if !ok {
                    return status(if header("if-match").is_some() && current.is_none() {
                        404
                    } else {
                        412
                    });
                }
                self.next += 1;
                let etag = format!("\"{}\"", self.next);
                self.object = Some((etag.clone(), req.body().clone()));
                http::Response::builder()
                    .status(200)
                    .header("etag", etag)
                    .body(Vec::new())
                    .unwrap()
            }
            http::Method::GET => match &self.object {
                Some((etag, body)) => http::Response::builder()
                    .status(200)
                    .header("etag", etag.as_str())
                    .body(body.clone())
                    .unwrap(),
                None => status(404),
            },
            http::Method::DELETE => match (header("if-match"), current) {
                (_, None) => status(404),
                (Some(m), Some(c)) if m != c => status(412),
                _ => {
                    self.object = None;
                    status(204)
                }
            },
            _ => status(405),
        }
    }
}
