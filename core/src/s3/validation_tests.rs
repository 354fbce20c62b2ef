//! Input validation: nothing a caller passes may move a request off its
//! bucket and lock key, and bad input is a typed error before any request is
//! built.

use std::sync::Arc;

use super::acquire::{Acquire, AcquireOptions, Entropy};
use super::config::{Credentials, S3LockConfig};
use crate::error::Error;
use crate::sansio::{Action, Event, Machine};
use crate::time::{ClockOffset, Now};

fn acquire(opts: AcquireOptions) -> Acquire {
    let config = S3LockConfig::builder("locks", "envs/dev/terraform.tfstate")
        .endpoint("http://127.0.0.1:9000")
        .build()
        .unwrap();
    Acquire::new(
        Arc::new(config),
        Credentials::new("AKIDEXAMPLE", "secret", None).unwrap(),
        opts,
        Entropy {
            lock_id: [7; 16],
            jitter_seed: 1,
        },
        ClockOffset::default(),
        Now::virtual_origin(),
    )
}

/// The first step of an acquisition with these options: a refusal names the
/// field, and nothing is sent.
fn first_step(opts: AcquireOptions) -> Result<(), (&'static str, String)> {
    match acquire(opts).step(Event::Start, Now::virtual_origin()) {
        Action::Done(Err(Error::InvalidConfig { field, reason })) => Err((field, reason)),
        Action::Send(_) => Ok(()),
        other => panic!("expected a request or InvalidConfig, got {other:?}"),
    }
}

#[test]
fn lock_info_fields_with_control_characters_are_refused_before_sending() {
    type Set = fn(&mut AcquireOptions, String);
    let fields: [(&str, Set); 3] = [
        ("who", |o, v| o.who = v),
        ("info", |o, v| o.info = v),
        ("operation", |o, v| o.operation = v),
    ];
    for (name, set) in fields {
        for bad in [
            "a\0b",
            "line\nbreak",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "\u{9b}31m",
        ] {
            let mut o = AcquireOptions::new("alice@ci");
            set(&mut o, bad.to_string());
            let (field, reason) = first_step(o).expect_err(bad);
            assert_eq!(field, name, "{bad:?}");
            assert!(reason.contains("control character"), "{reason}");
        }
        let mut o = AcquireOptions::new("alice@ci");
        set(
            &mut o,
            "plain text, ünïcode and quotes \" are fine".to_string(),
        );
        assert_eq!(first_step(o), Ok(()), "{name}");
    }
}

#[test]
fn info_is_capped_at_4_kib() {
    let mut o = AcquireOptions::new("alice@ci");
    o.info = "x".repeat(4096);
    assert_eq!(first_step(o), Ok(()));
    let mut o = AcquireOptions::new("alice@ci");
    o.info = "x".repeat(4097);
    let (field, reason) = first_step(o).unwrap_err();
    assert_eq!(field, "info");
    assert!(
        reason.contains("4097 bytes") && reason.contains("4096"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------
// Property: whatever the bucket, key, workspace, prefix and endpoint, either
// the config is refused or every request goes to exactly that bucket and lock
// key, through URL parsing that changes nothing.
// ---------------------------------------------------------------------------

mod urls {
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;
    use url::Url;

    use super::super::config::{Addressing, Credentials, S3LockConfig};
    use super::super::request::{delete_lock, get_lock, put_lock, PutCondition};
    use crate::error::Error;

    /// The inputs of one config.
    #[derive(Clone, Debug)]
    struct Input {
        bucket: String,
        key: String,
        workspace: Option<String>,
        prefix: Option<String>,
        endpoint: Option<String>,
        addressing: Option<Addressing>,
    }

    /// Characters that URL parsing treats specially, plus ordinary ones so
    /// that many generated values are valid.
    const TRICKY: &str = "[a-z0-9./%?#:@&;=+$, \\\\\\-_~\\x00\\t\\n\\x1b\\x7f\\u{85}\\u{9b}\
                          éA\u{202e}\u{fffd}😀]";

    fn tricky(max: usize) -> BoxedStrategy<String> {
        prop_oneof![
            4 => proptest::string::string_regex(&format!("{TRICKY}{{0,{max}}}")).unwrap(),
            // Dot segments and their encoded forms, joined by '/'.
            4 => prop::collection::vec(
                prop_oneof![
                    Just(".".to_string()),
                    Just("..".to_string()),
                    Just("%2e".to_string()),
                    Just(".%2E".to_string()),
                    Just("%2e%2e".to_string()),
                    Just("...".to_string()),
                    Just("a".to_string()),
                    Just("b.tfstate".to_string()),
                    Just("env:".to_string()),
                    "[a-z.%/]{1,6}",
                ],
                1..5,
            )
            .prop_map(|parts| parts.join("/")),
            1 => any::<String>(),
        ]
        .boxed()
    }

    fn bucket() -> BoxedStrategy<String> {
        prop_oneof![
            3 => "[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]",
            3 => "[a-z0-9.\\-/?#% A-Z_\\x00\\n\\u{85}é]{0,70}",
            1 => Just("locks".to_string()),
            1 => Just("my.bucket".to_string()),
            1 => any::<String>(),
        ]
        .boxed()
    }

    fn endpoint() -> BoxedStrategy<Option<String>> {
        let scheme = prop_oneof![
            Just("http://"),
            Just("https://"),
            Just("HTTP://"),
            Just(""),
            Just("ftp://"),
            Just("http:"),
        ];
        let userinfo = prop_oneof![
            6 => Just(""),
            1 => Just("AKIA:hunter2@"),
            1 => Just("hunter2@"),
        ];
        let host = prop_oneof![
            Just("127.0.0.1".to_string()),
            Just("localhost".to_string()),
            Just("minio.local".to_string()),
            Just("[::1]".to_string()),
            "[a-z0-9.\\-]{1,12}",
            "[a-z0-9.%@:\\[\\]\\\\/?# ]{0,12}",
        ];
        let port = prop_oneof![Just(""), Just(":9000"), Just(":80"), Just(":99999")];
        let path = prop_oneof![
            Just(String::new()),
            Just("/".to_string()),
            tricky(12).prop_map(|p| format!("/{p}")),
        ];
        let built = (scheme, userinfo, host, port, path)
            .prop_map(|(s, u, h, p, path)| format!("{s}{u}{h}{p}{path}"));
        prop_oneof![
            1 => Just(None),
            6 => built.prop_map(Some),
            1 => any::<String>().prop_map(Some),
        ]
        .boxed()
    }

    fn addressing() -> impl Strategy<Value = Option<Addressing>> {
        prop_oneof![
            Just(None),
            Just(Some(Addressing::PathStyle)),
            Just(Some(Addressing::VirtualHosted)),
        ]
    }

    fn fixed_endpoint() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some("http://127.0.0.1:9000".to_string())),
            Just(Some("http://minio.local:9000/base/".to_string())),
            Just(Some("https://s3.example.com/a%2Fb/".to_string())),
        ]
    }

    fn build(input: &Input) -> Result<S3LockConfig, Error> {
        let mut b = S3LockConfig::builder(input.bucket.clone(), input.key.clone());
        if let Some(ws) = &input.workspace {
            b = b.workspace(ws.clone());
        }
        if let Some(prefix) = &input.prefix {
            b = b.workspace_key_prefix(prefix.clone());
        }
        if let Some(e) = &input.endpoint {
            b = b.endpoint(e.clone());
        }
        if let Some(a) = input.addressing {
            b = b.addressing(a);
        }
        b.build()
    }

    /// The lock key Terraform would use for these inputs.
    fn expected_lock_key(input: &Input) -> String {
        let prefix = input.prefix.as_deref().unwrap_or("env:");
        let state = match input.workspace.as_deref() {
            None | Some("default") => input.key.clone(),
            Some(ws) if prefix.is_empty() => format!("{ws}/{}", input.key),
            Some(ws) => format!("{prefix}/{ws}/{}", input.key),
        };
        format!("{state}.tflock")
    }

    fn decode(s: &str) -> String {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .expect("the path decodes to UTF-8")
            .into_owned()
    }

    /// Check one URL a request goes to: both parsers keep it as it is, and
    /// it names exactly the bucket and lock key.
    fn check_target(input: &Input, config: &S3LockConfig, uri: &http::Uri) {
        let text = uri.to_string();
        assert_eq!(text, config.lock_url());
        let url = Url::parse(&text).expect("the lock URL parses");
        assert_eq!(url.as_str(), text, "URL parsing rewrote the lock URL");
        assert_eq!(uri.path(), url.path());
        assert_eq!(uri.host(), url.host_str());
        assert!(url.query().is_none() && url.fragment().is_none());
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(!text.contains("hunter2"));

        let bucket = &input.bucket;
        let lock_key = expected_lock_key(input);
        assert_eq!(config.lock_key(), lock_key);
        let host = url.host_str().unwrap();
        let path = url.path();
        // After the bucket: the key, which must decode to the lock key.
        let key_path = match &input.endpoint {
            None => {
                let aws = format!("s3.{}.amazonaws.com", config.region());
                if host == aws {
                    path.strip_prefix(&format!("/{bucket}/"))
                } else {
                    assert_eq!(host, format!("{bucket}.{aws}"));
                    path.strip_prefix('/')
                }
            }
            Some(raw) => {
                let ep = Url::parse(raw.trim()).expect("an accepted endpoint parses");
                assert_eq!(url.scheme(), ep.scheme());
                assert_eq!(url.port_or_known_default(), ep.port_or_known_default());
                let base = ep.path().trim_end_matches('/');
                let ep_host = ep.host_str().unwrap();
                let rest = path
                    .strip_prefix(base)
                    .expect("the endpoint's path comes first");
                match config_addressing(input) {
                    Addressing::PathStyle => {
                        assert_eq!(host, ep_host);
                        rest.strip_prefix(&format!("/{bucket}/"))
                    }
                    Addressing::VirtualHosted => {
                        assert_eq!(host, format!("{bucket}.{ep_host}"));
                        rest.strip_prefix('/')
                    }
                }
            }
        }
        .unwrap_or_else(|| panic!("{path:?} does not start with the bucket"));
        assert_eq!(decode(key_path), lock_key);
    }

    fn config_addressing(input: &Input) -> Addressing {
        input.addressing.unwrap_or(if input.endpoint.is_some() {
            Addressing::PathStyle
        } else {
            Addressing::VirtualHosted
        })
    }

    fn check(input: Input) {
        let config = match build(&input) {
            Ok(c) => c,
            Err(Error::InvalidConfig { reason, .. }) => {
                assert!(!reason.contains("hunter2"), "{reason}");
                return;
            }
            Err(other) => panic!("expected InvalidConfig, got {other:?}"),
        };
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_316_400);
        let requests = [
            put_lock(&config, &creds, b"{}", PutCondition::IfNoneMatch, t),
            put_lock(&config, &creds, b"{}", PutCondition::IfMatch("\"e\""), t),
            get_lock(&config, &creds, t),
            delete_lock(&config, &creds, Some("\"e\""), t),
            delete_lock(&config, &creds, None, t),
        ];
        for req in requests {
            let req = req.expect("an accepted config builds its requests");
            check_target(&input, &config, req.uri());
        }
    }

    proptest! {
        // 256 cases each (the default): a second or so. Failures are not
        // written to a regressions file; the cases they found are unit tests
        // in `config.rs`.
        #![proptest_config(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn keys_workspaces_and_prefixes_never_leave_the_lock_key(
            bucket in prop_oneof![Just("locks".to_string()), Just("my.bucket".to_string())],
            key in tricky(24),
            workspace in prop::option::of(tricky(8)),
            prefix in prop::option::of(tricky(8)),
            endpoint in fixed_endpoint(),
            addressing in addressing(),
        ) {
            check(Input { bucket, key, workspace, prefix, endpoint, addressing });
        }

        #[test]
        fn buckets_never_leave_their_place_in_the_url(
            bucket in bucket(),
            key in prop_oneof![Just("k".to_string()), tricky(8)],
            endpoint in fixed_endpoint(),
            addressing in addressing(),
        ) {
            check(Input { bucket, key, workspace: None, prefix: None, endpoint, addressing });
        }

        #[test]
        fn endpoints_never_move_the_bucket_or_key(
            bucket in prop_oneof![Just("locks".to_string()), Just("my.bucket".to_string())],
            key in prop_oneof![Just("envs/dev/terraform.tfstate".to_string()), tricky(8)],
            workspace in prop::option::of(Just("dev".to_string())),
            endpoint in endpoint(),
            addressing in addressing(),
        ) {
            check(Input { bucket, key, workspace, prefix: None, endpoint, addressing });
        }
    }
}
