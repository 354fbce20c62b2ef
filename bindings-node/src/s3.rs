//! The S3 lock file (Terraform-compatible): `S3LockNative` and
//! `HeldLockNative`, wrapped by `S3Lock` / `HeldLock` in `index.js`.
//!
//! Glue only: the options fill [`S3Settings`] and the core resolves them;
//! the core's [`S3Lock`] acquires, releases and renews on napi-rs's tokio
//! runtime, so JavaScript's event loop never waits on the network.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use condlock::drive::s3::{Holding, S3Lock, RELEASE_BUDGET};
use condlock::drive::Notice;
use condlock::error::{Context, Kind};
use condlock::native::{
    aws_profile_values, default_who, process_env, CredentialSource, NativeIo, Transport,
};

use crate::fetch::{AnyTransport, FetchFn};
use condlock::s3::UnlockOutcome;
use condlock::settings::{wait_policy, CredentialPlan, CredentialSettings, S3Settings};
use condlock::{Cancel, Error, Secret};
use napi::bindgen_prelude::{block_on, PromiseRaw};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use serde_json::Value;

use crate::credentials::{self, ProviderFn};
use crate::errors::{no_context, to_napi};
use crate::values::{holder_json, lock_info_json, lost_json, notice_json};

type Lock = S3Lock<NativeIo<AnyTransport>, CredentialSource>;

/// A JavaScript hook receiving notices, callable from any thread. Weak: a
/// hook does not keep the process alive.
pub type NoticeFn = ThreadsafeFunction<Value, (), Value, Status, false, true>;

/// The options of an S3 lock, as `index.js` passes them (durations in
/// milliseconds; `credentials` split into keys or a provider).
#[napi(object)]
pub struct S3LockNativeOptions {
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: Option<bool>,
    pub workspace: Option<String>,
    pub workspace_key_prefix: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub who: Option<String>,
    pub operation: Option<String>,
    pub info: Option<String>,
    pub lease_ms: Option<f64>,
    pub takeover: Option<bool>,
    pub stale_after_ms: Option<f64>,
    pub verify_conditional_writes: Option<String>,
    pub max_poll_interval_ms: Option<f64>,
    pub request_timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub dynamodb_table: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    pub use_lockfile: Option<bool>,
}

fn seconds(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| ms / 1000.0)
}

/// Send a notice to a hook without waiting for it.
pub fn notify(hook: &Option<Arc<NoticeFn>>, notice: &Notice) {
    if let Some(f) = hook {
        f.call(notice_json(notice), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// Everything a lock and the locks it hands out share.
struct Shared {
    lock: Arc<Lock>,
    ctx: Context,
    logger: Option<Arc<NoticeFn>>,
    acquire: condlock::s3::AcquireOptions,
}

/// A cancellation handle: `index.js` cancels it when the caller's
/// `AbortSignal` aborts.
#[napi]
#[derive(Default)]
pub struct CancelToken {
    inner: Cancel,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Cancel the operations holding this token (they clean up first).
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }
}

impl CancelToken {
    /// The core's cancellation behind this token.
    pub fn cancel_handle(&self) -> Cancel {
        self.inner.clone()
    }
}

/// The native side of `S3Lock`: a Terraform S3 lock file.
#[napi]
pub struct S3LockNative {
    shared: Arc<Shared>,
}

#[napi]
impl S3LockNative {
    /// Resolve the options (the core applies the environment and every
    /// rule); without keys or a provider, the AWS chain is loaded.
    #[napi(
        constructor,
        catch_unwind,
        ts_args_type = "options: S3LockNativeOptions, provider: (() => Promise<ProvidedCredentials>) | null, logger: ((event: any) => void) | null, fetch: ((request: FetchRequest) => Promise<FetchResponse>) | null"
    )]
    pub fn new(
        options: S3LockNativeOptions,
        provider: Option<ProviderFn>,
        logger: Option<NoticeFn>,
        fetch: Option<FetchFn>,
    ) -> napi::Result<Self> {
        let o = options;
        // The profile's region and endpoint come after explicit values and
        // the environment (the core's `resolve` decides); the files are read
        // only when an explicit value is missing.
        let aws_profile = if o.region.is_none() || o.endpoint.is_none() {
            block_on(aws_profile_values(None)).map_err(|e| to_napi(e, &no_context()))?
        } else {
            Default::default()
        };
        let settings = S3Settings {
            bucket: o.bucket.unwrap_or_default(),
            key: o.key.unwrap_or_default(),
            region: o.region,
            endpoint: o.endpoint,
            aws_profile,
            credentials: CredentialSettings {
                access_key_id: o.access_key_id,
                secret_access_key: o.secret_access_key.map(Secret::new),
                session_token: o.session_token.map(Secret::new),
                provider: provider.as_ref().map(|_| "credentials"),
            },
            workspace: o.workspace,
            workspace_key_prefix: o.workspace_key_prefix,
            sse_customer_key: None,
            kms_key_id: None,
            encrypt: false,
            acl: None,
            tags: Vec::new(),
            checksum: None,
            path_style: o.path_style,
            operation: o.operation,
            info: o.info,
            who: o.who,
            verify_conditional_writes: o.verify_conditional_writes,
            request_timeout: seconds(o.request_timeout_ms),
            connect_timeout: seconds(o.connect_timeout_ms),
            verify_tls: None,
            ca_bundle_pem: None,
            max_poll_interval: seconds(o.max_poll_interval_ms),
            lease: seconds(o.lease_ms),
            takeover: o.takeover.unwrap_or(false),
            stale_after: seconds(o.stale_after_ms),
            dynamodb_table: o.dynamodb_table,
            dynamodb_endpoint: o.dynamodb_endpoint,
            use_lockfile: o.use_lockfile,
        };
        let env = process_env();
        let resolved = settings
            .resolve(&|k: &str| env(k), &default_who())
            .map_err(|e| to_napi(e, &no_context()))?;
        // What errors before the lock exists name; the lock's own context
        // (below) is the same, with the DynamoDB endpoint when only the item
        // is locked.
        let ctx = Context {
            kind: Kind::S3,
            target: resolved.config.target_display(),
            endpoint: resolved.config.endpoint_display(),
        };
        let credentials = match (&resolved.credentials, provider) {
            (CredentialPlan::Static(c), _) => CredentialSource::Static(c.clone()),
            (CredentialPlan::Provider, Some(p)) => credentials::from_provider(p),
            _ => block_on(CredentialSource::from_aws_chain_in(&resolved.region)),
        };
        let transport = match fetch {
            Some(f) => AnyTransport::Fetch(f),
            None => AnyTransport::Native(
                Transport::new(&resolved.transport).map_err(|e| to_napi(e, &ctx))?,
            ),
        };
        let lock = S3Lock::new(
            resolved.config.clone(),
            credentials,
            NativeIo::new(transport),
            resolved.acquire.who.clone(),
        );
        lock.set_verify_conditional_writes(resolved.verify);
        let ctx = lock.context();
        Ok(S3LockNative {
            shared: Arc::new(Shared {
                lock: Arc::new(lock),
                ctx,
                logger: logger.map(Arc::new),
                acquire: resolved.acquire,
            }),
        })
    }

    /// Acquire: `wait` false makes one attempt; `timeoutMs` bounds the wait
    /// (none: wait forever). Waiting notices go to `onWait` and the logger.
    #[napi(
        catch_unwind,
        ts_args_type = "wait: boolean, timeoutMs: number | null, token: CancelToken, onWait: ((event: any) => void) | null",
        ts_return_type = "Promise<HeldLockNative>"
    )]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        wait: bool,
        timeout_ms: Option<f64>,
        token: &CancelToken,
        on_wait: Option<NoticeFn>,
    ) -> napi::Result<PromiseRaw<'env, HeldLockNative>> {
        let shared = self.shared.clone();
        let policy = wait_policy(wait, seconds(timeout_ms)).map_err(|e| to_napi(e, &shared.ctx))?;
        let cancel = token.inner.clone();
        let on_wait = on_wait.map(Arc::new);
        env.spawn_future(async move {
            let mut opts = shared.acquire.clone();
            opts.wait = policy;
            // The renewal of a lease keeps this closure: its loss notice
            // goes to the logger too.
            let logger = shared.logger.clone();
            let on_notice = move |n: Notice| {
                if matches!(n, Notice::Waiting { .. }) {
                    notify(&on_wait, &n);
                }
                notify(&logger, &n);
            };
            let result = shared.lock.acquire_holding(opts, &cancel, on_notice).await;
            let (holding, renewal) = result.map_err(|e| to_napi(e, &shared.ctx))?;
            if let Some(renewal) = renewal {
                tokio::spawn(renewal.run());
            }
            Ok(HeldLockNative {
                shared,
                holding: Arc::new(holding),
                released: Arc::new(AtomicBool::new(false)),
            })
        })
    }

    /// The current holder (`null`: free).
    #[napi(catch_unwind, ts_return_type = "Promise<any | null>")]
    pub fn holder<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<Value>>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let h = shared
                .lock
                .status(&Cancel::new())
                .await
                .map_err(|e| to_napi(e, &shared.ctx))?;
            Ok(h.as_ref().map(holder_json))
        })
    }

    /// Remove the lock whose ID is `lockId` (as `terraform force-unlock`);
    /// false when there was no lock.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn force_unlock<'env>(
        &self,
        env: &'env Env,
        lock_id: String,
    ) -> napi::Result<PromiseRaw<'env, bool>> {
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let outcome = shared
                .lock
                .force_unlock(&lock_id)
                .await
                .map_err(|e| to_napi(e, &shared.ctx))?;
            Ok(outcome == UnlockOutcome::Released)
        })
    }
}

/// The native side of `HeldLock`: a lock we hold, renewed when it has a
/// lease.
#[napi]
pub struct HeldLockNative {
    shared: Arc<Shared>,
    holding: Arc<Holding>,
    released: Arc<AtomicBool>,
}

#[napi]
impl HeldLockNative {
    /// The lock ID (what `forceUnlock` takes).
    #[napi(getter)]
    pub fn lock_id(&self) -> String {
        self.holding.held().info.id
    }

    /// The lock object's current ETag (changes with each renewal).
    #[napi(getter)]
    pub fn etag(&self) -> String {
        self.holding.held().etag
    }

    /// The lock body we wrote.
    #[napi(getter, ts_return_type = "any")]
    pub fn info(&self) -> Value {
        let held = self.holding.held();
        lock_info_json(&held.info, &held.etag)
    }

    /// The lease in milliseconds, or `null` without one.
    #[napi(getter)]
    pub fn lease_ms(&self) -> Option<f64> {
        self.holding
            .held()
            .lease
            .map(|t| t.duration.as_millis() as f64)
    }

    /// The generation of the lock (0 without a lease): with the ETag, the
    /// fencing token.
    #[napi(getter)]
    pub fn generation(&self) -> f64 {
        self.holding.held().generation() as f64
    }

    /// Whether `release` was called.
    #[napi(getter)]
    pub fn released(&self) -> bool {
        self.released.load(Ordering::SeqCst)
    }

    /// Resolves with `{ reason, message, holder? }` when a leased lock is
    /// lost; with `null` when renewal ends without a loss (released), or at
    /// once for a lock without a lease.
    #[napi(catch_unwind, ts_return_type = "Promise<any | null>")]
    pub fn lost<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<Value>>> {
        let watch = self.holding.loss_watch();
        env.spawn_future(async move {
            Ok(match watch {
                Some(w) => w.wait().await.as_ref().map(lost_json),
                None => None,
            })
        })
    }

    /// Release: true when our lock was deleted, false when it was already
    /// gone or this was not the first call. A lease lost meanwhile rejects
    /// with its reason.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn release<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let first = !self.released.swap(true, Ordering::SeqCst);
        let shared = self.shared.clone();
        let holding = self.holding.clone();
        env.spawn_future(async move {
            if !first {
                return Ok(false);
            }
            let outcome = shared
                .lock
                .release_holding(&holding, RELEASE_BUDGET)
                .await
                .map_err(|e: Error| to_napi(e, &shared.ctx))?;
            Ok(outcome == UnlockOutcome::Released)
        })
    }
}
