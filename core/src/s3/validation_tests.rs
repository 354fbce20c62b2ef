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
