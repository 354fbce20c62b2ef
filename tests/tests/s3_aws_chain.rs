//! Credentials from the standard AWS chain (the `aws-config` feature), proven
//! against moto in auth mode, where only the right secret signs correctly.
//! One test per file: it changes process-wide environment variables.

use condlock::native::{CredentialSource, S3Lock};
use condlock::s3::{S3LockConfig, UnlockOutcome};
use condlock::{Error, Wait};
use condlock_integration::MotoServer;

#[tokio::test]
async fn a_shared_credentials_profile_signs_and_a_wrong_one_is_refused() {
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
    let err = lock.acquire(opts).await.unwrap_err();
    assert!(
        matches!(&err, Error::AccessDenied { code, .. } if code == "SignatureDoesNotMatch"),
        "{err:?}"
    );
    assert!(!format!("{err:?} {err}").contains(&key.secret_access_key));
    let _ = std::fs::remove_dir_all(&dir);
}
