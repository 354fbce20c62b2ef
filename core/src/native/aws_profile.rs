//! Region and endpoint of the selected AWS profile, read with the same
//! profile-file loader `aws-config` uses for credentials (so `AWS_PROFILE`,
//! `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE` and `~` mean what they
//! mean to the credential chain, boto3 and the AWS CLI).
//!
//! What takes precedence over these values is decided by
//! [`crate::settings::S3Settings::resolve`], not here.

use std::borrow::Cow;

use aws_runtime::env_config::file::EnvConfigFiles;
use aws_runtime::env_config::EnvConfigValue;
use aws_types::os_shim_internal::{Env, Fs};

use crate::error::Error;
use crate::settings::AwsProfileValues;

/// Region and S3 endpoint of the selected profile: `profile` when given (a
/// Terraform backend's `profile`), else `AWS_PROFILE`, else `default`. Files
/// that do not exist give empty values; a file that cannot be parsed is an
/// error naming it (the credential chain would fail on it too).
pub async fn aws_profile_values(profile: Option<&str>) -> Result<AwsProfileValues, Error> {
    read(&Env::real(), &Fs::real(), profile).await
}

async fn read(env: &Env, fs: &Fs, profile: Option<&str>) -> Result<AwsProfileValues, Error> {
    let chosen = profile.map(|p| Cow::Owned(p.to_string()));
    let set = aws_config::profile::load(fs, env, &EnvConfigFiles::default(), chosen)
        .await
        .map_err(|e| {
            Error::config(
                "AWS_CONFIG_FILE",
                format!(
                    "the AWS config or credentials file could not be read ({e}); fix the file, \
                     or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE elsewhere"
                ),
            )
        })?;
    let selected = set.selected_profile().to_string();
    let region = set
        .get("region")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(String::from);
    let ignore_endpoints = set
        .get("ignore_configured_endpoint_urls")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    // Profile keys only (no `.env(...)`): the environment's endpoint comes
    // first, and settings::resolve reads it from the binding's lookup.
    let endpoint = if ignore_endpoints {
        None
    } else {
        EnvConfigValue::new()
            .profile("endpoint_url")
            .service_id("s3")
            .load(env, Some(&set))
            .map(|(value, _origin)| value.trim().to_string())
            .filter(|e| !e.is_empty())
    };
    Ok(AwsProfileValues {
        profile: Some(selected),
        region,
        endpoint,
    })
}

/// Where the AWS credential chain looks, in words, for an error saying that
/// it found nothing: the profile and files it read, and the other sources.
pub(crate) fn chain_sources(profile: Option<&str>) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = profile
        .map(String::from)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_string());
    let config = env("AWS_CONFIG_FILE").unwrap_or_else(|| "~/.aws/config".to_string());
    let credentials =
        env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| "~/.aws/credentials".to_string());
    format!(
        "it tried the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), profile \
         {profile:?} in {credentials} and {config} (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, \
         AWS_CONFIG_FILE), SSO (`aws sso login`), web identity (AWS_WEB_IDENTITY_TOKEN_FILE \
         with AWS_ROLE_ARN), and the container and instance metadata services. To fix: export \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set AWS_PROFILE to a profile with \
         credentials, or pass keys explicitly"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(
        vars: &[(&str, &str)],
        files: &[(&str, &str)],
        profile: Option<&str>,
    ) -> AwsProfileValues {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(read(
            &Env::from_slice(vars),
            &Fs::from_slice(files),
            profile,
        ))
        .unwrap()
    }

    const CONFIG: &str = "[default]\nregion = us-west-2\n\n\
        [profile dev]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:9000\n\n\
        [profile svc]\nregion = ap-south-1\nendpoint_url = http://127.0.0.1:9000\nservices = local\n\n\
        [services local]\ns3 =\n  endpoint_url = http://127.0.0.1:9500\n\n\
        [profile ignoring]\nendpoint_url = http://127.0.0.1:9000\nignore_configured_endpoint_urls = true\n";

    #[test]
    fn the_selected_profile_gives_region_and_s3_endpoint() {
        let files = [("/cfg", CONFIG)];
        let dev = [("AWS_CONFIG_FILE", "/cfg"), ("AWS_PROFILE", "dev")];
        assert_eq!(
            values(&dev, &files, None),
            AwsProfileValues {
                profile: Some("dev".into()),
                region: Some("eu-central-1".into()),
                endpoint: Some("http://127.0.0.1:9000".into()),
            }
        );
        // The services section's s3 endpoint wins over the profile's own.
        let svc = values(&[("AWS_CONFIG_FILE", "/cfg")], &files, Some("svc"));
        assert_eq!(svc.endpoint.as_deref(), Some("http://127.0.0.1:9500"));
        assert_eq!(svc.region.as_deref(), Some("ap-south-1"));
        // No AWS_PROFILE: `default`.
        let default = values(&[("AWS_CONFIG_FILE", "/cfg")], &files, None);
        assert_eq!(default.profile.as_deref(), Some("default"));
        assert_eq!(default.region.as_deref(), Some("us-west-2"));
        assert_eq!(default.endpoint, None);
        let ignoring = values(&[("AWS_CONFIG_FILE", "/cfg")], &files, Some("ignoring"));
        assert_eq!(ignoring.endpoint, None);
    }

    #[test]
    fn missing_files_or_profiles_give_nothing() {
        let none = values(
            &[("AWS_CONFIG_FILE", "/absent"), ("HOME", "/nowhere")],
            &[],
            None,
        );
        assert_eq!((none.region, none.endpoint), (None, None));
        let other = values(
            &[("AWS_CONFIG_FILE", "/cfg"), ("AWS_PROFILE", "nosuch")],
            &[("/cfg", CONFIG)],
            None,
        );
        assert_eq!((other.region, other.endpoint), (None, None));
    }

    #[test]
    fn an_unparsable_file_is_an_error_naming_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt
            .block_on(read(
                &Env::from_slice(&[("AWS_CONFIG_FILE", "/cfg")]),
                &Fs::from_slice(&[("/cfg", "region = no-section\n")]),
                None,
            ))
            .unwrap_err();
        assert_eq!(err.field(), Some("AWS_CONFIG_FILE"));
    }
}
