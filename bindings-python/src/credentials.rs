//! boto3/botocore credentials as an AWS credentials provider.
//!
//! The Python object is anything with `get_frozen_credentials()` returning an
//! object with `access_key`, `secret_key` and `token` (botocore's
//! `Credentials` and `RefreshableCredentials`). It is called before every
//! request the core sends, in a blocking-pool thread with the GIL, so
//! refreshable credentials are refreshed by botocore when they near expiry.
//! (The standard AWS chain is the core's:
//! `condlock::native::CredentialSource::from_aws_chain_in`.)

use std::sync::Arc;

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};
use aws_credential_types::Credentials;
use pyo3::prelude::*;

/// Credentials read from a botocore credentials object.
pub struct PyCredentials {
    source: Arc<Py<PyAny>>,
}

impl std::fmt::Debug for PyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PyCredentials(<botocore credentials>)")
    }
}

impl PyCredentials {
    pub fn new(source: Py<PyAny>) -> Self {
        PyCredentials {
            source: Arc::new(source),
        }
    }
}

fn read(py: Python<'_>, source: &Py<PyAny>) -> Result<Credentials, String> {
    let frozen = source
        .bind(py)
        .call_method0("get_frozen_credentials")
        .map_err(|e| format!("get_frozen_credentials() failed: {}", e.value(py)))?;
    let text = |name: &str| -> Result<Option<String>, String> {
        let v = frozen
            .getattr(name)
            .map_err(|_| format!("the frozen credentials have no {name}"))?;
        if v.is_none() {
            return Ok(None);
        }
        v.extract::<String>()
            .map(Some)
            .map_err(|_| format!("the frozen credentials' {name} is not a string"))
    };
    let access = text("access_key")?.unwrap_or_default();
    let secret = text("secret_key")?.unwrap_or_default();
    let token = text("token")?.filter(|t| !t.is_empty());
    if access.trim().is_empty() || secret.trim().is_empty() {
        return Err("the boto3/botocore credentials are empty".to_string());
    }
    Ok(Credentials::new(access, secret, token, None, "boto3"))
}

impl ProvideCredentials for PyCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let source = self.source.clone();
        future::ProvideCredentials::new(async move {
            // botocore may refresh over the network: keep that off the I/O workers.
            let got = tokio::task::spawn_blocking(move || Python::attach(|py| read(py, &source)))
                .await
                .map_err(|e| {
                    CredentialsError::unhandled(format!("credentials task failed: {e}"))
                })?;
            got.map_err(CredentialsError::provider_error)
        })
    }
}
