//! Where a lock lives and how to talk to its store: the S3 lock target.
//!
//! Lock key rules follow Terraform's S3 backend so that our lock is the lock
//! `terraform apply` takes: the lock object is `<state key>.tflock`, and a
//! workspace `W` other than `default` moves the state key under
//! `<workspace_key_prefix>/W/` (prefix `env:` by default).

use std::fmt;

use crate::endpoint::{BaseUrl, HostKind};
use crate::error::Error;
use crate::secret::Secret;
use base64::Engine as _;
use md5::Digest as _;

/// AWS credentials used to sign requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (not secret; shown in logs as-is).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
}

impl Credentials {
    /// Validated credentials: key id and secret must be non-empty.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
        session_token: Option<Secret>,
    ) -> Result<Self, Error> {
        let access_key_id = access_key_id.into();
        let secret_access_key = secret_access_key.into();
        if access_key_id.trim().is_empty() {
            return Err(Error::config("access_key_id", "must not be empty"));
        }
        if secret_access_key.is_blank() {
            return Err(Error::config("secret_access_key", "must not be empty"));
        }
        if session_token.as_ref().is_some_and(Secret::is_blank) {
            return Err(Error::config(
                "session_token",
                "must not be empty when given (omit it instead)",
            ));
        }
        Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token,
        })
    }
}

/// Server-side encryption of the lock object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// The bucket's default.
    #[default]
    None,
    /// `x-amz-server-side-encryption: AES256` (SSE-S3).
    S3Managed,
    /// `aws:kms`, with an optional key id (else the account's default key).
    Kms {
        /// KMS key id or ARN.
        key_id: Option<String>,
    },
    /// SSE-C: a 256-bit key held by the client, sent with every PUT and GET.
    CustomerKey(SseCustomerKey),
}

/// An SSE-C key: the base64 key (secret) and its base64 MD5 (not secret).
#[derive(Clone, PartialEq, Eq)]
pub struct SseCustomerKey {
    key_base64: Secret,
    key_md5_base64: String,
}

impl SseCustomerKey {
    /// Parse Terraform's `sse_customer_key`: base64 of exactly 32 bytes.
    pub fn from_base64(key: &Secret) -> Result<Self, Error> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(key.expose().trim())
            .map_err(|_| Error::config("sse_customer_key", "is not valid base64"))?;
        if raw.len() != 32 {
            return Err(Error::config(
                "sse_customer_key",
                format!("must decode to 32 bytes (AES-256), got {}", raw.len()),
            ));
        }
        let md5 = md5::Md5::digest(&raw);
        Ok(SseCustomerKey {
            key_base64: Secret::new(base64::engine::general_purpose::STANDARD.encode(&raw)),
            key_md5_base64: base64::engine::general_purpose::STANDARD.encode(md5),
        })
    }

    pub(crate) fn key_base64(&self) -> &Secret {
        &self.key_base64
    }

    pub(crate) fn key_md5_base64(&self) -> &str {
        &self.key_md5_base64
    }
}

impl fmt::Debug for SseCustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseCustomerKey")
            .field("key", &"<redacted>")
            .field("key_md5", &self.key_md5_base64)
            .finish()
    }
}

/// How the bucket appears in URLs on a custom endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Addressing {
    /// `https://bucket.host/key` (AWS default).
    #[default]
    VirtualHosted,
    /// `https://host/bucket/key` (most S3-compatible stores, local servers).
    PathStyle,
}

/// Canned ACLs S3 accepts in `x-amz-acl`.
pub const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// A validated S3 lock target. Build it with [`S3LockConfig::builder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3LockConfig {
    pub(crate) bucket: String,
    pub(crate) state_key: String,
    pub(crate) lock_key: String,
    pub(crate) region: String,
    /// Base URL without credentials, query or fragment; `None` means AWS.
    pub(crate) endpoint: Option<BaseUrl>,
    pub(crate) addressing: Addressing,
    pub(crate) encryption: Encryption,
    pub(crate) acl: Option<String>,
    /// `x-amz-tagging` value, already URL-encoded.
    pub(crate) tagging: Option<String>,
    pub(crate) checksum: bool,
    /// The lock object's URL, computed once.
    pub(crate) lock_url: String,
    /// Whether the lock file is taken (Terraform's `use_lockfile`); false
    /// only with a DynamoDB table.
    pub(crate) lock_file: bool,
    /// Terraform's `dynamodb_table`: the lock item taken after the file.
    pub(crate) dynamodb: Option<std::sync::Arc<crate::dynamodb::DynamoDbTable>>,
}

impl S3LockConfig {
    /// Start describing a lock on `state_key` in `bucket` (the lock object is
    /// `<state key>.tflock`).
    pub fn builder(bucket: impl Into<String>, state_key: impl Into<String>) -> S3LockConfigBuilder {
        S3LockConfigBuilder {
            bucket: bucket.into(),
            key: state_key.into(),
            workspace: None,
            workspace_key_prefix: "env:".to_string(),
            region: "us-east-1".to_string(),
            endpoint: None,
            addressing: None,
            encryption: Encryption::None,
            sse_customer_key: None,
            acl: None,
            tags: Vec::new(),
            checksum: true,
            lock_file: true,
            dynamodb_table: None,
            dynamodb_endpoint: None,
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
    /// The state key after workspace expansion (what Terraform calls the path).
    pub fn state_key(&self) -> &str {
        &self.state_key
    }
    /// The lock object key: state key + `.tflock`.
    pub fn lock_key(&self) -> &str {
        &self.lock_key
    }
    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// Whether the S3 lock file is taken (false: the DynamoDB item only).
    pub fn lock_file(&self) -> bool {
        self.lock_file
    }
    /// The DynamoDB lock table, when the lock includes its item.
    pub fn dynamodb(&self) -> Option<&std::sync::Arc<crate::dynamodb::DynamoDbTable>> {
        self.dynamodb.as_ref()
    }
    /// What is locked, for messages: the lock file's URI, the DynamoDB item,
    /// or both.
    pub fn target_display(&self) -> String {
        let file = format!("s3://{}/{}", self.bucket, self.lock_key);
        match (&self.dynamodb, self.lock_file) {
            (None, _) => file,
            (Some(t), true) => format!(
                "{file} and DynamoDB item {} in table {}",
                self.lock_info_path(),
                t.table()
            ),
            (Some(t), false) => format!(
                "DynamoDB item {} in table {}",
                self.lock_info_path(),
                t.table()
            ),
        }
    }
    /// `Path` as Terraform records it in LockInfo: `<bucket>/<state key>`.
    pub fn lock_info_path(&self) -> String {
        format!("{}/{}", self.bucket, self.state_key)
    }
    /// The lock object's URL.
    pub fn lock_url(&self) -> &str {
        &self.lock_url
    }
    /// The bucket's URL (ending in `/`), where bucket-level requests such as
    /// `ListObjectsV2` go: the lock URL without the key.
    pub fn bucket_url(&self) -> String {
        lock_url(
            self.endpoint.as_ref(),
            self.addressing,
            &self.region,
            &self.bucket,
            "",
        )
    }
    /// The endpoint for messages: never contains credentials.
    pub fn endpoint_display(&self) -> String {
        match &self.endpoint {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("https://s3.{}.amazonaws.com", self.region),
        }
    }
    /// The encryption settings.
    pub fn encryption(&self) -> &Encryption {
        &self.encryption
    }
}

/// Builder for [`S3LockConfig`]; `build()` validates every field.
#[derive(Clone, Debug)]
pub struct S3LockConfigBuilder {
    bucket: String,
    key: String,
    workspace: Option<String>,
    workspace_key_prefix: String,
    region: String,
    endpoint: Option<String>,
    addressing: Option<Addressing>,
    encryption: Encryption,
    sse_customer_key: Option<Secret>,
    acl: Option<String>,
    tags: Vec<(String, String)>,
    checksum: bool,
    lock_file: bool,
    dynamodb_table: Option<String>,
    dynamodb_endpoint: Option<String>,
}

impl S3LockConfigBuilder {
    /// Terraform workspace; `default` (or none) uses the key as is.
    pub fn workspace(mut self, workspace: impl Into<String>) -> Self {
        self.workspace = Some(workspace.into());
        self
    }
    /// Terraform's `workspace_key_prefix` (default `env:`; may be empty).
    pub fn workspace_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.workspace_key_prefix = prefix.into();
        self
    }
    /// Signing region (default `us-east-1`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }
    /// A custom endpoint URL (S3-compatible store). Defaults to path-style
    /// addressing unless [`Self::addressing`] says otherwise.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }
    /// Path-style or virtual-hosted URLs.
    pub fn addressing(mut self, addressing: Addressing) -> Self {
        self.addressing = Some(addressing);
        self
    }
    /// SSE-S3 (`AES256`) or SSE-KMS. For SSE-C use [`Self::sse_customer_key`].
    pub fn encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = encryption;
        self
    }
    /// SSE-C key, base64 of 32 bytes (Terraform's `sse_customer_key`).
    pub fn sse_customer_key(mut self, key: impl Into<Secret>) -> Self {
        self.sse_customer_key = Some(key.into());
        self
    }
    /// Canned ACL for the lock object (`x-amz-acl`).
    pub fn acl(mut self, acl: impl Into<String>) -> Self {
        self.acl = Some(acl.into());
        self
    }
    /// A tag on the lock object (`x-amz-tagging`), as OpenTofu's lock tags.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }
    /// Send `x-amz-checksum-sha256` with lock writes (default on; Object Lock
    /// buckets refuse writes without a checksum).
    pub fn checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// Also take Terraform's DynamoDB lock item in this table (the s3
    /// backend's `dynamodb_table`): after the lock file, released after it.
    /// Leases are refused with a table (see [`crate::drive::s3::S3Lock`]).
    pub fn dynamodb_table(mut self, table: impl Into<String>) -> Self {
        self.dynamodb_table = Some(table.into());
        self
    }
    /// The DynamoDB endpoint (Terraform's `endpoints.dynamodb`,
    /// `AWS_ENDPOINT_URL_DYNAMODB`); default: the region's AWS endpoint.
    pub fn dynamodb_endpoint(mut self, url: impl Into<String>) -> Self {
        self.dynamodb_endpoint = Some(url.into());
        self
    }
    /// Whether to take the S3 lock file (Terraform's `use_lockfile`; default
    /// true). Turning it off needs a DynamoDB table: then only the item is
    /// taken, as Terraform does with `dynamodb_table` alone.
    pub fn lock_file(mut self, on: bool) -> Self {
        self.lock_file = on;
        self
    }

    /// Validate everything and produce the target.
    pub fn build(self) -> Result<S3LockConfig, Error> {
        validate_bucket(&self.bucket)?;
        validate_state_key(&self.key)?;
        validate_region(&self.region)?;
        validate_workspace_prefix(&self.workspace_key_prefix)?;
        let state_key = match self.workspace.as_deref() {
            None | Some("default") => self.key.clone(),
            Some(ws) => {
                validate_workspace(ws)?;
                if self.workspace_key_prefix.is_empty() {
                    format!("{ws}/{}", self.key)
                } else {
                    format!("{}/{ws}/{}", self.workspace_key_prefix, self.key)
                }
            }
        };
        let lock_key = format!("{state_key}.tflock");
        if lock_key.len() > 1024 {
            return Err(Error::config(
                "key",
                format!(
                    "the lock key would be {} bytes; S3 allows 1024",
                    lock_key.len()
                ),
            ));
        }
        let endpoint = self.endpoint.as_deref().map(parse_endpoint).transpose()?;
        let addressing = self.addressing.unwrap_or(if endpoint.is_some() {
            Addressing::PathStyle
        } else {
            Addressing::VirtualHosted
        });
        if let (Some(url), Addressing::VirtualHosted) = (&endpoint, addressing) {
            if url.host_kind() != HostKind::Domain {
                // `locks.127.0.0.1` is neither an address nor a name.
                return Err(Error::config(
                    "addressing",
                    format!(
                        "virtual-hosted addressing puts the bucket in the host name, which \
                         the IP address endpoint {} cannot have: use path-style addressing",
                        url.as_str().trim_end_matches('/')
                    ),
                ));
            }
        }
        let encryption = match (self.sse_customer_key, self.encryption) {
            (None, enc) => enc,
            (Some(key), Encryption::None) => {
                Encryption::CustomerKey(SseCustomerKey::from_base64(&key)?)
            }
            (Some(_), _) => {
                return Err(Error::config(
                    "encryption",
                    "an SSE-C customer key cannot be combined with SSE-S3 or SSE-KMS",
                ))
            }
        };
        if let Encryption::Kms { key_id: Some(k) } = &encryption {
            if k.trim().is_empty() {
                return Err(Error::config("kms_key_id", "must not be empty when given"));
            }
        }
        if let Some(acl) = &self.acl {
            if !CANNED_ACLS.contains(&acl.as_str()) {
                return Err(Error::config(
                    "acl",
                    format!(
                        "{acl:?} is not a canned ACL (one of {})",
                        CANNED_ACLS.join(", ")
                    ),
                ));
            }
        }
        let tagging = encode_tags(&self.tags)?;
        let lock_url = lock_url(
            endpoint.as_ref(),
            addressing,
            &self.region,
            &self.bucket,
            &lock_key,
        );
        check_lock_url(&lock_url)?;
        let dynamodb = match (&self.dynamodb_table, &self.dynamodb_endpoint) {
            (Some(table), endpoint) => Some(std::sync::Arc::new(
                crate::dynamodb::DynamoDbTable::new(table, endpoint.as_deref(), &self.region)?,
            )),
            (None, Some(_)) => {
                return Err(Error::config(
                    "dynamodb_endpoint",
                    "is set without dynamodb_table: name the table too, or drop the endpoint",
                ))
            }
            (None, None) => None,
        };
        if !self.lock_file && dynamodb.is_none() {
            return Err(Error::config(
                "use_lockfile",
                "is off and no dynamodb_table is set: nothing would be locked; keep the lock \
                 file, or name the DynamoDB table",
            ));
        }
        Ok(S3LockConfig {
            bucket: self.bucket,
            state_key,
            lock_key,
            region: self.region,
            endpoint,
            addressing,
            encryption,
            acl: self.acl,
            tagging,
            checksum: self.checksum,
            lock_url,
            lock_file: self.lock_file,
            dynamodb,
        })
    }
}

/// S3 bucket naming rules (general purpose buckets).
fn validate_bucket(bucket: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::config("bucket", format!("{bucket:?} {why}")));
    if bucket.len() < 3 || bucket.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("may contain only lowercase letters, digits, '.' and '-'");
    }
    let first = bucket.as_bytes()[0];
    let last = bucket.as_bytes()[bucket.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must begin and end with a letter or digit");
    }
    if bucket.contains("..") {
        return bad("must not contain two adjacent periods");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("must not be formatted as an IP address");
    }
    Ok(())
}

/// Terraform's rules for the S3 backend `key`, plus what keeps the request on
/// this exact object (see [`check_path_part`]).
fn validate_state_key(key: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::config("key", format!("{key:?} {why}")));
    if key.is_empty() {
        return bad("must not be empty");
    }
    check_path_part("key", key)?;
    if let Some(state_key) = key.strip_suffix(".tflock") {
        // The lock would be `<key>.tflock.tflock`, which Terraform never reads.
        return bad(&format!(
            "ends in .tflock: pass the state key ({state_key:?}), condlock adds .tflock"
        ));
    }
    Ok(())
}

fn validate_workspace(ws: &str) -> Result<(), Error> {
    if ws.is_empty() || ws.contains('/') {
        return Err(Error::config(
            "workspace",
            format!("{ws:?} must be non-empty and contain no '/'"),
        ));
    }
    check_path_part("workspace", ws)
}

fn validate_workspace_prefix(prefix: &str) -> Result<(), Error> {
    // Empty is allowed: the workspace then comes first (`<ws>/<key>`).
    if prefix.is_empty() {
        return Ok(());
    }
    check_path_part("workspace_key_prefix", prefix)
}

/// Rules shared by the pieces of the lock key (key, workspace prefix,
/// workspace): no leading, trailing or doubled `/` (Terraform's rules), no
/// control characters, and no `.` or `..` segment. URL parsers (the `url`
/// crate under reqwest, browsers, proxies) resolve those segments before
/// sending, so `a/../b` would lock `b` and `../other/k` on a path-style
/// endpoint would lock `k` in bucket `other`. Percent-encoding does not help:
/// `%2e%2e` is a dot segment too. Terraform's keys never contain them.
fn check_path_part(field: &'static str, value: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::config(field, format!("{value:?} {why}")));
    if value.starts_with('/') || value.ends_with('/') {
        return bad("must not start or end with '/'");
    }
    if value.contains("//") {
        return bad("must not contain '//'");
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return bad(&format!(
            "contains the control character {c:?}: remove it (S3 keys and Terraform paths \
             have none)"
        ));
    }
    if value
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return bad(
            "contains a '.' or '..' path segment, which URL normalisation would resolve \
             to another object (or another bucket): name the state key without it, as \
             Terraform does",
        );
    }
    Ok(())
}

fn validate_region(region: &str) -> Result<(), Error> {
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::config(
            "region",
            format!("{region:?} is not a region name (like us-east-1)"),
        ));
    }
    Ok(())
}

/// Parse a custom endpoint without ever echoing credentials it may contain.
///
/// Anything a URL parser would silently rewrite is refused rather than
/// rewritten: `\\` (read as `/`), tabs and newlines (dropped), `.`/`..` path
/// segments (resolved), so the base URL we print is the one the user wrote.
pub(crate) fn parse_endpoint(raw: &str) -> Result<BaseUrl, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::config("endpoint", "must not be empty"));
    }
    // Before any message quotes the value: an '@' may follow a password
    // (`user:pass@host`), even without a scheme (`user:pass@host:9000`).
    if raw.contains('@') {
        return Err(Error::config(
            "endpoint",
            "must not contain '@' (credentials such as user:password@ are not taken from \
             the endpoint; pass them as credentials instead). The value is not shown: \
             it may contain a secret",
        ));
    }
    if raw.contains('?') || raw.contains('#') {
        // Not quoted either: a query may carry a presigned signature.
        return Err(Error::config(
            "endpoint",
            "must not have a query (?...) or fragment (#...): give the base URL only, \
             like http://127.0.0.1:9000",
        ));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(Error::config(
            "endpoint",
            format!("{raw:?} contains the control character {c:?}"),
        ));
    }
    let lower = raw.to_ascii_lowercase();
    if !raw.contains('\\') && !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(Error::config("endpoint", scheme_hint(raw)));
    }
    BaseUrl::parse(raw, false)
        .map(|(url, _)| url)
        .map_err(|reason| Error::config("endpoint", format!("{raw:?} {reason}")))
}

/// Why an endpoint without `http://` or `https://` is refused, with the
/// corrected value when adding `http://` makes it a URL (`127.0.0.1:5077`,
/// `localhost:5077`: the second even parses as a URL of scheme `localhost`).
fn scheme_hint(raw: &str) -> String {
    if let Some((scheme, _)) = raw.split_once("://") {
        return format!("{raw:?}: the scheme must be http or https, not {scheme:?}");
    }
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("http:") || lower.starts_with("https:") {
        return format!("{raw:?} must start with http:// or https://");
    }
    let fixed = format!("http://{raw}");
    if BaseUrl::parse(&fixed, false).is_ok() {
        format!("{raw:?} has no scheme: write \"{fixed}\" (or https:// if the store speaks TLS)")
    } else {
        format!("{raw:?} is not a URL: it must start with http:// or https://")
    }
}

/// The lock URL must come back from URL parsing exactly as we built it: no
/// segment resolved, nothing re-encoded, the host unchanged. Validation of
/// every piece guarantees this; the check makes a gap in it a clear error
/// instead of a request to another object.
fn check_lock_url(lock_url: &str) -> Result<(), Error> {
    let reparsed = BaseUrl::parse(lock_url, false);
    let same = reparsed.is_ok_and(|(u, _)| u.as_str() == lock_url);
    let uri_ok = lock_url.parse::<http::Uri>().is_ok();
    if !same || !uri_ok {
        return Err(Error::config(
            "key",
            format!(
                "the lock URL {lock_url} would be rewritten by URL parsing; \
                 use a plainer key, bucket or endpoint"
            ),
        ));
    }
    Ok(())
}

/// Characters S3 leaves unencoded in an object key path: RFC 3986 unreserved
/// plus '/'. Everything else (including ':' and spaces) is percent-encoded once,
/// which is also what SigV4 for S3 expects in the canonical URI.
const S3_KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Encode an object key for a URL path.
pub fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, S3_KEY).to_string()
}

fn lock_url(
    endpoint: Option<&BaseUrl>,
    addressing: Addressing,
    region: &str,
    bucket: &str,
    key: &str,
) -> String {
    let key = encode_key(key);
    match endpoint {
        None => match addressing {
            Addressing::VirtualHosted if !bucket.contains('.') => {
                format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
            }
            // Dotted bucket names break TLS with virtual hosts: AWS itself
            // recommends path style for them.
            _ => format!("https://s3.{region}.amazonaws.com/{bucket}/{key}"),
        },
        Some(url) => {
            let base_path = url.path().trim_end_matches('/');
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let host = url.host_str();
            match addressing {
                Addressing::PathStyle => {
                    format!("{}://{host}{port}{base_path}/{bucket}/{key}", url.scheme())
                }
                Addressing::VirtualHosted => {
                    format!("{}://{bucket}.{host}{port}{base_path}/{key}", url.scheme())
                }
            }
        }
    }
}

const TAG_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode_tags(tags: &[(String, String)]) -> Result<Option<String>, Error> {
    if tags.is_empty() {
        return Ok(None);
    }
    if tags.len() > 10 {
        return Err(Error::config(
            "tags",
            "S3 allows at most 10 tags per object",
        ));
    }
    let mut parts = Vec::with_capacity(tags.len());
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(Error::config(
                "tags",
                format!("tag key {k:?} must be 1 to 128 characters"),
            ));
        }
        if v.chars().count() > 256 {
            return Err(Error::config(
                "tags",
                format!("value of tag {k:?} exceeds 256 characters"),
            ));
        }
        parts.push(format!(
            "{}={}",
            percent_encoding::utf8_percent_encode(k, TAG_VALUE),
            percent_encoding::utf8_percent_encode(v, TAG_VALUE)
        ));
    }
    Ok(Some(parts.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(err: Error) -> &'static str {
        match err {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn workspace_keys_follow_terraform() {
        let c = S3LockConfig::builder("b-1", "path/to/key")
            .workspace("dev")
            .build()
            .unwrap();
        assert_eq!(c.lock_key(), "env:/dev/path/to/key.tflock");
        assert_eq!(c.lock_info_path(), "b-1/env:/dev/path/to/key");
        let c = S3LockConfig::builder("b-1", "path/to/key")
            .workspace("dev")
            .workspace_key_prefix("")
            .build()
            .unwrap();
        assert_eq!(c.lock_key(), "dev/path/to/key.tflock");
        let c = S3LockConfig::builder("b-1", "k")
            .workspace("default")
            .build()
            .unwrap();
        assert_eq!(c.lock_key(), "k.tflock");
    }

    #[test]
    fn urls_encode_the_key_once() {
        let c = S3LockConfig::builder("bucket", "a b/ü.tfstate")
            .workspace("dev")
            .endpoint("http://127.0.0.1:9000/base/")
            .build()
            .unwrap();
        assert_eq!(
            c.lock_url(),
            "http://127.0.0.1:9000/base/bucket/env%3A/dev/a%20b/%C3%BC.tfstate.tflock"
        );
        let aws = S3LockConfig::builder("bucket", "k")
            .region("eu-west-1")
            .build()
            .unwrap();
        assert_eq!(
            aws.lock_url(),
            "https://bucket.s3.eu-west-1.amazonaws.com/k.tflock"
        );
        let dotted = S3LockConfig::builder("my.bucket", "k").build().unwrap();
        assert_eq!(
            dotted.lock_url(),
            "https://s3.us-east-1.amazonaws.com/my.bucket/k.tflock"
        );
        let vh = S3LockConfig::builder("bucket", "k")
            .endpoint("https://minio.local:9000")
            .addressing(Addressing::VirtualHosted)
            .build()
            .unwrap();
        assert_eq!(vh.lock_url(), "https://bucket.minio.local:9000/k.tflock");
    }

    #[test]
    fn bad_input_names_the_field() {
        let b = |bucket: &str, key: &str| S3LockConfig::builder(bucket, key);
        for bucket in [
            "",
            "ab",
            "Upper",
            "-lead",
            "trail-",
            "a..b",
            "192.168.1.1",
            "under_score",
        ] {
            assert_eq!(
                field(b(bucket, "k").build().unwrap_err()),
                "bucket",
                "{bucket}"
            );
        }
        for key in ["", "/lead", "trail/", "a//b"] {
            assert_eq!(field(b("bucket", key).build().unwrap_err()), "key", "{key}");
        }
        assert_eq!(
            field(b("bucket", &"k".repeat(1020)).build().unwrap_err()),
            "key"
        );
        assert_eq!(
            field(b("bucket", "k").workspace("a/b").build().unwrap_err()),
            "workspace"
        );
        assert_eq!(
            field(
                b("bucket", "k")
                    .workspace("w")
                    .workspace_key_prefix("/env")
                    .build()
                    .unwrap_err()
            ),
            "workspace_key_prefix"
        );
        assert_eq!(
            field(b("bucket", "k").region("US East").build().unwrap_err()),
            "region"
        );
        assert_eq!(
            field(b("bucket", "k").acl("world-writable").build().unwrap_err()),
            "acl"
        );
        for url in ["not a url", "ftp://h/", "http://", "http://h/?x=1"] {
            assert_eq!(
                field(b("bucket", "k").endpoint(url).build().unwrap_err()),
                "endpoint",
                "{url}"
            );
        }
        assert_eq!(
            field(b("bucket", "k").tag("", "v").build().unwrap_err()),
            "tags"
        );
        assert_eq!(
            field(
                b("bucket", "k")
                    .sse_customer_key("short")
                    .build()
                    .unwrap_err()
            ),
            "sse_customer_key"
        );
        assert_eq!(
            field(
                b("bucket", "k")
                    .sse_customer_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
                    .encryption(Encryption::S3Managed)
                    .build()
                    .unwrap_err()
            ),
            "encryption"
        );
        assert_eq!(
            field(Credentials::new("", "s", None).unwrap_err()),
            "access_key_id"
        );
        assert_eq!(
            field(Credentials::new("AK", " ", None).unwrap_err()),
            "secret_access_key"
        );
        assert_eq!(
            field(Credentials::new("AK", "s", Some(Secret::new(""))).unwrap_err()),
            "session_token"
        );
    }

    fn reason(err: Error) -> (&'static str, String) {
        match err {
            Error::InvalidConfig { field, reason } => (field, reason),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    /// Reproduced: `../other/x.tfstate` on bucket `locks` wrote
    /// `other/x.tfstate.tflock` in bucket `other` once the HTTP stack
    /// resolved the dot segments.
    #[test]
    fn dot_segments_and_control_characters_are_refused_in_keys() {
        for key in [
            "../other/x.tfstate",
            "a/../b.tfstate",
            "a/./b.tfstate",
            "./x",
            "x/..",
            "..",
            ".",
            "a\0b",
            "a\nb",
            "a\tb",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{9f}b",
        ] {
            let (f, why) = reason(
                S3LockConfig::builder("locks", key)
                    .endpoint("http://127.0.0.1:9000")
                    .build()
                    .unwrap_err(),
            );
            assert_eq!(f, "key", "{key:?}");
            assert!(
                why.contains("'.' or '..' path segment") || why.contains("control character"),
                "{key:?}: {why}"
            );
        }
        for ws in [".", "..", "a\nb", "a\u{1b}b"] {
            let err = S3LockConfig::builder("locks", "k")
                .workspace(ws)
                .build()
                .unwrap_err();
            assert_eq!(field(err), "workspace", "{ws:?}");
        }
        for prefix in ["..", "env/..", "./env", "a/./b", "env\u{0}"] {
            let err = S3LockConfig::builder("locks", "k")
                .workspace("dev")
                .workspace_key_prefix(prefix)
                .build()
                .unwrap_err();
            assert_eq!(field(err), "workspace_key_prefix", "{prefix:?}");
        }
        // Dots inside a segment are ordinary characters.
        for key in ["a/.b/c..d/...", "..a", "a..", ".terraform/x.tfstate"] {
            let c = S3LockConfig::builder("locks", key)
                .workspace("..w")
                .workspace_key_prefix(".env.")
                .build()
                .unwrap();
            assert_eq!(c.lock_key(), format!(".env./..w/{key}.tflock"));
        }
    }

    #[test]
    fn a_key_that_already_ends_in_tflock_is_refused_with_a_hint() {
        let (f, why) = reason(
            S3LockConfig::builder("locks", "envs/dev/terraform.tfstate.tflock")
                .build()
                .unwrap_err(),
        );
        assert_eq!(f, "key");
        assert!(why.contains("pass the state key"), "{why}");
        assert!(why.contains("envs/dev/terraform.tfstate"), "{why}");
    }

    #[test]
    fn an_endpoint_without_scheme_is_shown_with_the_fix() {
        for (raw, want) in [
            ("127.0.0.1:5077", "http://127.0.0.1:5077"),
            ("localhost:5077", "http://localhost:5077"),
            ("minio.local", "http://minio.local"),
            (" 127.0.0.1:5077/base ", "http://127.0.0.1:5077/base"),
        ] {
            let (f, why) = reason(
                S3LockConfig::builder("locks", "k")
                    .endpoint(raw)
                    .build()
                    .unwrap_err(),
            );
            assert_eq!(f, "endpoint");
            assert!(why.contains(raw.trim()), "{raw}: {why}");
            assert!(why.contains(&format!("\"{want}\"")), "{raw}: {why}");
        }
    }

    #[test]
    fn endpoint_credentials_are_never_echoed_even_without_scheme() {
        for raw in [
            "AKIA:hunter2@127.0.0.1:5077",
            "http://AKIA:hunter2@s3.local",
            "http://:hunter2@s3.local",
            "http://hunter2@s3.local",
            "http://h/x@hunter2",
            "s3.local:hunter2@x",
        ] {
            let err = S3LockConfig::builder("locks", "k")
                .endpoint(raw)
                .build()
                .unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains("hunter2"), "{raw}: {text}");
            assert_eq!(field(err), "endpoint", "{raw}");
        }
    }

    #[test]
    fn endpoints_that_url_parsing_would_rewrite_are_refused() {
        for raw in [
            "http://h:9000/?",
            "http://h:9000/#",
            "http://h:9000/base?x",
            "http://h:9000\\base",
            "http://h:9000/a/../b",
            "http://h:9000/a/./b",
            "http://h:9000/base/..",
            "http://h:9000/%2e%2E/b",
            "http://h:9000/.%2e",
            "http://h\n:9000",
            "http://h:9000/a\tb",
        ] {
            let (f, why) = reason(
                S3LockConfig::builder("locks", "k")
                    .endpoint(raw)
                    .build()
                    .unwrap_err(),
            );
            assert_eq!(f, "endpoint", "{raw:?}: {why}");
        }
        // A path prefix is fine and kept as written.
        let c = S3LockConfig::builder("locks", "k")
            .endpoint("http://h:9000/s3/..x/")
            .build()
            .unwrap();
        assert_eq!(c.lock_url(), "http://h:9000/s3/..x/locks/k.tflock");
    }

    #[test]
    fn virtual_hosted_addressing_needs_a_host_name() {
        for raw in ["http://127.0.0.1:9000", "http://[::1]:9000"] {
            let err = S3LockConfig::builder("locks", "k")
                .endpoint(raw)
                .addressing(Addressing::VirtualHosted)
                .build()
                .unwrap_err();
            assert_eq!(field(err), "addressing", "{raw}");
            // Path style on the same endpoint is fine.
            S3LockConfig::builder("locks", "k")
                .endpoint(raw)
                .build()
                .unwrap();
        }
    }

    #[test]
    fn credentials_in_endpoint_are_refused_without_echo() {
        let err = S3LockConfig::builder("bucket", "k")
            .endpoint("https://AKIA:hunter2@s3.local/")
            .build()
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("endpoint"));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn sse_c_key_is_redacted_and_md5_is_computed() {
        let c = S3LockConfig::builder("bucket", "k")
            .sse_customer_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .build()
            .unwrap();
        let Encryption::CustomerKey(key) = c.encryption() else {
            panic!()
        };
        // md5("0123456789abcdef0123456789abcdef"), base64.
        assert_eq!(key.key_md5_base64(), "hRasmdxgYDKV3nvbahU1MA==");
        assert!(!format!("{c:?}").contains("MDEyMzQ1"));
    }

    #[test]
    fn tags_are_url_encoded() {
        let c = S3LockConfig::builder("bucket", "k")
            .tag("team", "infra ops")
            .tag("k&v", "a=b")
            .build()
            .unwrap();
        assert_eq!(c.tagging.as_deref(), Some("team=infra%20ops&k%26v=a%3Db"));
    }
}
