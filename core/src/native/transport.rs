//! The HTTP transport of the native driver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::sansio::Body;

use crate::drive::TransportFailure;
pub use crate::drive::MAX_RESPONSE_BODY;

/// Transport settings.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// Per-request timeout (connect + send + receive).
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Verify TLS certificates (on by default).
    pub verify_tls: bool,
    /// Extra PEM root certificates to trust, in addition to the system
    /// ones. Each certificate of the bundle is also accepted, exactly, as the
    /// server's own (pinning): an appliance's self-signed certificate works
    /// as its own bundle, as with curl's `--cacert`, although rustls refuses a
    /// CA certificate as a server certificate otherwise.
    pub ca_bundle_pem: Option<Vec<u8>>,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            verify_tls: true,
            ca_bundle_pem: None,
        }
    }
}

/// Anything that can carry a request to a server and bring back its response.
///
/// [`Transport`] (reqwest) is the default; bindings implement this to let users
/// bring their own HTTP stack. Errors are transport failures (the request may
/// or may not have reached the server), described without secrets.
pub trait HttpTransport: Send + Sync {
    /// Send one request and return the whole response.
    fn send(
        &self,
        req: http::Request<Body>,
    ) -> impl std::future::Future<Output = Result<http::Response<Body>, TransportFailure>> + Send;
}

impl HttpTransport for Transport {
    fn send(
        &self,
        req: http::Request<Body>,
    ) -> impl std::future::Future<Output = Result<http::Response<Body>, TransportFailure>> + Send
    {
        Transport::send(self, req)
    }
}

/// A reqwest client plus a counter of requests sent.
#[derive(Clone, Debug)]
pub struct Transport {
    client: reqwest::Client,
    sent: Arc<AtomicU64>,
}

impl Transport {
    /// Build a transport.
    pub fn new(opts: &TransportOptions) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(opts.request_timeout)
            .connect_timeout(opts.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("condlock/", env!("CARGO_PKG_VERSION")));
        if !opts.verify_tls {
            builder = builder.danger_accept_invalid_certs(true);
            if let Some(pem) = &opts.ca_bundle_pem {
                // Verification is off, so the bundle is unused; still refuse
                // a broken one, as with verification on.
                super::tls::parse_bundle(pem)?;
            }
        } else if let Some(pem) = &opts.ca_bundle_pem {
            // Our own TLS config: the bundle's roots plus pinning of its
            // certificates (see `tls`).
            builder = builder.tls_backend_preconfigured(super::tls::client_config(pem)?);
        }
        let client = builder.build().map_err(|e| {
            Error::config("transport", format!("cannot build the HTTP client: {e}"))
        })?;
        Ok(Transport {
            client,
            sent: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Requests sent so far through this transport (and its clones).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Send one request. Errors are transport failures, described without
    /// secrets (reqwest errors name the URL, which never carries credentials
    /// here: configs refuse them).
    pub async fn send(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportFailure> {
        let req = reqwest::Request::try_from(req)
            .map_err(|e| TransportFailure::permanent(format!("cannot send request: {e}")))?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut resp = self.client.execute(req).await.map_err(describe)?;
        let mut builder = http::Response::builder().status(resp.status());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(resp.headers_mut());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(describe)? {
            let room = MAX_RESPONSE_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room < chunk.len() {
                break;
            }
        }
        builder
            .body(body)
            .map_err(|e| TransportFailure::maybe_sent(format!("malformed response: {e}")))
    }
}

/// What a reqwest error means for the machines: a failed connect never sent
/// the request; anything later may have reached the server.
fn describe(e: reqwest::Error) -> TransportFailure {
    let connect = e.is_connect();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if connect {
        TransportFailure::not_sent(text)
    } else {
        TransportFailure::maybe_sent(text)
    }
}
