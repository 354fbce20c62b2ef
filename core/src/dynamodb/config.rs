//! The DynamoDB lock table: its name and where it is served.

use crate::endpoint::BaseUrl;
use crate::error::Error;

/// A validated DynamoDB lock table (Terraform's `dynamodb_table`), with its
/// endpoint (Terraform's `endpoints.dynamodb`, `AWS_ENDPOINT_URL_DYNAMODB`)
/// or the region's AWS endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamoDbTable {
    table: String,
    endpoint: Option<BaseUrl>,
    region: String,
}

impl DynamoDbTable {
    /// The table `table` in `region`, at `endpoint` when given (the AWS
    /// endpoint of the region otherwise). The region is the S3 lock's: the
    /// s3 backend has one region for both.
    pub fn new(table: &str, endpoint: Option<&str>, region: &str) -> Result<Self, Error> {
        validate_table(table)?;
        let endpoint = endpoint
            .map(|raw| {
                crate::s3::config::parse_endpoint(raw).map_err(|e| match e {
                    // Same rules as the S3 endpoint, named for this field.
                    Error::InvalidConfig { reason, .. } => Error::InvalidConfig {
                        field: "dynamodb_endpoint",
                        reason,
                    },
                    other => other,
                })
            })
            .transpose()?;
        Ok(DynamoDbTable {
            table: table.to_string(),
            endpoint,
            region: region.to_string(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Where requests go: the endpoint as given, or
    /// `https://dynamodb.<region>.amazonaws.com/`.
    pub fn url(&self) -> String {
        match &self.endpoint {
            Some(u) => u.as_str().to_string(),
            None => format!("https://dynamodb.{}.amazonaws.com/", self.region),
        }
    }

    /// The endpoint for messages (no trailing `/`).
    pub fn endpoint_display(&self) -> String {
        self.url().trim_end_matches('/').to_string()
    }
}

/// DynamoDB's table-name rule: 3 to 255 of `a-z A-Z 0-9 _ - .`. Checked here
/// so a typo is an `InvalidConfiguration` before anything is sent, not a
/// `ValidationException` from the server.
fn validate_table(table: &str) -> Result<(), Error> {
    let ok_chars = table
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !(3..=255).contains(&table.len()) || !ok_chars {
        return Err(Error::config(
            "dynamodb_table",
            format!(
                "{table:?} is not a DynamoDB table name (3 to 255 letters, digits, '_', '-' \
                 or '.')"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_table_names_and_endpoints_are_named() {
        for bad in ["", "ab", "has space", "ümlaut"] {
            let e = DynamoDbTable::new(bad, None, "us-east-1").unwrap_err();
            assert_eq!(e.field(), Some("dynamodb_table"), "{bad:?}");
        }
        let e = DynamoDbTable::new("locks", Some("ftp://x"), "us-east-1").unwrap_err();
        assert_eq!(e.field(), Some("dynamodb_endpoint"));
        let e = DynamoDbTable::new("locks", Some("http://AKIA:s3cret@h"), "us-east-1").unwrap_err();
        assert_eq!(e.field(), Some("dynamodb_endpoint"));
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn the_endpoint_defaults_to_the_region() {
        let t = DynamoDbTable::new("tf-locks", None, "eu-west-3").unwrap();
        assert_eq!(t.url(), "https://dynamodb.eu-west-3.amazonaws.com/");
        let t = DynamoDbTable::new("tf-locks", Some("http://127.0.0.1:5000"), "eu-west-3").unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:5000/");
        assert_eq!(t.endpoint_display(), "http://127.0.0.1:5000");
    }
}
