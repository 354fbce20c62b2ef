//! Credentials from the standard AWS chain (the `aws-config` feature), proven
//! against moto in auth mode, where only the right secret signs correctly;
//! region and endpoint from the profile's config, after the environment.
//! One test per file: it changes process-wide environment variables.

use condlock::native::{aws_profile_values, CredentialSource, S3Lock};
use condlock::s3::{S3LockConfig, UnlockOutcome};
use condlock::settings::S3Settings;
use condlock::{Error, Wait};
use condlock_integration::MotoServer;

#[tokio::test]
async fn profiles_give_credentials_region_and_endpoint_and_a_wrong_one_is_refused() {
    let (moto, key) = MotoServer::start_with_auth("tfstate");
    let dir = std::env::temp_dir().join(format!("condlock-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n[stale]\naws_access_key_id = {}\naws_secret_access_key = not-the-secret\n",
            key.access_key_id, key.secret_access_key, key.access_key_id
        ),
    )
    .unwrap();
    // Only the files above may provide credentials: no environment keys, no
    // config file, no instance metadata.
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    std::env::set_var("AWS_CONFIG_FILE", dir.join("no-config"));
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_REGION", "us-east-1");

    let config = S3LockConfig::builder("tfstate", "chain.tfstate")
        .endpoint(moto.endpoint())
        .build()
        .unwrap();

    std::env::set_var("AWS_PROFILE", "ci");
    let lock = S3Lock::new(
        config.clone(),
        CredentialSource::from_aws_chain().await.unwrap(),
    )
    .unwrap();
    let mut opts = lock.options();
    opts.wait = Wait::No;
    let held = lock.acquire(opts.clone()).await.unwrap();
    assert_eq!(lock.release(&held).await.unwrap(), UnlockOutcome::Released);

    std::env::set_var("AWS_PROFILE", "stale");
    let lock = S3Lock::new(config, CredentialSource::from_aws_chain().await.unwrap()).unwrap();
    let err = lock.acquire(opts.clone()).await.unwrap_err();
    assert!(
        matches!(&err, Error::AccessDenied { code, .. } if code == "SignatureDoesNotMatch"),
        "{err:?}"
    );
    assert!(!format!("{err:?} {err}").contains(&key.secret_access_key));

    // Region and endpoint from the profile's config (`[profile ci]` and its
    // `services` section), as boto3 reads them: no region or endpoint given
    // anywhere else, and the lock reaches moto only through the profile.
    let config_file = dir.join("config");
    std::fs::write(
        &config_file,
        format!(
            "[profile ci]\nregion = eu-north-1\nservices = local\n\n\
             [services local]\ns3 =\n  endpoint_url = {}\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    std::env::set_var("AWS_CONFIG_FILE", &config_file);
    std::env::set_var("AWS_PROFILE", "ci");
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ] {
        std::env::remove_var(var);
    }
    let env = |k: &str| std::env::var(k).ok();
    let from_profile = || async {
        S3Settings {
            bucket: "tfstate".into(),
            key: "profile.tfstate".into(),
            aws_profile: aws_profile_values(None).await.unwrap(),
            ..S3Settings::default()
        }
        .resolve(&env, "me@host")
        .unwrap()
    };
    let resolved = from_profile().await;
    assert_eq!(resolved.region, "eu-north-1");
    assert_eq!(resolved.config.endpoint_display(), moto.endpoint());
    let lock = S3Lock::new(
        resolved.config,
        CredentialSource::from_aws_chain_in(&resolved.region).await,
    )
    .unwrap();
    let held = lock.acquire(opts.clone()).await.unwrap();
    assert_eq!(lock.release(&held).await.unwrap(), UnlockOutcome::Released);

    // The environment comes before the profile.
    std::env::set_var("AWS_REGION", "us-east-1");
    assert_eq!(from_profile().await.region, "us-east-1");

    // No credentials anywhere: the error names the profile and the files it
    // read, and what else was tried.
    std::env::set_var("AWS_PROFILE", "nocreds");
    let lock = S3Lock::new(
        config_with(&moto),
        CredentialSource::from_aws_chain_in("us-east-1").await,
    )
    .unwrap();
    let err = lock.acquire(opts).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(err.field(), Some("credentials"), "{err:?}");
    for expected in [
        "\"nocreds\"",
        credentials.to_str().unwrap(),
        config_file.to_str().unwrap(),
        "AWS_ACCESS_KEY_ID",
        "SSO",
        "web identity",
        "metadata",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn config_with(moto: &MotoServer) -> S3LockConfig {
    S3LockConfig::builder("tfstate", "nocreds.tfstate")
        .endpoint(moto.endpoint())
        .build()
        .unwrap()
}
