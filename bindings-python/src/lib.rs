//! `condlock._condlock`: the Rust half of the `condlock` Python package.
//!
//! Glue over the core: Python arguments become the core's settings, the
//! core's operations run on a tokio runtime, the core's errors become Python
//! exceptions by their code. The pure-Python package (`python/condlock/`)
//! wraps these classes with the public API (context managers, asyncio glue,
//! boto3 sessions). Layout, each module using only those above it:
//!
//! - [`values`]: the holder values (`LockInfo`, `MutexTag`,
//!   `BlueprintLockStatus`).
//! - [`errors`]: the core's error codes -> the Python exception classes.
//! - [`process`]: per-process values (fork safety), panic containment.
//! - [`progress`]: the core's progress notices -> log records and `WaitEvent`s.
//! - [`python_thread`]: the one thread that takes the GIL for the background
//!   runtime (log records, asyncio deliveries), so its worker never waits for
//!   it; a synchronous call's records are delivered by its caller.
//! - [`runtime`]: synchronous calls driven on the calling thread (GIL
//!   released, Ctrl-C honoured), the background runtime for renewals and
//!   asyncio, and asyncio completion through `call_soon_threadsafe`.
//! - [`transport`]: the reqwest driver (a client per runtime) or a user's
//!   Python callable.
//! - [`credentials`]: boto3/botocore credentials as an AWS credentials provider.
//! - [`s3`]: the S3 lock file (Terraform-compatible).
//! - [`apstra`]: the Apstra blueprint mutex (Terraform-provider-compatible).
//! - [`cli`]: the `condlock` command (`python -m condlock`, console script).

use pyo3::prelude::*;

mod apstra;
mod cli;
mod credentials;
mod errors;
mod process;
mod progress;
mod python_thread;
mod runtime;
mod s3;
mod transport;
mod values;

/// The extension module.
#[pymodule]
fn _condlock(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Log records reach Python's `logging` through the Python thread, never
    // from the I/O worker directly (see `python_thread`).
    python_thread::install_logger();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The core's deadline for a release on an exit path, in seconds.
    m.add(
        "EXIT_RELEASE_TIMEOUT",
        condlock::drive::s3::EXIT_RELEASE_BUDGET.as_secs_f64(),
    )?;
    m.add_class::<values::LockInfo>()?;
    m.add_class::<values::MutexTag>()?;
    m.add_class::<values::BlueprintLockStatus>()?;
    m.add_class::<runtime::Operation>()?;
    m.add_class::<progress::WaitEvent>()?;
    m.add_class::<s3::S3LockCore>()?;
    m.add_class::<s3::HeldLockCore>()?;
    m.add_class::<apstra::ApstraClientCore>()?;
    m.add_class::<apstra::ApstraMutexCore>()?;
    m.add_class::<apstra::HeldMutexCore>()?;
    m.add_function(wrap_pyfunction!(cli::run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(released_unattended, m)?)?;
    // Registered at import, so it runs after the exit hooks registered later
    // (atexit runs them last-in first-out), which may still need the thread.
    let stop = wrap_pyfunction!(python_thread::stop_at_exit, m)?;
    m.py().import("atexit")?.call_method1("register", (stop,))?;
    Ok(())
}

/// The core's warning for a lock released without the program asking:
/// `signal=None` at exit, else on that signal (e.g. `"SIGTERM"`).
#[pyfunction]
#[pyo3(signature = (target, id, signal=None))]
fn released_unattended(target: &str, id: &str, signal: Option<String>) -> String {
    use condlock::progress::{released_unattended, Unattended};
    let why = match signal.as_deref() {
        None => Unattended::Exit,
        Some("SIGTERM") => Unattended::Signal("SIGTERM"),
        Some("SIGINT") => Unattended::Signal("SIGINT"),
        Some("SIGHUP") => Unattended::Signal("SIGHUP"),
        Some(_) => Unattended::Signal("a termination signal"),
    };
    released_unattended(target, id, why)
}
