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

/// The runtime every operation runs on, in place of napi-rs's default (one
/// worker per core): one worker thread. Everything on it is I/O-bound (the
/// requests, renewals, waits for JavaScript hooks: `fetch`, credential
/// providers, which return promises and never block the worker), and each
/// extra worker adds cross-thread wake-ups to every request, as in the
/// Python binding's background runtime (measured here: see BENCHMARKS.md,
/// "Node package vs @aws-sdk/client-s3"). The JavaScript thread still never
/// waits on it: calls return promises.
#[napi_derive::module_init]
fn init() {
    // Once per process: each `worker_threads` worker loads the module again,
    // and napi-rs keeps the first runtime given anyway.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // When the runtime cannot be built here, napi-rs builds its default
        // one at first use (and reports its own failure), so nothing is lost.
        if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("condlock-io")
            .enable_all()
            .build()
        {
            napi::bindgen_prelude::create_custom_tokio_runtime(rt);
        }
    });
}
