//! `classify()` and `parse_error_body()` against the reference table
//! (`s3-lockfile.md` section 4) and against hostile bodies.

use std::time::{Duration, Instant, SystemTime};

use http::Response;

use super::response::{classify, parse_error_body, ResponseClass, S3ErrorBody, MAX_ERROR_BODY};
use crate::sansio::Body;

fn resp(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).unwrap()
}

fn xml_error(code: &str, message: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id</HostId></Error>"
    )
}

fn err(status: u16, code: &str, message: &str) -> Response<Body> {
    resp(status, &[], xml_error(code, message, ""))
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// 2026-11-22T04:00:00Z
const FOUR_AM: u64 = 1_795_320_000;

#[test]
fn success_keeps_etag_and_last_modified_exactly() {
    let r = resp(
        200,
        &[
            ("ETag", "\"9b2cf535f27731c974343645a3985328\""),
            ("Last-Modified", "Sun, 22 Nov 2026 03:00:00 GMT"),
        ],
        "",
    );
    assert_eq!(
        classify(&r),
        ResponseClass::Success {
            etag: Some("\"9b2cf535f27731c974343645a3985328\"".into()),
            last_modified: Some("Sun, 22 Nov 2026 03:00:00 GMT".into()),
        }
    );
    // A 204 from DELETE carries neither.
    assert_eq!(
        classify(&resp(204, &[], "")),
        ResponseClass::Success {
            etag: None,
            last_modified: None
        }
    );
    // A weak ETag is kept verbatim too.
    assert_eq!(
        classify(&resp(200, &[("etag", "W/\"abc\"")], "")),
        ResponseClass::Success {
            etag: Some("W/\"abc\"".into()),
            last_modified: None
        }
    );
}

#[test]
fn precondition_failed_412_and_r2_304() {
    let body = xml_error(
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
        "<Condition>If-None-Match</Condition>",
    );
    assert_eq!(
        classify(&resp(412, &[], body)),
        ResponseClass::PreconditionFailed
    );
    assert_eq!(
        classify(&resp(412, &[], "")),
        ResponseClass::PreconditionFailed
    );
    assert_eq!(
        classify(&resp(304, &[], "")),
        ResponseClass::PreconditionFailed
    );
}

#[test]
fn conflict_409_is_retryable_conflict_never_held() {
    assert_eq!(
        classify(&err(
            409,
            "ConditionalRequestConflict",
            "A conflicting conditional operation is currently in progress"
        )),
        ResponseClass::Conflict
    );
    assert_eq!(
        classify(&err(409, "OperationAborted", "try again")),
        ResponseClass::Conflict
    );
    assert_eq!(classify(&resp(409, &[], "")), ResponseClass::Conflict);
}

#[test]
fn not_found_key_versus_bucket() {
    assert_eq!(
        classify(&err(404, "NoSuchKey", "The specified key does not exist.")),
        ResponseClass::NoSuchKey
    );
    // HEAD-like 404 without a body.
    assert_eq!(classify(&resp(404, &[], "")), ResponseClass::NoSuchKey);
    assert_eq!(
        classify(&err(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist"
        )),
        ResponseClass::NoSuchBucket
    );
}

#[test]
fn credential_errors_are_denied_with_code_and_message() {
    for (status, code) in [
        (403, "AccessDenied"),
        (403, "SignatureDoesNotMatch"),
        (403, "InvalidAccessKeyId"),
        (400, "ExpiredToken"),
        (403, "ExpiredToken"),
        (400, "InvalidToken"),
    ] {
        let msg = format!("{code} says no");
        assert_eq!(
            classify(&err(status, code, &msg)),
            ResponseClass::Denied {
                code: code.into(),
                message: msg.clone()
            },
            "{status} {code}"
        );
    }
    // A bare 403 (some proxies) still names a code and a message.
    assert_eq!(
        classify(&resp(403, &[], "")),
        ResponseClass::Denied {
            code: "AccessDenied".into(),
            message: "Forbidden".into()
        }
    );
    assert_eq!(
        classify(&resp(401, &[], "")),
        ResponseClass::Denied {
            code: "AccessDenied".into(),
            message: "Unauthorized".into()
        }
    );
}

#[test]
fn request_time_too_skewed_reads_server_time_from_body_then_date() {
    let skew = |extra: &str, headers: &[(&str, &str)]| {
        classify(&resp(
            403,
            headers,
            xml_error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                extra,
            ),
        ))
    };
    assert_eq!(
        skew(
            "<RequestTime>20261122T030000Z</RequestTime><ServerTime>2026-11-22T04:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>",
            &[]
        ),
        ResponseClass::ClockSkewed {
            server_time: Some(at(FOUR_AM))
        }
    );
    // Fractional seconds, as AWS writes them.
    assert_eq!(
        skew("<ServerTime>2026-11-22T04:00:00.250Z</ServerTime>", &[]),
        ResponseClass::ClockSkewed {
            server_time: Some(at(FOUR_AM) + Duration::from_millis(250))
        }
    );
    // The body wins over the Date header.
    assert_eq!(
        skew(
            "<ServerTime>2026-11-22T04:00:00Z</ServerTime>",
            &[("Date", "Sun, 22 Nov 2026 05:00:00 GMT")]
        ),
        ResponseClass::ClockSkewed {
            server_time: Some(at(FOUR_AM))
        }
    );
    // No ServerTime: the Date header.
    assert_eq!(
        skew("", &[("Date", "Sun, 22 Nov 2026 04:00:00 GMT")]),
        ResponseClass::ClockSkewed {
            server_time: Some(at(FOUR_AM))
        }
    );
    // Garbage ServerTime falls back to Date.
    assert_eq!(
        skew(
            "<ServerTime>yesterday</ServerTime>",
            &[("Date", "Sun, 22 Nov 2026 04:00:00 GMT")]
        ),
        ResponseClass::ClockSkewed {
            server_time: Some(at(FOUR_AM))
        }
    );
    // Neither: skewed, time unknown.
    assert_eq!(
        skew("", &[("Date", "not a date")]),
        ResponseClass::ClockSkewed { server_time: None }
    );
}

#[test]
fn wrong_region_from_header_or_body() {
    let redirect = xml_error(
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint.",
        "<Endpoint>bucket.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>bucket</Bucket>",
    );
    assert_eq!(
        classify(&resp(
            301,
            &[("x-amz-bucket-region", "eu-west-1")],
            redirect.clone()
        )),
        ResponseClass::WrongRegion {
            region: Some("eu-west-1".into())
        }
    );
    // HEAD-style 301 with only the header.
    assert_eq!(
        classify(&resp(301, &[("x-amz-bucket-region", "eu-west-1")], "")),
        ResponseClass::WrongRegion {
            region: Some("eu-west-1".into())
        }
    );
    assert_eq!(
        classify(&resp(307, &[], "")),
        ResponseClass::WrongRegion { region: None }
    );
    assert_eq!(
        classify(&resp(301, &[], redirect)),
        ResponseClass::WrongRegion { region: None }
    );
    // AuthorizationHeaderMalformed names the region in the body.
    let malformed = xml_error(
        "AuthorizationHeaderMalformed",
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
        "<Region>eu-west-1</Region>",
    );
    assert_eq!(
        classify(&resp(400, &[], malformed.clone())),
        ResponseClass::WrongRegion {
            region: Some("eu-west-1".into())
        }
    );
    // The header wins over the body.
    assert_eq!(
        classify(&resp(
            400,
            &[("x-amz-bucket-region", "ap-south-1")],
            malformed
        )),
        ResponseClass::WrongRegion {
            region: Some("ap-south-1".into())
        }
    );
}

#[test]
fn transient_server_errors() {
    let cases = [
        (503, "SlowDown", "Please reduce your request rate."),
        (500, "InternalError", "We encountered an internal error."),
        (503, "ServiceUnavailable", "Reduce your request rate."),
        (400, "RequestTimeout", "Your socket connection timed out."),
        (429, "TooManyRequests", "slow down"),
    ];
    for (status, code, msg) in cases {
        assert_eq!(
            classify(&err(status, code, msg)),
            ResponseClass::Transient {
                status,
                code: code.into(),
                message: msg.into()
            },
            "{status} {code}"
        );
    }
    for (status, reason) in [
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ] {
        assert_eq!(
            classify(&resp(status, &[], "")),
            ResponseClass::Transient {
                status,
                code: String::new(),
                message: reason.into()
            },
            "{status}"
        );
    }
}

#[test]
fn not_implemented_501_or_code() {
    assert_eq!(
        classify(&err(
            501,
            "NotImplemented",
            "A header you provided implies functionality that is not implemented"
        )),
        ResponseClass::NotImplemented {
            code: "NotImplemented".into(),
            message: "A header you provided implies functionality that is not implemented".into()
        }
    );
    assert_eq!(
        classify(&resp(501, &[], "")),
        ResponseClass::NotImplemented {
            code: String::new(),
            message: "Not Implemented".into()
        }
    );
    assert_eq!(
        classify(&err(400, "NotImplemented", "no conditional delete")),
        ResponseClass::NotImplemented {
            code: "NotImplemented".into(),
            message: "no conditional delete".into()
        }
    );
}

#[test]
fn other_client_errors_are_rejected_final() {
    assert_eq!(
        classify(&err(400, "InvalidArgument", "bad header")),
        ResponseClass::Rejected {
            status: 400,
            code: "InvalidArgument".into(),
            message: "bad header".into()
        }
    );
    assert_eq!(
        classify(&err(400, "InvalidRequest", "Content-MD5 OR x-amz-checksum-* HTTP header is required for Put Object requests with Object Lock parameters")),
        ResponseClass::Rejected {
            status: 400,
            code: "InvalidRequest".into(),
            message: "Content-MD5 OR x-amz-checksum-* HTTP header is required for Put Object requests with Object Lock parameters".into()
        }
    );
    assert_eq!(
        classify(&resp(400, &[], "")),
        ResponseClass::Rejected {
            status: 400,
            code: String::new(),
            message: "Bad Request".into()
        }
    );
    assert_eq!(
        classify(&err(405, "MethodNotAllowed", "nope")),
        ResponseClass::Rejected {
            status: 405,
            code: "MethodNotAllowed".into(),
            message: "nope".into()
        }
    );
}

#[test]
fn parse_error_body_reads_fields_trimmed_and_namespaced() {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <Code>\n    RequestTimeTooSkewed\n  </Code>\n  <Message>too far</Message>\n  <ServerTime>2026-11-22T04:00:00Z</ServerTime>\n  <Region>eu-west-1</Region>\n</Error>";
    assert_eq!(
        parse_error_body(body.as_bytes()),
        S3ErrorBody {
            code: "RequestTimeTooSkewed".into(),
            message: "too far".into(),
            server_time: Some("2026-11-22T04:00:00Z".into()),
            region: Some("eu-west-1".into()),
        }
    );
    // Only the top-level fields count: a nested <Code> is not the error code.
    let nested = "<Error><Details><Code>AccessDenied</Code></Details><Code>SlowDown</Code></Error>";
    assert_eq!(parse_error_body(nested.as_bytes()).code, "SlowDown");
    // A UTF-8 byte order mark (some proxies send one) does not hide the code.
    let bom =
        "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code></Error>";
    assert_eq!(parse_error_body(bom.as_bytes()).code, "SlowDown");
}

/// Bodies that are not S3 XML: every one gives a class and empty fields,
/// never a panic, and the status alone decides.
#[test]
fn hostile_and_broken_bodies_give_a_class_never_a_panic() {
    let html = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        (
            "truncated",
            b"<?xml version=\"1.0\"?><Error><Code>SlowDo".to_vec(),
        ),
        (
            "truncated after code",
            b"<Error><Code>SlowDown</Code><Mess".to_vec(),
        ),
        (
            "non-utf8",
            b"<Error><Code>\xff\xfe\xc3\x28</Code></Error>".to_vec(),
        ),
        (
            "latin1 declared",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Error><Code>caf\xe9</Code></Error>"
                .to_vec(),
        ),
        ("html", html.as_bytes().to_vec()),
        ("json", br#"{"error":"SlowDown"}"#.to_vec()),
        ("nul bytes", vec![0u8; 1000]),
        ("10 MB", {
            let mut b = xml_error("SlowDown", "big", "").into_bytes();
            b.extend(std::iter::repeat_n(b' ', 10 * 1024 * 1024));
            b
        }),
    ];
    for status in [304u16, 400, 403, 404, 409, 412, 429, 500, 501, 502, 503] {
        for (name, body) in &bodies {
            let class = classify(&resp(status, &[], body.clone()));
            let expected = match status {
                304 | 412 => ResponseClass::PreconditionFailed,
                409 => ResponseClass::Conflict,
                404 => ResponseClass::NoSuchKey,
                403 => ResponseClass::Denied {
                    code: "AccessDenied".into(),
                    message: "Forbidden".into(),
                },
                501 => ResponseClass::NotImplemented {
                    code: String::new(),
                    message: "Not Implemented".into(),
                },
                429 | 500 | 502 | 503 => ResponseClass::Transient {
                    status,
                    code: String::new(),
                    message: http::StatusCode::from_u16(status)
                        .unwrap()
                        .canonical_reason()
                        .unwrap()
                        .into(),
                },
                _ => ResponseClass::Rejected {
                    status,
                    code: String::new(),
                    message: "Bad Request".into(),
                },
            };
            // "truncated after code" is not well-formed XML either: no code.
            assert_eq!(class, expected, "{status} {name}");
        }
    }
    for (name, body) in &bodies {
        assert_eq!(parse_error_body(body), S3ErrorBody::default(), "{name}");
    }
}

#[test]
fn body_just_under_the_limit_is_parsed_just_over_is_not() {
    let mut body = xml_error("SlowDown", "padded", "").into_bytes();
    body.extend(std::iter::repeat_n(b' ', MAX_ERROR_BODY - body.len()));
    assert_eq!(body.len(), MAX_ERROR_BODY);
    assert_eq!(parse_error_body(&body).code, "SlowDown");
    body.push(b' ');
    assert_eq!(parse_error_body(&body), S3ErrorBody::default());
}

#[test]
fn deeply_nested_xml_does_not_overflow_the_stack() {
    // As deep as fits in the 64 KiB parse limit.
    let depth = (MAX_ERROR_BODY - 64) / 7;
    let body = format!(
        "<Error>{}<Code>SlowDown</Code>{}</Error>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    assert!(body.len() <= MAX_ERROR_BODY);
    let parsed = parse_error_body(body.as_bytes());
    // The only <Code> is nested, so there is no top-level code.
    assert_eq!(parsed.code, "");
    assert_eq!(
        classify(&resp(503, &[], body)),
        ResponseClass::Transient {
            status: 503,
            code: String::new(),
            message: "Service Unavailable".into()
        }
    );
    // Unclosed nesting.
    let open = "<a>".repeat(MAX_ERROR_BODY / 3);
    assert_eq!(parse_error_body(open.as_bytes()), S3ErrorBody::default());
}

#[test]
fn doctype_and_entity_expansion_attempts_are_harmless() {
    // Billion laughs, within the 64 KiB limit.
    let mut laughs =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    laughs.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for i in 2..=9 {
        let prev = format!("&lol{};", i - 1);
        laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    laughs.push_str("]>\n<Error><Code>&lol9;</Code><Message>m</Message></Error>");
    // A self-referencing entity.
    let recursive =
        "<!DOCTYPE e [<!ENTITY a \"&b;\"><!ENTITY b \"&a;\">]><Error><Code>&a;</Code></Error>";
    // An external entity: must never be fetched or read.
    let external = "<?xml version=\"1.0\"?><!DOCTYPE e [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><Error><Code>&xxe;</Code><Message>x</Message></Error>";
    // A parameter entity.
    let parameter = "<!DOCTYPE e [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/evil.dtd\"> %p;]><Error><Code>X</Code></Error>";
    for (name, body) in [
        ("billion laughs", laughs.as_str()),
        ("recursive", recursive),
        ("external", external),
        ("parameter", parameter),
    ] {
        assert!(body.len() <= MAX_ERROR_BODY, "{name}");
        let start = Instant::now();
        let parsed = parse_error_body(body.as_bytes());
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{name} took {:?}",
            start.elapsed()
        );
        assert!(!parsed.code.contains("root:"), "{name}: {parsed:?}");
        assert!(
            parsed.code.len() < 1024,
            "{name} expanded to {} bytes",
            parsed.code.len()
        );
        // Whatever the parser made of it, the status still classifies.
        assert!(
            matches!(
                classify(&resp(503, &[], body)),
                ResponseClass::Transient { status: 503, .. }
            ),
            "{name}"
        );
        assert!(
            matches!(
                classify(&resp(412, &[], body)),
                ResponseClass::PreconditionFailed
            ),
            "{name}"
        );
    }
    // A harmless internal entity is expanded like any XML parser would.
    let internal = "<!DOCTYPE e [<!ENTITY c \"SlowDown\">]><Error><Code>&c;</Code></Error>";
    let parsed = parse_error_body(internal.as_bytes());
    assert!(
        parsed.code == "SlowDown" || parsed.code.is_empty(),
        "{parsed:?}"
    );
}

#[test]
fn non_ascii_header_values_are_ignored_not_fatal() {
    let mut r = resp(200, &[], "");
    r.headers_mut().insert(
        "etag",
        http::HeaderValue::from_bytes(b"\"caf\xe9\"").unwrap(),
    );
    assert_eq!(
        classify(&r),
        ResponseClass::Success {
            etag: None,
            last_modified: None
        }
    );
}
