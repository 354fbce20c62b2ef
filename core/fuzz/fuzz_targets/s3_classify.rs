//! The S3 response classifier: any status, headers and body.
#![no_main]

use condlock::s3::response::classify;
use condlock_fuzz::FuzzResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|response: FuzzResponse| {
    let resp = response.build();
    let class = classify(&resp);
    let _ = class.clone().into_error("bucket", "us-east-1").to_string();
});
