//! The command line, as clap reads it. Doc comments here are the `--help`
//! text; fields without one (flattened groups) are documented by their type.
#![allow(missing_docs)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A duration as people write it: `30s`, `5m`, `1h30m`, `500ms`.
pub fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (write durations as 30s, 5m, 1h30m)"))
}

const ABOUT: &str = "Run anything under Terraform's S3 lock (or an Apstra blueprint mutex), see \
who holds it, clear stale locks.";

const TARGETS: &str = "\
Targets (the lock a command works on):
  --terraform-dir DIR       the lock of a Terraform directory (default: the current
                            directory when it holds .terraform/): backend, workspace,
                            prefix, endpoint and credentials as `terraform init` recorded
                            them (honours TF_DATA_DIR and TF_WORKSPACE)
  s3://BUCKET/STATE_KEY     a state's lock (`.tflock` is added), with --region,
                            --endpoint, --workspace; credentials from the AWS chain
  --apstra-blueprint ID     an Apstra blueprint mutex (server from APSTRA_URL,
                            APSTRA_USER, APSTRA_PASS)

Output: --json writes events (waiting, acquired, released, lost, error) to stderr, one
JSON object per line, and results (status, list, acquire) to stdout as JSON.";

/// `condlock`.
#[derive(Debug, Parser)]
#[command(
    name = "condlock",
    version,
    about = ABOUT,
    after_long_help = concat_help(),
    after_help = "Use --help for targets, examples and exit statuses."
)]
pub struct Cli {
    /// Print only errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Machine-readable output: JSON events on stderr, JSON results on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

fn concat_help() -> String {
    format!("{TARGETS}\n\n{}", crate::exit::TABLE)
}

/// Which lock.
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// A Terraform working directory whose S3 backend names the lock.
    #[arg(long, value_name = "DIR")]
    pub terraform_dir: Option<PathBuf>,
    /// AWS region (default: the Terraform directory's, AWS_REGION, us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// S3 endpoint URL (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Terraform workspace (default: TF_WORKSPACE, the selected one, `default`).
    #[arg(long)]
    pub workspace: Option<String>,
    /// Terraform's workspace_key_prefix (default `env:`).
    #[arg(long, value_name = "PREFIX")]
    pub workspace_key_prefix: Option<String>,
    /// Path-style S3 addressing (default: path style on custom endpoints).
    #[arg(long)]
    pub path_style: bool,
    /// Also take Terraform's DynamoDB lock item in this table (the backend's
    /// dynamodb_table; default: the Terraform directory's).
    #[arg(long, value_name = "TABLE")]
    pub dynamodb_table: Option<String>,
    /// DynamoDB endpoint URL (default: the Terraform directory's,
    /// AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL, AWS).
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,
    /// The mutex of this Apstra blueprint (server from APSTRA_URL, APSTRA_USER, APSTRA_PASS).
    #[arg(long, value_name = "ID", conflicts_with_all = ["terraform_dir", "region", "endpoint", "workspace", "dynamodb_table", "dynamodb_endpoint"])]
    pub apstra_blueprint: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait for the lock, run a command, release; exit with the command's status.
    #[command(after_long_help = "\
Examples:
  condlock run -- ./migrate.sh                     # the lock of the Terraform directory here
  condlock run s3://tfstate/envs/dev/terraform.tfstate --timeout 10m -- make deploy
  condlock run --apstra-blueprint 801a43ec-... --info 'nightly backup' -- ./backup.sh
  condlock run --lease 1m -- ./long-job            # stop the job if the lock is lost

SIGINT and SIGTERM are passed to the command; the lock is released once it ends. With
--lease the lock is renewed while the command runs; if it is lost anyway, the command
gets SIGTERM, then SIGKILL after --grace, and condlock exits with status 5.")]
    Run {
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
        /// Give up waiting after this long (default: wait forever; 0s: do not wait).
        #[arg(long, value_parser = duration, value_name = "D")]
        timeout: Option<Duration>,
        /// Hold the lock with a lease renewed while the command runs (S3 only).
        #[arg(long, value_parser = duration, value_name = "D")]
        lease: Option<Duration>,
        /// The lock's Info (default: the command line).
        #[arg(long)]
        info: Option<String>,
        /// After a lost lock, how long the command has between SIGTERM and SIGKILL.
        #[arg(long, value_parser = duration, value_name = "D", default_value = "10s")]
        grace: Duration,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Show whether the lock is free or held, and by whom.
    #[command(after_long_help = "\
Examples:
  condlock status                                  # exit 0: free, 3: held
  condlock status s3://tfstate/envs/dev/terraform.tfstate --json
  if condlock -q status; then echo free; fi")]
    Status {
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
    },
    /// Wait until the lock is free, without taking it.
    #[command(after_long_help = "\
Examples:
  condlock wait --timeout 30m && terraform plan")]
    Wait {
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
        /// Give up after this long (default: wait forever).
        #[arg(long, value_parser = duration, value_name = "D")]
        timeout: Option<Duration>,
    },
    /// Take the lock and print its ID, for a lock that spans several steps.
    #[command(after_long_help = "\
Examples:
  ID=$(condlock acquire --info \"pipeline $CI_PIPELINE_ID\")
  ...
  condlock release \"$ID\"")]
    Acquire {
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
        /// Give up waiting after this long (default: wait forever; 0s: do not wait).
        #[arg(long, value_parser = duration, value_name = "D")]
        timeout: Option<Duration>,
        /// The lock's Info.
        #[arg(long)]
        info: Option<String>,
    },
    /// Release a lock taken with `acquire`, only if it still carries this ID.
    #[command(after_long_help = "\
Examples:
  condlock release 6e2f9a53-fdfb-3451-f77a-25cd696a5968")]
    Release {
        /// The lock ID printed by `acquire` (Apstra: the mutex tag ID).
        id: String,
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
    },
    /// Remove someone else's lock by its ID, like `terraform force-unlock`.
    #[command(after_long_help = "\
Asks for confirmation on a terminal unless -force is given; refuses without -force when
stdin is not a terminal. Refuses when the lock carries another ID.

Examples:
  condlock force-unlock 6e2f9a53-fdfb-3451-f77a-25cd696a5968
  condlock force-unlock -force 6e2f9a53-... s3://tfstate/envs/dev/terraform.tfstate
  condlock force-unlock --tag TAG_ID               # an Apstra mutex tag, by its ID")]
    ForceUnlock {
        /// The ID of the lock to remove (Apstra: the mutex tag ID).
        #[arg(required_unless_present = "tag")]
        id: Option<String>,
        /// s3://BUCKET/STATE_KEY (default: the Terraform directory).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
        /// Do not ask for confirmation (also spelled -force).
        #[arg(long, short)]
        force: bool,
        /// Remove this Apstra mutex tag, whatever blueprint it locks.
        #[arg(long, value_name = "TAG_ID", conflicts_with = "id")]
        tag: Option<String>,
    },
    /// List every lock under a prefix (or every Apstra mutex), with holder and age.
    #[command(after_long_help = "\
Examples:
  condlock list s3://tfstate                       # every .tflock in the bucket
  condlock list --prefix envs/ --stale-after 2h    # what is stuck
  condlock list --apstra --json                    # every Apstra mutex (APSTRA_*)

S3 listing needs s3:ListBucket.")]
    List {
        /// s3://BUCKET[/PREFIX] (default: the Terraform directory's bucket).
        target: Option<String>,
        #[command(flatten)]
        at: TargetArgs,
        /// Only keys under this prefix.
        #[arg(long)]
        prefix: Option<String>,
        /// Only locks held for longer than this.
        #[arg(long, value_parser = duration, value_name = "D")]
        stale_after: Option<Duration>,
        /// List the mutexes of every blueprint of the Apstra server (APSTRA_*).
        #[arg(long)]
        apstra: bool,
    },
    /// Print shell completions.
    #[command(after_long_help = "\
Examples:
  condlock completions bash > /etc/bash_completion.d/condlock
  condlock completions zsh > \"${fpath[1]}/_condlock\"
  condlock completions fish > ~/.config/fish/completions/condlock.fish")]
    Completions {
        /// bash, zsh or fish.
        shell: clap_complete::Shell,
    },
}

/// Terraform spells it `-force`; clap would read that as `-f -o -r -c -e`.
pub fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_dashes = false;
    for a in args {
        if a == "--" {
            after_dashes = true;
        }
        if !after_dashes && a == "-force" {
            out.push(OsString::from("--force"));
        } else {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terraforms_single_dash_force_is_read_but_not_in_the_command() {
        let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            normalize(v(&["condlock", "force-unlock", "-force", "ID"])),
            v(&["condlock", "force-unlock", "--force", "ID"])
        );
        assert_eq!(
            normalize(v(&["condlock", "run", "--", "rm", "-force"])),
            v(&["condlock", "run", "--", "rm", "-force"])
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("soon").unwrap_err().contains("30s, 5m, 1h30m"));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
