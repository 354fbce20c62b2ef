//! TLS trust for a CA bundle, including an appliance's own self-signed
//! certificate.
//!
//! Appliances such as Apstra ship a certificate made like
//! `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=host`: self-signed and
//! marked as a CA (`basicConstraints CA:TRUE`, OpenSSL's default). curl and
//! Python's `ssl` accept such a certificate when it is given as the CA bundle;
//! rustls refuses it (`CaUsedAsEndEntity`: a CA certificate may not be the
//! server's own). So when a bundle is given, the transport verifies with:
//!
//! - **pinning**: a server certificate whose DER is exactly one of the
//!   bundle's certificates is accepted as is (chain, name and validity dates
//!   are not checked: the certificate itself is what is trusted, and only the
//!   holder of its private key can complete the handshake, whose signatures
//!   are still verified);
//! - otherwise the platform verifier reqwest uses, with the bundle's
//!   certificates added to the system roots (chain, name, dates, revocation
//!   as the platform does them).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::Error;

/// The certificates of a PEM bundle, in DER.
pub(crate) fn parse_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config("ca_bundle", format!("is not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config("ca_bundle", "contains no certificate"));
    }
    Ok(certs)
}

/// A rustls client configuration trusting `pem` (pinned, and as extra roots).
pub(crate) fn client_config(pem: &[u8]) -> Result<rustls::ClientConfig, Error> {
    let certs = parse_bundle(pem)?;
    // The provider reqwest would pick: an installed default, else aws-lc-rs.
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let inner = platform_verifier(certs.clone(), provider.clone())?;
    let verifier = PinningVerifier {
        pinned: certs,
        inner,
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("transport", format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What reqwest offers without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The TLS configuration of a transport without a CA bundle: what reqwest
/// builds by default (the platform verifier, TLS 1.2 and 1.3, HTTP/1.1 ALPN),
/// made once per process and shared. Making it reads the system's root
/// certificates (about 2 ms), and a binding may build a client per thread (the
/// Python binding does: each thread drives its own requests).
pub(crate) fn default_client_config() -> Result<rustls::ClientConfig, Error> {
    static SHARED: std::sync::Mutex<Option<rustls::ClientConfig>> = std::sync::Mutex::new(None);
    let mut shared = crate::drive::locked(&SHARED);
    if let Some(config) = shared.as_ref() {
        return Ok(config.clone());
    }
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| {
        Error::config(
            "transport",
            format!("cannot load the system's TLS roots: {e}"),
        )
    })?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("transport", format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    *shared = Some(config.clone());
    Ok(config)
}

#[cfg(any(all(unix, not(target_os = "android")), target_os = "windows"))]
fn platform_verifier(
    roots: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    let v = rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider)
        .map_err(|e| Error::config("ca_bundle", format!("cannot be used as trust roots: {e}")))?;
    Ok(Arc::new(v))
}

#[cfg(not(any(all(unix, not(target_os = "android")), target_os = "windows")))]
fn platform_verifier(
    _roots: Vec<CertificateDer<'static>>,
    _provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, Error> {
    // reqwest cannot add roots to the platform verifier here either.
    Err(Error::config(
        "ca_bundle",
        "is not supported on this platform (the platform verifier takes no extra roots)",
    ))
}

/// Accepts a server certificate equal to a pinned one, else asks `inner`.
#[derive(Debug)]
struct PinningVerifier {
    pinned: Vec<CertificateDer<'static>>,
    inner: Arc<dyn ServerCertVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    // The handshake signatures are verified for pinned and chained
    // certificates alike: they prove the server holds the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> &'static str {
        match e {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_default_configuration_is_made_once_and_offers_http1() {
        let first = default_client_config().unwrap();
        let second = default_client_config().unwrap();
        // The same configuration, not a second one from a second read of
        // the system's roots (each would have its own provider otherwise).
        assert!(Arc::ptr_eq(
            first.crypto_provider(),
            second.crypto_provider()
        ));
        assert_eq!(second.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn broken_bundles_are_refused_naming_the_field() {
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n";
        assert_eq!(field(parse_bundle(bad).unwrap_err()), "ca_bundle");
        assert_eq!(
            field(parse_bundle(b"no pem here").unwrap_err()),
            "ca_bundle"
        );
        assert_eq!(field(client_config(b"").unwrap_err()), "ca_bundle");
    }
}
