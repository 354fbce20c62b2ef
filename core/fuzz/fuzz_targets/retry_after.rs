//! `Retry-After` values (delay-seconds, fractions, HTTP dates) received at
//! any wall time.
#![no_main]

use condlock::apstra::response::{retry_after, MAX_RETRY_AFTER};
use condlock::Now;
use condlock_fuzz::{origin, wall_at};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (i64, &[u8])| {
    let (now_secs, value) = input;
    let Ok(value) = http::HeaderValue::from_bytes(value) else {
        return;
    };
    let mut resp = http::Response::new(Vec::new());
    *resp.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    resp.headers_mut().insert(http::header::RETRY_AFTER, value);
    let now = Now::new(wall_at(now_secs), origin().monotonic);
    if let Some(d) = retry_after(&resp, now) {
        assert!(d <= MAX_RETRY_AFTER, "{d:?}");
    }
});
