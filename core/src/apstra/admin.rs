//! Administration: listing every blueprint mutex on a server, finding stale
//! ones, and force-unlocking one.
//!
//! Listing reads the global design catalog (`GET /api/design/tags`, no
//! server-side filter) and keeps the tags whose label is exactly
//! `blueprint <ID> locked`. Each comes with its description, ID, creation
//! time, age (from the `now` the driver passes in: only as good as the
//! agreement between our clock and the server's) and whether a condlock
//! client created it. "Stale" is a report for a human, never a reason to
//! delete automatically.
//!
//! Force-unlock deletes exactly one tag, by ID, and only a mutex tag:
//! - by blueprint: list, pick the tag with that blueprint's label, delete it by
//!   the ID just read (if the holder released and someone else took the mutex
//!   in between, the new tag has another ID and is left alone);
//! - by tag ID: read the tag, refuse ([`Error::InvalidConfig`] naming
//!   `tag_id`) if its label is not a blueprint mutex, delete it.

use std::sync::Arc;
use std::time::Duration;

use http::Response;

use super::config::{ApstraServer, BlueprintId};
use super::login::{Api, Session};
use super::release::validate_tag_id;
use super::request::Call;
use super::response::Class;
use super::script::{Next, Script, Scripted};
use super::tag::{self, MutexTag};
use crate::error::Error;
use crate::s3::UnlockOutcome;
use crate::sansio::{Action, Body, Event, Machine};
use crate::time::Now;

/// The mutexes in `tags` older than `older_than` (tags without a known
/// creation time are never stale).
pub fn stale(tags: &[MutexTag], older_than: Duration) -> Vec<MutexTag> {
    tags.iter()
        .filter(|t| t.is_stale(older_than))
        .cloned()
        .collect()
}

#[derive(Debug)]
struct ListScript {
    blueprint: Option<String>,
    /// The blueprint's lock-status was read: it exists.
    checked: bool,
}

impl Script for ListScript {
    type Output = Vec<MutexTag>;

    fn first(&mut self) -> Call {
        match &self.blueprint {
            // One blueprint: check that it exists first, so that a mistyped
            // ID is an error rather than "free".
            Some(bp) => Call::LockStatus {
                blueprint: bp.clone(),
            },
            None => Call::ListTags,
        }
    }

    fn on_reply(
        &mut self,
        api: &Api,
        class: Class,
        resp: Response<Body>,
        now: Now,
    ) -> Next<Vec<MutexTag>> {
        if let (Some(bp), false) = (&self.blueprint, self.checked) {
            return match class {
                Class::Success => {
                    self.checked = true;
                    Next::Call(Call::ListTags)
                }
                Class::NotFound { .. } => Next::Done(Err(Error::NoSuchBlueprint {
                    url: api.server().url().to_string(),
                    blueprint: bp.clone(),
                })),
                other => Next::Done(Err(api.final_error(other))),
            };
        }
        if class != Class::Success {
            return Next::Done(Err(api.final_error(class)));
        }
        Next::Done(tag::parse_tag_list(resp.body()).map(|tags| {
            tag::mutexes(tags, now.wall)
                .into_iter()
                .filter(|t| self.blueprint.as_deref().is_none_or(|b| t.blueprint == b))
                .collect()
        }))
    }
}

/// List blueprint mutexes: every one on the server, or one blueprint's.
#[derive(Debug)]
pub struct ListMutexes(Scripted<ListScript>);

impl ListMutexes {
    /// Every blueprint mutex on the server.
    pub fn all(server: Arc<ApstraServer>, session: Session, budget: Duration, seed: u64) -> Self {
        ListMutexes(Scripted::new(
            server,
            session,
            ListScript {
                blueprint: None,
                checked: false,
            },
            budget,
            seed,
        ))
    }

    /// The mutex of one blueprint (an empty list when it is free): the
    /// status of a blueprint mutex. The blueprint's lock-status is read
    /// first: an unknown blueprint is [`Error::NoSuchBlueprint`], not free.
    pub fn blueprint(
        server: Arc<ApstraServer>,
        session: Session,
        blueprint: &BlueprintId,
        budget: Duration,
        seed: u64,
    ) -> Self {
        let script = ListScript {
            blueprint: Some(blueprint.as_str().to_string()),
            checked: false,
        };
        ListMutexes(Scripted::new(server, session, script, budget, seed))
    }

    /// The login state, to carry to the next operation.
    pub fn session(&self) -> &Session {
        self.0.session()
    }
}

impl Machine for ListMutexes {
    type Output = Vec<MutexTag>;

    fn step(&mut self, event: Event, now: Now) -> Action<Vec<MutexTag>> {
        self.0.step(event, now)
    }
}

/// What a force-unlock did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForceUnlocked {
    /// `Released`: we deleted the tag; `AlreadyGone`: there was none (or it
    /// vanished before our DELETE).
    pub outcome: UnlockOutcome,
    /// The tag we found (and deleted, when `Released`).
    pub tag: Option<MutexTag>,
}

#[derive(Debug)]
enum Target {
    Blueprint(String),
    Tag(String),
}

#[derive(Debug)]
struct ForceScript {
    target: Target,
    found: Option<MutexTag>,
}

impl ForceScript {
    fn delete(&mut self, tag: MutexTag) -> Next<ForceUnlocked> {
        log::warn!(
            "force-unlocking blueprint {}: deleting tag {} ({:?})",
            tag.blueprint,
            tag.id,
            tag.description
        );
        let call = Call::DeleteTag { id: tag.id.clone() };
        self.found = Some(tag);
        Next::Call(call)
    }

    fn gone(&mut self) -> Next<ForceUnlocked> {
        Next::Done(Ok(ForceUnlocked {
            outcome: UnlockOutcome::AlreadyGone,
            tag: self.found.take(),
        }))
    }
}

impl Script for ForceScript {
    type Output = ForceUnlocked;

    fn first(&mut self) -> Call {
        match &self.target {
            Target::Blueprint(_) => Call::ListTags,
            Target::Tag(id) => Call::GetTag { id: id.clone() },
        }
    }

    fn on_reply(
        &mut self,
        api: &Api,
        class: Class,
        resp: Response<Body>,
        now: Now,
    ) -> Next<ForceUnlocked> {
        if self.found.is_some() {
            // The DELETE's answer.
            return match class {
                Class::Success => Next::Done(Ok(ForceUnlocked {
                    outcome: UnlockOutcome::Released,
                    tag: self.found.take(),
                })),
                Class::NotFound { .. } if api.maybe_applied() => Next::Done(Ok(ForceUnlocked {
                    outcome: UnlockOutcome::Released,
                    tag: self.found.take(),
                })),
                Class::NotFound { .. } => self.gone(),
                other => Next::Done(Err(api.final_error(other))),
            };
        }
        match (&self.target, class) {
            (Target::Blueprint(bp), Class::Success) => {
                let label = format!(
                    "{}{bp}{}",
                    super::config::LABEL_PREFIX,
                    super::config::LABEL_SUFFIX
                );
                match tag::parse_tag_list(resp.body()) {
                    Ok(tags) => match tags
                        .into_iter()
                        .filter(|t| t.label == label)
                        .find_map(|t| MutexTag::from_raw(t, now.wall))
                    {
                        Some(t) => self.delete(t),
                        None => self.gone(),
                    },
                    Err(e) => Next::Done(Err(e)),
                }
            }
            (Target::Tag(id), Class::Success) => {
                let raw = match tag::parse_tag(resp.body()) {
                    Ok(raw) => raw,
                    Err(e) => return Next::Done(Err(e)),
                };
                let label = raw.label.clone();
                match MutexTag::from_raw(raw, now.wall) {
                    Some(t) => self.delete(t),
                    None => Next::Done(Err(Error::config(
                        "tag_id",
                        format!(
                            "tag {id} has label {label:?}, which is not a blueprint mutex \
                             (\"blueprint <id> locked\"): refusing to delete it"
                        ),
                    ))),
                }
            }
            (Target::Tag(_), Class::NotFound { .. }) => self.gone(),
            (_, other) => Next::Done(Err(api.final_error(other))),
        }
    }
}

/// Delete a blueprint mutex that is not ours: the explicit, logged escape
/// hatch for a holder that died.
#[derive(Debug)]
pub struct ForceUnlock(Scripted<ForceScript>);

impl ForceUnlock {
    /// Remove the mutex of `blueprint`, whoever holds it.
    pub fn blueprint(
        server: Arc<ApstraServer>,
        session: Session,
        blueprint: &BlueprintId,
        budget: Duration,
        seed: u64,
    ) -> Self {
        let script = ForceScript {
            target: Target::Blueprint(blueprint.as_str().to_string()),
            found: None,
        };
        ForceUnlock(Scripted::new(server, session, script, budget, seed))
    }

    /// Remove the mutex tag with ID `tag_id`. A tag that is not a blueprint
    /// mutex (its label is not `blueprint <id> locked`) is refused with
    /// [`Error::InvalidConfig`] naming the field `tag_id`, and left alone; an
    /// empty or control-character ID is refused the same way, at once.
    pub fn tag(
        server: Arc<ApstraServer>,
        session: Session,
        tag_id: &str,
        budget: Duration,
        seed: u64,
    ) -> Result<Self, Error> {
        validate_tag_id(tag_id)?;
        let script = ForceScript {
            target: Target::Tag(tag_id.to_string()),
            found: None,
        };
        Ok(ForceUnlock(Scripted::new(
            server, session, script, budget, seed,
        )))
    }

    /// The login state, to carry to the next operation.
    pub fn session(&self) -> &Session {
        self.0.session()
    }
}

impl Machine for ForceUnlock {
    type Output = ForceUnlocked;

    fn step(&mut self, event: Event, now: Now) -> Action<ForceUnlocked> {
        self.0.step(event, now)
    }
}
