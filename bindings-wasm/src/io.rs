//! The core's [`Io`] in a browser: `fetch`, `setTimeout`,
//! `performance.now()`, `Date.now()` and `crypto.getRandomValues`.
//!
//! Everything is reached through the global object with `Reflect`, so the
//! same code runs in a page, a worker, or any host with those globals, and a
//! caller's own `fetch` (the `fetch` option: a test's scripted server, a
//! proxying function) is called exactly like the browser's.

use std::time::{Duration, SystemTime};

use condlock::drive::{Io, MAX_RESPONSE_BODY};
use condlock::sansio::Body;
use condlock::{Now, TransportFailure};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A property of `obj`, `undefined` when it cannot be read.
pub(crate) fn get(obj: &JsValue, name: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn global_fn(name: &str) -> Option<Function> {
    get(&js_sys::global(), name).dyn_into::<Function>().ok()
}

/// `String(value)`, for messages about what JavaScript threw.
pub(crate) fn describe(value: &JsValue) -> String {
    match value.dyn_ref::<js_sys::Error>() {
        Some(e) => format!("{}: {}", String::from(e.name()), String::from(e.message())),
        None => value
            .as_string()
            .unwrap_or_else(|| String::from(js_sys::JsString::from(value.clone()))),
    }
}

/// The browser as the core's runtime.
pub struct WasmIo {
    fetch: Function,
    /// `performance.now()` when available (monotonic), else `Date.now()`.
    performance: Option<JsValue>,
}

impl WasmIo {
    /// Requests go through `fetch` (the page's `globalThis.fetch` by
    /// default).
    pub fn new(fetch: Option<Function>) -> Result<Self, &'static str> {
        let fetch = match fetch {
            Some(f) => f,
            None => global_fn("fetch").ok_or("this environment has no global fetch")?,
        };
        let performance =
            Some(get(&js_sys::global(), "performance")).filter(|p| get(p, "now").is_function());
        Ok(WasmIo { fetch, performance })
    }

    fn monotonic_ms(&self) -> f64 {
        match &self.performance {
            Some(p) => {
                let now: Function = get(p, "now").unchecked_into();
                now.call0(p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0)
            }
            None => js_sys::Date::now(),
        }
    }

    async fn fetch(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportFailure> {
        let (parts, body) = request.into_parts();
        let init = Object::new();
        let headers = Object::new();
        for (name, value) in &parts.headers {
            // The browser sets Host and Content-Length itself (and refuses
            // them from a page); they are signed with the values it sends.
            if name == http::header::HOST || name == http::header::CONTENT_LENGTH {
                continue;
            }
            let Ok(value) = value.to_str() else {
                return Err(TransportFailure::permanent(format!(
                    "header {name} is not text: fetch cannot send it"
                )));
            };
            let _ = Reflect::set(&headers, &name.as_str().into(), &value.into());
        }
        let _ = Reflect::set(&init, &"method".into(), &parts.method.as_str().into());
        let _ = Reflect::set(&init, &"headers".into(), &headers);
        // A lock request must reach the store, never a cache.
        let _ = Reflect::set(&init, &"cache".into(), &"no-store".into());
        if !body.is_empty() {
            let _ = Reflect::set(&init, &"body".into(), &Uint8Array::from(body.as_slice()));
        }
        let url = JsValue::from_str(&parts.uri.to_string());
        let promise = self
            .fetch
            .call2(&JsValue::UNDEFINED, &url, &init)
            .map_err(|e| fetch_failed(&e))?;
        let response = JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|e| fetch_failed(&e))?;
        let status = get(&response, "status").as_f64().ok_or_else(|| {
            TransportFailure::permanent(
                "fetch resolved to something that is not a Response (no status)",
            )
        })?;
        let mut builder = http::Response::builder().status(status as u16);
        let js_headers = get(&response, "headers");
        if let Ok(entries) = call_method(&js_headers, "entries") {
            if let Ok(Some(iter)) = js_sys::try_iter(&entries) {
                for pair in iter.flatten() {
                    let pair: Array = pair.unchecked_into();
                    if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                        builder = builder.header(k, v);
                    }
                }
            }
        }
        let buffer = call_method(&response, "arrayBuffer").map_err(|e| {
            TransportFailure::maybe_sent(format!("reading the response failed: {}", describe(&e)))
        })?;
        let buffer = JsFuture::from(Promise::resolve(&buffer))
            .await
            .map_err(|e| {
                TransportFailure::maybe_sent(format!(
                    "reading the response failed: {}",
                    describe(&e)
                ))
            })?;
        let bytes = Uint8Array::new(&buffer);
        let len = (bytes.length() as usize).min(MAX_RESPONSE_BODY);
        let mut body = vec![0u8; len];
        bytes.subarray(0, len as u32).copy_to(&mut body);
        builder.body(body).map_err(|e| {
            TransportFailure::permanent(format!("fetch gave an unusable response: {e}"))
        })
    }
}

fn call_method(obj: &JsValue, name: &str) -> Result<JsValue, JsValue> {
    let f: Function = get(obj, name)
        .dyn_into()
        .map_err(|_| JsValue::from_str(&format!("no {name}() on the response")))?;
    f.call0(obj)
}

/// A rejected `fetch`. The browser gives the same `TypeError` for a refused
/// CORS preflight, a missing `Access-Control-Allow-Origin` and an unreachable
/// server, and says which only in the developer console; the request may have
/// been sent. The message carries the fetch's own words: whoever shows it
/// (the dashboard) recognises `fetch failed` and names the likely causes.
fn fetch_failed(e: &JsValue) -> TransportFailure {
    TransportFailure::maybe_sent(format!("fetch failed ({})", describe(e)))
}

impl Io for WasmIo {
    fn send(
        &self,
        request: http::Request<Body>,
    ) -> impl std::future::Future<Output = Result<http::Response<Body>, TransportFailure>> {
        self.fetch(request)
    }

    fn sleep_until(&self, monotonic: Duration) -> impl std::future::Future<Output = ()> {
        let now = Duration::from_secs_f64(self.monotonic_ms().max(0.0) / 1000.0);
        let ms = monotonic.saturating_sub(now).as_secs_f64() * 1000.0;
        async move {
            let Some(set_timeout) = global_fn("setTimeout") else {
                return;
            };
            // setTimeout may fire a little early (clamping, rounding): the
            // core re-reads the clock and asks again if so.
            let promise = Promise::new(&mut |resolve, _reject| {
                let _ =
                    set_timeout.call2(&JsValue::UNDEFINED, &resolve, &JsValue::from_f64(ms.ceil()));
            });
            let _ = JsFuture::from(promise).await;
        }
    }

    fn now(&self) -> Now {
        // Date.now() is whole milliseconds: kept exact (through seconds as a
        // float, a lock's `Created` would read …523999929Z).
        let wall =
            SystemTime::UNIX_EPOCH + Duration::from_millis(js_sys::Date::now().max(0.0) as u64);
        let monotonic = Duration::from_secs_f64(self.monotonic_ms().max(0.0) / 1000.0);
        Now::new(wall, monotonic)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let crypto = get(&js_sys::global(), "crypto");
        // getRandomValues takes at most 65536 bytes at a time.
        for chunk in buf.chunks_mut(65536) {
            let array = Uint8Array::new_with_length(chunk.len() as u32);
            let ok = match get(&crypto, "getRandomValues").dyn_into::<Function>() {
                Ok(f) => f.call1(&crypto, &array).is_ok(),
                Err(_) => false,
            };
            if ok {
                array.copy_to(chunk);
            } else {
                // No Web Crypto (a very old host): Math.random is not
                // cryptographic, but lock IDs and jitter only need to differ
                // between clients, which it gives.
                for b in chunk.iter_mut() {
                    *b = (js_sys::Math::random() * 256.0) as u8;
                }
            }
        }
    }
}
