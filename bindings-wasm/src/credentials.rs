//! Credentials handed in by the page: fixed keys, or a provider function in
//! the AWS SDK v3 shape (`() => Promise<{accessKeyId, secretAccessKey,
//! sessionToken?, expiration?}>`). Nothing is ever read from storage, and the
//! secrets live only in the core's `Secret`s (never shown, never logged).

use std::cell::RefCell;

use condlock::drive::s3::CredentialSource;
use condlock::s3::Credentials;
use condlock::settings::{
    CredentialSettings, CREDENTIALS_KEPT_WITHOUT_EXPIRY, CREDENTIALS_REFRESH_BEFORE_EXPIRY,
};
use condlock::{Error, Secret};
use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::io::{describe, get};

/// Where a lock's credentials come from.
pub enum JsCredentials {
    /// Keys given as an object.
    Fixed(Credentials),
    /// A provider function, with the credentials it last gave and until
    /// when they are used (ms since the epoch), as the core's settings say.
    Provider {
        provider: Function,
        cached: RefCell<Option<(Credentials, f64)>>,
    },
}

/// A string property of a credentials object, under the option's JS name.
fn string_field(
    obj: &JsValue,
    name: &'static str,
    field: &'static str,
) -> Result<Option<String>, Error> {
    let v = get(obj, name);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string().map(Some).ok_or(Error::InvalidConfig {
        field,
        reason: format!("credentials.{name} must be a string"),
    })
}

/// Keys from a `Credentials` object: the core checks the combination.
pub fn parse(obj: &JsValue) -> Result<CredentialSettings, Error> {
    Ok(CredentialSettings {
        access_key_id: string_field(obj, "accessKeyId", "access_key_id")?,
        secret_access_key: string_field(obj, "secretAccessKey", "secret_access_key")?
            .map(Secret::new),
        session_token: string_field(obj, "sessionToken", "session_token")?.map(Secret::new),
        provider: None,
    })
}

/// The expiration of a provider's credentials, in ms since the epoch.
fn expiration(obj: &JsValue) -> Option<f64> {
    let v = get(obj, "expiration");
    if let Some(date) = v.dyn_ref::<js_sys::Date>() {
        return Some(date.get_time()).filter(|t| t.is_finite());
    }
    v.as_f64()
}

impl JsCredentials {
    async fn from_provider(provider: &Function) -> Result<(Credentials, Option<f64>), Error> {
        let refused = |what: String| Error::InvalidConfig {
            field: "credentials",
            reason: format!("the credentials provider {what}"),
        };
        let promise = provider
            .call0(&JsValue::UNDEFINED)
            .map_err(|e| refused(format!("threw {}", describe(&e))))?;
        let value = JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|e| refused(format!("failed: {}", describe(&e))))?;
        if !value.is_object() {
            return Err(refused(
                "did not resolve to an object {accessKeyId, secretAccessKey, sessionToken?}".into(),
            ));
        }
        let keys = parse(&value)?;
        let (Some(id), Some(secret)) = (keys.access_key_id, keys.secret_access_key) else {
            return Err(refused("gave no accessKeyId and secretAccessKey".into()));
        };
        Ok((
            Credentials::new(id, secret, keys.session_token)?,
            expiration(&value),
        ))
    }
}

impl CredentialSource for JsCredentials {
    async fn credentials(&self) -> Result<Credentials, Error> {
        match self {
            JsCredentials::Fixed(c) => Ok(c.clone()),
            JsCredentials::Provider { provider, cached } => {
                let now = js_sys::Date::now();
                let fresh = cached
                    .borrow()
                    .as_ref()
                    .filter(|(_, until)| now < *until)
                    .map(|(c, _)| c.clone());
                if let Some(c) = fresh {
                    return Ok(c);
                }
                let (c, exp) = Self::from_provider(provider).await?;
                let until = match exp {
                    Some(t) => t - CREDENTIALS_REFRESH_BEFORE_EXPIRY.as_secs_f64() * 1000.0,
                    None => now + CREDENTIALS_KEPT_WITHOUT_EXPIRY.as_secs_f64() * 1000.0,
                };
                *cached.borrow_mut() = Some((c.clone(), until));
                Ok(c)
            }
        }
    }

    fn refreshes(&self) -> bool {
        matches!(self, JsCredentials::Provider { .. })
    }
}
