//! Listing the lock files of a bucket: one signed `ListObjectsV2` request per
//! page, and the parser of its answer.
//!
//! Kept apart from the lock's state machines: listing takes no lock and has
//! no conditions, so a driver simply sends [`list_request`] and reads the
//! page with [`parse_list`] until `next` is `None`. The caller needs
//! `s3:ListBucket` on the bucket in addition to the lock's permissions.

use std::time::SystemTime;

use http::{Method, Request, Response};

use super::config::{Credentials, S3LockConfig};
use super::request::{signed, EMPTY_SHA256};
use super::response::{classify_redacted, ResponseClass};
use crate::error::Error;
use crate::sansio::Body;

/// Query values are encoded with RFC 3986's unreserved set only: SigV4
/// canonicalises the query that way, and `+` must not be read as a space.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The object key.
    pub key: String,
    /// `LastModified`, as sent.
    pub last_modified: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<ListedObject>,
    /// The continuation token of the next page, if there is one.
    pub next: Option<String>,
}

/// `GET <bucket>/?list-type=2&prefix=…` of `config`'s bucket (its key is not
/// used), continuing after `continuation` when given.
pub fn list_request(
    config: &S3LockConfig,
    credentials: &Credentials,
    prefix: &str,
    continuation: Option<&str>,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let enc = |v: &str| percent_encoding::utf8_percent_encode(v, QUERY_VALUE).to_string();
    // Parameters in sorted order: the signed canonical query is sorted too,
    // so what is sent is exactly what is signed.
    let mut query = Vec::new();
    if let Some(token) = continuation {
        query.push(format!("continuation-token={}", enc(token)));
    }
    query.push("list-type=2".to_string());
    query.push(format!("prefix={}", enc(prefix)));
    let uri = format!("{}?{}", config.bucket_url(), query.join("&"));
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .body(Vec::new())
        .map_err(|e| Error::config("prefix", format!("cannot form a listing URL: {e}")))?;
    signed(req, credentials, config, EMPTY_SHA256, signing_time)
}

/// Read a `ListObjectsV2` answer: a page, or the error the store gave (with
/// our secrets struck from its text).
pub fn parse_list(
    resp: &Response<Body>,
    config: &S3LockConfig,
    credentials: &Credentials,
) -> Result<ListPage, Error> {
    match classify_redacted(resp, config, credentials) {
        ResponseClass::Success { .. } => {}
        ResponseClass::Transient {
            status,
            code,
            message,
        } => {
            return Err(Error::Server {
                status,
                code,
                message,
            })
        }
        other => return Err(other.into_error(config.bucket(), config.region())),
    }
    let text = std::str::from_utf8(resp.body())
        .map_err(|_| Error::malformed("a bucket listing that is not UTF-8"))?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| Error::malformed(format!("a bucket listing that is not XML: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "ListBucketResult" {
        return Err(Error::malformed(format!(
            "a bucket listing whose root is <{}>, not <ListBucketResult>",
            root.tag_name().name()
        )));
    }
    let child_text = |node: roxmltree::Node<'_, '_>, name: &str| {
        node.children()
            .find(|c| c.tag_name().name() == name)
            .map(|c| c.text().unwrap_or("").to_string())
    };
    let objects = root
        .children()
        .filter(|c| c.tag_name().name() == "Contents")
        .filter_map(|c| {
            Some(ListedObject {
                key: child_text(c, "Key")?,
                last_modified: child_text(c, "LastModified"),
            })
        })
        .collect();
    let truncated = child_text(root, "IsTruncated").as_deref() == Some("true");
    let next = child_text(root, "NextContinuationToken").filter(|t| !t.is_empty());
    if truncated && next.is_none() {
        // Asking again without a token would list the first page forever.
        return Err(Error::malformed(
            "a truncated bucket listing without NextContinuationToken",
        ));
    }
    Ok(ListPage {
        objects,
        next: if truncated { next } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn config() -> S3LockConfig {
        S3LockConfig::builder("tfstate", "unused")
            .region("eu-west-3")
            .endpoint("http://127.0.0.1:9000")
            .build()
            .unwrap()
    }

    fn creds() -> Credentials {
        Credentials::new("AKIDEXAMPLE", Secret::new("s3cr3t-key"), None).unwrap()
    }

    #[test]
    fn the_request_is_a_signed_list_objects_v2_with_an_encoded_prefix() {
        let req = list_request(
            &config(),
            &creds(),
            "env:/a b+c/",
            Some("tok/en+=="),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000),
        )
        .unwrap();
        assert_eq!(req.method(), Method::GET);
        assert_eq!(
            req.uri().to_string(),
            "http://127.0.0.1:9000/tfstate/?continuation-token=tok%2Fen%2B%3D%3D&list-type=2\
             &prefix=env%3A%2Fa%20b%2Bc%2F"
        );
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/eu-west-3/s3/aws4_request"));
        assert!(req.headers()["authorization"].is_sensitive());
        assert_eq!(req.headers()["x-amz-content-sha256"], EMPTY_SHA256);
    }

    #[test]
    fn pages_are_read_with_their_continuation() {
        let ok = |body: &str| {
            Response::builder()
                .status(200)
                .body(body.as_bytes().to_vec())
                .unwrap()
        };
        let page = parse_list(
            &ok(r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>tfstate</Name>
<IsTruncated>true</IsTruncated><NextContinuationToken>abc</NextContinuationToken>
<Contents><Key>envs/dev/terraform.tfstate.tflock</Key><LastModified>2026-11-22T03:26:23.000Z</LastModified></Contents>
<Contents><Key>envs/dev/terraform.tfstate</Key></Contents></ListBucketResult>"#),
            &config(),
            &creds(),
        )
        .unwrap();
        assert_eq!(page.next.as_deref(), Some("abc"));
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "envs/dev/terraform.tfstate.tflock");
        assert_eq!(
            page.objects[0].last_modified.as_deref(),
            Some("2026-11-22T03:26:23.000Z")
        );
        assert_eq!(page.objects[1].last_modified, None);
        let last = parse_list(
            &ok("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"),
            &config(),
            &creds(),
        )
        .unwrap();
        assert_eq!(last, ListPage::default());
        for bad in [
            "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            "<Error/>",
            "not xml",
        ] {
            assert_eq!(
                parse_list(&ok(bad), &config(), &creds())
                    .unwrap_err()
                    .code(),
                "malformed_response",
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_are_the_stores_with_secrets_struck() {
        let denied = Response::builder()
            .status(403)
            .body(
                b"<Error><Code>AccessDenied</Code><Message>no ListBucket for s3cr3t-key</Message></Error>"
                    .to_vec(),
            )
            .unwrap();
        let err = parse_list(&denied, &config(), &creds()).unwrap_err();
        assert_eq!(err.code(), "access_denied");
        assert!(!err.to_string().contains("s3cr3t-key"), "{err}");
        let missing = Response::builder()
            .status(404)
            .body(b"<Error><Code>NoSuchBucket</Code></Error>".to_vec())
            .unwrap();
        assert_eq!(
            parse_list(&missing, &config(), &creds())
                .unwrap_err()
                .code(),
            "no_such_bucket"
        );
    }
}
