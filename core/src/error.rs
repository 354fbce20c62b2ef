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

    /// The transport kept failing until the deadline.
    #[error("transport error: {message}")]
    Transport {
        /// What the transport reported.
        message: String,
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

impl Error {
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
            _ => None,
        }
    }

    /// The holder carried by `Held`, `Timeout` or `NotOwned`, if any.
    pub fn holder(&self) -> Option<&LockHolder> {
        match self {
            Error::Held { holder } | Error::Timeout { holder, .. } | Error::NotOwned { holder } => {
                holder.as_deref()
            }
            _ => None,
        }
    }
}
