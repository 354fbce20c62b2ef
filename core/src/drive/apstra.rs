//! The Apstra blueprint mutex's operations over any [`Io`].
//!
//! - [`ApstraClient`]: one server and one login session shared by every
//!   operation (the token is carried between operations; a 401 logs in
//!   again), plus administration: list, stale report, force-unlock.
//! - [`ApstraMutex`]: the mutex of one blueprint: acquire (wait or not,
//!   cancellable, a tag acquired just as the caller cancelled is given back),
//!   release, status.
//!
//! The environment (`$VAR` in holder messages, the provider's `APSTRA_*`
//! defaults) is reached through the [`Env`] the client is given: the process
//! environment natively, nothing in a browser, a map in tests.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{drive, entropy, locked, Cancel, Hooks, Io, Notice};
use crate::apstra::config::ENV_MUTEX_MESSAGE;
use crate::apstra::{
    expand_message, stale, Acquire, AcquireOptions, ApstraServer, BlueprintId, ForceUnlock,
    ForceUnlocked, HeldMutex, HolderToken, ListMutexes, MutexTag, Release, Session, UnlockOutcome,
};
use crate::error::Error;
use crate::sansio::Machine;

/// A lookup of environment variables (`None`: unset).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An environment with nothing in it (a browser).
pub fn no_env() -> Env {
    Arc::new(|_| None)
}

/// How long administration calls and status reads may keep retrying.
pub const ADMIN_BUDGET: Duration = Duration::from_secs(30);

pub use super::RELEASE_BUDGET;

/// The holder message template used when none is given:
/// `$APSTRA_BLUEPRINT_MUTEX_MESSAGE` if set, else
/// `locked by <who> (condlock) at $DATE`.
pub fn default_message(env: &Env, who: &str) -> String {
    env(ENV_MUTEX_MESSAGE)
        .filter(|m| !m.is_empty())
        // A `$` in a user or host name would be expanded: drop it.
        .unwrap_or_else(|| format!("locked by {} (condlock) at $DATE", who.replace('$', "")))
}

struct ClientInner<I> {
    server: Arc<ApstraServer>,
    io: I,
    env: Env,
    who: String,
    session: Mutex<Session>,
}

/// An Apstra server and the login session its operations share. Clones share
/// the session.
pub struct ApstraClient<I> {
    inner: Arc<ClientInner<I>>,
}

impl<I> Clone for ApstraClient<I> {
    fn clone(&self) -> Self {
        ApstraClient {
            inner: self.inner.clone(),
        }
    }
}

impl<I> fmt::Debug for ApstraClient<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApstraClient")
            .field("server", &self.inner.server)
            .finish_non_exhaustive()
    }
}

/// Hooks that only pass notices on.
struct Notify<F>(F);
impl<M: Machine, F: FnMut(Notice)> Hooks<M> for Notify<F> {
    fn notice(&mut self, notice: Notice) {
        (self.0)(notice)
    }
}

impl<I: Io> ApstraClient<I> {
    /// A client of `server` over `io`. `env` expands holder messages; `who`
    /// (`user@hostname`) goes into the default message.
    pub fn new(server: ApstraServer, io: I, env: Env, who: impl Into<String>) -> Self {
        ApstraClient {
            inner: Arc::new(ClientInner {
                server: Arc::new(server),
                io,
                env,
                who: who.into(),
                session: Mutex::new(Session::new()),
            }),
        }
    }

    /// The server.
    pub fn server(&self) -> &ApstraServer {
        &self.inner.server
    }

    /// What errors of this client's administration are about, for
    /// [`Error::explain`].
    pub fn context(&self) -> crate::error::Context {
        crate::error::Context {
            kind: crate::error::Kind::Apstra,
            target: format!("the Apstra server {}", self.inner.server.url()),
            endpoint: self.inner.server.url().to_string(),
        }
    }

    /// The runtime this client runs on.
    pub fn io(&self) -> &I {
        &self.inner.io
    }

    /// A copy of the current login session (user ID, login count).
    pub fn session(&self) -> Session {
        locked(&self.inner.session).clone()
    }

    /// The mutex of `blueprint`, with the default message template.
    pub fn mutex(&self, blueprint: BlueprintId) -> ApstraMutex<I> {
        ApstraMutex {
            client: self.clone(),
            blueprint,
            message: default_message(&self.inner.env, &self.inner.who),
        }
    }

    fn seed(&self) -> u64 {
        entropy(&self.inner.io).jitter_seed
    }

    async fn run<M: Machine>(
        &self,
        machine: &mut M,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
        session_of: fn(&M) -> &Session,
    ) -> Result<M::Output, Error> {
        let result = drive(machine, &self.inner.io, cancel, &mut Notify(on_notice)).await;
        *locked(&self.inner.session) = session_of(machine).clone();
        result
    }

    /// Every blueprint mutex on the server: blueprint, description, tag ID,
    /// creation time, age and whether condlock created it.
    pub async fn list_mutexes(&self) -> Result<Vec<MutexTag>, Error> {
        let mut m = ListMutexes::all(
            self.inner.server.clone(),
            self.session(),
            ADMIN_BUDGET,
            self.seed(),
        );
        self.run(&mut m, &Cancel::new(), |_| {}, ListMutexes::session)
            .await
    }

    /// The blueprint mutexes older than `older_than` (by the server's
    /// `created_at` and our clock). A report for a human: nothing is deleted.
    pub async fn stale_mutexes(&self, older_than: Duration) -> Result<Vec<MutexTag>, Error> {
        Ok(stale(&self.list_mutexes().await?, older_than))
    }

    /// Delete the mutex of `blueprint`, whoever holds it (logged). Only the
    /// tag seen by this call is deleted, by its ID.
    pub async fn force_unlock_blueprint(
        &self,
        blueprint: &BlueprintId,
    ) -> Result<ForceUnlocked, Error> {
        let mut m = ForceUnlock::blueprint(
            self.inner.server.clone(),
            self.session(),
            blueprint,
            ADMIN_BUDGET,
            self.seed(),
        );
        self.run(&mut m, &Cancel::new(), |_| {}, ForceUnlock::session)
            .await
    }

    /// Delete the mutex tag with ID `tag_id`, whoever holds it; refused
    /// ([`Error::InvalidConfig`]) when that tag is not a blueprint mutex.
    pub async fn force_unlock_tag(&self, tag_id: &str) -> Result<ForceUnlocked, Error> {
        let mut m = ForceUnlock::tag(
            self.inner.server.clone(),
            self.session(),
            tag_id,
            ADMIN_BUDGET,
            self.seed(),
        )?;
        self.run(&mut m, &Cancel::new(), |_| {}, ForceUnlock::session)
            .await
    }
}

/// The mutex of one blueprint.
pub struct ApstraMutex<I> {
    client: ApstraClient<I>,
    blueprint: BlueprintId,
    message: String,
}

impl<I> fmt::Debug for ApstraMutex<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApstraMutex")
            .field("server", &self.client.inner.server)
            .field("blueprint", &self.blueprint)
            .field("message", &self.message)
            .finish()
    }
}

impl<I> Clone for ApstraMutex<I> {
    fn clone(&self) -> Self {
        ApstraMutex {
            client: self.client.clone(),
            blueprint: self.blueprint.clone(),
            message: self.message.clone(),
        }
    }
}

impl<I: Io> ApstraMutex<I> {
    /// Use this holder message template: `$VAR`, `${VAR}` and `$DATE` are
    /// expanded at each acquisition like the Terraform provider does.
    pub fn with_message(mut self, template: impl Into<String>) -> Self {
        self.message = template.into();
        self
    }

    /// The blueprint.
    pub fn blueprint(&self) -> &BlueprintId {
        &self.blueprint
    }

    /// What errors of this mutex are about, for [`Error::explain`].
    pub fn context(&self) -> crate::error::Context {
        crate::error::Context {
            kind: crate::error::Kind::Apstra,
            target: format!("the mutex of blueprint {}", self.blueprint),
            endpoint: self.client.inner.server.url().to_string(),
        }
    }

    /// The holder message template.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The client (server, session, administration).
    pub fn client(&self) -> &ApstraClient<I> {
        &self.client
    }

    /// Default acquire options: wait forever, this mutex's message template.
    pub fn options(&self) -> AcquireOptions {
        AcquireOptions::new(self.message.clone())
    }

    /// Acquire as `opts` says, cancellable through `cancel` (a tag we may
    /// have created is removed before [`Error::Cancelled`] is returned, and a
    /// mutex taken just as the caller cancelled is given back), with progress
    /// to `on_notice`. `opts.message` is a template, expanded now.
    pub async fn acquire(
        &self,
        mut opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<HeldMutex, Error> {
        let io = &self.client.inner.io;
        let env = self.client.inner.env.clone();
        opts.message = expand_message(&opts.message, io.now().wall, |k| env(k));
        let e = entropy(io);
        let mut random = [0u8; 6];
        random.copy_from_slice(&e.lock_id[..6]);
        let mut machine = Acquire::new(
            self.client.inner.server.clone(),
            self.blueprint.clone(),
            self.client.session(),
            opts,
            HolderToken::from_random(random),
            e.jitter_seed,
        );
        let held = self
            .client
            .run(&mut machine, cancel, on_notice, Acquire::session)
            .await?;
        if cancel.is_cancelled() {
            log::info!(
                "acquired the mutex of blueprint {} as the caller cancelled: releasing it",
                self.blueprint
            );
            if let Err(e) = self.release(&held).await {
                log::error!(
                    "could not release the mutex of blueprint {} (tag {}) after cancellation: \
                     {e}; remove it with force-unlock",
                    self.blueprint,
                    held.tag_id
                );
            }
            return Err(Error::Cancelled);
        }
        Ok(held)
    }

    /// Release a mutex we hold: delete our tag by ID. `AlreadyGone` when it
    /// was no longer there (someone force-unlocked it). Runs with its own
    /// deadline and cannot be cancelled.
    pub async fn release(&self, held: &HeldMutex) -> Result<UnlockOutcome, Error> {
        let mut m = Release::new(
            self.client.inner.server.clone(),
            self.client.session(),
            held,
            RELEASE_BUDGET,
            self.client.seed(),
        );
        self.client
            .run(&mut m, &Cancel::new(), |_| {}, Release::session)
            .await
    }

    /// Who holds this blueprint's mutex now (`None`: free), without taking it.
    pub async fn status(&self, cancel: &Cancel) -> Result<Option<MutexTag>, Error> {
        let mut m = ListMutexes::blueprint(
            self.client.inner.server.clone(),
            self.client.session(),
            &self.blueprint,
            ADMIN_BUDGET,
            self.client.seed(),
        );
        let tags = self
            .client
            .run(&mut m, cancel, |_| {}, ListMutexes::session)
            .await?;
        Ok(tags.into_iter().next())
    }

    /// Delete this blueprint's mutex whoever holds it (see
    /// [`ApstraClient::force_unlock_blueprint`]).
    pub async fn force_unlock(&self) -> Result<ForceUnlocked, Error> {
        self.client.force_unlock_blueprint(&self.blueprint).await
    }
}
