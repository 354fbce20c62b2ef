//! The `condlock` command: run anything under Terraform's S3 lock (or an
//! Apstra blueprint mutex), see who holds it, clear stale locks.
//!
//! Everything about locks is decided by the `condlock` core (settings,
//! errors and their messages, progress notices); this crate reads the command
//! line and the Terraform directory, shows progress and maps outcomes to exit
//! statuses ([`exit`]). [`run`] is the whole program, so that other
//! distributions (the Python wheel's console script) call the same code.

#![deny(missing_docs)]

pub mod args;
mod commands;
pub mod exit;
pub mod output;
pub mod target;
pub mod tfdir;

use std::ffi::OsString;

use clap::{CommandFactory as _, Parser as _};
use condlock::error::{CommandLine, Context};
use condlock::Error;

/// A failure, ready to show: the exit status, the stable code, the message.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The exit status ([`exit`]).
    pub exit: i32,
    /// The core's stable error code, or the command line's own
    /// (`not_confirmed`, `cannot_run`).
    pub code: &'static str,
    /// The whole message.
    pub message: String,
}

impl Failure {
    /// A core error about a lock: the core's whole message for it.
    pub fn core(e: &Error, ctx: &Context) -> Self {
        Failure {
            exit: exit::for_code(e.code()),
            code: e.code(),
            message: e.explain(ctx, &CommandLine),
        }
    }

    /// A core error before any lock is known (configuration).
    pub fn plain(e: &Error) -> Self {
        Failure {
            exit: exit::for_code(e.code()),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// Run the program with `args` (the first is the program name) and return
/// its exit status.
pub fn run(args: Vec<OsString>) -> i32 {
    let cli = match args::Cli::try_parse_from(args::normalize(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let status = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return status;
        }
    };
    if let args::Command::Completions { shell } = &cli.command {
        let mut cmd = args::Cli::command();
        clap_complete::generate(*shell, &mut cmd, "condlock", &mut std::io::stdout());
        return exit::OK;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("condlock: cannot start the I/O runtime: {e}");
            return exit::OTHER;
        }
    };
    runtime.block_on(commands::dispatch(cli))
}
