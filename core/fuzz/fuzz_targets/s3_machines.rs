//! The S3 state machines (acquire, release, force-unlock, status, lease
//! renewal) stepped with fuzzer-chosen responses, transport failures,
//! cancellations and clock jumps: every event gets an action, never a panic,
//! and a cancelled machine finishes.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use condlock::s3::{
    Acquire, AcquireOptions, Credentials, Entropy, HeldLock, LeaseInfo, LeaseTerms, LockInfo,
    Renew, S3LockConfig, Status, Takeover, Unlock,
};
use condlock::time::ClockOffset;
use condlock::Wait;
use condlock_fuzz::{drive, origin, OUR_LOCK_ID, OUR_LOCK_ID_TEXT};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Which {
    Acquire {
        /// Seconds to wait for a holder; `None`: do not wait.
        wait_secs: Option<u8>,
        verify: bool,
        lease_secs: Option<u8>,
        take_expired: bool,
        take_stale_secs: Option<u8>,
        transient_secs: u8,
    },
    Release {
        lease_secs: Option<u8>,
    },
    Force,
    Status,
    Renew {
        lease_secs: u8,
        written_at_secs: u8,
    },
}

fn secs(n: u8) -> Duration {
    Duration::from_secs(n as u64)
}

fn config() -> Arc<S3LockConfig> {
    Arc::new(
        S3LockConfig::builder("tfstate", "k")
            .endpoint("http://127.0.0.1:9000")
            .build()
            .expect("a valid config"),
    )
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "secret", None).expect("valid credentials")
}

fn held(lease_secs: Option<u8>, written_at: Duration) -> HeldLock {
    let mut info = LockInfo::new(
        OUR_LOCK_ID,
        "condlock",
        "",
        "alice@ci",
        "tfstate/k",
        origin().wall,
    );
    debug_assert_eq!(info.id, OUR_LOCK_ID_TEXT);
    let lease = lease_secs.map(|s| LeaseTerms::new(secs(s.max(1))));
    info.lease = lease.map(|t| LeaseInfo {
        duration_ms: t.duration.as_millis() as u64,
        generation: 1,
        renewed: info.created.clone(),
        renewals: 0,
    });
    HeldLock {
        info,
        etag: "\"etag-0\"".into(),
        verified_conditional_writes: true,
        lease,
        written_at,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(which) = Which::arbitrary(&mut u) else {
        return;
    };
    let seed = 7;
    let clock = ClockOffset::default();
    match which {
        Which::Acquire {
            wait_secs,
            verify,
            lease_secs,
            take_expired,
            take_stale_secs,
            transient_secs,
        } => {
            let mut o = AcquireOptions::new("alice@ci");
            o.wait = wait_secs.map_or(Wait::No, |s| Wait::For(secs(s)));
            o.verify_conditional_writes = verify;
            o.lease = lease_secs.map(|s| LeaseTerms::new(secs(s.max(1))));
            o.takeover = Takeover {
                expired_leases: take_expired,
                stale_without_lease: take_stale_secs.map(secs),
            };
            o.transient_budget = secs(transient_secs);
            let entropy = Entropy {
                lock_id: OUR_LOCK_ID,
                jitter_seed: seed,
            };
            let mut m = Acquire::new(config(), creds(), o, entropy, clock, origin());
            drive(&mut m, &mut u);
        }
        Which::Release { lease_secs } => {
            let h = held(lease_secs, Duration::ZERO);
            let mut m = Unlock::release(config(), creds(), &h.info, &h.etag, secs(10), seed, clock);
            drive(&mut m, &mut u);
        }
        Which::Force => {
            let mut m = Unlock::force(config(), creds(), OUR_LOCK_ID_TEXT, secs(10), seed, clock);
            drive(&mut m, &mut u);
        }
        Which::Status => {
            let mut m = Status::new(config(), creds(), secs(10), seed, clock);
            drive(&mut m, &mut u);
        }
        Which::Renew {
            lease_secs,
            written_at_secs,
        } => {
            let h = held(Some(lease_secs), secs(written_at_secs));
            let Ok(mut m) = Renew::new(config(), creds(), &h, seed, clock, origin()) else {
                return;
            };
            drive(&mut m, &mut u);
        }
    }
});
