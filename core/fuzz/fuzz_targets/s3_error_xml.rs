//! S3 XML error bodies (`<Error><Code>..`), as any store may send them.
#![no_main]

use condlock::s3::response::parse_error_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = parse_error_body(data);
    // Fields are trimmed text of elements: never longer than the body.
    assert!(body.code.len() + body.message.len() <= data.len());
});
