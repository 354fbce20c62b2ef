//! Apstra JSON bodies other than tags: the blueprint lock-status and the
//! login response.
#![no_main]

use condlock::apstra::LockStatus;
use condlock::fuzzing::apstra_login;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(status) = LockStatus::parse(data) {
        let _ = status.to_string();
        let _ = status.is_free_for(Some("user-1"));
        let _ = status.is_free_for(None);
    }
    match apstra_login(data) {
        Ok((token, id)) => {
            assert!(!token.expose().is_empty());
            let _ = id;
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
