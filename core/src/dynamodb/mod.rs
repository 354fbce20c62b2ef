//! Terraform's DynamoDB lock (the s3 backend's `dynamodb_table`), sans-IO.
//!
//! Terraform before 1.10 locked S3 state with an item in a DynamoDB table,
//! and configurations migrating to the lock file set both. condlock takes the
//! same item, so it excludes such configurations too:
//!
//! - [`config`]: the table and its endpoint.
//! - [`request`]: `PutItem`, `GetItem` and `DeleteItem` in the DynamoDB JSON
//!   1.0 protocol, signed for service `dynamodb`.
//! - [`response`]: classifying every response (`__type`), and reading the
//!   holder from an item.
//! - [`acquire`]: `PutItem` conditioned on `attribute_not_exists(LockID)`,
//!   waiting for a holder, an unsure write resolved by reading back.
//! - [`release`]: `DeleteItem` conditioned on our own `Info` (a stale release
//!   never removes another holder's item), force-unlock by ID, and status.
//!
//! The item is Terraform's: hash key `LockID` = `<bucket>/<state key>` (the
//! LockInfo `Path`), attribute `Info` = the LockInfo JSON. The state digest
//! item (`<LockID>-md5`) is never touched.
//!
//! How the item is paired with the lock file (S3 first, then DynamoDB) is the
//! driver's business: [`crate::drive::s3::S3Lock`].

pub mod acquire;
pub mod config;
pub mod release;
pub mod request;
pub mod response;

#[cfg(test)]
pub(crate) mod machine_tests;

pub use acquire::Acquire;
pub use config::DynamoDbTable;
pub use release::{Release, Status};
