//! The Apstra response classifier (with `Retry-After` and error messages),
//! and the scrubbing of a secret from what it reports.
#![no_main]

use condlock::apstra::response::{classify, error_message, scrub, Class};
use condlock::{Now, Secret};
use condlock_fuzz::{origin, wall_at, FuzzResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (i32, String, FuzzResponse)| {
    let (now_secs, secret, response) = input;
    let resp = response.build();
    let now = Now::new(wall_at(now_secs as i64), origin().monotonic);
    let class = classify(&resp, now);
    let _ = class.maybe_applied();
    let message = error_message(&resp);
    let secret = Secret::new(secret);
    let scrubbed = scrub(&message, &secret);
    // A secret sharing no character with the placeholder cannot be rebuilt
    // by the replacements: none of it may survive.
    let s = secret.expose();
    if !s.is_empty() && !s.chars().any(|c| "<redacted>".contains(c)) {
        assert!(!scrubbed.contains(s), "secret left in {scrubbed:?}");
    }
    if let Class::Transient {
        retry_after: Some(d),
        ..
    } = class
    {
        assert!(d <= condlock::apstra::response::MAX_RETRY_AFTER);
    }
});
