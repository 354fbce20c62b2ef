//! The S3 backend of a Terraform working directory, read the way Terraform
//! reads it: `.terraform/terraform.tfstate` (the backend's resolved
//! configuration), `.terraform/environment` (the selected workspace),
//! `TF_DATA_DIR` and `TF_WORKSPACE`.
//!
//! The backend configuration may hold secrets (`access_key`, `secret_key`,
//! `token`, `sse_customer_key`): they go straight into [`Secret`]s and are
//! never part of a message.

use std::path::{Path, PathBuf};

use condlock::settings::{CredentialSettings, S3Settings};
use condlock::{Error, Secret};
use serde_json::Value;

/// What a Terraform directory says about its lock.
#[derive(Debug)]
pub struct TerraformBackend {
    /// The lock's settings (bucket, key, workspace, endpoint, credentials...).
    pub settings: S3Settings,
    /// `profile`, when the backend names one (credentials then come from it).
    pub profile: Option<String>,
    /// Settings condlock does not apply, to be mentioned to the user.
    pub ignored: Vec<&'static str>,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

/// The data directory of `dir`: `$TF_DATA_DIR` (relative to `dir` when
/// relative, as Terraform resolves it from its working directory), else
/// `dir/.terraform`.
pub fn data_dir(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("TF_DATA_DIR").filter(|v| !v.is_empty()) {
        Some(d) => dir.join(d),
        None => dir.join(".terraform"),
    }
}

/// Read the backend of the Terraform directory `dir`.
pub fn read(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<TerraformBackend, Error> {
    let data = data_dir(dir, env);
    let state_file = data.join("terraform.tfstate");
    let text = std::fs::read_to_string(&state_file).map_err(|e| {
        invalid(
            "terraform_dir",
            format!(
                "cannot read {} ({e}); run `terraform init` in {} first, or name the lock \
                 with s3://bucket/key",
                state_file.display(),
                dir.display()
            ),
        )
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        invalid(
            "terraform_dir",
            format!("{} is not JSON: {e}", state_file.display()),
        )
    })?;
    let backend = &doc["backend"];
    let kind = backend["type"].as_str().unwrap_or("");
    if kind.is_empty() {
        return Err(invalid(
            "terraform_dir",
            format!(
                "{} names no backend: the state is local, and Terraform locks it with a local \
                 file, not in S3",
                state_file.display()
            ),
        ));
    }
    if kind != "s3" {
        return Err(invalid(
            "terraform_dir",
            format!(
                "the backend of {} is {kind:?}, not \"s3\": condlock takes the locks of the s3 \
                 backend only",
                dir.display()
            ),
        ));
    }
    let config = &backend["config"];
    let text_of = |name: &str| {
        config[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let flag = |name: &str| config[name].as_bool();
    // Terraform takes the lock file with use_lockfile = true, the DynamoDB
    // item with dynamodb_table, both when both are set: so does condlock.
    let use_lockfile = flag("use_lockfile") == Some(true);
    let dynamodb_table = text_of("dynamodb_table");
    if !use_lockfile && dynamodb_table.is_none() {
        return Err(invalid(
            "terraform_dir",
            format!(
                "the s3 backend of {} takes no lock at all (neither use_lockfile nor \
                 dynamodb_table is set): there is no Terraform lock to share. Set \
                 use_lockfile = true in the backend block and run `terraform init \
                 -reconfigure`",
                dir.display()
            ),
        ));
    }
    let bucket = text_of("bucket").ok_or_else(|| {
        invalid(
            "terraform_dir",
            format!("the s3 backend of {} has no bucket", dir.display()),
        )
    })?;
    let key = text_of("key").ok_or_else(|| {
        invalid(
            "terraform_dir",
            format!("the s3 backend of {} has no key", dir.display()),
        )
    })?;
    // TF_WORKSPACE wins over the selected workspace, as in Terraform.
    let workspace = match env("TF_WORKSPACE").filter(|w| !w.is_empty()) {
        Some(w) => w,
        None => match std::fs::read_to_string(data.join("environment")) {
            Ok(w) if !w.trim().is_empty() => w.trim().to_string(),
            _ => "default".to_string(),
        },
    };
    let endpoint = config["endpoints"]["s3"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| text_of("endpoint"));
    let path_style = flag("use_path_style").or(flag("force_path_style"));
    let credentials = CredentialSettings {
        access_key_id: text_of("access_key"),
        secret_access_key: text_of("secret_key").map(Secret::new),
        session_token: text_of("token").map(Secret::new),
        provider: None,
    };
    let mut ignored = Vec::new();
    for name in [
        "assume_role",
        "assume_role_with_web_identity",
        "shared_credentials_files",
        "shared_credentials_file",
        "shared_config_files",
        "custom_ca_bundle",
        "http_proxy",
        "https_proxy",
    ] {
        if !config[name].is_null() {
            ignored.push(name);
        }
    }
    let settings = S3Settings {
        bucket,
        key,
        region: text_of("region"),
        endpoint,
        credentials,
        workspace: Some(workspace),
        workspace_key_prefix: text_of("workspace_key_prefix"),
        sse_customer_key: text_of("sse_customer_key").map(Secret::new),
        kms_key_id: text_of("kms_key_id"),
        encrypt: flag("encrypt").unwrap_or(false),
        acl: text_of("acl"),
        path_style,
        verify_tls: flag("insecure").map(|insecure| !insecure),
        use_lockfile: Some(use_lockfile),
        dynamodb_endpoint: config["endpoints"]["dynamodb"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| text_of("dynamodb_endpoint")),
        dynamodb_table,
        ..S3Settings::default()
    };
    Ok(TerraformBackend {
        settings,
        profile: text_of("profile"),
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference file, captured from Terraform 1.11.4.
    pub const REFERENCE: &str = include_str!("../tests/terraform-1.11.4.tfstate");

    fn dir_with(state: &str, environment: Option<&str>) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "condlock-tfdir-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join(".terraform")).unwrap();
        std::fs::write(dir.join(".terraform/terraform.tfstate"), state).unwrap();
        if let Some(e) = environment {
            std::fs::write(dir.join(".terraform/environment"), e).unwrap();
        }
        dir
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_reference_directory_names_the_lock_terraform_takes() {
        let dir = dir_with(REFERENCE, Some("staging"));
        let b = read(&dir, &no_env).unwrap();
        let r = b.settings.resolve(&no_env, "me@host").unwrap();
        assert_eq!(
            r.config.lock_key(),
            "teams/staging/envs/dev/terraform.tfstate.tflock"
        );
        assert_eq!(r.config.bucket(), "tfstate");
        assert_eq!(r.config.endpoint_display(), "http://127.0.0.1:5099");
        assert_eq!(
            r.config.lock_url(),
            "http://127.0.0.1:5099/tfstate/teams/staging/envs/dev/terraform.tfstate.tflock"
        );
        assert_eq!(r.config.encryption(), &condlock::s3::Encryption::S3Managed);
        // TF_WORKSPACE wins over .terraform/environment; default drops the prefix.
        let env = |k: &str| (k == "TF_WORKSPACE").then(|| "default".to_string());
        let r = read(&dir, &env)
            .unwrap()
            .settings
            .resolve(&no_env, "me@host")
            .unwrap();
        assert_eq!(r.config.lock_key(), "envs/dev/terraform.tfstate.tflock");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_of_the_backend_never_show() {
        let dir = dir_with(
            &REFERENCE.replace(
                r#""secret_key": "test""#,
                r#""secret_key": "hunter2-secret""#,
            ),
            None,
        );
        let b = read(&dir, &no_env).unwrap();
        assert!(!format!("{b:?}").contains("hunter2-secret"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_dynamodb_table_takes_the_locks_terraform_takes() {
        // dynamodb_table alone: the item only.
        let dynamo = dir_with(
            &REFERENCE
                .replace(r#""use_lockfile": true"#, r#""use_lockfile": null"#)
                .replace(r#""dynamodb_table": null"#, r#""dynamodb_table": "locks""#)
                .replace(
                    r#""dynamodb": null"#,
                    r#""dynamodb": "http://127.0.0.1:5098""#,
                ),
            Some("staging"),
        );
        let r = read(&dynamo, &no_env)
            .unwrap()
            .settings
            .resolve(&no_env, "me@host")
            .unwrap();
        assert!(!r.config.lock_file());
        let table = r.config.dynamodb().expect("the table");
        assert_eq!(table.table(), "locks");
        assert_eq!(table.endpoint_display(), "http://127.0.0.1:5098");
        // The item's LockID is the workspace's state path, as Terraform's.
        assert_eq!(
            r.config.lock_info_path(),
            "tfstate/teams/staging/envs/dev/terraform.tfstate"
        );
        // Both set: both taken.
        let both = dir_with(
            &REFERENCE.replace(r#""dynamodb_table": null"#, r#""dynamodb_table": "locks""#),
            None,
        );
        let r = read(&both, &no_env)
            .unwrap()
            .settings
            .resolve(&no_env, "me@host")
            .unwrap();
        assert!(r.config.lock_file());
        assert_eq!(r.config.dynamodb().unwrap().table(), "locks");
        // The reference (use_lockfile only): no table.
        let file = dir_with(REFERENCE, None);
        let r = read(&file, &no_env)
            .unwrap()
            .settings
            .resolve(&no_env, "me@host")
            .unwrap();
        assert!(r.config.lock_file() && r.config.dynamodb().is_none());
        for d in [dynamo, both, file] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn other_backends_and_backends_without_a_lock_are_refused_clearly() {
        let none = dir_with(
            &REFERENCE.replace(r#""use_lockfile": true"#, r#""use_lockfile": false"#),
            None,
        );
        let msg = read(&none, &no_env).unwrap_err().to_string();
        assert!(msg.contains("takes no lock at all"), "{msg}");
        let gcs = dir_with(
            &REFERENCE.replace(r#""type": "s3""#, r#""type": "gcs""#),
            None,
        );
        let msg = read(&gcs, &no_env).unwrap_err().to_string();
        assert!(msg.contains("\"gcs\", not \"s3\""), "{msg}");
        let missing = std::env::temp_dir().join("condlock-no-such-dir");
        let msg = read(&missing, &no_env).unwrap_err().to_string();
        assert!(msg.contains("terraform init"), "{msg}");
        for d in [none, gcs] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn tf_data_dir_moves_the_data_directory() {
        let env = |k: &str| (k == "TF_DATA_DIR").then(|| "elsewhere".to_string());
        assert_eq!(
            data_dir(Path::new("/w"), &env),
            PathBuf::from("/w/elsewhere")
        );
        assert_eq!(
            data_dir(Path::new("/w"), &no_env),
            PathBuf::from("/w/.terraform")
        );
    }
}
