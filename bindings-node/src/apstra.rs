//! The Apstra blueprint mutex (the Terraform provider's tag `blueprint <ID>
//! locked`): `ApstraClientNative`, `ApstraMutexNative` and
//! `HeldMutexNative`, wrapped by `ApstraClient`, `ApstraMutex` and
//! `HeldMutex` in `index.cjs`.
//!
//! Glue, as [`crate::s3`]: the options fill the core's [`ApstraSettings`] /
//! [`MutexSettings`]; the core's [`ApstraClient`] and [`ApstraMutex`] run on
//! napi-rs's tokio runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use condlock::apstra::{ForceUnlocked, HeldMutex, UnlockOutcome};
use condlock::drive::apstra::{ApstraClient, ApstraMutex};
use condlock::drive::Notice;
use condlock::error::Context;
use condlock::native::apstra::transport_options;
use condlock::native::{default_who, process_env, NativeIo, Transport};
use condlock::settings::{age, wait_policy, ApstraSettings, MutexResolved, MutexSettings};
use condlock::{Cancel, Secret};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use serde_json::Value;

use crate::errors::{no_context, to_napi};
use crate::fetch::{AnyTransport, FetchFn};
use crate::s3::{notify, CancelToken, NoticeFn};
use crate::values::tag_json;

type Client = ApstraClient<NativeIo<AnyTransport>>;
type Mutex_ = ApstraMutex<NativeIo<AnyTransport>>;

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| ms / 1000.0)
}

fn unlocked(f: ForceUnlocked) -> Option<Value> {
    match f.outcome {
        UnlockOutcome::Released => f.tag.as_ref().map(tag_json),
        _ => None,
    }
}

/// The server options, as `index.cjs` passes them (durations in ms).
#[napi(object)]
pub struct ApstraNativeOptions {
    pub url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub verify_tls: Option<bool>,
    pub request_timeout_ms: Option<f64>,
}

/// The mutex options, as `index.cjs` passes them.
#[napi(object)]
pub struct MutexNativeOptions {
    pub blueprint_id: Option<String>,
    pub message: Option<String>,
    pub wait_for_blueprint_unlock: Option<bool>,
    pub max_poll_interval_ms: Option<f64>,
}

/// The native side of `ApstraClient`: one server, one login session.
#[napi]
pub struct ApstraClientNative {
    client: Client,
    ctx: Context,
}

#[napi]
impl ApstraClientNative {
    /// Resolve the options (the `APSTRA_*` environment fills the gaps).
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: ApstraNativeOptions, fetch: ((request: FetchRequest) => Promise<FetchResponse>) | null"
    )]
    pub fn new(options: ApstraNativeOptions, fetch: Option<FetchFn>) -> napi::Result<Self> {
        let o = options;
        let settings = ApstraSettings {
            url: o.url,
            username: o.username,
            password: o.password.map(Secret::new),
            verify_tls: o.verify_tls,
            ca_bundle_pem: None,
            request_timeout: seconds(o.request_timeout_ms),
        };
        let env = process_env();
        let server = settings
            .resolve(&|k: &str| env(k))
            .map_err(|e| to_napi(e, &no_context()))?;
        let transport = match fetch {
            Some(f) => AnyTransport::Fetch(f),
            None => AnyTransport::Native(
                Transport::new(&transport_options(&server))
                    .map_err(|e| to_napi(e, &no_context()))?,
            ),
        };
        let client = ApstraClient::new(
            server,
            NativeIo::new(transport),
            process_env(),
            default_who(),
        );
        let ctx = client.context();
        Ok(ApstraClientNative { client, ctx })
    }

    /// Every blueprint mutex on the server.
    #[napi(catch_unwind, ts_return_type = "Promise<any[]>")]
    pub fn list_mutexes<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Value>> {
        let (client, ctx) = (self.client.clone(), self.ctx.clone());
        env.spawn_future(async move {
            let tags = client.list_mutexes().await.map_err(|e| to_napi(e, &ctx))?;
            Ok(Value::Array(tags.iter().map(tag_json).collect()))
        })
    }

    /// The mutexes older than `olderThanMs`.
    #[napi(catch_unwind, ts_return_type = "Promise<any[]>")]
    pub fn stale_mutexes<'env>(
        &self,
        env: &'env Env,
        older_than_ms: f64,
    ) -> napi::Result<PromiseRaw<'env, Value>> {
        let older = age("older_than", older_than_ms / 1000.0).map_err(|e| to_napi(e, &self.ctx))?;
        let (client, ctx) = (self.client.clone(), self.ctx.clone());
        env.spawn_future(async move {
            let tags = client
                .stale_mutexes(older)
                .await
                .map_err(|e| to_napi(e, &ctx))?;
            Ok(Value::Array(tags.iter().map(tag_json).collect()))
        })
    }

    /// Delete the mutex tag with this ID: the tag deleted, or `null`.
    #[napi(catch_unwind, ts_return_type = "Promise<any | null>")]
    pub fn force_unlock_tag<'env>(
        &self,
        env: &'env Env,
        tag_id: String,
    ) -> napi::Result<PromiseRaw<'env, Option<Value>>> {
        let (client, ctx) = (self.client.clone(), self.ctx.clone());
        env.spawn_future(async move {
            let f = client
                .force_unlock_tag(&tag_id)
                .await
                .map_err(|e| to_napi(e, &ctx))?;
            Ok(unlocked(f))
        })
    }
}

/// The native side of `ApstraMutex`: the mutex of one blueprint.
#[napi]
pub struct ApstraMutexNative {
    mutex: Mutex_,
    resolved: MutexResolved,
    ctx: Context,
    logger: Option<Arc<NoticeFn>>,
}

#[napi]
impl ApstraMutexNative {
    /// A mutex on `client`'s server.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: MutexNativeOptions, client: ApstraClientNative, logger: ((event: any) => void) | null"
    )]
    pub fn new(
        options: MutexNativeOptions,
        client: &ApstraClientNative,
        logger: Option<NoticeFn>,
    ) -> napi::Result<Self> {
        let o = options;
        let resolved = MutexSettings {
            blueprint_id: o.blueprint_id.unwrap_or_default(),
            message: o.message,
            wait_for_blueprint_unlock: o.wait_for_blueprint_unlock,
            max_poll_interval: seconds(o.max_poll_interval_ms),
        }
        .resolve()
        .map_err(|e| to_napi(e, &client.ctx))?;
        let mutex = client.client.mutex(resolved.blueprint.clone());
        let mutex = match &resolved.message {
            Some(m) => mutex.with_message(m.clone()),
            None => mutex,
        };
        let ctx = mutex.context();
        Ok(ApstraMutexNative {
            mutex,
            resolved,
            ctx,
            logger: logger.map(Arc::new),
        })
    }

    /// Acquire: `wait` false makes one attempt; `timeoutMs` bounds the wait.
    #[napi(
        catch_unwind,
        ts_args_type = "wait: boolean, timeoutMs: number | null, token: CancelToken, onWait: ((event: any) => void) | null",
        ts_return_type = "Promise<HeldMutexNative>"
    )]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        wait: bool,
        timeout_ms: Option<f64>,
        token: &CancelToken,
        on_wait: Option<NoticeFn>,
    ) -> napi::Result<PromiseRaw<'env, HeldMutexNative>> {
        let policy = wait_policy(wait, seconds(timeout_ms)).map_err(|e| to_napi(e, &self.ctx))?;
        let (mutex, ctx, logger) = (self.mutex.clone(), self.ctx.clone(), self.logger.clone());
        let mut opts = self.resolved.acquire.clone();
        opts.wait = policy;
        opts.message = mutex.message().to_string();
        let cancel = token.cancel_handle();
        let on_wait = on_wait.map(Arc::new);
        env.spawn_future(async move {
            let on_notice = move |n: Notice| {
                if matches!(n, Notice::Waiting { .. }) {
                    notify(&on_wait, &n);
                }
                notify(&logger, &n);
            };
            let held = mutex
                .acquire(opts, &cancel, on_notice)
                .await
                .map_err(|e| to_napi(e, &ctx))?;
            Ok(HeldMutexNative {
                mutex,
                ctx,
                held: Arc::new(held),
                released: Arc::new(AtomicBool::new(false)),
            })
        })
    }

    /// The mutex tag (`null`: free).
    #[napi(catch_unwind, ts_return_type = "Promise<any | null>")]
    pub fn holder<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<Value>>> {
        let (mutex, ctx) = (self.mutex.clone(), self.ctx.clone());
        env.spawn_future(async move {
            let tag = mutex
                .status(&Cancel::new())
                .await
                .map_err(|e| to_napi(e, &ctx))?;
            Ok(tag.as_ref().map(tag_json))
        })
    }

    /// Delete this blueprint's mutex: the tag deleted, or `null`.
    #[napi(catch_unwind, ts_return_type = "Promise<any | null>")]
    pub fn force_unlock<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Option<Value>>> {
        let (mutex, ctx) = (self.mutex.clone(), self.ctx.clone());
        env.spawn_future(async move {
            let f = mutex.force_unlock().await.map_err(|e| to_napi(e, &ctx))?;
            Ok(unlocked(f))
        })
    }
}

/// The native side of `HeldMutex`: a mutex we hold.
#[napi]
pub struct HeldMutexNative {
    mutex: Mutex_,
    ctx: Context,
    held: Arc<HeldMutex>,
    released: Arc<AtomicBool>,
}

#[napi]
impl HeldMutexNative {
    /// Our tag's ID.
    #[napi(getter)]
    pub fn tag_id(&self) -> String {
        self.held.tag_id.clone()
    }
    /// The blueprint.
    #[napi(getter)]
    pub fn blueprint_id(&self) -> String {
        self.held.blueprint.to_string()
    }
    /// `blueprint <ID> locked`.
    #[napi(getter)]
    pub fn label(&self) -> String {
        self.held.label.clone()
    }
    /// The description we wrote (message and holder token).
    #[napi(getter)]
    pub fn description(&self) -> String {
        self.held.description.clone()
    }
    /// Our holder token.
    #[napi(getter)]
    pub fn token(&self) -> String {
        self.held.token.to_string()
    }
    /// True when our tag was recognised by its token after a lost response.
    #[napi(getter)]
    pub fn recovered(&self) -> bool {
        self.held.recovered
    }
    /// Whether `release` was called.
    #[napi(getter)]
    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Release: true when this call deleted our tag.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn release<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let first = !self.released.swap(true, Ordering::SeqCst);
        let (mutex, ctx, held) = (self.mutex.clone(), self.ctx.clone(), self.held.clone());
        env.spawn_future(async move {
            if !first {
                return Ok(false);
            }
            let outcome = mutex.release(&held).await.map_err(|e| to_napi(e, &ctx))?;
            Ok(outcome == UnlockOutcome::Released)
        })
    }
}
