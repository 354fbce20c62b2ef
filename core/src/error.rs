//! The one error type of condlock. Every failure names what went wrong and,
//! where it can, what to do about it. No variant ever carries a secret.

use std::time::Duration;

use crate::apstra::Blocker;
use crate::s3::LockHolder;

/// Everything that can go wrong in condlock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid. `field` names it.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `bucket` or `endpoint`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// The lock is held by someone else and the caller did not want to wait.
    #[error("lock is held{}", holder_suffix(.holder))]
    Held {
        /// Who holds it, when that could be read.
        holder: Option<Box<LockHolder>>,
    },

    /// The wait ran out while someone else held the lock.
    #[error("timed out after {waited:?} waiting for the lock{}", holder_suffix(.holder))]
    Timeout {
        /// How long we waited.
        waited: Duration,
        /// The last holder we saw, if any.
        holder: Option<Box<LockHolder>>,
    },

    /// The caller cancelled the operation. Any lock we may have written was
    /// read back and removed before this was returned.
    #[error("operation cancelled")]
    Cancelled,

    /// The store accepted a second `If-None-Match: *` write of an existing lock:
    /// it ignores conditional writes, so it cannot provide mutual exclusion. The
    /// lock we wrote was removed.
    #[error(
        "the store at {endpoint} (bucket {bucket}) ignores If-None-Match: it cannot provide a lock; \
         use a store that enforces conditional writes, or opt out of verification explicitly"
    )]
    ConditionalWritesUnsupported {
        /// The endpoint (without credentials).
        endpoint: String,
        /// The bucket.
        bucket: String,
    },

    /// The lock exists but belongs to someone else: we did not touch it.
    #[error("the lock is not ours{}", holder_suffix(.holder))]
    NotOwned {
        /// The current holder, when it could be read.
        holder: Option<Box<LockHolder>>,
    },

    /// Credentials were refused or lack permission (403 and friends).
    #[error("access denied ({code}): {message}{}", hint_suffix(.code))]
    AccessDenied {
        /// The S3 error code, e.g. `SignatureDoesNotMatch`.
        code: String,
        /// The server's message.
        message: String,
    },

    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket {
        /// The bucket named in the configuration.
        bucket: String,
    },

    /// The bucket lives in another region than the one configured.
    #[error("bucket {bucket} is not in region {configured}{}", match .actual { Some(r) => format!("; it is in {r}: set region = \"{r}\""), None => String::new() })]
    WrongRegion {
        /// The bucket.
        bucket: String,
        /// The configured region.
        configured: String,
        /// The region the server named, if it did.
        actual: Option<String>,
    },

    /// The server kept failing (5xx, throttling, 409) until the deadline.
    #[error("server error {status} ({code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// S3 error code, if any.
        code: String,
        /// The server's message.
        message: String,
    },

    /// The server refused the request for a reason condlock cannot fix by retrying.
    #[error("request rejected with {status} ({code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// S3 error code, if any.
        code: String,
        /// The server's message.
        message: String,
    },

    /// The transport kept failing until the deadline, or failed in a way
    /// retrying cannot help.
    #[error("transport error: {message}")]
    Transport {
        /// What the transport reported.
        message: String,
        /// Whether the last request may have reached the server (false when
        /// it certainly never left: connection refused, DNS failure).
        maybe_sent: bool,
        /// Whether retrying cannot help (certificate rejected, unknown host
        /// name, the caller's own transport broken).
        permanent: bool,
    },

    /// The server answered something condlock cannot interpret.
    #[error("malformed response: {what}")]
    MalformedResponse {
        /// What was wrong with it.
        what: String,
    },

    /// The API was used out of order (a bug in the caller or a binding).
    #[error("misuse: {0}")]
    Misuse(&'static str),

    /// This process asked for a lock it already holds (through the same lock
    /// object or another one naming the same lock), from the same thread or
    /// task. A distributed lock is not re-entrant: the acquisition would wait
    /// for ourselves forever, so it is refused at once.
    #[error("the lock is already held by this thread or task: it is not re-entrant")]
    NotReentrant,

    /// A lock we held with a lease was lost; `reason` says how.
    #[error("the lock was lost ({reason})")]
    Lost {
        /// Stolen, gone, or renewal failed.
        reason: crate::s3::LostReason,
    },

    /// The Apstra blueprint mutex is held (or Apstra's own blueprint lock is
    /// taken by another user) and the caller did not want to wait.
    #[error("blueprint {blueprint} is locked: {blocker}")]
    BlueprintLocked {
        /// The blueprint ID.
        blueprint: String,
        /// Who or what holds it.
        blocker: Box<Blocker>,
    },

    /// The wait for an Apstra blueprint mutex ran out.
    #[error("timed out after {waited:?} waiting for blueprint {blueprint}{}", blocker_suffix(.blocker))]
    BlueprintLockTimeout {
        /// The blueprint ID.
        blueprint: String,
        /// How long we waited.
        waited: Duration,
        /// The last holder we saw, if any.
        blocker: Option<Box<Blocker>>,
    },

    /// Apstra refused the login (401 or 403 at login): wrong username or
    /// password. The password is never part of this error.
    #[error(
        "{url} refused the login of user {username:?}: {message} (check the username and password)"
    )]
    LoginRefused {
        /// The server's base URL (without credentials).
        url: String,
        /// The username we tried.
        username: String,
        /// The server's message.
        message: String,
    },

    /// The blueprint does not exist on this Apstra server (its lock-status is 404).
    #[error("blueprint {blueprint} does not exist on {url}")]
    NoSuchBlueprint {
        /// The server's base URL (without credentials).
        url: String,
        /// The blueprint ID.
        blueprint: String,
    },

    /// The store answered `412 Precondition Failed` to `PUT If-None-Match: *`
    /// round after round although reading the lock found none: it refuses
    /// conditional creates (or evaluates `If-None-Match` wrongly), so this
    /// lock can never be taken there. Nothing was written.
    #[error(
        "the store at {endpoint} (bucket {bucket}) answers 412 Precondition Failed to \
         If-None-Match although no lock exists: it cannot provide a lock; use a store that \
         supports conditional writes"
    )]
    ConditionalCreateRefused {
        /// The endpoint (without credentials).
        endpoint: String,
        /// The bucket.
        bucket: String,
    },

    /// With both the S3 lock file and the DynamoDB item: `error` is what
    /// decided the outcome, `context` says which of the two it concerns and
    /// what became of the other (given back, released, or failed too). Every
    /// accessor ([`Error::code`], [`Error::holder`]...) answers for `error`.
    #[error("{context}: {error}")]
    Paired {
        /// Which lock failed, and what became of the other.
        context: String,
        /// The error that decides the outcome.
        error: Box<Error>,
    },
}

/// Which lock an error is about, for [`Error::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The lock kind.
    pub kind: Kind,
    /// The lock, e.g. `s3://tfstate/envs/dev/terraform.tfstate.tflock` or
    /// `the mutex of blueprint 801a…`.
    pub target: String,
    /// The server, without credentials.
    pub endpoint: String,
}

/// The kinds of lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Terraform's S3 lock file.
    S3,
    /// The Apstra blueprint mutex.
    Apstra,
}

/// How a binding spells the operations a message suggests.
pub trait Spelling {
    /// Removing a lock by its ID (`None`: the ID is unknown).
    fn force_unlock(&self, lock_id: Option<&str>) -> String;
    /// Removing an Apstra mutex tag by its tag ID.
    fn force_unlock_tag(&self, tag_id: &str) -> String;
    /// Waiting for a held lock with a timeout.
    fn wait(&self) -> String;
    /// Not waiting for Apstra's own blueprint lock.
    fn skip_blueprint_wait(&self) -> String;
    /// A configuration argument (`bucket`, `url`, `username`...).
    fn argument(&self, name: &str) -> String {
        name.to_string()
    }
}

/// The command-line program's spelling (also used for Rust callers).
#[derive(Clone, Copy, Debug, Default)]
pub struct CommandLine;

impl Spelling for CommandLine {
    fn force_unlock(&self, lock_id: Option<&str>) -> String {
        format!("`condlock force-unlock {}`", lock_id.unwrap_or("<lock ID>"))
    }
    fn force_unlock_tag(&self, tag_id: &str) -> String {
        format!("`condlock force-unlock --tag {tag_id}`")
    }
    fn wait(&self) -> String {
        "`--timeout`".into()
    }
    fn skip_blueprint_wait(&self) -> String {
        "turn off the wait for Apstra's blueprint lock".into()
    }
    fn argument(&self, name: &str) -> String {
        format!("--{}", name.replace('_', "-"))
    }
}

/// The JavaScript packages' spelling (Node and the browser share it): the
/// methods and options of their `S3Lock`, `ApstraMutex` and `ApstraClient`.
#[derive(Clone, Copy, Debug)]
pub struct JavaScript(pub Kind);

impl Spelling for JavaScript {
    fn force_unlock(&self, lock_id: Option<&str>) -> String {
        match (lock_id, self.0) {
            // JSON quoting is JavaScript's string literal for any ID.
            (Some(id), _) => format!("forceUnlock({})", serde_json::Value::from(id)),
            (None, Kind::S3) => "forceUnlock(<lock ID>)".into(),
            (None, Kind::Apstra) => "forceUnlock()".into(),
        }
    }
    fn force_unlock_tag(&self, tag_id: &str) -> String {
        format!(
            "ApstraClient.forceUnlockTag({})",
            serde_json::Value::from(tag_id)
        )
    }
    fn wait(&self) -> String {
        "acquire({ timeoutMs })".into()
    }
    fn skip_blueprint_wait(&self) -> String {
        "pass waitForBlueprintUnlock: false".into()
    }
    fn argument(&self, name: &str) -> String {
        format!("the {} option", js_option_name(name))
    }
}

/// The JavaScript option a core field name stands for: the core names
/// fields in snake case with durations in seconds; the JavaScript packages
/// take camel-case options with durations in milliseconds (`leaseMs`), and
/// keys inside `credentials`.
pub fn js_option_name(field: &str) -> String {
    // A field that is an environment variable (`AWS_CONFIG_FILE`) is no
    // option: kept as it is.
    if !field.bytes().any(|c| c.is_ascii_lowercase()) {
        return field.to_string();
    }
    match field {
        "access_key_id" => return "credentials.accessKeyId".into(),
        "secret_access_key" => return "credentials.secretAccessKey".into(),
        "session_token" => return "credentials.sessionToken".into(),
        _ => {}
    }
    let millis = matches!(
        field,
        "timeout"
            | "lease"
            | "stale_after"
            | "max_poll_interval"
            | "request_timeout"
            | "connect_timeout"
            | "older_than"
    );
    let mut out = String::with_capacity(field.len() + 2);
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            // Field names are ASCII; the ASCII mapping keeps Unicode's case
            // tables out of the browser package.
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    if millis {
        out.push_str("Ms");
    }
    out
}

/// DynamoDB error names that are about the credentials or their
/// permissions: classified as access denied by the DynamoDB response reader,
/// and worded here (the message already names the table and permissions).
pub(crate) fn is_dynamodb_denial(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "MissingAuthenticationTokenException"
            | "IncompleteSignatureException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
    )
}

fn blocker_suffix(blocker: &Option<Box<Blocker>>) -> String {
    match blocker {
        Some(b) => format!("; it is locked: {b}"),
        None => String::new(),
    }
}

fn holder_suffix(holder: &Option<Box<LockHolder>>) -> String {
    match holder {
        Some(h) => format!(" by {h}"),
        None => String::new(),
    }
}

fn hint_suffix(code: &str) -> &'static str {
    match code {
        "SignatureDoesNotMatch" => " (check the secret access key and the region)",
        "InvalidAccessKeyId" => " (the access key id is unknown to this store)",
        "ExpiredToken" | "TokenRefreshRequired" => " (refresh the session credentials)",
        _ => "",
    }
}

/// The stable kinds of [`Error`], as every binding names them.
///
/// A binding picks its exception class from [`Error::code`] and keeps the
/// core's message ([`Error::explain`]); these strings never change meaning.
pub const CODES: &[&str] = &[
    "invalid_config",
    "held",
    "timeout",
    "cancelled",
    "conditional_writes_unsupported",
    "not_owned",
    "access_denied",
    "no_such_bucket",
    "wrong_region",
    "server",
    "rejected",
    "transport",
    "malformed_response",
    "misuse",
    "not_reentrant",
    "lost",
    "login_refused",
    "no_such_blueprint",
];

impl Error {
    /// The stable kind of this error (one of [`CODES`]): `held`, `timeout`,
    /// `lost`, `not_owned`, `invalid_config`, `transport`... The Apstra mutex's
    /// held and timeout errors share the S3 lock's codes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidConfig { .. } => "invalid_config",
            Error::Held { .. } | Error::BlueprintLocked { .. } => "held",
            Error::Timeout { .. } | Error::BlueprintLockTimeout { .. } => "timeout",
            Error::Cancelled => "cancelled",
            Error::ConditionalWritesUnsupported { .. } | Error::ConditionalCreateRefused { .. } => {
                "conditional_writes_unsupported"
            }
            Error::NotOwned { .. } => "not_owned",
            Error::AccessDenied { .. } => "access_denied",
            Error::NoSuchBucket { .. } => "no_such_bucket",
            Error::WrongRegion { .. } => "wrong_region",
            Error::Server { .. } => "server",
            Error::Rejected { .. } => "rejected",
            Error::Transport { .. } => "transport",
            Error::MalformedResponse { .. } => "malformed_response",
            Error::Misuse(_) => "misuse",
            Error::NotReentrant => "not_reentrant",
            Error::Lost { .. } => "lost",
            Error::LoginRefused { .. } => "login_refused",
            Error::NoSuchBlueprint { .. } => "no_such_blueprint",
            Error::Paired { error, .. } => error.code(),
        }
    }

    /// The configuration field an error is about: the field of
    /// `invalid_config`, `bucket` for `no_such_bucket`, `region` for
    /// `wrong_region`, `blueprint_id` for `no_such_blueprint`.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::InvalidConfig { field, .. } => Some(field),
            Error::NoSuchBucket { .. } => Some("bucket"),
            Error::WrongRegion { .. } => Some("region"),
            // The argument `BlueprintId::new` checks IDs under.
            Error::NoSuchBlueprint { .. } => Some("blueprint_id"),
            Error::Paired { error, .. } => error.field(),
            _ => None,
        }
    }

    /// The HTTP status and the server's error code, for `access_denied`,
    /// `login_refused`, `server` and `rejected`. A refused login or an
    /// expired Apstra session is 401, a missing permission 403.
    pub fn status_and_code(&self) -> Option<(u16, &str)> {
        match self {
            Error::AccessDenied { code, .. } if code == "Unauthorized" => Some((401, code)),
            Error::AccessDenied { code, .. } => Some((403, code)),
            Error::LoginRefused { .. } => Some((401, "LoginRefused")),
            Error::Server { status, code, .. } | Error::Rejected { status, code, .. } => {
                Some((*status, code))
            }
            Error::Paired { error, .. } => error.status_and_code(),
            _ => None,
        }
    }

    /// For a `transport` error: whether the last request may have reached
    /// the server, and whether the failure is permanent.
    pub fn transport_failure(&self) -> Option<(bool, bool)> {
        match self {
            Error::Transport {
                maybe_sent,
                permanent,
                ..
            } => Some((*maybe_sent, *permanent)),
            Error::Paired { error, .. } => error.transport_failure(),
            _ => None,
        }
    }

    /// The reason of a `lost` error.
    pub fn lost_reason(&self) -> Option<&crate::s3::LostReason> {
        match self {
            Error::Lost { reason } => Some(reason),
            Error::Paired { error, .. } => error.lost_reason(),
            _ => None,
        }
    }

    /// The store (endpoint, bucket) of a `conditional_writes_unsupported`.
    pub fn store(&self) -> Option<(&str, &str)> {
        match self {
            Error::ConditionalWritesUnsupported { endpoint, bucket }
            | Error::ConditionalCreateRefused { endpoint, bucket } => Some((endpoint, bucket)),
            Error::Paired { error, .. } => error.store(),
            _ => None,
        }
    }

    /// How long a `timeout` waited.
    pub fn waited(&self) -> Option<Duration> {
        match self {
            Error::Timeout { waited, .. } | Error::BlueprintLockTimeout { waited, .. } => {
                Some(*waited)
            }
            Error::Paired { error, .. } => error.waited(),
            _ => None,
        }
    }

    /// The whole message for a user, written once for every binding: what
    /// happened to the lock of `ctx`, and what to do about it. Operations are
    /// named in the binding's own spelling (`force_unlock("…")` in Python,
    /// `forceUnlock('…')` in Node, `condlock force-unlock …` in a shell).
    pub fn explain(&self, ctx: &Context, spelling: &dyn Spelling) -> String {
        let target = &ctx.target;
        let server = match ctx.kind {
            Kind::S3 => format!("the store at {}", ctx.endpoint),
            Kind::Apstra => format!("the Apstra server at {}", ctx.endpoint),
        };
        let by = match (self.holder(), self.blocker()) {
            (Some(h), _) => format!(" by {h}"),
            (None, Some(b)) => format!(": {b}"),
            (None, None) => String::new(),
        };
        let unlock_hint = match (self.holder(), self.blocker()) {
            (Some(h), _) => format!(
                "if that holder is gone for good, remove its lock with {}",
                spelling.force_unlock(h.info.as_ref().ok().map(|i| i.id.as_str()))
            ),
            (None, Some(Blocker::Tag(t))) => format!(
                "if that holder is gone for good, remove its tag with {} (or {})",
                spelling.force_unlock(None),
                spelling.force_unlock_tag(&t.id)
            ),
            (None, Some(Blocker::BlueprintLock(s))) => format!(
                "Apstra's own blueprint lock is taken{}: unlock the blueprint in the Apstra UI, \
                 or {}",
                if s.username.is_empty() {
                    String::new()
                } else {
                    format!(" by {}", s.username)
                },
                spelling.skip_blueprint_wait()
            ),
            (None, None) => format!(
                "if the holder is gone for good, remove its lock with {}",
                spelling.force_unlock(None)
            ),
        };
        let left = match ctx.kind {
            Kind::S3 => "no lock of ours was left behind",
            Kind::Apstra => "no mutex tag of ours was left behind",
        };
        match self {
            Error::InvalidConfig { field, reason } => format!("invalid {field}: {reason}"),
            Error::Held { .. } | Error::BlueprintLocked { .. } => format!(
                "{target} is held{by}; wait for it with {}, or, {unlock_hint}",
                spelling.wait()
            ),
            Error::Timeout { waited, .. } | Error::BlueprintLockTimeout { waited, .. } => {
                format!(
                    "timed out after {:.1}s waiting for {target}, held{}; wait longer ({}), or, \
                     {unlock_hint}",
                    waited.as_secs_f64(),
                    if by.is_empty() {
                        " by someone else"
                    } else {
                        by.as_str()
                    },
                    spelling.wait()
                )
            }
            Error::Cancelled => format!("the operation on {target} was cancelled; {left}"),
            Error::ConditionalWritesUnsupported { endpoint, bucket } => format!(
                "the store at {endpoint} (bucket {bucket}) ignores If-None-Match, so it cannot \
                 provide a lock (two clients could both hold it); the lock we wrote was removed. \
                 Use a store that enforces conditional writes (AWS S3, MinIO, moto...)"
            ),
            Error::NotOwned { .. } => format!(
                "{target} is not ours{by}, so it was left alone; to remove someone else's lock \
                 use {} with that lock's ID",
                spelling.force_unlock(
                    self.holder()
                        .and_then(|h| h.info.as_ref().ok())
                        .map(|i| i.id.as_str())
                )
            ),
            Error::AccessDenied { code, .. }
                if ctx.kind == Kind::S3 && is_dynamodb_denial(code) =>
            {
                // The message already names the table and the permissions.
                format!("{self}; check the credentials")
            }
            Error::AccessDenied { code, message } => match ctx.kind {
                Kind::S3 => format!(
                    "{self}; check the credentials, and that they allow s3:GetObject, \
                     s3:PutObject and s3:DeleteObject on {target}"
                ),
                Kind::Apstra => format!(
                    "{server} refused a request on {target} ({code}): {message}; the user needs \
                     permission to read blueprints and to create, read and delete design tags"
                ),
            },
            Error::NoSuchBucket { bucket } => format!(
                "invalid bucket: {bucket:?} does not exist at {}; create it, or fix {}",
                ctx.endpoint,
                spelling.argument("bucket")
            ),
            Error::WrongRegion { .. } => format!("invalid region: {self}"),
            Error::Server {
                status,
                code,
                message,
            } => match ctx.kind {
                Kind::S3 => format!(
                    "{server} kept failing with {status} ({code}): {message}; it may be \
                     overloaded or down: retry later"
                ),
                Kind::Apstra => format!(
                    "{server} kept failing with {status} ({message}); it may be overloaded or \
                     down: retry later"
                ),
            },
            Error::Rejected {
                status,
                code,
                message,
            } => match ctx.kind {
                Kind::S3 => format!(
                    "{server} rejected the request on {target} with {status} ({code}): {message}"
                ),
                Kind::Apstra => {
                    format!("{server} rejected a request on {target} with {status}: {message}")
                }
            },
            Error::Transport { message, .. } => format!(
                "cannot talk to {server}: {message}; check {}, the network and TLS settings",
                match ctx.kind {
                    Kind::S3 => "the endpoint".to_string(),
                    Kind::Apstra => spelling.argument("url"),
                }
            ),
            Error::MalformedResponse { what } => match ctx.kind {
                Kind::S3 => format!(
                    "{server} answered something condlock cannot interpret ({what}); is the \
                     endpoint an S3-compatible store?"
                ),
                Kind::Apstra => format!(
                    "the server at {} answered something condlock cannot interpret ({what}); is \
                     {} an Apstra server (with its path prefix, if any)?",
                    ctx.endpoint,
                    spelling.argument("url")
                ),
            },
            Error::Misuse(what) => {
                format!("misuse: {what} (on {target}); this is a bug in condlock, please report it")
            }
            Error::NotReentrant => format!(
                "{target} is already held by this thread or task (through this lock object or \
                 another one for the same lock): a distributed lock is not re-entrant, and \
                 waiting for it would wait for ourselves forever; use the lock already held, or \
                 release it before acquiring it again (another thread or process waits as usual)"
            ),
            Error::Lost { reason } => format!(
                "{target} is no longer ours ({reason}); stop the work that relied on it (another \
                 holder may be running), and acquire the lock again if needed"
            ),
            Error::ConditionalCreateRefused { .. } => self.to_string(),
            Error::LoginRefused {
                url,
                username,
                message,
            } => format!(
                "{url} refused the login of user {username:?} ({message}): check {} and {} (or \
                 APSTRA_USER / APSTRA_PASS, or the credentials in the URL)",
                spelling.argument("username"),
                spelling.argument("password")
            ),
            Error::NoSuchBlueprint { url, blueprint } => format!(
                "invalid blueprint_id: blueprint {blueprint:?} does not exist on {url}; check \
                 the ID (the UUID in the blueprint's address in the Apstra UI)"
            ),
            // The S3 wording of these names the S3 store; `context` already
            // names the server the error came from (the DynamoDB table's).
            Error::Paired { context, error }
                if matches!(
                    **error,
                    Error::Server { .. }
                        | Error::Rejected { .. }
                        | Error::Transport { .. }
                        | Error::MalformedResponse { .. }
                ) =>
            {
                format!("{context}: {error}")
            }
            Error::Paired { context, error } => {
                format!("{context}: {}", error.explain(ctx, spelling))
            }
        }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        Error::MalformedResponse { what: what.into() }
    }

    /// What blocks an Apstra blueprint mutex, carried by `BlueprintLocked`
    /// or `BlueprintLockTimeout`, if known.
    pub fn blocker(&self) -> Option<&Blocker> {
        match self {
            Error::BlueprintLocked { blocker, .. } => Some(blocker),
            Error::BlueprintLockTimeout { blocker, .. } => blocker.as_deref(),
            Error::Paired { error, .. } => error.blocker(),
            _ => None,
        }
    }

    /// The holder carried by `Held`, `Timeout` or `NotOwned`, if any.
    pub fn holder(&self) -> Option<&LockHolder> {
        match self {
            Error::Held { holder } | Error::Timeout { holder, .. } | Error::NotOwned { holder } => {
                holder.as_deref()
            }
            Error::Paired { error, .. } => error.holder(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_acquisition_by_the_holder_says_why_it_is_refused_and_what_to_do() {
        let ctx = Context {
            kind: Kind::S3,
            target: "s3://b/k.tflock".into(),
            endpoint: "http://127.0.0.1:9000".into(),
        };
        let e = Error::NotReentrant;
        assert_eq!(e.code(), "not_reentrant");
        assert!(CODES.contains(&e.code()));
        let m = e.explain(&ctx, &CommandLine);
        assert!(
            m.starts_with("s3://b/k.tflock is already held by this thread or task"),
            "{m}"
        );
        assert!(m.contains("not re-entrant"), "{m}");
        // Not the advice of a lock held by someone else.
        assert!(!m.contains("force"), "{m}");
    }

    #[test]
    fn apstra_login_refusals_carry_status_401() {
        // A binding reads the status from the core: a refused login and an
        // expired session are 401, a missing permission 403.
        let login = Error::LoginRefused {
            url: "https://apstra".into(),
            username: "admin".into(),
            message: "bad credentials".into(),
        };
        assert_eq!(login.status_and_code(), Some((401, "LoginRefused")));
        let unauthorized = Error::AccessDenied {
            code: "Unauthorized".into(),
            message: "session expired".into(),
        };
        assert_eq!(unauthorized.status_and_code(), Some((401, "Unauthorized")));
        let forbidden = Error::AccessDenied {
            code: "AccessDenied".into(),
            message: "no".into(),
        };
        assert_eq!(forbidden.status_and_code(), Some((403, "AccessDenied")));
    }

    #[test]
    fn a_missing_blueprint_names_the_argument_blueprint_ids_are_checked_under() {
        // `BlueprintId::new` refuses an empty ID under `blueprint_id`; a
        // blueprint that does not exist is the same argument's fault.
        let e = Error::NoSuchBlueprint {
            url: "https://apstra".into(),
            blueprint: "nope".into(),
        };
        assert_eq!(e.field(), Some("blueprint_id"));
        let empty = crate::apstra::BlueprintId::new(" ".to_string()).unwrap_err();
        assert_eq!(empty.field(), e.field());
    }

    #[test]
    fn a_store_without_conditional_writes_is_named() {
        let e = Error::ConditionalWritesUnsupported {
            endpoint: "http://127.0.0.1:4569".into(),
            bucket: "b".into(),
        };
        assert_eq!(e.store(), Some(("http://127.0.0.1:4569", "b")));
        let e = Error::ConditionalCreateRefused {
            endpoint: "http://s".into(),
            bucket: "c".into(),
        };
        assert_eq!(e.store(), Some(("http://s", "c")));
        assert_eq!(Error::Cancelled.store(), None);
    }
    #[test]
    fn core_fields_become_the_javascript_option_names() {
        for (field, option) in [
            ("kms_key_id", "kmsKeyId"),
            ("sse_customer_key", "sseCustomerKey"),
            ("workspace_key_prefix", "workspaceKeyPrefix"),
            ("bucket", "bucket"),
            ("timeout", "timeoutMs"),
            ("older_than", "olderThanMs"),
            ("connect_timeout", "connectTimeoutMs"),
            ("access_key_id", "credentials.accessKeyId"),
            ("dynamodb_table", "dynamodbTable"),
            ("AWS_CONFIG_FILE", "AWS_CONFIG_FILE"),
        ] {
            assert_eq!(js_option_name(field), option, "{field}");
        }
        let js = JavaScript(Kind::S3);
        assert_eq!(js.force_unlock(Some("a\"b")), r#"forceUnlock("a\"b")"#);
        assert_eq!(
            js.argument("max_poll_interval"),
            "the maxPollIntervalMs option"
        );
    }
}
