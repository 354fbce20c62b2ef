//! LockInfo JSON (Terraform's seven fields and condlock's `Lease`): parse,
//! then what the machines do with a parsed lock (display, re-serialise).
#![no_main]

use condlock::s3::{LockHolder, LockInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = LockInfo::parse(data);
    if let Ok(info) = &parsed {
        let _ = info.to_string();
        if let Some(lease) = &info.lease {
            let _ = lease.duration();
        }
        // What we would write back (renewal, takeover) must read back the same.
        let json = info.to_json();
        assert_eq!(LockInfo::parse(&json).as_ref(), Ok(info), "round trip");
    }
    let holder = LockHolder {
        info: parsed,
        etag: "\"e\"".into(),
        last_modified: None,
    };
    let _ = holder.to_string();
    let _ = holder.id();
});
