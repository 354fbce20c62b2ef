//! Entry points for the fuzz targets in `core/fuzz/` (feature `fuzzing`, off
//! by default).
//!
//! A few parsers of server data are private to their module; rather than make
//! them public API, the fuzzer reaches them through these thin wrappers. Not
//! part of the supported API: names and signatures may change at any time.

use std::time::SystemTime;

use crate::apstra::tag::{self, MutexTag};
use crate::error::Error;
use crate::secret::Secret;

/// `GET /api/design/tags`: parse the list, then keep the blueprint mutexes
/// among its tags (labels, descriptions, holder tokens, `created_at`).
#[doc(hidden)]
pub fn apstra_tag_list(body: &[u8], now: SystemTime) -> Result<Vec<MutexTag>, Error> {
    tag::parse_tag_list(body).map(|tags| tag::mutexes(tags, now))
}

/// `GET /api/design/tags/{id}`: parse one tag object, then read it as a
/// mutex when its label is one.
#[doc(hidden)]
pub fn apstra_tag(body: &[u8], now: SystemTime) -> Result<Option<MutexTag>, Error> {
    tag::parse_tag(body).map(|raw| MutexTag::from_raw(raw, now))
}

/// A login response body: the session token and the user ID.
#[doc(hidden)]
pub fn apstra_login(body: &[u8]) -> Result<(Secret, Option<String>), Error> {
    crate::apstra::login::parse_login(body)
}

/// A base URL as the core parses endpoints and the Apstra URL (with
/// `user:password@` allowed when `userinfo`): `[serialisation, scheme,
/// host, path, user name, password]` (the last two as written, `password`
/// `None` when absent) and the port, or the reason it is refused.
#[doc(hidden)]
#[allow(clippy::type_complexity)]
pub fn base_url(
    raw: &str,
    userinfo: bool,
) -> Result<([String; 5], Option<String>, Option<u16>), &'static str> {
    crate::endpoint::BaseUrl::parse(raw, userinfo).map(|(u, info)| {
        (
            [
                u.as_str().to_string(),
                u.scheme().to_string(),
                u.host_str().to_string(),
                u.path().to_string(),
                info.username.to_string(),
            ],
            info.password.map(str::to_string),
            u.port(),
        )
    })
}
