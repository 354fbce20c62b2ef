//! An AWS SDK v3 credential provider (`() => Promise<{ accessKeyId,
//! secretAccessKey, sessionToken?, expiration? }>`) as the core's credential
//! source.
//!
//! The JavaScript layer hands a wrapper that returns `expiration` as epoch
//! milliseconds; the core's cache ([`CredentialSource::cached_provider`])
//! decides when to call it again (shortly before expiry).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use condlock::native::CredentialSource;
use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;

/// What the provider wrapper resolves to.
#[napi_derive::napi(object)]
pub struct ProvidedCredentials {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Epoch milliseconds, when the credentials expire.
    pub expiration_ms: Option<f64>,
}

/// The provider function, callable from any thread; weak, so a lock does
/// not keep the process alive.
pub type ProviderFn = ThreadsafeFunction<(), Promise<ProvidedCredentials>, (), Status, false, true>;

struct JsProvider(ProviderFn);

impl std::fmt::Debug for JsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsProvider(<credential provider function>)")
    }
}

fn failed(what: impl Into<String>) -> CredentialsError {
    CredentialsError::provider_error(what.into())
}

impl ProvideCredentials for JsProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let promise = self
                .0
                .call_async(())
                .await
                .map_err(|e| failed(format!("the credentials provider threw: {}", e.reason)))?;
            let c = promise
                .await
                .map_err(|e| failed(format!("the credentials provider rejected: {}", e.reason)))?;
            let text = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
            let (Some(id), Some(secret)) = (text(c.access_key_id), text(c.secret_access_key))
            else {
                return Err(failed(
                    "the credentials provider resolved without accessKeyId and \
                     secretAccessKey (it must resolve to { accessKeyId, secretAccessKey, \
                     sessionToken?, expiration? })",
                ));
            };
            let expiry = c
                .expiration_ms
                .filter(|ms| ms.is_finite() && *ms > 0.0)
                .map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64));
            Ok(Credentials::new(
                id,
                secret,
                text(c.session_token),
                expiry,
                "node-provider",
            ))
        })
    }
}

/// The core's credential source over a JavaScript provider.
pub fn from_provider(f: ProviderFn) -> CredentialSource {
    CredentialSource::cached_provider(JsProvider(f))
}
