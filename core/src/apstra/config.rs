//! Where the Apstra server is and who we are on it, which blueprint to lock, and
//! the holder message.
//!
//! - [`ApstraServer`]: base URL (scheme, host, optional port and path prefix),
//!   username and password, TLS settings and the per-request timeout. Credentials
//!   may be embedded in the URL, percent-encoded (`https://user:p%40ss@host`):
//!   they are taken out of it and the URL is kept without them. The password is
//!   a [`Secret`]: no `Debug`, `Display` or error ever shows it.
//! - [`BlueprintId`]: a validated blueprint ID; its mutex label is
//!   `blueprint <ID> locked` (at most 64 bytes, as the SDK requires).
//! - [`expand_message`]: the holder message expanded like the Terraform
//!   provider's (Go's `os.ExpandEnv` with `DATE` set to the current UTC time).
//!
//! The environment (`APSTRA_URL`, `APSTRA_USER`, `APSTRA_PASS`, ...) is never
//! read here: [`ApstraServerBuilder::defaults_from`] takes a lookup function, and
//! the native driver passes one that reads the process environment.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::endpoint::BaseUrl;
use crate::error::Error;
use crate::secret::Secret;

/// Environment variable with the base URL (Terraform provider: `APSTRA_URL`).
pub const ENV_URL: &str = "APSTRA_URL";
/// Environment variable with the username (`APSTRA_USER`).
pub const ENV_USER: &str = "APSTRA_USER";
/// Environment variable with the password (`APSTRA_PASS`).
pub const ENV_PASS: &str = "APSTRA_PASS";
/// Environment variable that disables TLS validation when true, parsed like Go's
/// `strconv.ParseBool` (`APSTRA_TLS_VALIDATION_DISABLED`).
pub const ENV_TLS_VALIDATION_DISABLED: &str = "APSTRA_TLS_VALIDATION_DISABLED";
/// Environment variable with the per-request timeout: seconds, or a duration
/// such as `30s` (`APSTRA_API_TIMEOUT`).
pub const ENV_API_TIMEOUT: &str = "APSTRA_API_TIMEOUT";
/// Environment variable with the holder message template
/// (`APSTRA_BLUEPRINT_MUTEX_MESSAGE`).
pub const ENV_MUTEX_MESSAGE: &str = "APSTRA_BLUEPRINT_MUTEX_MESSAGE";

/// Per-request timeout when none is given: 10 s, the provider's default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest label Apstra 4.1 accepts (the SDK refuses longer ones).
pub const MAX_LABEL_LEN: usize = 64;

/// The label text around the blueprint ID: `blueprint <ID> locked`.
pub const LABEL_PREFIX: &str = "blueprint ";
/// See [`LABEL_PREFIX`].
pub const LABEL_SUFFIX: &str = " locked";

/// The longest blueprint ID whose label still fits in [`MAX_LABEL_LEN`].
pub const MAX_BLUEPRINT_ID_LEN: usize = MAX_LABEL_LEN - LABEL_PREFIX.len() - LABEL_SUFFIX.len();

/// The holder message used when none is given: the provider's default with
/// `condlock` in place of `terraform`.
pub const DEFAULT_MESSAGE: &str = "locked by condlock at $DATE";

/// A validated Apstra server: where it is, who we log in as, how we talk to it.
/// Build it with [`ApstraServer::builder`].
#[derive(Clone, PartialEq, Eq)]
pub struct ApstraServer {
    /// Base URL without credentials, query, fragment or trailing `/`.
    base: String,
    username: String,
    password: Secret,
    verify_tls: bool,
    ca_bundle_pem: Option<Vec<u8>>,
    request_timeout: Duration,
}

impl fmt::Debug for ApstraServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApstraServer")
            .field("url", &self.base)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("verify_tls", &self.verify_tls)
            .field(
                "ca_bundle_pem",
                &self
                    .ca_bundle_pem
                    .as_ref()
                    .map(|b| format!("{} bytes", b.len())),
            )
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ApstraServer {
    /// Start describing a server. Every field may also come from the
    /// environment through [`ApstraServerBuilder::defaults_from`].
    pub fn builder() -> ApstraServerBuilder {
        ApstraServerBuilder::default()
    }

    /// The base URL, without credentials and without a trailing `/`
    /// (e.g. `https://apstra.example.com:8443/prefix`). Safe to print.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The username we log in as.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password (redacted when printed).
    pub fn password(&self) -> &Secret {
        &self.password
    }

    /// Whether TLS certificates are verified (true unless explicitly disabled).
    pub fn verify_tls(&self) -> bool {
        self.verify_tls
    }

    /// Extra PEM root certificates to trust, if any.
    pub fn ca_bundle_pem(&self) -> Option<&[u8]> {
        self.ca_bundle_pem.as_deref()
    }

    /// The per-request timeout the driver applies.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The absolute URL of an API path (`/api/...`).
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// Builder of [`ApstraServer`]. Explicit values win over credentials embedded
/// in the URL, which win over the environment.
#[derive(Clone, Default)]
pub struct ApstraServerBuilder {
    // The raw URL may embed a password: kept as a secret until it is parsed.
    url: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
    verify_tls: Option<bool>,
    ca_bundle_pem: Option<Vec<u8>>,
    request_timeout: Option<Duration>,
    env_url: Option<Secret>,
    env_username: Option<String>,
    env_password: Option<Secret>,
    env_tls_disabled: Option<String>,
    env_timeout: Option<String>,
}

impl fmt::Debug for ApstraServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApstraServerBuilder")
            .field(
                "url",
                &self.url.as_ref().map(|_| "<set, may embed credentials>"),
            )
            .field("username", &self.username)
            .field("password", &self.password)
            .field("verify_tls", &self.verify_tls)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl ApstraServerBuilder {
    /// The base URL: `https://host[:port][/prefix]`, optionally with
    /// percent-encoded credentials (`https://user:pass@host`).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(Secret::new(url.into()));
        self
    }

    /// The username (wins over one embedded in the URL).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (wins over one embedded in the URL).
    pub fn password(mut self, password: impl Into<Secret>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Verify TLS certificates (the default). `false` is the explicit opt-out
    /// for appliances with self-signed certificates; prefer [`Self::ca_bundle_pem`].
    pub fn verify_tls(mut self, verify: bool) -> Self {
        self.verify_tls = Some(verify);
        self
    }

    /// Trust these PEM root certificates in addition to the system ones.
    /// With the native transport, a certificate of the bundle that the server
    /// presents as is is accepted too (pinning: its chain, name and dates are
    /// not checked, the handshake signature is): an appliance's self-signed
    /// certificate, as `openssl req -x509` makes it, works as its own bundle,
    /// as it does with curl's `--cacert` or Python's `ssl`.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_bundle_pem = Some(pem.into());
        self
    }

    /// Per-request timeout (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Take defaults from an environment: [`ENV_URL`], [`ENV_USER`],
    /// [`ENV_PASS`], [`ENV_TLS_VALIDATION_DISABLED`] and [`ENV_API_TIMEOUT`].
    /// `lookup` returns a variable's value, `None` when unset (the native
    /// driver passes `std::env::var`). Values set on the builder win.
    pub fn defaults_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        self.env_url = get(ENV_URL).map(Secret::new);
        self.env_username = get(ENV_USER);
        self.env_password = get(ENV_PASS).map(Secret::new);
        self.env_tls_disabled = get(ENV_TLS_VALIDATION_DISABLED);
        self.env_timeout = get(ENV_API_TIMEOUT);
        self
    }

    /// Validate everything. Errors name the field and never contain the
    /// password (nor the URL, which may embed it).
    pub fn build(self) -> Result<ApstraServer, Error> {
        let raw = self
            .url
            .or(self.env_url)
            .ok_or_else(|| Error::config("url", format!("is required (argument or {ENV_URL})")))?;
        let parsed = parse_url(raw.expose())?;

        let username = match (self.username, parsed.username, self.env_username) {
            (Some(u), _, _) | (None, Some(u), _) | (None, None, Some(u)) => u,
            (None, None, None) => {
                return Err(Error::config(
                    "username",
                    format!("is required (argument, in the URL, or {ENV_USER})"),
                ))
            }
        };
        if username.trim().is_empty() {
            return Err(Error::config("username", "must not be empty"));
        }
        if username.chars().any(char::is_control) {
            return Err(Error::config(
                "username",
                "must not contain control characters",
            ));
        }
        let password = match (self.password, parsed.password, self.env_password) {
            (Some(p), _, _) | (None, Some(p), _) | (None, None, Some(p)) => p,
            (None, None, None) => {
                return Err(Error::config(
                    "password",
                    format!("is required (argument, in the URL, or {ENV_PASS})"),
                ))
            }
        };
        if password.expose().is_empty() {
            return Err(Error::config("password", "must not be empty"));
        }

        let verify_tls = match (self.verify_tls, self.env_tls_disabled) {
            (Some(v), _) => v,
            (None, Some(text)) => match parse_go_bool(&text) {
                Some(disabled) => !disabled,
                None => {
                    return Err(Error::config(
                        "verify_tls",
                        format!(
                        "{ENV_TLS_VALIDATION_DISABLED}={text:?} is not a boolean (true/false/1/0)"
                    ),
                    ))
                }
            },
            (None, None) => true,
        };

        let request_timeout = match (self.request_timeout, self.env_timeout) {
            (Some(t), _) => t,
            (None, Some(text)) => parse_timeout(&text).ok_or_else(|| {
                Error::config(
                    "request_timeout",
                    format!("{ENV_API_TIMEOUT}={text:?} is not a duration (seconds, or e.g. 30s)"),
                )
            })?,
            (None, None) => DEFAULT_REQUEST_TIMEOUT,
        };
        if request_timeout.is_zero() {
            return Err(Error::config(
                "request_timeout",
                "must be greater than zero",
            ));
        }

        if let Some(pem) = &self.ca_bundle_pem {
            let text = String::from_utf8_lossy(pem);
            if !text.contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::config(
                    "ca_bundle",
                    "contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
        }

        Ok(ApstraServer {
            base: parsed.base,
            username,
            password,
            verify_tls,
            ca_bundle_pem: self.ca_bundle_pem,
            request_timeout,
        })
    }
}

struct ParsedUrl {
    base: String,
    username: Option<String>,
    password: Option<Secret>,
}

/// Parse the base URL and take the credentials out of it. Error reasons never
/// quote the URL: it may carry a password.
fn parse_url(raw: &str) -> Result<ParsedUrl, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::config("url", "must not be empty"));
    }
    let (url, userinfo) =
        BaseUrl::parse(raw, true).map_err(|reason| Error::config("url", reason))?;
    let decode = |s: &str, what: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                Error::config(
                    "url",
                    format!("the {what} embedded in it is not percent-encoded UTF-8"),
                )
            })
    };
    let username = match userinfo.username {
        "" => None,
        u => Some(decode(u, "user name")?),
    };
    let password = match userinfo.password {
        None | Some("") => None,
        Some(p) => Some(Secret::new(decode(p, "password")?)),
    };
    // Credentials are never kept in the URL we print or send: `BaseUrl`
    // leaves them out.
    let base = url.as_str().trim_end_matches('/').to_string();
    Ok(ParsedUrl {
        base,
        username,
        password,
    })
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `APSTRA_API_TIMEOUT`: whole seconds, or a human duration (`30s`, `1m`).
fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).ok()
}

/// A validated blueprint ID. Its mutex label is `blueprint <ID> locked`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlueprintId(String);

impl BlueprintId {
    /// Validate a blueprint ID: not empty, no white space or control
    /// characters, nothing that would change the API path (`/`, `\\`, `?`,
    /// `#`, `.` alone or `..`), and short enough that its label fits in 64
    /// bytes (the SDK's limit).
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::config("blueprint_id", "must not be empty"));
        }
        if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::config(
                "blueprint_id",
                format!("{id:?} contains white space or control characters"),
            ));
        }
        // The ID is one segment of `/api/blueprints/<ID>/lock-status`: a '/'
        // (or '\\', which URL parsers read as '/') would add segments, '?' and
        // '#' would end the path, and `.`/`..` would be resolved away by URL
        // parsing. Encoding them would still lock a label no Apstra blueprint
        // has, so they are refused.
        if id.contains(['/', '\\', '?', '#']) {
            return Err(Error::config(
                "blueprint_id",
                format!(
                    "{id:?} contains '/', '\\', '?' or '#': give the blueprint's ID alone \
                     (it is one segment of the API path /api/blueprints/<ID>)"
                ),
            ));
        }
        if id == "." || id.contains("..") {
            return Err(Error::config(
                "blueprint_id",
                format!(
                    "{id:?} must not be '.' or contain '..' (URL parsing resolves dot \
                     segments in /api/blueprints/<ID>): give the blueprint's ID alone"
                ),
            ));
        }
        // In bytes, as the Go SDK checks `len(label) > 64`.
        let len = id.len();
        if len > MAX_BLUEPRINT_ID_LEN {
            return Err(Error::config(
                "blueprint_id",
                format!(
                    "is {len} bytes long: the label \"blueprint <id> locked\" would exceed \
                     Apstra's {MAX_LABEL_LEN}-byte limit (at most {MAX_BLUEPRINT_ID_LEN})"
                ),
            ));
        }
        Ok(BlueprintId(id))
    }

    /// The ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The mutex tag label: `blueprint <ID> locked`.
    pub fn label(&self) -> String {
        format!("{LABEL_PREFIX}{}{LABEL_SUFFIX}", self.0)
    }
}

impl fmt::Display for BlueprintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Expand a holder message like the Terraform provider: Go's `os.ExpandEnv`
/// (`$VAR` and `${VAR}`; undefined variables become empty; no escape for `$`;
/// a bad `${...` is dropped) with `DATE` set to `now` in UTC, formatted like
/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 +0000 UTC`.
///
/// `lookup` answers every other variable (the driver passes the process
/// environment), so this stays pure.
pub fn expand_message(
    template: &str,
    now: SystemTime,
    lookup: impl Fn(&str) -> Option<String>,
) -> String {
    let date = format_go_time_utc(now);
    go_expand(template, |name| {
        if name == "DATE" {
            date.clone()
        } else {
            lookup(name).unwrap_or_default()
        }
    })
}

/// Go's `os.Expand`, byte for byte.
fn go_expand(s: &str, mapping: impl Fn(&str) -> String) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut j = 0;
    while j < bytes.len() {
        if bytes[j] == b'$' && j + 1 < bytes.len() {
            out.push_str(&s[i..j]);
            let (name, w) = shell_name(&s[j + 1..]);
            match name {
                Some(name) => out.push_str(&mapping(name)),
                // Valid syntax, but no name: keep the `$`.
                None if w == 0 => out.push('$'),
                // Bad syntax: the characters are eaten.
                None => {}
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

fn is_shell_special(c: u8) -> bool {
    matches!(
        c,
        b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9'
    )
}

/// Go's `getShellName`: the name after a `$` and the bytes it takes.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let b = s.as_bytes();
    if b[0] == b'{' {
        if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
            return (Some(&s[1..2]), 3);
        }
        for (i, &c) in b.iter().enumerate().skip(1) {
            if c == b'}' {
                if i == 1 {
                    return (None, 2); // "${}": eaten
                }
                return (Some(&s[1..i]), i + 1);
            }
        }
        return (None, 1); // "${" without "}": eaten
    }
    if is_shell_special(b[0]) {
        return (Some(&s[0..1]), 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    if n == 0 {
        (None, 0)
    } else {
        (Some(&s[..n]), n)
    }
}

/// A UTC time as Go's `time.Time.String()` prints it:
/// `2026-11-22 03:26:23.961866795 +0000 UTC` (fraction without trailing
/// zeros, none at all on a whole second).
pub fn format_go_time_utc(t: SystemTime) -> String {
    let rfc = crate::time::rfc3339_nanos(t); // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
    let (date, rest) = rfc.split_once('T').unwrap_or((&rfc, ""));
    let rest = rest.trim_end_matches('Z');
    let (clock, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{date} {clock} +0000 UTC")
    } else {
        format!("{date} {clock}.{fraction} +0000 UTC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> &'static str {
        match e {
            Error::InvalidConfig { field, .. } => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    const PASSWORD: &str = "s3cr3t-Pa55!";

    #[test]
    fn go_time_format_matches_time_string() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_983);
        assert_eq!(
            format_go_time_utc(base + Duration::from_nanos(961_866_795)),
            "2026-11-22 03:26:23.961866795 +0000 UTC"
        );
        assert_eq!(
            format_go_time_utc(base + Duration::from_millis(120)),
            "2026-11-22 03:26:23.12 +0000 UTC"
        );
        assert_eq!(format_go_time_utc(base), "2026-11-22 03:26:23 +0000 UTC");
    }

    #[test]
    fn message_expands_like_go_expand_env() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_983);
        let env = |name: &str| match name {
            "USER" => Some("alice".to_string()),
            "CI_JOB" => Some("42".to_string()),
            "DATE" => Some("from the environment".to_string()),
            _ => None,
        };
        let x = |t: &str| expand_message(t, now, env);
        assert_eq!(
            x("locked by terraform at $DATE"),
            "locked by terraform at 2026-11-22 03:26:23 +0000 UTC"
        );
        assert_eq!(x("${USER} job $CI_JOB."), "alice job 42.");
        assert_eq!(x("$USERx"), "", "$USERx is the variable USERx");
        assert_eq!(x("${USER}x"), "alicex");
        assert_eq!(x("$UNDEFINED|${UNDEFINED}|"), "||");
        assert_eq!(x("cost: 5$"), "cost: 5$", "a final $ stays");
        assert_eq!(x("a $ b"), "a $ b", "$ without a name stays");
        assert_eq!(x("a${}b"), "ab", "${{}} is eaten");
        assert_eq!(x("a${USER"), "aUSER", "${{ without }} is eaten");
        assert_eq!(x("$$"), "", "$$ is the special variable $");
        assert_eq!(x("$1x"), "x", "$1 is a special variable");
        assert_eq!(x("${*}"), "");
        assert_eq!(x("héllo ${USER} ünïcode $"), "héllo alice ünïcode $");
        assert_eq!(x("no variables"), "no variables");
    }

    #[test]
    fn url_credentials_are_extracted_decoded_and_removed() {
        let s = ApstraServer::builder()
            .url("https://ops%40corp:p%40ss%3Aw%2Frd%25@apstra.example.com:8443/prefix/")
            .build()
            .unwrap();
        assert_eq!(s.url(), "https://apstra.example.com:8443/prefix");
        assert_eq!(s.username(), "ops@corp");
        assert_eq!(s.password().expose(), "p@ss:w/rd%");
        assert_eq!(
            s.api_url("/api/design/tags"),
            "https://apstra.example.com:8443/prefix/api/design/tags"
        );
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("p@ss") && !dbg.contains("p%40ss"), "{dbg}");
        assert!(s.verify_tls());
        assert_eq!(s.request_timeout(), DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn a_url_with_an_unencoded_slash_in_its_password_is_refused_unquoted() {
        // The host becomes "admin", the port 12 and the path "/ss@host".
        let err = ApstraServer::builder()
            .url("https://admin:12/ss@apstra.example.com")
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("percent-encode"), "{text}");
        assert!(!text.contains("12/ss") && !text.contains("ss@"), "{text}");
        assert_eq!(field(err), "url");
    }

    #[test]
    fn explicit_credentials_win_over_url_which_wins_over_env() {
        let env = |name: &str| match name {
            ENV_URL => Some("http://env-host".to_string()),
            ENV_USER => Some("env-user".to_string()),
            ENV_PASS => Some("env-pass".to_string()),
            _ => None,
        };
        let s = ApstraServer::builder().defaults_from(env).build().unwrap();
        assert_eq!(
            (s.url(), s.username(), s.password().expose()),
            ("http://env-host", "env-user", "env-pass")
        );
        let s = ApstraServer::builder()
            .url("http://u:p@host")
            .defaults_from(env)
            .build()
            .unwrap();
        assert_eq!((s.username(), s.password().expose()), ("u", "p"));
        let s = ApstraServer::builder()
            .url("http://u:p@host")
            .username("arg")
            .password("argpass")
            .defaults_from(env)
            .build()
            .unwrap();
        assert_eq!((s.username(), s.password().expose()), ("arg", "argpass"));
    }

    #[test]
    fn tls_and_timeout_from_env_and_arguments() {
        let env = |tls: &'static str, timeout: &'static str| {
            move |name: &str| match name {
                ENV_TLS_VALIDATION_DISABLED => Some(tls.to_string()),
                ENV_API_TIMEOUT => Some(timeout.to_string()),
                _ => None,
            }
        };
        let b = || {
            ApstraServer::builder()
                .url("https://h")
                .username("u")
                .password("p")
        };
        let s = b().defaults_from(env("true", "30")).build().unwrap();
        assert!(!s.verify_tls());
        assert_eq!(s.request_timeout(), Duration::from_secs(30));
        let s = b().defaults_from(env("0", "1m")).build().unwrap();
        assert!(s.verify_tls());
        assert_eq!(s.request_timeout(), Duration::from_secs(60));
        let s = b()
            .verify_tls(true)
            .request_timeout(Duration::from_secs(3))
            .defaults_from(env("true", "30"))
            .build()
            .unwrap();
        assert!(s.verify_tls());
        assert_eq!(s.request_timeout(), Duration::from_secs(3));
        assert_eq!(
            field(b().defaults_from(env("maybe", "1")).build().unwrap_err()),
            "verify_tls"
        );
        assert_eq!(
            field(b().defaults_from(env("1", "soon")).build().unwrap_err()),
            "request_timeout"
        );
        assert_eq!(
            field(b().request_timeout(Duration::ZERO).build().unwrap_err()),
            "request_timeout"
        );
        assert_eq!(
            field(
                b().ca_bundle_pem(b"not a pem".to_vec())
                    .build()
                    .unwrap_err()
            ),
            "ca_bundle"
        );
    }

    #[test]
    fn bad_config_names_the_field_and_never_shows_the_password() {
        let cases: Vec<(ApstraServerBuilder, &str)> = vec![
            (ApstraServer::builder(), "url"),
            (ApstraServer::builder().url(""), "url"),
            (
                ApstraServer::builder().url(format!("apstra.example.com:{PASSWORD}")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("https://admin:{PASSWORD}@")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("https://admin:{PASSWORD}@host:99999")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("ftp://admin:{PASSWORD}@host")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("https://admin:{PASSWORD}@host/?x=1")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("https://admin:{PASSWORD}@host/#frag")),
                "url",
            ),
            (
                ApstraServer::builder().url(format!("https://admin:{PASSWORD}%FF@host")),
                "url",
            ),
            (
                ApstraServer::builder()
                    .url("https://host")
                    .password(PASSWORD),
                "username",
            ),
            (
                ApstraServer::builder()
                    .url("https://host")
                    .username(" ")
                    .password(PASSWORD),
                "username",
            ),
            (
                ApstraServer::builder().url("https://admin@host"),
                "password",
            ),
            (
                ApstraServer::builder()
                    .url("https://admin@host")
                    .password(""),
                "password",
            ),
        ];
        for (builder, want) in cases {
            let dbg = format!("{builder:?}");
            assert!(!dbg.contains(PASSWORD), "builder Debug leaks: {dbg}");
            let err = builder.build().unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(!text.contains(PASSWORD), "error leaks the password: {text}");
            assert!(!text.contains("s3cr3t"), "error leaks the password: {text}");
            assert_eq!(field(err), want);
        }
    }

    #[test]
    fn blueprint_ids_are_validated() {
        let bp = BlueprintId::new("801a43ec-96ea-4f08-aa04-1f1faaeeeaf1").unwrap();
        assert_eq!(
            bp.label(),
            "blueprint 801a43ec-96ea-4f08-aa04-1f1faaeeeaf1 locked"
        );
        let longest = "x".repeat(MAX_BLUEPRINT_ID_LEN);
        assert_eq!(BlueprintId::new(longest.clone()).unwrap().label().len(), 64);
        // The limit is in bytes, as the SDK's `len()`: 47 'é' are 94 bytes.
        let wide = "é".repeat(47);
        for bad in ["", "a b", "a\tb", "x\n", &format!("{longest}y"), &wide] {
            let err = BlueprintId::new(bad).unwrap_err();
            assert!(err.to_string().contains("blueprint_id"), "{err}");
            assert_eq!(field(err), "blueprint_id");
        }
    }

    /// The ID is one segment of `/api/blueprints/<ID>/lock-status`: nothing in
    /// it may add a segment, resolve one away, or end the path.
    #[test]
    fn blueprint_ids_that_would_change_the_url_path_are_refused() {
        for bad in [
            "a/b", "../x", "..", ".", "a..b", "bp?1", "bp#1", "a\\b", "\u{7f}", "\u{85}x",
        ] {
            let (f, why) = match BlueprintId::new(bad).unwrap_err() {
                Error::InvalidConfig { field, reason } => (field, reason),
                other => panic!("{other:?}"),
            };
            assert_eq!(f, "blueprint_id", "{bad:?}");
            assert!(why.contains(&format!("{bad:?}")), "{bad:?}: {why}");
        }
        for good in [
            "801a43ec-96ea-4f08-aa04-1f1faaeeeaf1",
            "bp-old",
            "a.b",
            "x_y:z",
        ] {
            BlueprintId::new(good).unwrap();
        }
    }

    #[test]
    fn go_time_format_never_panics_outside_1970_to_9999() {
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(format_go_time_utc(before), "1970-01-01 00:00:00 +0000 UTC");
        let after = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert!(format_go_time_utc(after).starts_with("9999-12-31 23:59:59."));
    }

    #[test]
    fn go_bools() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false));
        }
        assert_eq!(parse_go_bool("yes"), None);
    }
}
