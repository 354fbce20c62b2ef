//! Releasing a mutex we hold: `DELETE /api/design/tags/{our tag id}`.
//!
//! The tag ID came from our own create (or from the tag that carried our
//! token), so no other holder's tag can be deleted. A 404 means the tag is
//! already gone (force-unlocked, or released before) and is reported as
//! [`UnlockOutcome::AlreadyGone`], not hidden; except right after a DELETE of
//! ours whose response was lost, when the 404 is our own doing.

use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::acquire::HeldMutex;
use super::config::ApstraServer;
use super::login::{Api, Session};
use super::request::Call;
use super::response::Class;
use super::script::{Next, Script, Scripted};
use crate::error::Error;
use crate::s3::UnlockOutcome;
use crate::sansio::{Action, Body, Event, Machine};
use crate::time::Now;

#[derive(Debug)]
struct ReleaseScript {
    tag_id: String,
}

impl Script for ReleaseScript {
    type Output = UnlockOutcome;

    fn first(&mut self) -> Call {
        Call::DeleteTag {
            id: self.tag_id.clone(),
        }
    }

    fn on_reply(
        &mut self,
        api: &Api,
        class: Class,
        _resp: Response<Body>,
        _now: Now,
    ) -> Next<UnlockOutcome> {
        match class {
            Class::Success => {
                log::info!("released the mutex tag {}", self.tag_id);
                Next::Done(Ok(UnlockOutcome::Released))
            }
            Class::NotFound { .. } if api.maybe_applied() => {
                log::info!(
                    "tag {} is gone after a DELETE of ours whose answer was lost: released",
                    self.tag_id
                );
                Next::Done(Ok(UnlockOutcome::Released))
            }
            Class::NotFound { .. } => {
                // Info, not a warning: the outcome tells the caller, who
                // warns (once) if it cares; a warning here too said it twice.
                log::info!(
                    "the mutex tag {} was already gone (force-unlocked or released before)",
                    self.tag_id
                );
                Next::Done(Ok(UnlockOutcome::AlreadyGone))
            }
            other => Next::Done(Err(api.final_error(other))),
        }
    }
}

/// Release a mutex we hold.
#[derive(Debug)]
pub struct Release(Scripted<ReleaseScript>);

impl Release {
    /// Release `held`, retrying transient failures for up to `budget` (a
    /// fresh deadline: release runs even after the caller's work was
    /// cancelled).
    pub fn new(
        server: Arc<ApstraServer>,
        session: Session,
        held: &HeldMutex,
        budget: Duration,
        seed: u64,
    ) -> Self {
        let script = ReleaseScript {
            tag_id: held.tag_id.clone(),
        };
        Release(Scripted::new(server, session, script, budget, seed))
    }

    /// The login state, to carry to the next operation.
    pub fn session(&self) -> &Session {
        self.0.session()
    }
}

impl Machine for Release {
    type Output = UnlockOutcome;

    fn step(&mut self, event: Event, now: Now) -> Action<UnlockOutcome> {
        self.0.step(event, now)
    }
}

/// Check that `tag_id` is usable in a path.
pub(crate) fn validate_tag_id(tag_id: &str) -> Result<(), Error> {
    if tag_id.trim().is_empty() {
        return Err(Error::config("tag_id", "must not be empty"));
    }
    if tag_id.chars().any(char::is_control) {
        return Err(Error::config(
            "tag_id",
            "must not contain control characters",
        ));
    }
    Ok(())
}
