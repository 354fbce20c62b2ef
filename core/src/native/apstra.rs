//! The Apstra blueprint mutex over reqwest (or any [`HttpTransport`]).
//!
//! - [`ApstraClient`]: one server and one login session, shared by every
//!   operation (the token is carried between operations; a 401 logs in again).
//!   Administration lives here: [`ApstraClient::list_mutexes`],
//!   [`ApstraClient::stale_mutexes`], [`ApstraClient::force_unlock_blueprint`],
//!   [`ApstraClient::force_unlock_tag`].
//! - [`ApstraMutex`]: the mutex of one blueprint: acquire (wait or not,
//!   cancellable), release, status.
//! - [`blocking`]: the same for callers without tokio.
//!
//! The environment is read here, never in the sans-IO core:
//! [`server_from_env`] takes `APSTRA_URL`, `APSTRA_USER`, `APSTRA_PASS`,
//! `APSTRA_TLS_VALIDATION_DISABLED` and `APSTRA_API_TIMEOUT` as defaults, and
//! message templates are expanded with the process environment.
//!
//! ```no_run
//! # async fn demo() -> Result<(), condlock::Error> {
//! use condlock::apstra::BlueprintId;
//! use condlock::native::{apstra::server_from_env, ApstraClient};
//!
//! // APSTRA_URL, APSTRA_USER and APSTRA_PASS, or set them on the builder.
//! let client = ApstraClient::new(server_from_env().build()?)?;
//! let mutex = client
//!     .mutex(BlueprintId::new("801a43ec-96ea-4f08-aa04-1f1faaeeeaf1")?)
//!     .with_message("deploying from CI job $CI_JOB_ID at $DATE");
//! let held = mutex.acquire(mutex.options()).await?; // waits, with backoff
//! // ... change the blueprint ...
//! mutex.release(&held).await?;
//!
//! for tag in client.stale_mutexes(std::time::Duration::from_secs(3600)).await? {
//!     println!("blueprint {} locked for long: {tag}", tag.blueprint);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use super::{default_who, process_env, HttpTransport, NativeIo, Transport, TransportOptions};
use crate::apstra::{
    AcquireOptions, ApstraServer, ApstraServerBuilder, BlueprintId, ForceUnlocked, HeldMutex,
    MutexTag, Session, UnlockOutcome,
};
use crate::drive::apstra as drive_apstra;
use crate::drive::{Cancel, Notice};
use crate::error::Error;
use crate::sansio::Wait;

/// A server builder with the provider's environment variables as defaults
/// (`APSTRA_URL`, `APSTRA_USER`, `APSTRA_PASS`,
/// `APSTRA_TLS_VALIDATION_DISABLED`, `APSTRA_API_TIMEOUT`); values set on the
/// builder afterwards win.
pub fn server_from_env() -> ApstraServerBuilder {
    let env = process_env();
    ApstraServer::builder().defaults_from(|k| env(k))
}

/// The transport settings a server asks for: its request timeout, TLS
/// verification and CA bundle.
pub fn transport_options(server: &ApstraServer) -> TransportOptions {
    TransportOptions {
        request_timeout: server.request_timeout(),
        connect_timeout: server.request_timeout().min(Duration::from_secs(10)),
        verify_tls: server.verify_tls(),
        ca_bundle_pem: server.ca_bundle_pem().map(<[u8]>::to_vec),
    }
}

/// The holder message template used when none is given:
/// `$APSTRA_BLUEPRINT_MUTEX_MESSAGE` if set, else
/// `locked by <user>@<host> (condlock) at $DATE`.
pub fn default_message() -> String {
    drive_apstra::default_message(&process_env(), &default_who())
}

/// An Apstra server and the login session operations share.
pub struct ApstraClient<T: HttpTransport = Transport> {
    core: drive_apstra::ApstraClient<NativeIo<T>>,
}

impl<T: HttpTransport> Clone for ApstraClient<T> {
    fn clone(&self) -> Self {
        ApstraClient {
            core: self.core.clone(),
        }
    }
}

impl<T: HttpTransport> fmt::Debug for ApstraClient<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl ApstraClient<Transport> {
    /// A client over reqwest, with the server's timeout and TLS settings.
    pub fn new(server: ApstraServer) -> Result<Self, Error> {
        let transport = Transport::new(&transport_options(&server))?;
        Ok(Self::over(server, transport))
    }

    /// A client configured from the environment only (see [`server_from_env`]).
    pub fn from_env() -> Result<Self, Error> {
        Self::new(server_from_env().build()?)
    }
}

impl<T: HttpTransport> ApstraClient<T> {
    /// A client whose requests go through a transport of the caller's (which
    /// then owns the timeout and TLS settings).
    pub fn over(server: ApstraServer, transport: T) -> Self {
        ApstraClient {
            core: drive_apstra::ApstraClient::new(
                server,
                NativeIo::new(transport),
                process_env(),
                default_who(),
            ),
        }
    }

    /// The runtime-neutral client inside.
    pub fn core(&self) -> &drive_apstra::ApstraClient<NativeIo<T>> {
        &self.core
    }

    /// The server.
    pub fn server(&self) -> &ApstraServer {
        self.core.server()
    }

    /// The transport (for its request counter).
    pub fn transport(&self) -> &T {
        self.core.io().transport()
    }

    /// A copy of the current login session (user ID, login count).
    pub fn session(&self) -> Session {
        self.core.session()
    }

    /// The mutex of `blueprint`, with the default message template.
    pub fn mutex(&self, blueprint: BlueprintId) -> ApstraMutex<T> {
        ApstraMutex {
            core: self.core.mutex(blueprint),
            client: self.clone(),
        }
    }

    /// Every blueprint mutex on the server: blueprint, description, tag ID,
    /// creation time, age and whether condlock created it.
    pub async fn list_mutexes(&self) -> Result<Vec<MutexTag>, Error> {
        self.core.list_mutexes().await
    }

    /// The blueprint mutexes older than `older_than` (by the server's
    /// `created_at` and our clock). A report for a human: nothing is deleted.
    pub async fn stale_mutexes(&self, older_than: Duration) -> Result<Vec<MutexTag>, Error> {
        self.core.stale_mutexes(older_than).await
    }

    /// Delete the mutex of `blueprint`, whoever holds it (logged). Only the
    /// tag seen by this call is deleted, by its ID.
    pub async fn force_unlock_blueprint(
        &self,
        blueprint: &BlueprintId,
    ) -> Result<ForceUnlocked, Error> {
        self.core.force_unlock_blueprint(blueprint).await
    }

    /// Delete the mutex tag with ID `tag_id`, whoever holds it. A tag whose
    /// label is not a blueprint mutex (`blueprint <id> locked`) is refused
    /// with [`Error::InvalidConfig`] naming the field `tag_id` (the argument
    /// is wrong; nothing is deleted). A tag that does not exist is
    /// `Ok` with [`UnlockOutcome::AlreadyGone`] and no tag.
    pub async fn force_unlock_tag(&self, tag_id: &str) -> Result<ForceUnlocked, Error> {
        self.core.force_unlock_tag(tag_id).await
    }
}

/// The mutex of one blueprint.
pub struct ApstraMutex<T: HttpTransport = Transport> {
    core: drive_apstra::ApstraMutex<NativeIo<T>>,
    client: ApstraClient<T>,
}

impl<T: HttpTransport> fmt::Debug for ApstraMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl ApstraMutex<Transport> {
    /// The mutex of `blueprint` on `server`, over reqwest.
    pub fn new(server: ApstraServer, blueprint: BlueprintId) -> Result<Self, Error> {
        Ok(ApstraClient::new(server)?.mutex(blueprint))
    }
}

impl<T: HttpTransport> ApstraMutex<T> {
    /// Use this holder message template: `$VAR`, `${VAR}` and `$DATE` are
    /// expanded at each acquisition like the Terraform provider does.
    pub fn with_message(mut self, template: impl Into<String>) -> Self {
        self.core = self.core.with_message(template);
        self
    }

    /// The blueprint.
    pub fn blueprint(&self) -> &BlueprintId {
        self.core.blueprint()
    }

    /// The client (server, session, administration).
    pub fn client(&self) -> &ApstraClient<T> {
        &self.client
    }

    /// The runtime-neutral mutex inside.
    pub fn core(&self) -> &drive_apstra::ApstraMutex<NativeIo<T>> {
        &self.core
    }

    /// Default acquire options: wait forever, this mutex's message template.
    pub fn options(&self) -> AcquireOptions {
        self.core.options()
    }

    /// Acquire as `opts` says (wait forever by default). `opts.message` is a
    /// template, expanded now with the environment and `$DATE`.
    pub async fn acquire(&self, opts: AcquireOptions) -> Result<HeldMutex, Error> {
        self.acquire_with(opts, &Cancel::new(), |_| {}).await
    }

    /// Acquire once, without waiting for a holder: [`Error::BlueprintLocked`]
    /// names the holder.
    pub async fn try_acquire(&self, mut opts: AcquireOptions) -> Result<HeldMutex, Error> {
        opts.wait = Wait::No;
        self.acquire(opts).await
    }

    /// Acquire, cancellable through `cancel` (a tag we may have created is
    /// removed before `Error::Cancelled` is returned), with progress (each
    /// wait, naming the holder) to `on_notice`.
    pub async fn acquire_with(
        &self,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<HeldMutex, Error> {
        self.core.acquire(opts, cancel, on_notice).await
    }

    /// Release a mutex we hold: delete our tag by ID. `AlreadyGone` when it
    /// was no longer there (someone force-unlocked it): that is logged at
    /// info level only, the warning (if any) is the caller's to give, once.
    /// Runs with its own deadline and cannot be cancelled.
    pub async fn release(&self, held: &HeldMutex) -> Result<UnlockOutcome, Error> {
        self.core.release(held).await
    }

    /// Who holds this blueprint's mutex now (`None`: free), without taking it.
    pub async fn status(&self) -> Result<Option<MutexTag>, Error> {
        self.core.status(&Cancel::new()).await
    }

    /// Delete this blueprint's mutex whoever holds it (see
    /// [`ApstraClient::force_unlock_blueprint`]).
    pub async fn force_unlock(&self) -> Result<ForceUnlocked, Error> {
        self.core.force_unlock().await
    }
}

/// Synchronous wrappers, for callers without tokio. Each owns a small
/// current-thread runtime and blocks on it.
pub mod blocking {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Transport;
    use crate::apstra::{
        AcquireOptions, ApstraServer, BlueprintId, ForceUnlocked, HeldMutex, MutexTag,
        UnlockOutcome,
    };
    use crate::drive::{Cancel, Notice};
    use crate::error::Error;

    fn runtime() -> Result<tokio::runtime::Runtime, Error> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config("runtime", format!("cannot start the I/O runtime: {e}")))
    }

    /// Blocking form of [`super::ApstraMutex`] (with the client's
    /// administration methods).
    #[derive(Debug)]
    pub struct ApstraMutex {
        inner: super::ApstraMutex<Transport>,
        runtime: Arc<tokio::runtime::Runtime>,
    }

    impl ApstraMutex {
        /// The mutex of `blueprint` on `server`.
        pub fn new(server: ApstraServer, blueprint: BlueprintId) -> Result<Self, Error> {
            let runtime = runtime()?;
            // reqwest's client must be created inside a runtime context.
            let inner = {
                let _guard = runtime.enter();
                super::ApstraMutex::new(server, blueprint)?
            };
            Ok(ApstraMutex {
                inner,
                runtime: Arc::new(runtime),
            })
        }

        /// Use this holder message template (see
        /// [`super::ApstraMutex::with_message`]).
        pub fn with_message(mut self, template: impl Into<String>) -> Self {
            self.inner = self.inner.with_message(template);
            self
        }

        /// The async mutex inside.
        pub fn inner(&self) -> &super::ApstraMutex<Transport> {
            &self.inner
        }

        /// Default acquire options.
        pub fn options(&self) -> AcquireOptions {
            self.inner.options()
        }

        /// Acquire (see [`super::ApstraMutex::acquire_with`]).
        pub fn acquire_with(
            &self,
            opts: AcquireOptions,
            cancel: &Cancel,
            on_notice: impl FnMut(Notice),
        ) -> Result<HeldMutex, Error> {
            self.runtime
                .block_on(self.inner.acquire_with(opts, cancel, on_notice))
        }

        /// Acquire once, without waiting.
        pub fn try_acquire(&self, opts: AcquireOptions) -> Result<HeldMutex, Error> {
            self.runtime.block_on(self.inner.try_acquire(opts))
        }

        /// Acquire, returning a guard that releases the mutex when dropped.
        pub fn lock(&self, opts: AcquireOptions) -> Result<Guard<'_>, Error> {
            let held = self.acquire_with(opts, &Cancel::new(), |_| {})?;
            Ok(Guard::new(self, held))
        }

        /// Release a mutex we hold.
        pub fn release(&self, held: &HeldMutex) -> Result<UnlockOutcome, Error> {
            self.runtime.block_on(self.inner.release(held))
        }

        /// Who holds this blueprint's mutex now.
        pub fn status(&self) -> Result<Option<MutexTag>, Error> {
            self.runtime.block_on(self.inner.status())
        }

        /// Delete this blueprint's mutex whoever holds it.
        pub fn force_unlock(&self) -> Result<ForceUnlocked, Error> {
            self.runtime.block_on(self.inner.force_unlock())
        }

        /// Every blueprint mutex on the server.
        pub fn list_mutexes(&self) -> Result<Vec<MutexTag>, Error> {
            self.runtime.block_on(self.inner.client().list_mutexes())
        }

        /// The blueprint mutexes older than `older_than`.
        pub fn stale_mutexes(&self, older_than: Duration) -> Result<Vec<MutexTag>, Error> {
            self.runtime
                .block_on(self.inner.client().stale_mutexes(older_than))
        }

        /// Delete the mutex tag with this ID (a non-mutex tag is refused with
        /// [`Error::InvalidConfig`] naming `tag_id`; see
        /// [`super::ApstraClient::force_unlock_tag`]).
        pub fn force_unlock_tag(&self, tag_id: &str) -> Result<ForceUnlocked, Error> {
            self.runtime
                .block_on(self.inner.client().force_unlock_tag(tag_id))
        }
    }

    impl crate::native::blocking::Releaser for ApstraMutex {
        type Held = HeldMutex;

        fn release_held(&self, held: &HeldMutex) -> Result<UnlockOutcome, Error> {
            self.release(held)
        }

        fn describe(&self, held: &HeldMutex) -> String {
            format!("the mutex of blueprint {}", held.blueprint)
        }
    }

    /// A held mutex that is released when dropped.
    pub type Guard<'a> = crate::native::blocking::Guard<'a, ApstraMutex>;
}
