//! The HTTP transport of the native driver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::Error;
use crate::sansio::{Body, TransportFailure};

pub use crate::drive::MAX_RESPONSE_BODY;

/// Transport settings: the core's [`crate::settings::TransportSettings`]
/// (timeouts, TLS verification, a CA bundle whose certificates are also
/// pinned), under the name the native driver has always used.
pub type TransportOptions = crate::settings::TransportSettings;

/// Anything that can carry a request to a server and bring back its response.
///
/// [`Transport`] (reqwest) is the default; bindings implement this to let users
/// bring their own HTTP stack. Errors are transport failures, described
/// without secrets, that say whether the request may have reached the server
/// and whether retrying can help (see [`TransportFailure`]).
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
        } else {
            // reqwest's default TLS setup, made once per process.
            builder = builder.tls_backend_preconfigured(super::tls::default_client_config()?);
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
    /// here: configs refuse them) and classified (see `classify` below).
    pub async fn send(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Body>, TransportFailure> {
        // A request reqwest cannot even represent never leaves, and would not
        // next time either.
        let req = reqwest::Request::try_from(req)
            .map_err(|e| TransportFailure::permanent(format!("cannot send request: {e}")))?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut resp = self.client.execute(req).await.map_err(classify)?;
        let mut builder = http::Response::builder().status(resp.status());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(resp.headers_mut());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            // The request was answered, only its body was cut short.
            TransportFailure::maybe_sent(describe(&e.without_url()))
        })? {
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

/// The error and its whole source chain. Callers strip the URL first: it
/// carries no credentials (configs refuse them) but is noise next to the error.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// What a reqwest failure means for the machines: was any byte of the request
/// sent, and can retrying help?
///
/// reqwest does not expose hyper's or rustls' error types without extra
/// dependencies, so the source chain is read: `std::io::Error` kinds where
/// they survive, the well-known messages of rustls and of the system resolver
/// otherwise. Anything not recognised is "maybe sent", the safe assumption.
fn classify(e: reqwest::Error) -> TransportFailure {
    let e = e.without_url();
    let message = describe(&e);
    let mut refused = false;
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(s.to_string().to_ascii_lowercase());
        source = s.source();
    }
    let said = |words: &[&str]| chain.iter().any(|t| words.iter().any(|w| t.contains(w)));
    // rustls: "invalid peer certificate: UnknownIssuer / NotValidForName /
    // Expired / BadSignature ...". The same certificate is rejected next time.
    if said(&["invalid peer certificate", "certificate verify failed"]) {
        return TransportFailure::permanent(message);
    }
    // hyper-util reports resolver failures as "dns error". A name that does
    // not exist stays so; "temporary failure in name resolution" may pass.
    if said(&["dns error", "failed to lookup address"]) {
        return if said(&[
            "name or service not known",
            "nodename nor servname provided",
            "no such host is known",
            "no address associated with hostname",
        ]) {
            TransportFailure::permanent(message)
        } else {
            TransportFailure::not_sent(message)
        };
    }
    // A connect error (refused, connect timeout, TLS handshake) comes before
    // the first byte of the request.
    if refused || e.is_connect() {
        return TransportFailure::not_sent(message);
    }
    TransportFailure::maybe_sent(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port on 127.0.0.1 with nothing listening: bind, note it, close.
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn connection_refused_is_not_sent_and_not_permanent() {
        let port = closed_port();
        let t = Transport::new(&TransportOptions::default()).unwrap();
        let req = http::Request::builder()
            .method("PUT")
            .uri(format!("http://127.0.0.1:{port}/bucket/key.tflock"))
            .body(b"{}".to_vec())
            .unwrap();
        let failure = t.send(req).await.unwrap_err();
        assert!(!failure.maybe_sent, "{failure:?}");
        assert!(!failure.permanent, "{failure:?}");
        assert!(!failure.message.contains("for url"), "{failure:?}");
    }

    #[tokio::test]
    async fn a_reset_after_the_request_was_read_may_have_been_sent() {
        // A server that reads the request, then closes without answering.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        });
        let t = Transport::new(&TransportOptions::default()).unwrap();
        let req = http::Request::builder()
            .method("PUT")
            .uri(format!("http://127.0.0.1:{port}/bucket/key.tflock"))
            .body(b"{}".to_vec())
            .unwrap();
        let failure = t.send(req).await.unwrap_err();
        server.await.unwrap();
        assert!(failure.maybe_sent, "{failure:?}");
        assert!(!failure.permanent, "{failure:?}");
    }
}
