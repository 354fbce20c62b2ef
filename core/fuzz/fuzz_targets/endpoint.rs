//! Base URLs (S3/DynamoDB endpoints, the Apstra URL), differentially against
//! the `url` crate: whatever the core's parser accepts, `url` accepts and
//! reads the same way (the core's parser replaced `url` to keep its Unicode
//! tables out of the browser package; see core/src/endpoint.rs).
#![no_main]

use condlock::fuzzing::base_url;
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let userinfo = first & 1 == 1;
    let Ok(([serialized, scheme, host, path, user], password, port)) = base_url(raw, userinfo)
    else {
        return;
    };
    let theirs = match url::Url::parse(raw) {
        Ok(u) => u,
        // The one documented difference: `xn--` labels are not decoded.
        Err(_) if host.contains("xn--") => return,
        Err(e) => panic!("{raw:?}: accepted here, refused by url ({e})"),
    };
    let decoded = |s: &str| percent_decode_str(s).collect::<Vec<u8>>();
    let mut without_credentials = theirs.clone();
    let _ = without_credentials.set_username("");
    let _ = without_credentials.set_password(None);
    assert_eq!(without_credentials.as_str(), serialized, "{raw:?}");
    assert_eq!(theirs.scheme(), scheme, "{raw:?}");
    assert_eq!(theirs.host_str(), Some(host.as_str()), "{raw:?}");
    assert_eq!(theirs.port(), port, "{raw:?}");
    assert_eq!(theirs.path(), path, "{raw:?}");
    assert_eq!(decoded(theirs.username()), decoded(&user), "{raw:?}");
    assert_eq!(
        theirs.password().map(decoded).filter(|p| !p.is_empty()),
        password.as_deref().map(decoded).filter(|p| !p.is_empty()),
        "{raw:?}"
    );
});
