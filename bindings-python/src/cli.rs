//! The `condlock` command inside the wheel: `python -m condlock` and the
//! `condlock` console script run the program `cargo install condlock-cli`
//! builds (`condlock_cli::run`), not a second implementation.

use std::ffi::OsString;

use pyo3::prelude::*;

/// Run the command line (`argv[0]` is the program name) and return its exit
/// status. The GIL is released while it runs; the program installs its own
/// SIGINT/SIGTERM handling for `run` and `acquire`, as the binary does.
#[pyfunction]
pub fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| condlock_cli::run(argv))
}
