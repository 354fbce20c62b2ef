//! Cost of the hot path of one lock attempt: build and sign the conditional
//! PUT, then classify the store's answer.
//!
//! Each measurement has a peer measured in the same run, so BENCHMARKS.md can
//! report ratios rather than machine-dependent times:
//! - `put/bare_sigv4`: aws-sigv4 signing the same request with nothing else
//!   (the floor: what any SigV4 client must pay);
//! - `classify/bare_xml_parse`: roxmltree parsing the same error body.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use condlock::s3::request::{put_lock, PutCondition};
use condlock::s3::response::classify;
use condlock::s3::{Credentials, LockInfo, S3LockConfig};
use criterion::{criterion_group, criterion_main, Criterion};

fn fixtures() -> (S3LockConfig, Credentials, Vec<u8>, SystemTime) {
    let config = S3LockConfig::builder("tfstate", "envs/dev/terraform.tfstate")
        .workspace("dev")
        .endpoint("http://127.0.0.1:9000")
        .build()
        .expect("valid config");
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
    )
    .expect("valid");
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_317_983);
    let body = LockInfo::new(
        [7; 16],
        "OperationTypeApply",
        "",
        "ci@runner",
        config.lock_info_path(),
        t,
    )
    .to_json();
    (config, creds, body, t)
}

fn bench_put(c: &mut Criterion) {
    let (config, creds, body, t) = fixtures();
    let mut group = c.benchmark_group("put");
    group.bench_function("condlock_build_and_sign", |b| {
        b.iter(|| {
            put_lock(
                black_box(&config),
                &creds,
                black_box(&body),
                PutCondition::IfNoneMatch,
                t,
            )
            .expect("signed")
        })
    });
    group.bench_function("bare_sigv4", |b| {
        let identity = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "bench",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(t)
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let url = config.lock_url().to_string();
        b.iter(|| {
            let headers = [("content-type", "application/json"), ("if-none-match", "*")];
            let signable = SignableRequest::new(
                "PUT",
                &url,
                headers.into_iter(),
                SignableBody::Bytes(black_box(&body)),
            )
            .expect("signable");
            sign(signable, &params).expect("signed")
        })
    });
    group.finish();
}

fn bench_classify(c: &mut Criterion) {
    let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition><RequestId>4442587FB7D0A2F9</RequestId><HostId>uVJy2kL0zl5c6Qy2Z0AZxkkSm9sMqWOMBYQcHddmEUKzLAd1gHzDOj1kpGeNWwo3</HostId></Error>".to_vec();
    let resp = http::Response::builder()
        .status(412)
        .body(body.clone())
        .expect("response");
    let mut group = c.benchmark_group("classify");
    group.bench_function("condlock_412", |b| b.iter(|| classify(black_box(&resp))));
    group.bench_function("bare_xml_parse", |b| {
        b.iter(|| {
            let text = std::str::from_utf8(black_box(&body)).expect("utf8");
            roxmltree::Document::parse(text)
                .map(|d| d.root_element().children().count())
                .unwrap_or(0)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_put, bench_classify);
criterion_main!(benches);
