//! `condlock._condlock`: the Rust half of the `condlock` Python package.
//!
//! The pure-Python package (`python/condlock/`) wraps these classes with the
//! public API (context managers, asyncio glue, boto3 sessions). Layout:
//!
//! - [`runtime`]: the tokio runtime, blocking waits that release the GIL and
//!   honour Ctrl-C, and asyncio completion through `call_soon_threadsafe`.
//! - [`errors`]: `condlock::Error` -> the Python exception classes.
//! - [`transport`]: the reqwest driver or a user's Python callable.
//! - [`credentials`]: boto3/botocore credentials as an AWS credentials provider.
//! - [`s3`]: the S3 lock file (Terraform-compatible).
//! - [`apstra`]: the Apstra blueprint mutex (Terraform-provider-compatible).

use pyo3::prelude::*;

mod apstra;
mod common;
mod credentials;
mod errors;
mod runtime;
mod s3;
mod transport;

/// The extension module.
#[pymodule]
fn _condlock(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Bridge the `log` crate to Python's `logging`: core targets like
    // `condlock::s3::acquire` become loggers `condlock.s3.acquire`, children of
    // `condlock`. Levels are read from Python on every record (no caching), so
    // `logging.getLogger("condlock").setLevel(...)` takes effect at once.
    // A second initialisation (sub-interpreter, reload) keeps the first logger.
    // Only condlock's own records are forwarded (the HTTP stack's debug chatter
    // is not, and never reaches Python).
    if let Ok(logger) = pyo3_log::Logger::new(py, pyo3_log::Caching::Nothing) {
        let _ = logger
            .filter(log::LevelFilter::Off)
            .filter_target("condlock".to_string(), log::LevelFilter::Debug)
            .install();
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<common::LockInfo>()?;
    m.add_class::<runtime::Operation>()?;
    m.add_class::<s3::S3LockCore>()?;
    m.add_class::<s3::S3LeaseCore>()?;
    m.add_class::<apstra::MutexTag>()?;
    m.add_class::<apstra::BlueprintLockStatus>()?;
    m.add_class::<apstra::ApstraClientCore>()?;
    m.add_class::<apstra::ApstraMutexCore>()?;
    m.add_class::<apstra::ApstraLeaseCore>()?;
    Ok(())
}
