//! What a binding's user passes, as plain values, and every rule that turns it
//! into a lock: defaults from the environment, which credentials combine,
//! durations, the verification policy, poll-interval limits, lease terms.
//!
//! A binding fills [`S3Settings`] or [`ApstraSettings`] from its own types
//! (keyword arguments, an options object) and calls `resolve` with the
//! environment lookup of its platform (the process environment natively,
//! nothing in a browser). It decides nothing itself: two bindings given the
//! same values get the same lock, the same defaults and the same errors.

use std::time::Duration;

use crate::apstra::{ApstraServer, BlueprintId};
use crate::backoff::Backoff;
use crate::error::Error;
use crate::s3::{
    AcquireOptions, Addressing, Credentials, Encryption, LeaseTerms, S3LockConfig, Takeover,
};
use crate::secret::Secret;
use crate::Wait;

/// A lookup of environment variables (`None`: unset).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The region used when none is given anywhere (as the AWS CLI and Terraform
/// do for S3); a resolution that falls back to it says so.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Credentials a provider gave are kept until this long before they
/// expire, then asked for again: a request is never signed with credentials
/// about to lapse in flight.
pub const CREDENTIALS_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// Credentials a provider gave without an expiry are kept this long: asking
/// a provider before every request would cost a file read or a request each
/// time.
pub const CREDENTIALS_KEPT_WITHOUT_EXPIRY: Duration = Duration::from_secs(900);

/// The shortest pause between attempts a caller may ask for while waiting:
/// shorter would flood the store with requests.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A number of seconds from a binding, checked: positive and finite.
pub fn seconds(field: &'static str, value: f64) -> Result<Duration, Error> {
    if !(value.is_finite() && value > 0.0) {
        return Err(Error::config(
            field,
            format!("must be a positive number of seconds (got {value})"),
        ));
    }
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::config(field, format!("is too large ({value} seconds)")))
}

/// An optional number of seconds.
pub fn optional_seconds(
    field: &'static str,
    value: Option<f64>,
) -> Result<Option<Duration>, Error> {
    value.map(|v| seconds(field, v)).transpose()
}

/// How long to wait for a holder, from the two things every lock API takes:
/// whether to wait at all, and a timeout in seconds (`None`: forever).
///
/// A timeout with `blocking = false` is refused (a try makes one attempt);
/// a negative timeout other than `-1` (Python's `threading.Lock` "forever")
/// and NaN are refused; an infinite or astronomically long one means forever.
pub fn wait_policy(blocking: bool, timeout: Option<f64>) -> Result<Wait, Error> {
    match (blocking, timeout) {
        (false, None) => Ok(Wait::No),
        (false, Some(_)) => Err(Error::config(
            "timeout",
            "cannot be given with blocking=False (a non-blocking acquire makes one attempt)",
        )),
        (true, None) => Ok(Wait::Forever),
        (true, Some(-1.0)) => Ok(Wait::Forever),
        (true, Some(t)) if t.is_nan() || t < 0.0 => Err(Error::config(
            "timeout",
            format!("must be a number of seconds >= 0, or None to wait forever (got {t})"),
        )),
        (true, Some(t)) => Ok(Duration::try_from_secs_f64(t).map_or(Wait::Forever, Wait::For)),
    }
}

/// `max_poll_interval`: seconds, at least [`MIN_POLL_INTERVAL`].
pub fn poll_interval(value: f64) -> Result<Duration, Error> {
    let d = seconds("max_poll_interval", value)?;
    if d < MIN_POLL_INTERVAL {
        return Err(Error::config(
            "max_poll_interval",
            format!(
                "must be at least {} seconds (got {value}): shorter floods the store while \
                 waiting",
                MIN_POLL_INTERVAL.as_secs_f64()
            ),
        ));
    }
    Ok(d)
}

/// Cap the pause between attempts at `max` (the first one too), when given.
pub fn cap_backoff(backoff: &mut Backoff, max: Option<Duration>) {
    if let Some(max) = max {
        backoff.max = max;
        backoff.initial = backoff.initial.min(max);
    }
}

fn nonempty(field: &'static str, value: Option<String>) -> Result<Option<String>, Error> {
    match value {
        Some(s) if s.trim().is_empty() => Err(Error::config(
            field,
            "must not be empty when given (omit it instead)",
        )),
        other => Ok(other),
    }
}

fn env_first(env: EnvLookup<'_>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
}

/// Transport settings a binding passes to its HTTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportSettings {
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

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            verify_tls: true,
            ca_bundle_pem: None,
        }
    }
}

/// Which credentials the user gave.
#[derive(Clone, Debug, Default)]
pub struct CredentialSettings {
    /// `access_key_id`.
    pub access_key_id: Option<String>,
    /// `secret_access_key`.
    pub secret_access_key: Option<Secret>,
    /// `session_token`.
    pub session_token: Option<Secret>,
    /// The name of a credentials provider the binding was given (a boto3
    /// session, an SDK provider function), if one was: its argument name,
    /// for messages.
    pub provider: Option<&'static str>,
}

/// Where the credentials will come from, once the combination is checked.
#[derive(Clone, Debug)]
pub enum CredentialPlan {
    /// Fixed keys.
    Static(Credentials),
    /// The provider the binding was given.
    Provider,
    /// The standard AWS chain (environment, profiles, SSO, metadata).
    AwsChain,
}

impl CredentialSettings {
    /// Check the combination: keys in pairs, a session token only with keys,
    /// keys or a provider, not both.
    pub fn plan(self) -> Result<CredentialPlan, Error> {
        let explicit = self.access_key_id.is_some() || self.secret_access_key.is_some();
        match (self.access_key_id, self.secret_access_key, self.provider) {
            (_, _, Some(provider)) if explicit => Err(Error::config(
                provider,
                "cannot be combined with access_key_id/secret_access_key: give one or the other",
            )),
            (_, _, Some(provider)) => match self.session_token {
                Some(_) => Err(Error::config(
                    "session_token",
                    format!("cannot be combined with {provider} (it has its own)"),
                )),
                None => Ok(CredentialPlan::Provider),
            },
            (Some(id), Some(secret), None) => Ok(CredentialPlan::Static(Credentials::new(
                id,
                secret,
                self.session_token,
            )?)),
            (Some(_), None, None) => Err(Error::config(
                "secret_access_key",
                "is required when access_key_id is given",
            )),
            (None, Some(_), None) => Err(Error::config(
                "access_key_id",
                "is required when secret_access_key is given",
            )),
            (None, None, None) => match self.session_token {
                Some(_) => Err(Error::config(
                    "session_token",
                    "needs access_key_id and secret_access_key",
                )),
                None => Ok(CredentialPlan::AwsChain),
            },
        }
    }
}

/// Region and endpoint of the selected AWS profile (`~/.aws/config` or
/// `AWS_CONFIG_FILE`), as the platform read them (natively:
/// `native::aws_profile_values`; in a browser there is none). They come after
/// explicit values and the environment, as in boto3 and the AWS CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsProfileValues {
    /// The profile they were read from (`AWS_PROFILE`, or `default`), for messages.
    pub profile: Option<String>,
    /// Its `region`.
    pub region: Option<String>,
    /// Its S3 endpoint: `endpoint_url` of its `services` section's `s3`
    /// subsection, else its own `endpoint_url`.
    pub endpoint: Option<String>,
}

/// Everything a user can pass to create an S3 lock, as plain values.
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// The state's bucket.
    pub bucket: String,
    /// The state key (`.tflock` is added).
    pub key: String,
    /// Region; default from `AWS_REGION`, `AWS_DEFAULT_REGION`, then the
    /// AWS profile's `region` ([`Self::aws_profile`]), then
    /// [`DEFAULT_REGION`] (logged at INFO, naming what was looked at).
    pub region: Option<String>,
    /// Endpoint URL; default from `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
    /// then the AWS profile's S3 endpoint; none of them when
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`.
    pub endpoint: Option<String>,
    /// Region and endpoint of the selected AWS profile (empty: none read).
    pub aws_profile: AwsProfileValues,
    /// Credentials.
    pub credentials: CredentialSettings,
    /// Terraform workspace.
    pub workspace: Option<String>,
    /// Terraform's `workspace_key_prefix`.
    pub workspace_key_prefix: Option<String>,
    /// SSE-C key (base64 of 32 bytes, or 32 raw bytes).
    pub sse_customer_key: Option<Secret>,
    /// KMS key ID (needs `encrypt`).
    pub kms_key_id: Option<String>,
    /// Terraform's `encrypt`: SSE (AES256, or KMS with `kms_key_id`).
    pub encrypt: bool,
    /// Canned ACL.
    pub acl: Option<String>,
    /// Object tags.
    pub tags: Vec<(String, String)>,
    /// Send a SHA-256 checksum (default true; Object Lock buckets need one).
    pub checksum: Option<bool>,
    /// Path-style addressing (default: the endpoint decides).
    pub path_style: Option<bool>,
    /// LockInfo `Operation` (default `condlock`).
    pub operation: Option<String>,
    /// LockInfo `Info`.
    pub info: Option<String>,
    /// LockInfo `Who` (default: the platform's `user@hostname`).
    pub who: Option<String>,
    /// `once` (default), `always`, `never`.
    pub verify_conditional_writes: Option<String>,
    /// Per-request timeout, seconds.
    pub request_timeout: Option<f64>,
    /// Connect timeout, seconds.
    pub connect_timeout: Option<f64>,
    /// Verify TLS (default true).
    pub verify_tls: Option<bool>,
    /// Extra PEM certificates to trust.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Longest pause between attempts while waiting, seconds.
    pub max_poll_interval: Option<f64>,
    /// Hold locks with a lease of this many seconds.
    pub lease: Option<f64>,
    /// Take over locks whose lease expired (needs `lease`: refused without).
    pub takeover: bool,
    /// Take over locks without a lease (Terraform's) after this many seconds.
    pub stale_after: Option<f64>,
    /// Terraform's `dynamodb_table`: also take the DynamoDB lock item there
    /// (leases and takeovers are then refused).
    pub dynamodb_table: Option<String>,
    /// DynamoDB endpoint URL (Terraform's `endpoints.dynamodb`); default from
    /// `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, else the region's.
    pub dynamodb_endpoint: Option<String>,
    /// Terraform's `use_lockfile`: take the S3 lock file (default true;
    /// false needs `dynamodb_table`).
    pub use_lockfile: Option<bool>,
}

/// An S3 lock, resolved: what a binding builds its lock from.
#[derive(Clone, Debug)]
pub struct S3Resolved {
    /// The lock target.
    pub config: S3LockConfig,
    /// Where credentials come from.
    pub credentials: CredentialPlan,
    /// The region actually used (for the AWS chain too).
    pub region: String,
    /// When to prove conditional writes.
    pub verify: crate::drive::s3::VerifyConditionalWrites,
    /// HTTP client settings.
    pub transport: TransportSettings,
    /// The options of every acquisition (its `wait` is set per call).
    pub acquire: AcquireOptions,
}

impl S3Settings {
    /// Apply defaults from `env` and every rule; `default_who` is the
    /// platform's `user@hostname`, used when `who` is not given.
    pub fn resolve(self, env: EnvLookup<'_>, default_who: &str) -> Result<S3Resolved, Error> {
        let profile = self.aws_profile;
        let region = self
            .region
            .or_else(|| env_first(env, &["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .or(profile.region);
        let region = match region {
            Some(r) => r,
            None => {
                let looked_in = match &profile.profile {
                    Some(p) => format!(", the region of AWS profile {p:?}"),
                    None => String::new(),
                };
                log::info!(
                    "no region given (region=, AWS_REGION, AWS_DEFAULT_REGION{looked_in}): \
                     using {DEFAULT_REGION}"
                );
                DEFAULT_REGION.to_string()
            }
        };
        // As the AWS SDKs: this switch turns off the configured endpoints
        // (environment and profile), never an explicit one.
        let configured_endpoints = !env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let endpoint = self.endpoint.or_else(|| {
            configured_endpoints
                .then(|| {
                    env_first(env, &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
                        .or(profile.endpoint)
                })
                .flatten()
        });
        let mut b = S3LockConfig::builder(self.bucket, self.key)
            .region(region.clone())
            .checksum(self.checksum.unwrap_or(true));
        if let Some(ws) = self.workspace {
            b = b.workspace(ws);
        }
        if let Some(p) = self.workspace_key_prefix {
            b = b.workspace_key_prefix(p);
        }
        if let Some(e) = endpoint {
            b = b.endpoint(e);
        }
        if let Some(ps) = self.path_style {
            b = b.addressing(if ps {
                Addressing::PathStyle
            } else {
                Addressing::VirtualHosted
            });
        }
        match (self.encrypt, nonempty("kms_key_id", self.kms_key_id)?) {
            (false, Some(_)) => return Err(Error::config("kms_key_id", "requires encrypt=True")),
            (true, Some(k)) => b = b.encryption(Encryption::Kms { key_id: Some(k) }),
            (true, None) if self.sse_customer_key.is_none() => {
                b = b.encryption(Encryption::S3Managed)
            }
            _ => {}
        }
        if let Some(k) = self.sse_customer_key {
            b = b.sse_customer_key(k);
        }
        if let Some(acl) = self.acl {
            b = b.acl(acl);
        }
        for (k, v) in self.tags {
            b = b.tag(k, v);
        }
        let dynamodb_table = nonempty("dynamodb_table", self.dynamodb_table)?;
        if let Some(table) = &dynamodb_table {
            b = b.dynamodb_table(table.clone());
            let endpoint = self
                .dynamodb_endpoint
                .or_else(|| env_first(env, &["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]));
            if let Some(e) = endpoint {
                b = b.dynamodb_endpoint(e);
            }
            if self.lease.is_some() || self.takeover || self.stale_after.is_some() {
                return Err(Error::config(
                    if self.lease.is_some() {
                        "lease"
                    } else {
                        "takeover"
                    },
                    "leases and takeovers are not supported with a DynamoDB lock table \
                     (dynamodb_table): the item cannot be renewed or taken over; drop them, \
                     or the table",
                ));
            }
        } else if let Some(e) = self.dynamodb_endpoint {
            b = b.dynamodb_endpoint(e);
        }
        if let Some(on) = self.use_lockfile {
            b = b.lock_file(on);
        }
        let config = b.build()?;
        let credentials = self.credentials.plan()?;
        let verify = match self.verify_conditional_writes.as_deref() {
            None => Default::default(),
            Some(s) => s.parse()?,
        };
        let mut transport = TransportSettings {
            verify_tls: self.verify_tls.unwrap_or(true),
            ca_bundle_pem: self.ca_bundle_pem,
            ..TransportSettings::default()
        };
        if let Some(t) = optional_seconds("request_timeout", self.request_timeout)? {
            transport.request_timeout = t;
        }
        if let Some(t) = optional_seconds("connect_timeout", self.connect_timeout)? {
            transport.connect_timeout = t;
        }
        let operation = self.operation.unwrap_or_else(|| "condlock".to_string());
        if operation.trim().is_empty() {
            return Err(Error::config("operation", "must not be empty"));
        }
        let who = match self.who {
            Some(w) if w.trim().is_empty() => {
                return Err(Error::config("who", "must not be empty when given"))
            }
            Some(w) => w,
            None => default_who.to_string(),
        };
        let lease = match optional_seconds("lease", self.lease)? {
            Some(d) => {
                let terms = LeaseTerms::new(d);
                terms.validate()?;
                Some(terms)
            }
            None => None,
        };
        let takeover = Takeover {
            expired_leases: self.takeover,
            stale_without_lease: optional_seconds("stale_after", self.stale_after)?,
        };
        if takeover.expired_leases && lease.is_none() {
            // Taking over an expired lease with a lock that never expires
            // would end the lease scheme for every later waiter: a takeover
            // must leave a lock that can expire (and be taken over) in turn.
            return Err(Error::config(
                "takeover",
                "takeover needs lease: set lease (seconds) as well, so that the lock taken \
                 over is held with a lease in turn (to take over locks WITHOUT a lease, use \
                 stale_after instead)",
            ));
        }
        let mut acquire = AcquireOptions::new(who);
        acquire.operation = operation;
        acquire.info = self.info.unwrap_or_default();
        acquire.lease = lease;
        acquire.takeover = takeover;
        let max_poll = self.max_poll_interval.map(poll_interval).transpose()?;
        cap_backoff(&mut acquire.wait_backoff, max_poll);
        Ok(S3Resolved {
            config,
            credentials,
            region,
            verify,
            transport,
            acquire,
        })
    }
}

/// Everything a user can pass to reach an Apstra server, as plain values.
#[derive(Clone, Debug, Default)]
pub struct ApstraSettings {
    /// Base URL (default `APSTRA_URL`); may carry `user:pass@`.
    pub url: Option<String>,
    /// Username (default `APSTRA_USER`).
    pub username: Option<String>,
    /// Password (default `APSTRA_PASS`).
    pub password: Option<Secret>,
    /// Verify TLS (default: on unless `APSTRA_TLS_VALIDATION_DISABLED`).
    pub verify_tls: Option<bool>,
    /// Extra PEM certificates to trust.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Per-request timeout, seconds (default `APSTRA_API_TIMEOUT`, 10 s).
    pub request_timeout: Option<f64>,
}

impl ApstraSettings {
    /// Apply the provider's environment defaults and every rule.
    pub fn resolve(self, env: EnvLookup<'_>) -> Result<ApstraServer, Error> {
        let mut b = ApstraServer::builder().defaults_from(env);
        if let Some(u) = self.url {
            b = b.url(u);
        }
        if let Some(u) = self.username {
            b = b.username(u);
        }
        if let Some(p) = self.password {
            b = b.password(p);
        }
        if let Some(v) = self.verify_tls {
            b = b.verify_tls(v);
        }
        if let Some(pem) = self.ca_bundle_pem {
            b = b.ca_bundle_pem(pem);
        }
        if let Some(t) = optional_seconds("request_timeout", self.request_timeout)? {
            b = b.request_timeout(t);
        }
        b.build()
    }
}

impl ApstraSettings {
    /// A mutex given an existing client (its server and session) must not
    /// also be given server settings: refuse the combination, naming what
    /// was given. `transport` says whether a transport was given too.
    pub fn check_unused_with_client(&self, transport: bool) -> Result<(), Error> {
        let given: Vec<&str> = [
            ("url", self.url.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
            ("verify_tls", self.verify_tls.is_some()),
            ("ca_bundle", self.ca_bundle_pem.is_some()),
            ("request_timeout", self.request_timeout.is_some()),
            ("transport", transport),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if given.is_empty() {
            return Ok(());
        }
        Err(Error::config(
            "client",
            format!(
                "cannot be combined with {} (the client has its own server settings): give \
                 one or the other",
                given.join(", ")
            ),
        ))
    }
}

/// An age in seconds from a binding (`older_than`): zero or more.
pub fn age(field: &'static str, value: f64) -> Result<Duration, Error> {
    if value == 0.0 {
        return Ok(Duration::ZERO);
    }
    seconds(field, value)
}

/// The options of an Apstra mutex, as plain values.
#[derive(Clone, Debug, Default)]
pub struct MutexSettings {
    /// The blueprint ID.
    pub blueprint_id: String,
    /// The holder message template (default: see
    /// [`crate::drive::apstra::default_message`]).
    pub message: Option<String>,
    /// Wait for Apstra's own blueprint lock first (default true, as the SDK).
    pub wait_for_blueprint_unlock: Option<bool>,
    /// Longest pause between attempts while waiting, seconds.
    pub max_poll_interval: Option<f64>,
}

/// An Apstra mutex, resolved.
#[derive(Clone, Debug)]
pub struct MutexResolved {
    /// The blueprint.
    pub blueprint: BlueprintId,
    /// The message template, if one was given.
    pub message: Option<String>,
    /// The options of every acquisition (its `wait` and message are set per
    /// call).
    pub acquire: crate::apstra::AcquireOptions,
}

impl MutexSettings {
    /// Check the blueprint ID and message, and build the acquire options.
    pub fn resolve(self) -> Result<MutexResolved, Error> {
        let blueprint = BlueprintId::new(self.blueprint_id)?;
        if let Some(m) = &self.message {
            check_message(m)?;
        }
        let mut acquire =
            crate::apstra::AcquireOptions::new(self.message.clone().unwrap_or_default());
        if let Some(w) = self.wait_for_blueprint_unlock {
            acquire.wait_for_blueprint_unlock = w;
        }
        let max_poll = self.max_poll_interval.map(poll_interval).transpose()?;
        cap_backoff(&mut acquire.wait_backoff, max_poll);
        Ok(MutexResolved {
            blueprint,
            message: self.message,
            acquire,
        })
    }
}

/// The longest holder message accepted (Apstra stores descriptions as text;
/// a megabyte of message is a mistake).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// A holder message template: not huge, no control characters other than
/// tab (Apstra's UI shows it as is, on one line).
pub fn check_message(message: &str) -> Result<(), Error> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(Error::config(
            "message",
            format!(
                "is {} bytes long; keep it under {MAX_MESSAGE_LEN}",
                message.len()
            ),
        ));
    }
    if let Some(c) = message.chars().find(|c| c.is_control() && *c != '\t') {
        return Err(Error::config(
            "message",
            format!(
                "must not contain control characters (found {c:?}; it is shown as is by \
                 Apstra's UI)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn wait_policy_follows_threading_lock() {
        assert_eq!(wait_policy(false, None).unwrap(), Wait::No);
        assert_eq!(wait_policy(true, None).unwrap(), Wait::Forever);
        assert_eq!(wait_policy(true, Some(-1.0)).unwrap(), Wait::Forever);
        assert_eq!(
            wait_policy(true, Some(f64::INFINITY)).unwrap(),
            Wait::Forever
        );
        assert_eq!(
            wait_policy(true, Some(2.5)).unwrap(),
            Wait::For(Duration::from_millis(2500))
        );
        for bad in [
            wait_policy(false, Some(1.0)),
            wait_policy(true, Some(-2.0)),
            wait_policy(true, Some(f64::NAN)),
        ] {
            assert_eq!(bad.unwrap_err().field(), Some("timeout"));
        }
    }

    #[test]
    fn region_and_endpoint_come_from_the_environment_when_not_given() {
        let env = |k: &str| match k {
            "AWS_DEFAULT_REGION" => Some("eu-west-3".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".to_string()),
            _ => None,
        };
        let r = S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            ..Default::default()
        }
        .resolve(&env, "me@host")
        .unwrap();
        assert_eq!(r.region, "eu-west-3");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9000");
        assert_eq!(r.acquire.who, "me@host");
        let r = S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            region: Some("ap-south-1".into()),
            ..Default::default()
        }
        .resolve(&no_env, "me@host")
        .unwrap();
        assert_eq!(r.region, "ap-south-1");
    }

    #[test]
    fn a_dynamodb_table_adds_the_item_with_its_own_endpoint() {
        let env = |k: &str| match k {
            "AWS_ENDPOINT_URL_DYNAMODB" => Some("http://127.0.0.1:8000".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".to_string()),
            _ => None,
        };
        let base = || S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            dynamodb_table: Some("tf-locks".into()),
            ..Default::default()
        };
        let r = base().resolve(&env, "me@host").unwrap();
        let table = r.config.dynamodb().expect("the table");
        assert_eq!(table.table(), "tf-locks");
        assert_eq!(table.endpoint_display(), "http://127.0.0.1:8000");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9000");
        assert!(r.config.lock_file());
        let item_only = S3Settings {
            use_lockfile: Some(false),
            ..base()
        }
        .resolve(&no_env, "me@host")
        .unwrap();
        assert!(!item_only.config.lock_file());
        assert_eq!(
            item_only.config.dynamodb().unwrap().endpoint_display(),
            "https://dynamodb.us-east-1.amazonaws.com"
        );
        // Refused: nothing to lock, a lease or a takeover with a table.
        let nothing = S3Settings {
            use_lockfile: Some(false),
            dynamodb_table: None,
            ..base()
        };
        assert_eq!(
            nothing.resolve(&no_env, "me@host").unwrap_err().field(),
            Some("use_lockfile")
        );
        let leased = S3Settings {
            lease: Some(30.0),
            ..base()
        };
        assert_eq!(
            leased.resolve(&no_env, "me@host").unwrap_err().field(),
            Some("lease")
        );
        let takeover = S3Settings {
            takeover: true,
            ..base()
        };
        assert_eq!(
            takeover.resolve(&no_env, "me@host").unwrap_err().field(),
            Some("takeover")
        );
        let bad = S3Settings {
            dynamodb_table: Some("x".into()),
            ..base()
        };
        assert_eq!(
            bad.resolve(&no_env, "me@host").unwrap_err().field(),
            Some("dynamodb_table")
        );
    }

    #[test]
    fn the_aws_profile_comes_after_explicit_values_and_the_environment() {
        let profile = AwsProfileValues {
            profile: Some("dev".into()),
            region: Some("eu-central-1".into()),
            endpoint: Some("http://127.0.0.1:9100".into()),
        };
        let settings = |region: Option<&str>, endpoint: Option<&str>| S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            region: region.map(String::from),
            endpoint: endpoint.map(String::from),
            aws_profile: profile.clone(),
            ..Default::default()
        };
        let r = settings(None, None).resolve(&no_env, "me@host").unwrap();
        assert_eq!(r.region, "eu-central-1");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9100");

        let env = |k: &str| match k {
            "AWS_REGION" => Some("eu-west-3".to_string()),
            "AWS_ENDPOINT_URL_S3" => Some("http://127.0.0.1:9000".to_string()),
            _ => None,
        };
        let r = settings(None, None).resolve(&env, "me@host").unwrap();
        assert_eq!(r.region, "eu-west-3");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9000");

        let r = settings(Some("ap-south-1"), Some("http://127.0.0.1:9200"))
            .resolve(&env, "me@host")
            .unwrap();
        assert_eq!(r.region, "ap-south-1");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9200");

        let ignore = |k: &str| match k {
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" => Some("true".to_string()),
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9000".to_string()),
            _ => None,
        };
        let r = settings(None, None).resolve(&ignore, "me@host").unwrap();
        assert_eq!(
            r.config.endpoint_display(),
            "https://s3.eu-central-1.amazonaws.com"
        );
        let r = settings(None, Some("http://127.0.0.1:9200"))
            .resolve(&ignore, "me@host")
            .unwrap();
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:9200");

        let r = S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            ..Default::default()
        }
        .resolve(&no_env, "me@host")
        .unwrap();
        assert_eq!(r.region, DEFAULT_REGION);
    }

    #[test]
    fn credentials_combine_only_in_pairs() {
        let plan = |id: Option<&str>, secret: Option<&str>, token: Option<&str>, provider| {
            CredentialSettings {
                access_key_id: id.map(String::from),
                secret_access_key: secret.map(Secret::new),
                session_token: token.map(Secret::new),
                provider,
            }
            .plan()
        };
        assert!(matches!(
            plan(Some("a"), Some("s"), None, None),
            Ok(CredentialPlan::Static(_))
        ));
        assert!(matches!(
            plan(None, None, None, None),
            Ok(CredentialPlan::AwsChain)
        ));
        assert!(matches!(
            plan(None, None, None, Some("boto3_session")),
            Ok(CredentialPlan::Provider)
        ));
        let field = |r: Result<CredentialPlan, Error>| r.unwrap_err().field();
        assert_eq!(
            field(plan(Some("a"), None, None, None)),
            Some("secret_access_key")
        );
        assert_eq!(
            field(plan(None, Some("s"), None, None)),
            Some("access_key_id")
        );
        assert_eq!(
            field(plan(None, None, Some("t"), None)),
            Some("session_token")
        );
        assert_eq!(
            field(plan(Some("a"), Some("s"), None, Some("boto3_session"))),
            Some("boto3_session")
        );
        assert_eq!(
            field(plan(None, None, Some("t"), Some("boto3_session"))),
            Some("session_token")
        );
    }

    #[test]
    fn durations_and_policies_are_checked_with_the_field_named() {
        let base = || S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            ..Default::default()
        };
        let field = |s: S3Settings| s.resolve(&no_env, "w@h").unwrap_err().field();
        assert_eq!(
            field(S3Settings {
                lease: Some(0.0),
                ..base()
            }),
            Some("lease")
        );
        assert_eq!(
            field(S3Settings {
                lease: Some(0.5),
                ..base()
            }),
            Some("lease")
        );
        assert_eq!(
            field(S3Settings {
                max_poll_interval: Some(1e-9),
                ..base()
            }),
            Some("max_poll_interval")
        );
        assert_eq!(
            field(S3Settings {
                request_timeout: Some(f64::NAN),
                ..base()
            }),
            Some("request_timeout")
        );
        assert_eq!(
            field(S3Settings {
                verify_conditional_writes: Some("sometimes".into()),
                ..base()
            }),
            Some("verify_conditional_writes")
        );
        assert_eq!(
            field(S3Settings {
                kms_key_id: Some("k".into()),
                ..base()
            }),
            Some("kms_key_id")
        );
        assert_eq!(
            field(S3Settings {
                who: Some(" ".into()),
                ..base()
            }),
            Some("who")
        );
        let r = S3Settings {
            max_poll_interval: Some(0.2),
            lease: Some(30.0),
            ..base()
        }
        .resolve(&no_env, "w@h")
        .unwrap();
        assert_eq!(r.acquire.wait_backoff.max, Duration::from_millis(200));
        assert_eq!(r.acquire.lease.unwrap().duration, Duration::from_secs(30));
    }

    #[test]
    fn takeover_needs_a_lease_of_our_own() {
        let base = || S3Settings {
            bucket: "tfstate".into(),
            key: "k".into(),
            takeover: true,
            ..Default::default()
        };
        let err = base().resolve(&no_env, "w@h").unwrap_err();
        assert_eq!(err.field(), Some("takeover"));
        let message = err.to_string();
        assert!(message.contains("lease"), "{message}");
        // With stale_after alone it is still refused: stale_after does not
        // need takeover, and takeover still leaves a lock that never expires.
        let err = S3Settings {
            stale_after: Some(60.0),
            ..base()
        }
        .resolve(&no_env, "w@h")
        .unwrap_err();
        assert_eq!(err.field(), Some("takeover"));
        let ok = S3Settings {
            lease: Some(30.0),
            ..base()
        }
        .resolve(&no_env, "w@h")
        .unwrap();
        assert!(ok.acquire.takeover.expired_leases);
    }

    #[test]
    fn a_client_excludes_server_settings() {
        let none = ApstraSettings::default();
        assert!(none.check_unused_with_client(false).is_ok());
        let err = none.check_unused_with_client(true).unwrap_err();
        assert_eq!(err.field(), Some("client"));
        let err = ApstraSettings {
            url: Some("https://apstra".into()),
            request_timeout: Some(3.0),
            ..Default::default()
        }
        .check_unused_with_client(false)
        .unwrap_err();
        assert!(err.to_string().contains("url, request_timeout"), "{err}");
    }

    #[test]
    fn ages_may_be_zero() {
        assert_eq!(age("older_than", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(age("older_than", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(
            age("older_than", -1.0).unwrap_err().field(),
            Some("older_than")
        );
    }

    #[test]
    fn messages_are_checked() {
        assert!(check_message("deploying $CI_JOB_ID at $DATE").is_ok());
        assert!(check_message("line\nbreak").is_err());
        assert!(check_message("a\u{0}b").is_err());
        assert!(check_message(&"x".repeat(MAX_MESSAGE_LEN + 1)).is_err());
    }
}
