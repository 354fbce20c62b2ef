//! condlock in the browser: the core's S3 lock (Terraform's lock file, and
//! with `dynamodbTable` its DynamoDB lock item) over `fetch`, `setTimeout`, `performance.now()`, `Date.now()` and
//! `crypto.getRandomValues`.
//!
//! Glue only: the options object fills the core's [`S3Settings`] (resolved
//! with no environment: a page has none), the core's [`S3Lock`] acquires,
//! releases and renews, this crate runs it on the browser's event loop and
//! converts values and errors. The user-facing classes (`S3Lock`, `HeldLock`
//! with `Symbol.asyncDispose`, the error classes) are the small JS layer in
//! `js/`, over `S3LockCore` and `HeldLockCore` here.

mod credentials;
mod errors;
mod io;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use condlock::drive::s3::{Holding, S3Lock, RELEASE_BUDGET};
use condlock::drive::{Holder, Notice};
use condlock::error::Context;
use condlock::s3::{AcquireOptions, UnlockOutcome};
use condlock::settings::{wait_policy, CredentialPlan, CredentialSettings, S3Settings};
use condlock::{Cancel, Error};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use crate::credentials::JsCredentials;
use crate::errors::{no_context, to_js};
use crate::io::{get, WasmIo};

type Lock = S3Lock<WasmIo, JsCredentials>;

/// An optional option: `undefined` and `null` both mean "not given".
fn given(options: &JsValue, name: &str) -> Option<JsValue> {
    Some(get(options, name)).filter(|v| !v.is_undefined() && !v.is_null())
}

fn config_error(field: &'static str, reason: String) -> Error {
    Error::InvalidConfig { field, reason }
}

fn opt_string(options: &JsValue, name: &str, field: &'static str) -> Result<Option<String>, Error> {
    match given(options, name) {
        None => Ok(None),
        Some(v) => v
            .as_string()
            .map(Some)
            .ok_or_else(|| config_error(field, format!("{name} must be a string"))),
    }
}

fn opt_bool(options: &JsValue, name: &str, field: &'static str) -> Result<Option<bool>, Error> {
    match given(options, name) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| config_error(field, format!("{name} must be true or false"))),
    }
}

/// A duration option in milliseconds, as the core's seconds.
fn opt_ms(options: &JsValue, name: &str, field: &'static str) -> Result<Option<f64>, Error> {
    match given(options, name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|ms| Some(ms / 1000.0))
            .ok_or_else(|| config_error(field, format!("{name} must be a number of milliseconds"))),
    }
}

fn opt_function(
    options: &JsValue,
    name: &str,
    field: &'static str,
) -> Result<Option<Function>, Error> {
    match given(options, name) {
        None => Ok(None),
        Some(v) => v
            .dyn_into::<Function>()
            .map(Some)
            .map_err(|_| config_error(field, format!("{name} must be a function"))),
    }
}

/// `Who` when none is given: a page has no user name or host name of its
/// own, so the site it runs on stands for the host.
fn default_who() -> String {
    let host = get(&get(&js_sys::global(), "location"), "hostname")
        .as_string()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("browser@{host}")
}

/// A progress notice as the `LogEvent` of the API: `{kind, message}` (and
/// `reason` for a loss), never a secret (the core's notices carry none).
fn log_event(notice: &Notice) -> JsValue {
    let o = Object::new();
    let kind = match notice {
        Notice::Waiting { .. } => "waiting",
        Notice::Retrying { .. } => "retrying",
        Notice::Fallback { .. } => "fallback",
        Notice::Lost { reason } => {
            let _ = Reflect::set(&o, &"reason".into(), &reason.kind().into());
            "lost"
        }
        _ => "notice",
    };
    let _ = Reflect::set(&o, &"kind".into(), &kind.into());
    let _ = Reflect::set(&o, &"message".into(), &notice.to_string().into());
    o.into()
}

/// Call a user's hook; what it throws must not break the lock's operation.
fn call_hook(hook: &Function, value: &JsValue) {
    let _ = hook.call1(&JsValue::UNDEFINED, value);
}

/// The `WaitEvent` of `onWait`.
fn wait_event(notice: &Notice) -> Option<JsValue> {
    let Notice::Waiting {
        holder,
        waited,
        next_try_in,
        new_holder,
    } = notice
    else {
        return None;
    };
    let o = Object::new();
    let holder = match holder {
        Holder::S3(h) => errors::holder(h),
        _ => JsValue::NULL,
    };
    let _ = Reflect::set(&o, &"holder".into(), &holder);
    let _ = Reflect::set(
        &o,
        &"elapsedMs".into(),
        &(waited.as_secs_f64() * 1000.0).into(),
    );
    let _ = Reflect::set(
        &o,
        &"nextTryMs".into(),
        &(next_try_in.as_secs_f64() * 1000.0).into(),
    );
    let _ = Reflect::set(&o, &"newHolder".into(), &(*new_holder).into());
    Some(o.into())
}

/// Cancels the operations it was given to (the JS layer links it to an
/// `AbortSignal`).
#[wasm_bindgen]
#[derive(Default)]
pub struct CancelHandle {
    cancel: Cancel,
}

#[wasm_bindgen]
impl CancelHandle {
    /// A handle that has not been cancelled.
    #[wasm_bindgen(constructor)]
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancel the operations using this handle.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// The Rust side of `S3Lock`: a Terraform S3 lock file, its DynamoDB lock
/// item, or both.
#[wasm_bindgen]
pub struct S3LockCore {
    lock: Arc<Lock>,
    acquire: AcquireOptions,
    ctx: Context,
    logger: Option<Function>,
}

#[wasm_bindgen]
impl S3LockCore {
    /// A lock from the `S3LockOptions` object. Bad input throws an error of
    /// code `invalid_config` naming the option.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<S3LockCore, JsValue> {
        Self::build(&options).map_err(|e| to_js(&e, &no_context()))
    }

    fn build(options: &JsValue) -> Result<S3LockCore, Error> {
        if !options.is_object() {
            return Err(config_error(
                "options",
                "pass an object: new S3Lock({ bucket, key, credentials, ... })".into(),
            ));
        }
        let required = |name: &str, field: &'static str| -> Result<String, Error> {
            opt_string(options, name, field)?
                .ok_or_else(|| config_error(field, format!("{name} is required")))
        };
        let mut credentials = CredentialSettings::default();
        let mut provider = None;
        match given(options, "credentials") {
            None => {}
            Some(v) if v.is_function() => {
                credentials.provider = Some("credentials");
                provider = Some(Function::from(v));
            }
            Some(v) if v.is_object() => {
                credentials = credentials::parse(&v)?;
            }
            Some(_) => {
                return Err(config_error(
                    "credentials",
                    "must be { accessKeyId, secretAccessKey, sessionToken? } or a function \
                     returning a promise of them"
                        .into(),
                ))
            }
        }
        let settings = S3Settings {
            bucket: required("bucket", "bucket")?,
            key: required("key", "key")?,
            region: opt_string(options, "region", "region")?,
            endpoint: opt_string(options, "endpoint", "endpoint")?,
            credentials,
            workspace: opt_string(options, "workspace", "workspace")?,
            workspace_key_prefix: opt_string(
                options,
                "workspaceKeyPrefix",
                "workspace_key_prefix",
            )?,
            path_style: opt_bool(options, "pathStyle", "path_style")?,
            operation: opt_string(options, "operation", "operation")?,
            info: opt_string(options, "info", "info")?,
            who: opt_string(options, "who", "who")?,
            verify_conditional_writes: opt_string(
                options,
                "verifyConditionalWrites",
                "verify_conditional_writes",
            )?,
            max_poll_interval: opt_ms(options, "maxPollIntervalMs", "max_poll_interval")?,
            lease: opt_ms(options, "leaseMs", "lease")?,
            takeover: opt_bool(options, "takeover", "takeover")?.unwrap_or(false),
            stale_after: opt_ms(options, "staleAfterMs", "stale_after")?,
            dynamodb_table: opt_string(options, "dynamodbTable", "dynamodb_table")?,
            dynamodb_endpoint: opt_string(options, "dynamodbEndpoint", "dynamodb_endpoint")?,
            use_lockfile: opt_bool(options, "useLockfile", "use_lockfile")?,
            ..S3Settings::default()
        };
        let fetch = opt_function(options, "fetch", "fetch")?;
        let logger = opt_function(options, "logger", "logger")?;
        // A page has no environment: everything comes from the options.
        let resolved = settings.resolve(&|_: &str| None, &default_who())?;
        let credentials = match (resolved.credentials, provider) {
            (CredentialPlan::Static(c), _) => JsCredentials::Fixed(c),
            (CredentialPlan::Provider, Some(provider)) => JsCredentials::Provider {
                provider,
                cached: Default::default(),
            },
            _ => {
                return Err(config_error(
                    "credentials",
                    "are required in a browser (there is no AWS credential chain): pass \
                     { accessKeyId, secretAccessKey } or a provider function"
                        .into(),
                ))
            }
        };
        let io = WasmIo::new(fetch).map_err(|m| config_error("fetch", m.into()))?;
        let lock = S3Lock::new(
            resolved.config,
            credentials,
            io,
            resolved.acquire.who.clone(),
        );
        lock.set_verify_conditional_writes(resolved.verify);
        let ctx = lock.context();
        Ok(S3LockCore {
            // The core's lease API takes `Arc<S3Lock>`; in a browser nothing
            // is shared between threads, so the Arc is only a reference count.
            #[allow(clippy::arc_with_non_send_sync)]
            lock: Arc::new(lock),
            acquire: resolved.acquire,
            ctx,
            logger,
        })
    }

    /// Acquire: wait for a holder as `blocking`/`timeoutMs` say (no timeout:
    /// forever), report waits to `onWait`, stop on `cancel`. Resolves to a
    /// `HeldLockCore`; a lease is renewed in the background until released.
    pub fn acquire(
        &self,
        blocking: bool,
        timeout_ms: Option<f64>,
        on_wait: Option<Function>,
        cancel: &CancelHandle,
    ) -> Promise {
        let lock = self.lock.clone();
        let ctx = self.ctx.clone();
        let mut opts = self.acquire.clone();
        let logger = self.logger.clone();
        let cancel = cancel.cancel.clone();
        future_to_promise(async move {
            opts.wait = wait_policy(blocking, timeout_ms.map(|ms| ms / 1000.0))
                .map_err(|e| to_js(&e, &no_context()))?;
            let notices = {
                let logger = logger.clone();
                move |n: Notice| {
                    if let (Some(hook), Some(event)) = (&on_wait, wait_event(&n)) {
                        call_hook(hook, &event);
                    }
                    if let Some(logger) = &logger {
                        call_hook(logger, &log_event(&n));
                    }
                }
            };
            let (holding, renewal) = lock
                .acquire_holding(opts, &cancel, notices)
                .await
                .map_err(|e| to_js(&e, &ctx))?;
            if let Some(renewal) = renewal {
                spawn_local(renewal.run());
            }
            Ok(HeldLockCore {
                lock,
                holding: Rc::new(holding),
                released: Rc::new(Cell::new(false)),
                ctx,
            }
            .into())
        })
    }

    /// Who holds the lock now (a `LockInfo`), or `null` when it is free.
    pub fn holder(&self, cancel: &CancelHandle) -> Promise {
        let lock = self.lock.clone();
        let ctx = self.ctx.clone();
        let cancel = cancel.cancel.clone();
        future_to_promise(async move {
            match lock.status(&cancel).await {
                Ok(Some(h)) => Ok(errors::holder(&h)),
                Ok(None) => Ok(JsValue::NULL),
                Err(e) => Err(to_js(&e, &ctx)),
            }
        })
    }

    /// Remove the lock whose ID is `lockId` (only if the current lock carries
    /// that ID). Resolves to `true` when it was removed, `false` when there
    /// was no lock.
    #[wasm_bindgen(js_name = forceUnlock)]
    pub fn force_unlock(&self, lock_id: String) -> Promise {
        let lock = self.lock.clone();
        let ctx = self.ctx.clone();
        future_to_promise(async move {
            match lock.force_unlock(&lock_id).await {
                Ok(outcome) => Ok((outcome == UnlockOutcome::Released).into()),
                Err(e) => Err(to_js(&e, &ctx)),
            }
        })
    }

    /// What is locked: `s3://<bucket>/<key>.tflock`, and/or the DynamoDB
    /// item (`... and DynamoDB item <bucket>/<key> in table <table>`).
    #[wasm_bindgen(getter)]
    pub fn target(&self) -> String {
        self.ctx.target.clone()
    }
}

/// The Rust side of `HeldLock`: a lock we hold, with or without a lease.
#[wasm_bindgen]
pub struct HeldLockCore {
    lock: Arc<Lock>,
    holding: Rc<Holding>,
    released: Rc<Cell<bool>>,
    ctx: Context,
}

#[wasm_bindgen]
impl HeldLockCore {
    /// The lock ID we wrote (what `forceUnlock` takes).
    #[wasm_bindgen(getter, js_name = lockId)]
    pub fn lock_id(&self) -> String {
        self.holding.held().info.id
    }

    /// The lock object's current ETag (a lease's changes with each renewal).
    #[wasm_bindgen(getter)]
    pub fn etag(&self) -> String {
        self.holding.held().etag
    }

    /// The body we wrote, as a `LockInfo`.
    #[wasm_bindgen(getter)]
    pub fn info(&self) -> JsValue {
        let held = self.holding.held();
        errors::lock_info(&held.info, Some(&held.etag))
    }

    /// The lease in milliseconds, or `null` for a lock held without one.
    #[wasm_bindgen(getter, js_name = leaseMs)]
    pub fn lease_ms(&self) -> Option<f64> {
        self.holding
            .held()
            .lease
            .map(|t| t.duration.as_secs_f64() * 1000.0)
    }

    /// The fencing generation (0 without a lease).
    #[wasm_bindgen(getter)]
    pub fn generation(&self) -> f64 {
        self.holding.held().generation() as f64
    }

    /// Whether `release` has completed.
    #[wasm_bindgen(getter)]
    pub fn released(&self) -> bool {
        self.released.get()
    }

    /// Resolves with a `lost` error when the lock is lost behind our back
    /// (a lease stolen, deleted, or not renewed in time), with `null` once
    /// it can no longer be (released, or held without a lease).
    #[wasm_bindgen(js_name = lossWatch)]
    pub fn loss_watch(&self) -> Promise {
        let watch = self.holding.loss_watch();
        let ctx = self.ctx.clone();
        future_to_promise(async move {
            let Some(watch) = watch else {
                return Ok(JsValue::NULL);
            };
            Ok(match watch.wait().await {
                Some(reason) => to_js(&Error::Lost { reason }, &ctx),
                None => JsValue::NULL,
            })
        })
    }

    /// Release the lock. Resolves to `true` when our lock was deleted,
    /// `false` when it was already gone or already released by an earlier
    /// call; rejects with a `lost` error when a lease was lost meanwhile.
    pub fn release(&self) -> Promise {
        let lock = self.lock.clone();
        let holding = self.holding.clone();
        let released = self.released.clone();
        let ctx = self.ctx.clone();
        future_to_promise(async move {
            if released.replace(true) {
                return Ok(false.into());
            }
            match lock.release_holding(&holding, RELEASE_BUDGET).await {
                Ok(outcome) => Ok((outcome == UnlockOutcome::Released).into()),
                Err(e @ Error::Lost { .. }) => Err(to_js(&e, &ctx)),
                Err(e) => {
                    // Still ours, perhaps: the caller may try again.
                    released.set(false);
                    Err(to_js(&e, &ctx))
                }
            }
        })
    }
}
