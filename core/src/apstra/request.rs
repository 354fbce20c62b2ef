//! The Apstra REST calls the mutex needs, as `http::Request`s with JSON bodies.
//!
//! The session token travels in the `AuthToken` header, marked sensitive so
//! HTTP stacks that honour the flag keep it out of their logs. The login body
//! carries the password: never log a login request (no driver in condlock
//! does).

use http::{header, HeaderValue, Method, Request};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use super::config::ApstraServer;
use crate::error::Error;
use crate::sansio::Body;
use crate::secret::Secret;

/// The header that carries the session token.
pub const AUTH_HEADER: &str = "AuthToken";

/// Which login endpoint to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LoginPath {
    /// `POST /api/aaa/login`, the documented path (tried first).
    #[default]
    Aaa,
    /// `POST /api/user/login`, what the Go SDK uses (the fallback when the
    /// first answers 404 or 405).
    User,
}

impl LoginPath {
    /// The API path.
    pub fn path(self) -> &'static str {
        match self {
            LoginPath::Aaa => "/api/aaa/login",
            LoginPath::User => "/api/user/login",
        }
    }
}

/// One authenticated API call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `POST /api/design/tags` `{"label", "description"}`: take the mutex.
    CreateTag {
        /// `blueprint <ID> locked`.
        label: String,
        /// The holder's message with our token.
        description: String,
    },
    /// `GET /api/design/tags`: every tag in the global catalog.
    ListTags,
    /// `GET /api/design/tags/{id}`.
    GetTag {
        /// Tag ID.
        id: String,
    },
    /// `DELETE /api/design/tags/{id}`: release the mutex.
    DeleteTag {
        /// Tag ID.
        id: String,
    },
    /// `GET /api/blueprints/{bp}/lock-status`: Apstra's own blueprint lock.
    LockStatus {
        /// Blueprint ID.
        blueprint: String,
    },
}

/// Characters escaped in one path segment (everything that is not unreserved).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A segment that no encoding keeps in place: empty, `.` or `..` (URL
/// parsing resolves the dots, `%2e` included, so `DELETE .../tags/..` would
/// be `DELETE /api/design/`). Every other value is encoded by [`segment`]
/// into exactly one segment (its `%` becomes `%25`, so no `%2e` can appear).
fn unplaceable(s: &str) -> bool {
    s.is_empty() || s == "." || s == ".."
}

impl Call {
    /// The HTTP method.
    pub fn method(&self) -> Method {
        match self {
            Call::CreateTag { .. } => Method::POST,
            Call::DeleteTag { .. } => Method::DELETE,
            Call::ListTags | Call::GetTag { .. } | Call::LockStatus { .. } => Method::GET,
        }
    }

    /// The API path (segments percent-encoded).
    pub fn path(&self) -> String {
        match self {
            Call::CreateTag { .. } | Call::ListTags => "/api/design/tags".to_string(),
            Call::GetTag { id } | Call::DeleteTag { id } => {
                format!("/api/design/tags/{}", segment(id))
            }
            Call::LockStatus { blueprint } => {
                format!("/api/blueprints/{}/lock-status", segment(blueprint))
            }
        }
    }

    /// Refuse an ID that cannot be one path segment (see [`unplaceable`]).
    fn check_segments(&self) -> Result<(), Error> {
        match self {
            Call::GetTag { id } | Call::DeleteTag { id } if unplaceable(id) => {
                // Tag IDs come from the server's answers.
                Err(Error::malformed(format!(
                    "the server sent the tag ID {id:?}, which cannot be used as a URL \
                     path segment (it would address another resource)"
                )))
            }
            Call::LockStatus { blueprint } if unplaceable(blueprint) => Err(Error::config(
                "blueprint_id",
                format!("{blueprint:?} cannot be used as a URL path segment"),
            )),
            _ => Ok(()),
        }
    }

    /// A short description for logs and errors.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method(), self.path())
    }

    fn body(&self) -> Option<Body> {
        match self {
            Call::CreateTag { label, description } => Some(
                serde_json::json!({ "label": label, "description": description })
                    .to_string()
                    .into_bytes(),
            ),
            _ => None,
        }
    }
}

fn builder(method: Method, url: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, "application/json")
}

fn finish(b: http::request::Builder, body: Option<Body>) -> Result<Request<Body>, Error> {
    let b = if body.is_some() {
        b.header(header::CONTENT_TYPE, "application/json")
    } else {
        b
    };
    b.body(body.unwrap_or_default())
        // The URL was validated when the server was built; a failure here
        // names no secret (http's errors do not quote the URI).
        .map_err(|e| Error::config("url", format!("cannot build a request: {e}")))
}

/// `POST <login path>` `{"username", "password"}`.
pub fn login(server: &ApstraServer, path: LoginPath) -> Result<Request<Body>, Error> {
    let body = serde_json::json!({
        "username": server.username(),
        "password": server.password().expose(),
    })
    .to_string()
    .into_bytes();
    finish(
        builder(Method::POST, &server.api_url(path.path())),
        Some(body),
    )
}

/// An authenticated call with `token` in `AuthToken`.
pub fn call(server: &ApstraServer, call: &Call, token: &Secret) -> Result<Request<Body>, Error> {
    call.check_segments()?;
    let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
        Error::malformed("the login token contains characters that cannot go in a header")
    })?;
    value.set_sensitive(true);
    let b = builder(call.method(), &server.api_url(&call.path())).header(AUTH_HEADER, value);
    finish(b, call.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> ApstraServer {
        ApstraServer::builder()
            .url("https://apstra.example.com:8443/pfx")
            .username("admin")
            .password("pa\"ss")
            .build()
            .unwrap()
    }

    #[test]
    fn login_posts_json_credentials() {
        let r = login(&server(), LoginPath::Aaa).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "https://apstra.example.com:8443/pfx/api/aaa/login");
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["username"], "admin");
        assert_eq!(body["password"], "pa\"ss");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let r = login(&server(), LoginPath::User).unwrap();
        assert_eq!(r.uri().path(), "/pfx/api/user/login");
    }

    #[test]
    fn calls_carry_a_sensitive_token_and_encoded_segments() {
        let s = server();
        let token = Secret::new("tok-123");
        let r = call(
            &s,
            &Call::CreateTag {
                label: "blueprint bp locked".into(),
                description: "hi".into(),
            },
            &token,
        )
        .unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri().path(), "/pfx/api/design/tags");
        assert_eq!(r.headers()[AUTH_HEADER], "tok-123");
        assert!(r.headers()[AUTH_HEADER].is_sensitive());
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["label"], "blueprint bp locked");
        assert_eq!(body["description"], "hi");

        let r = call(&s, &Call::DeleteTag { id: "a/b c".into() }, &token).unwrap();
        assert_eq!(r.method(), Method::DELETE);
        assert_eq!(r.uri().path(), "/pfx/api/design/tags/a%2Fb%20c");
        assert!(r.body().is_empty());
        let r = call(
            &s,
            &Call::LockStatus {
                blueprint: "bp?1".into(),
            },
            &token,
        )
        .unwrap();
        assert_eq!(r.uri().path(), "/pfx/api/blueprints/bp%3F1/lock-status");
        assert!(call(&s, &Call::ListTags, &Secret::new("bad\ntoken")).is_err());
    }

    /// Tag IDs come from the server: one that URL parsing would resolve
    /// (`DELETE /api/design/tags/..` is `DELETE /api/design/`) is refused;
    /// anything else is encoded as exactly one segment.
    #[test]
    fn a_tag_id_is_exactly_one_path_segment_or_refused() {
        let s = server();
        let token = Secret::new("tok");
        for id in ["", ".", ".."] {
            for c in [
                Call::DeleteTag { id: id.into() },
                Call::GetTag { id: id.into() },
            ] {
                match call(&s, &c, &token).unwrap_err() {
                    Error::MalformedResponse { what } => {
                        assert!(what.contains("tag ID"), "{what}")
                    }
                    other => panic!("{id:?}: {other:?}"),
                }
            }
        }
        let err = call(
            &s,
            &Call::LockStatus {
                blueprint: "..".into(),
            },
            &token,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "blueprint_id",
                    ..
                }
            ),
            "{err:?}"
        );
        for id in [
            "...", "%2e%2e", "a/../b", "a?b#c", "a\\b", "\u{0}\n", "é 😀", "%",
        ] {
            let r = call(&s, &Call::DeleteTag { id: id.into() }, &token).unwrap();
            let url = url::Url::parse(&r.uri().to_string()).unwrap();
            assert_eq!(url.as_str(), r.uri().to_string(), "{id:?} was rewritten");
            let segment = url.path().strip_prefix("/pfx/api/design/tags/").unwrap();
            assert!(!segment.contains('/'), "{id:?}");
            let decoded = percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, id);
        }
    }
}
