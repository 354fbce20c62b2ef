//! The Apstra state machines (acquire, release, list, force-unlock) stepped
//! with fuzzer-chosen responses (logins, tag lists, lock-status, errors),
//! transport failures, cancellations and clock jumps: every event gets an
//! action, never a panic, and a cancelled machine finishes.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use condlock::apstra::{
    Acquire, AcquireOptions, ApstraServer, BlueprintId, ForceUnlock, HeldMutex, HolderToken,
    ListMutexes, Release, Session,
};
use condlock::Wait;
use condlock_fuzz::{drive, BLUEPRINT, OUR_TOKEN};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Which {
    Acquire {
        /// Seconds to wait for a holder; `None`: do not wait.
        wait_secs: Option<u8>,
        wait_for_blueprint_unlock: bool,
        transient_secs: u8,
    },
    Release,
    ListAll,
    ListBlueprint,
    ForceBlueprint,
    ForceTag,
}

fn secs(n: u8) -> Duration {
    Duration::from_secs(n as u64)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(which) = Which::arbitrary(&mut u) else {
        return;
    };
    let server = Arc::new(
        ApstraServer::builder()
            .url("https://apstra.test")
            .username("admin")
            .password("Sup3r-s3cret!")
            .build()
            .expect("a valid server"),
    );
    let bp = BlueprintId::new(BLUEPRINT).expect("a valid blueprint ID");
    let token = HolderToken::from_random(OUR_TOKEN);
    let seed = 7;
    let budget = secs(10);
    match which {
        Which::Acquire {
            wait_secs,
            wait_for_blueprint_unlock,
            transient_secs,
        } => {
            let mut o = AcquireOptions::new("locked by alice");
            o.wait = wait_secs.map_or(Wait::No, |s| Wait::For(secs(s)));
            o.wait_for_blueprint_unlock = wait_for_blueprint_unlock;
            o.transient_budget = secs(transient_secs);
            let mut m = Acquire::new(server, bp, Session::new(), o, token, seed);
            drive(&mut m, &mut u);
        }
        Which::Release => {
            let held = HeldMutex {
                label: bp.label(),
                blueprint: bp,
                tag_id: "tag-1".into(),
                description: format!("locked by alice [condlock:{token}]"),
                token,
                recovered: false,
            };
            let mut m = Release::new(server, Session::new(), &held, budget, seed);
            drive(&mut m, &mut u);
        }
        Which::ListAll => {
            let mut m = ListMutexes::all(server, Session::new(), budget, seed);
            drive(&mut m, &mut u);
        }
        Which::ListBlueprint => {
            let mut m = ListMutexes::blueprint(server, Session::new(), &bp, budget, seed);
            drive(&mut m, &mut u);
        }
        Which::ForceBlueprint => {
            let mut m = ForceUnlock::blueprint(server, Session::new(), &bp, budget, seed);
            drive(&mut m, &mut u);
        }
        Which::ForceTag => {
            let Ok(mut m) = ForceUnlock::tag(server, Session::new(), "tag-1", budget, seed) else {
                return;
            };
            drive(&mut m, &mut u);
        }
    }
});
