//! Building and signing the three requests a lock needs: PUT, GET and DELETE
//! of the lock object.
//!
//! Signing is SigV4 for S3 through `aws-sigv4`: service `s3`, the path encoded
//! once (S3 does not double-encode), no path normalisation (keys such as
//! `env:/dev/a/../b` are literal), and the payload hash in
//! `x-amz-content-sha256`. Conditional headers are set before signing, so they
//! are covered by the signature.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use http::{HeaderName, HeaderValue, Method, Request};
use sha2::Digest as _;

use super::config::{Credentials, Encryption, S3LockConfig};
use crate::error::Error;
use crate::sansio::Body;
use crate::time::clamp_to_years_1970_to_9999;

/// The precondition of a lock write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutCondition<'a> {
    /// `If-None-Match: *`: create only if no lock exists (acquire).
    IfNoneMatch,
    /// `If-Match: <etag>`: replace only this exact version (renewal, takeover).
    IfMatch(&'a str),
}

/// SHA-256 of the empty body, hex: what GET and DELETE sign.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `PUT <lock key>` with the lock body and the configured headers.
pub fn put_lock(
    config: &S3LockConfig,
    credentials: &Credentials,
    body: &[u8],
    condition: PutCondition<'_>,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let digest = sha2::Sha256::digest(body);
    let mut req = base(Method::PUT, config, body.to_vec())?;
    let h = req.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    match condition {
        PutCondition::IfNoneMatch => {
            h.insert(http::header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        }
        PutCondition::IfMatch(etag) => {
            h.insert(http::header::IF_MATCH, etag_header(etag)?);
        }
    }
    if config.checksum {
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        insert(h, "x-amz-checksum-sha256", &b64)?;
    }
    match &config.encryption {
        Encryption::None => {}
        Encryption::S3Managed => insert(h, "x-amz-server-side-encryption", "AES256")?,
        Encryption::Kms { key_id } => {
            insert(h, "x-amz-server-side-encryption", "aws:kms")?;
            if let Some(key_id) = key_id {
                insert(h, "x-amz-server-side-encryption-aws-kms-key-id", key_id)?;
            }
        }
        Encryption::CustomerKey(_) => add_sse_c(h, config)?,
    }
    if let Some(acl) = &config.acl {
        insert(h, "x-amz-acl", acl)?;
    }
    if let Some(tagging) = &config.tagging {
        insert(h, "x-amz-tagging", tagging)?;
    }
    signed(req, credentials, config, &hex::encode(digest), signing_time)
}

/// `GET <lock key>`, with the SSE-C headers when configured (Terraform omits
/// them, which is why it cannot show the holder of an SSE-C lock).
pub fn get_lock(
    config: &S3LockConfig,
    credentials: &Credentials,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let mut req = base(Method::GET, config, Vec::new())?;
    add_sse_c(req.headers_mut(), config)?;
    signed(req, credentials, config, EMPTY_SHA256, signing_time)
}

/// `DELETE <lock key>`, conditioned on `If-Match: <etag>` when given.
pub fn delete_lock(
    config: &S3LockConfig,
    credentials: &Credentials,
    if_match: Option<&str>,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let mut req = base(Method::DELETE, config, Vec::new())?;
    if let Some(etag) = if_match {
        req.headers_mut()
            .insert(http::header::IF_MATCH, etag_header(etag)?);
    }
    signed(req, credentials, config, EMPTY_SHA256, signing_time)
}

fn base(method: Method, config: &S3LockConfig, body: Body) -> Result<Request<Body>, Error> {
    Request::builder()
        .method(method)
        .uri(config.lock_url())
        .body(body)
        .map_err(|e| Error::config("endpoint", format!("cannot form a request URL: {e}")))
}

fn add_sse_c(h: &mut http::HeaderMap, config: &S3LockConfig) -> Result<(), Error> {
    if let Encryption::CustomerKey(key) = &config.encryption {
        insert(
            h,
            "x-amz-server-side-encryption-customer-algorithm",
            "AES256",
        )?;
        let mut value = HeaderValue::from_str(key.key_base64().expose())
            .map_err(|_| Error::config("sse_customer_key", "is not a valid header value"))?;
        value.set_sensitive(true);
        h.insert(
            HeaderName::from_static("x-amz-server-side-encryption-customer-key"),
            value,
        );
        insert(
            h,
            "x-amz-server-side-encryption-customer-key-md5",
            key.key_md5_base64(),
        )?;
    }
    Ok(())
}

fn insert(h: &mut http::HeaderMap, name: &'static str, value: &str) -> Result<(), Error> {
    let value = HeaderValue::from_str(value).map_err(|_| {
        Error::config(
            name_to_field(name),
            format!("{value:?} is not a valid header value"),
        )
    })?;
    h.insert(HeaderName::from_static(name), value);
    Ok(())
}

fn name_to_field(header: &str) -> &'static str {
    match header {
        "x-amz-server-side-encryption-aws-kms-key-id" => "kms_key_id",
        "x-amz-acl" => "acl",
        "x-amz-tagging" => "tags",
        _ => "headers",
    }
}

/// ETags go back exactly as the server sent them, quotes included.
fn etag_header(etag: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(etag)
        .map_err(|_| Error::malformed(format!("ETag {etag:?} cannot be sent back as a header")))
}

pub(crate) fn signed(
    mut req: Request<Body>,
    credentials: &Credentials,
    config: &S3LockConfig,
    payload_sha256_hex: &str,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "condlock",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(config.region())
        .name("s3")
        // The signer panics on dates past year 9999; a store claiming to be at
        // the end of 9999 moves our signing clock there (see `Retry`).
        .time(clamp_to_years_1970_to_9999(signing_time))
        .settings(settings)
        .build()
        .map_err(|e| Error::config("credentials", format!("cannot sign: {e}")))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(&str, &str)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Precomputed(payload_sha256_hex.to_string()),
    )
    .map_err(|e| Error::config("endpoint", format!("cannot sign this request: {e}")))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| Error::config("credentials", format!("cannot sign: {e}")))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut req);
    for (name, value) in req.headers_mut().iter_mut() {
        if name == http::header::AUTHORIZATION || name.as_str() == "x-amz-security-token" {
            value.set_sensitive(true);
        }
    }
    Ok(req)
}
