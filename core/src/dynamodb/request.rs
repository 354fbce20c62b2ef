//! The three requests of the DynamoDB lock, in the DynamoDB JSON 1.0
//! protocol: `POST /` with `X-Amz-Target: DynamoDB_20120810.<Operation>` and
//! `Content-Type: application/x-amz-json-1.0`, signed with SigV4 for service
//! `dynamodb`.

use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderValue, Method, Request};
use serde_json::json;

use super::config::DynamoDbTable;
use crate::error::Error;
use crate::s3::Credentials;
use crate::sansio::Body;
use crate::time::clamp_to_years_1970_to_9999;

/// `PutItem` of Terraform's lock item, only if no item has this `LockID`.
pub fn put_lock(
    table: &DynamoDbTable,
    credentials: &Credentials,
    lock_id: &str,
    info: &str,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let body = json!({
        "TableName": table.table(),
        "Item": {
            "LockID": {"S": lock_id},
            "Info": {"S": info},
        },
        "ConditionExpression": "attribute_not_exists(LockID)",
    });
    signed(table, credentials, "PutItem", &body, signing_time)
}

/// `GetItem` of the lock item, strongly consistent (an eventually
/// consistent read could miss a holder that just wrote).
pub fn get_lock(
    table: &DynamoDbTable,
    credentials: &Credentials,
    lock_id: &str,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let body = json!({
        "TableName": table.table(),
        "Key": {"LockID": {"S": lock_id}},
        "ConsistentRead": true,
        "ProjectionExpression": "LockID, #info",
        "ExpressionAttributeNames": {"#info": "Info"},
    });
    signed(table, credentials, "GetItem", &body, signing_time)
}

/// `DeleteItem` of the lock item, only if its `Info` is exactly `info`: a
/// release that comes late can never remove someone else's item (the
/// DynamoDB counterpart of the lock file's `DELETE If-Match`).
pub fn delete_lock(
    table: &DynamoDbTable,
    credentials: &Credentials,
    lock_id: &str,
    info: &str,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let body = json!({
        "TableName": table.table(),
        "Key": {"LockID": {"S": lock_id}},
        "ConditionExpression": "#info = :info",
        "ExpressionAttributeNames": {"#info": "Info"},
        "ExpressionAttributeValues": {":info": {"S": info}},
    });
    signed(table, credentials, "DeleteItem", &body, signing_time)
}

/// The operation a request is (from its `X-Amz-Target`), for tests and logs.
pub fn operation(req: &Request<Body>) -> Option<&str> {
    req.headers()
        .get("x-amz-target")?
        .to_str()
        .ok()?
        .strip_prefix("DynamoDB_20120810.")
}

fn signed(
    table: &DynamoDbTable,
    credentials: &Credentials,
    operation: &str,
    body: &serde_json::Value,
    signing_time: SystemTime,
) -> Result<Request<Body>, Error> {
    let body = body.to_string().into_bytes();
    let target = HeaderValue::from_str(&format!("DynamoDB_20120810.{operation}"))
        .map_err(|_| Error::Misuse("DynamoDB operation names are header-safe"))?;
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(table.url())
        .header(http::header::CONTENT_TYPE, "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .body(body)
        .map_err(|e| {
            Error::config(
                "dynamodb_endpoint",
                format!("cannot form a request URL: {e}"),
            )
        })?;
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
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(table.region())
        .name("dynamodb")
        // The signer panics on dates past year 9999 (see the S3 signer).
        .time(clamp_to_years_1970_to_9999(signing_time))
        .settings(SigningSettings::default())
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
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| {
        Error::config(
            "dynamodb_endpoint",
            format!("cannot sign this request: {e}"),
        )
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::from("the-session-token")),
        }
    }

    fn body(req: &Request<Body>) -> serde_json::Value {
        serde_json::from_slice(req.body()).unwrap()
    }

    #[test]
    fn put_item_is_terraforms_conditional_create() {
        let t = DynamoDbTable::new("tf-locks", None, "eu-west-1").unwrap();
        let req = put_lock(
            &t,
            &creds(),
            "b/k",
            "{\"ID\":\"x\"}",
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://dynamodb.eu-west-1.amazonaws.com/"
        );
        assert_eq!(operation(&req), Some("PutItem"));
        assert_eq!(req.headers()["content-type"], "application/x-amz-json-1.0");
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(auth.contains("/eu-west-1/dynamodb/aws4_request"), "{auth}");
        assert!(req.headers()["authorization"].is_sensitive());
        assert!(req.headers()["x-amz-security-token"].is_sensitive());
        assert_eq!(
            body(&req),
            json!({
                "TableName": "tf-locks",
                "Item": {"LockID": {"S": "b/k"}, "Info": {"S": "{\"ID\":\"x\"}"}},
                "ConditionExpression": "attribute_not_exists(LockID)",
            })
        );
    }

    #[test]
    fn get_is_consistent_and_delete_is_conditioned_on_our_info() {
        let t = DynamoDbTable::new("tf-locks", Some("http://127.0.0.1:5000"), "us-east-1").unwrap();
        let get = get_lock(&t, &creds(), "b/k", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(operation(&get), Some("GetItem"));
        assert_eq!(body(&get)["ConsistentRead"], json!(true));
        assert_eq!(body(&get)["Key"], json!({"LockID": {"S": "b/k"}}));
        let del = delete_lock(&t, &creds(), "b/k", "INFO", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(operation(&del), Some("DeleteItem"));
        let b = body(&del);
        assert_eq!(b["ConditionExpression"], json!("#info = :info"));
        assert_eq!(b["ExpressionAttributeNames"], json!({"#info": "Info"}));
        assert_eq!(
            b["ExpressionAttributeValues"],
            json!({":info": {"S": "INFO"}})
        );
        assert_eq!(del.uri().to_string(), "http://127.0.0.1:5000/");
    }
}
