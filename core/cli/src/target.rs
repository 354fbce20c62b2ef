//! From the command line to a lock: a Terraform directory, an `s3://` URL or
//! an Apstra blueprint, resolved by the core's settings (which apply the
//! environment defaults and every rule).

use std::path::{Path, PathBuf};

use condlock::error::Context;
use condlock::native::{ApstraClient, ApstraMutex, CredentialSource, S3Lock, TransportOptions};
use condlock::settings::{ApstraSettings, CredentialPlan, MutexSettings, S3Settings};
use condlock::Error;

use crate::args::TargetArgs;
use crate::{exit, Failure};

/// A lock named on the command line, not yet opened.
#[derive(Debug)]
pub enum Target {
    /// An S3 lock file.
    S3 {
        /// Everything the user (or the Terraform directory) said.
        settings: Box<S3Settings>,
        /// The backend's `profile`, if any.
        profile: Option<String>,
        /// Backend settings condlock does not apply.
        ignored: Vec<&'static str>,
    },
    /// An Apstra blueprint mutex.
    Apstra {
        /// The blueprint ID.
        blueprint: String,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        exit: exit::INVALID_CONFIG,
        code: "invalid_config",
        message: message.into(),
    }
}

/// `s3://bucket/key` → (bucket, key); the key may be empty only for `list`.
pub fn parse_s3_url(url: &str, key_required: bool) -> Result<(String, String), Failure> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        usage(format!(
            "invalid target: {url:?} is not an s3://BUCKET/STATE_KEY URL (for a Terraform \
             directory use --terraform-dir DIR; for Apstra, --apstra-blueprint ID)"
        ))
    })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(usage(format!("invalid target: {url:?} names no bucket")));
    }
    if key_required && key.is_empty() {
        return Err(usage(format!(
            "invalid target: {url:?} names no state key: write s3://{bucket}/path/to/terraform.tfstate \
             (the lock is that key plus .tflock)"
        )));
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// The directory whose `.terraform/` names the lock: `--terraform-dir`, or
/// the current directory when it holds one.
fn terraform_dir(at: &TargetArgs) -> Option<PathBuf> {
    if let Some(d) = &at.terraform_dir {
        return Some(d.clone());
    }
    let here = Path::new(".");
    crate::tfdir::data_dir(here, &env)
        .is_dir()
        .then(|| here.to_path_buf())
}

/// Resolve what the command line names. `key_required`: false for `list`.
pub fn resolve(
    target: Option<&str>,
    at: &TargetArgs,
    key_required: bool,
) -> Result<Target, Failure> {
    if let Some(bp) = &at.apstra_blueprint {
        if let Some(t) = target {
            return Err(usage(format!(
                "invalid target: {t:?} and --apstra-blueprint both name a lock; give one"
            )));
        }
        return Ok(Target::Apstra {
            blueprint: bp.clone(),
        });
    }
    let (mut settings, profile, ignored) = match target {
        Some(url) => {
            if at.terraform_dir.is_some() {
                return Err(usage(format!(
                    "invalid target: {url:?} and --terraform-dir both name a lock; give one"
                )));
            }
            let (bucket, key) = parse_s3_url(url, key_required)?;
            let settings = S3Settings {
                bucket,
                key,
                ..S3Settings::default()
            };
            (settings, None, Vec::new())
        }
        None => match terraform_dir(at) {
            Some(dir) => {
                let b = crate::tfdir::read(&dir, &env).map_err(|e| Failure::plain(&e))?;
                (b.settings, b.profile, b.ignored)
            }
            None => {
                return Err(usage(
                    "no lock named: give s3://BUCKET/STATE_KEY, --terraform-dir DIR or \
                     --apstra-blueprint ID (the current directory holds no .terraform/)",
                ))
            }
        },
    };
    if at.region.is_some() {
        settings.region = at.region.clone();
    }
    if at.endpoint.is_some() {
        settings.endpoint = at.endpoint.clone();
    }
    if at.workspace.is_some() {
        settings.workspace = at.workspace.clone();
    }
    if at.workspace_key_prefix.is_some() {
        settings.workspace_key_prefix = at.workspace_key_prefix.clone();
    }
    if at.path_style {
        settings.path_style = Some(true);
    }
    if at.dynamodb_table.is_some() {
        settings.dynamodb_table = at.dynamodb_table.clone();
    }
    if at.dynamodb_endpoint.is_some() {
        settings.dynamodb_endpoint = at.dynamodb_endpoint.clone();
    }
    Ok(Target::S3 {
        settings: Box::new(settings),
        profile,
        ignored,
    })
}

/// A lock, opened.
pub enum Lock {
    /// An S3 lock file and the options of its acquisitions.
    S3 {
        /// The lock.
        lock: S3Lock,
        /// Who, operation, info, backoff: as the settings resolved them.
        opts: Box<condlock::s3::AcquireOptions>,
    },
    /// An Apstra blueprint mutex and the options of its acquisitions.
    Apstra {
        /// The mutex.
        mutex: Box<ApstraMutex>,
        /// Message template, backoff.
        opts: Box<condlock::apstra::AcquireOptions>,
    },
}

impl Lock {
    /// Which lock errors are about.
    pub fn context(&self) -> Context {
        match self {
            Lock::S3 { lock, .. } => lock.core().context(),
            Lock::Apstra { mutex, .. } => mutex.core().context(),
        }
    }
}

/// The credentials the resolved settings call for.
pub async fn credentials(
    plan: CredentialPlan,
    profile: Option<&str>,
) -> Result<CredentialSource, Failure> {
    match plan {
        CredentialPlan::Static(c) => Ok(CredentialSource::Static(c)),
        CredentialPlan::AwsChain => match profile {
            Some(p) => {
                let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .profile_name(p)
                    .load()
                    .await;
                conf.credentials_provider()
                    .map(CredentialSource::Chain)
                    .ok_or_else(|| {
                        usage(format!(
                            "invalid credentials: the AWS profile {p:?} gives no credentials"
                        ))
                    })
            }
            None => CredentialSource::from_aws_chain()
                .await
                .map_err(|e| Failure::plain(&e)),
        },
        CredentialPlan::Provider => Err(Failure::plain(&Error::Misuse(
            "no credential provider is given on the command line",
        ))),
    }
}

/// Fill in the region and endpoint of the AWS profile the credentials come
/// from (the Terraform backend's `profile`, else `AWS_PROFILE`): they come
/// after explicit values and the environment, as `settings::resolve` decides.
/// The files are read only when an explicit value is missing.
pub async fn with_profile_values(
    settings: &mut S3Settings,
    profile: Option<&str>,
) -> Result<(), Failure> {
    if settings.region.is_none() || settings.endpoint.is_none() {
        settings.aws_profile = condlock::native::aws_profile_values(profile)
            .await
            .map_err(|e| Failure::plain(&e))?;
    }
    Ok(())
}

/// The transport options of resolved S3 settings.
pub fn transport(t: &condlock::settings::TransportSettings) -> TransportOptions {
    TransportOptions {
        request_timeout: t.request_timeout,
        connect_timeout: t.connect_timeout,
        verify_tls: t.verify_tls,
        ca_bundle_pem: t.ca_bundle_pem.clone(),
    }
}

/// Open the lock of `target`. `operation` and `info` fill the LockInfo (S3)
/// or the holder message (Apstra, `info` only).
pub async fn open(target: Target, operation: &str, info: Option<String>) -> Result<Lock, Failure> {
    match target {
        Target::S3 {
            mut settings,
            profile,
            ..
        } => {
            settings.operation = Some(operation.to_string());
            settings.info = info;
            with_profile_values(&mut settings, profile.as_deref()).await?;
            let resolved = settings
                .resolve(&env, &condlock::native::default_who())
                .map_err(|e| Failure::plain(&e))?;
            let creds = credentials(resolved.credentials, profile.as_deref()).await?;
            let lock =
                S3Lock::with_transport(resolved.config, creds, &transport(&resolved.transport))
                    .map_err(|e| Failure::plain(&e))?
                    .verify_conditional_writes(resolved.verify);
            Ok(Lock::S3 {
                lock,
                opts: Box::new(resolved.acquire),
            })
        }
        Target::Apstra { blueprint } => {
            let server = ApstraSettings::default()
                .resolve(&env)
                .map_err(|e| Failure::plain(&e))?;
            let resolved = MutexSettings {
                blueprint_id: blueprint,
                message: info,
                ..MutexSettings::default()
            }
            .resolve()
            .map_err(|e| Failure::plain(&e))?;
            let mut mutex = ApstraClient::new(server)
                .map_err(|e| Failure::plain(&e))?
                .mutex(resolved.blueprint);
            if let Some(m) = &resolved.message {
                mutex = mutex.with_message(m.clone());
            }
            let mut opts = resolved.acquire;
            opts.message = mutex.options().message;
            Ok(Lock::Apstra {
                mutex: Box::new(mutex),
                opts: Box::new(opts),
            })
        }
    }
}

/// An Apstra client from the environment (`APSTRA_*`), for `list` and
/// `force-unlock --tag`.
pub fn apstra_client() -> Result<ApstraClient, Failure> {
    let server = ApstraSettings::default()
        .resolve(&env)
        .map_err(|e| Failure::plain(&e))?;
    ApstraClient::new(server).map_err(|e| Failure::plain(&e))
}
