//! A `fetch`-compatible function as the core's HTTP transport: the
//! `fetch` option.
//!
//! The driver stays the native one (tokio timers and clocks, the core's
//! [`NativeIo`](condlock::native::NativeIo)); only sending goes through
//! JavaScript. `index.cjs` wraps the user's function so that it resolves to
//! plain data: `{ status, headers, body }`, or `{ error, kind }` when the
//! call failed (`network`: fetch's own rejection, the request may have been
//! sent; `broken`: the function itself misbehaved, retrying cannot help).

use condlock::drive::{TransportFailure, MAX_RESPONSE_BODY};
use condlock::native::{HttpTransport, Transport};
use condlock::sansio::Body;
use napi::bindgen_prelude::{Buffer, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

/// One request, for the wrapper to pass to `fetch(url, { method, headers, body })`.
#[napi(object)]
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    /// `[name, value]` pairs.
    pub headers: Vec<Vec<String>>,
    pub body: Option<Buffer>,
}

/// What the wrapper resolves to.
#[napi(object)]
pub struct FetchResponse {
    pub status: Option<u32>,
    /// `[name, value]` pairs.
    pub headers: Option<Vec<Vec<String>>>,
    pub body: Option<Buffer>,
    /// Set when the call failed: what happened (no secrets: the wrapper
    /// reports the error's message only).
    pub error: Option<String>,
    /// `network` or `broken` (see the module documentation).
    pub kind: Option<String>,
}

/// The wrapper, callable from the driver's threads. Weak: it does not keep
/// the process alive.
pub type FetchFn =
    ThreadsafeFunction<FetchRequest, Promise<FetchResponse>, FetchRequest, Status, false, true>;

/// The transport of a lock: the built-in client, or the caller's `fetch`.
pub enum AnyTransport {
    Native(Transport),
    Fetch(FetchFn),
}

impl std::fmt::Debug for AnyTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyTransport::Native(_) => "AnyTransport::Native",
            AnyTransport::Fetch(_) => "AnyTransport::Fetch",
        })
    }
}

fn to_request(req: http::Request<Body>) -> FetchRequest {
    let (parts, body) = req.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            vec![
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ]
        })
        .collect();
    FetchRequest {
        method: parts.method.as_str().to_string(),
        url: parts.uri.to_string(),
        headers,
        body: (!body.is_empty()).then(|| Buffer::from(body)),
    }
}

fn from_response(r: FetchResponse) -> Result<http::Response<Body>, TransportFailure> {
    if let Some(error) = r.error {
        return Err(match r.kind.as_deref() {
            Some("network") => TransportFailure::maybe_sent(error),
            _ => TransportFailure::permanent(error),
        });
    }
    let broken = |what: String| TransportFailure::permanent(format!("the fetch option {what}"));
    let status = r
        .status
        .and_then(|s| http::StatusCode::from_u16(s as u16).ok())
        .ok_or_else(|| broken("resolved without a valid HTTP status".into()))?;
    let mut builder = http::Response::builder().status(status);
    for pair in r.headers.unwrap_or_default() {
        if let [name, value] = pair.as_slice() {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let mut body: Vec<u8> = r.body.map(Vec::from).unwrap_or_default();
    body.truncate(MAX_RESPONSE_BODY);
    builder.body(body).map_err(|e| {
        broken(format!(
            "resolved with a header that is not valid HTTP ({e})"
        ))
    })
}

impl HttpTransport for AnyTransport {
    async fn send(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportFailure> {
        match self {
            AnyTransport::Native(t) => t.send(req).await,
            AnyTransport::Fetch(f) => {
                let promise = f.call_async(to_request(req)).await.map_err(|e| {
                    TransportFailure::permanent(format!(
                        "the fetch option could not be called: {}",
                        e.reason
                    ))
                })?;
                let r = promise.await.map_err(|e| {
                    TransportFailure::permanent(format!("the fetch option failed: {}", e.reason))
                })?;
                from_response(r)
            }
        }
    }
}
