//! Exit statuses: one per kind of outcome, so that shell scripts can branch.

/// Success; `status`: the lock is free.
pub const OK: i32 = 0;
/// Any other failure (a bug, an unexpected error).
pub const OTHER: i32 = 1;
/// Bad usage: unknown flag, missing argument, malformed duration.
pub const USAGE: i32 = 2;
/// The lock is held by someone else (`status`: held).
pub const HELD: i32 = 3;
/// The wait for the lock ran out (`--timeout`).
pub const TIMEOUT: i32 = 4;
/// The lock was lost while held (`run`: the command was stopped).
pub const LOST: i32 = 5;
/// `release` / `force-unlock`: the lock carries another ID.
pub const NOT_OWNED: i32 = 6;
/// Credentials refused or missing permissions.
pub const ACCESS_DENIED: i32 = 7;
/// Invalid configuration: bad target, no such bucket or blueprint, wrong region.
pub const INVALID_CONFIG: i32 = 8;
/// The server could not be reached or kept failing.
pub const TRANSPORT: i32 = 9;
/// The store ignores conditional writes: it cannot provide a lock.
pub const UNSAFE_STORE: i32 = 10;
/// `force-unlock` was not confirmed (or stdin is not a terminal and `-force`
/// was not given).
pub const NOT_CONFIRMED: i32 = 11;
/// `run`: the command could not be started.
pub const CANNOT_RUN: i32 = 125;
/// `run`: the command was not found.
pub const NOT_FOUND: i32 = 127;
/// Interrupted (SIGINT/SIGTERM) before the lock was taken.
pub const CANCELLED: i32 = 130;

/// The exit status of a core error, by its stable code.
pub fn for_code(code: &str) -> i32 {
    match code {
        "held" => HELD,
        "timeout" => TIMEOUT,
        "lost" => LOST,
        "not_owned" => NOT_OWNED,
        "access_denied" | "login_refused" => ACCESS_DENIED,
        "invalid_config" | "no_such_bucket" | "wrong_region" | "no_such_blueprint" => {
            INVALID_CONFIG
        }
        "transport" | "server" | "rejected" | "malformed_response" => TRANSPORT,
        "conditional_writes_unsupported" => UNSAFE_STORE,
        "cancelled" => CANCELLED,
        _ => OTHER,
    }
}

/// The table shown by `--help` and in the README.
pub const TABLE: &str = "\
Exit status:
    0    success (status: the lock is free)
    1    unexpected error
    2    usage error (unknown flag, bad duration)
    3    held: the lock is held by someone else (status: held)
    4    timeout: the wait (--timeout) ran out
    5    lost: the lock was lost while held (run: the command was stopped)
    6    not owned: the lock carries another ID (release, force-unlock)
    7    access denied: credentials refused or lacking permission
    8    invalid configuration: bad target, no such bucket/blueprint, wrong region
    9    transport: the server could not be reached or kept failing
   10    the store ignores conditional writes: it cannot provide a lock
   11    force-unlock not confirmed (stdin not a terminal and no -force)
  125    run: the command could not be started (127: not found)
  130    interrupted before the lock was taken
  run:   otherwise the command's own status (128+N when killed by signal N)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_has_a_status_and_the_table_lists_them() {
        for code in condlock::error::CODES {
            let status = for_code(code);
            // A caller's programming errors: the command never makes them.
            if *code != "misuse" && *code != "not_reentrant" {
                assert_ne!(status, OTHER, "{code}");
            }
            assert!(
                TABLE.contains(&format!("\n  {status:>3} "))
                    || TABLE.contains(&format!("{status}    ")),
                "{code} -> {status} missing from the table"
            );
        }
    }

    #[test]
    fn the_readme_shows_the_same_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(TABLE),
            "README.md's exit-status table differs from exit::TABLE"
        );
    }
}
