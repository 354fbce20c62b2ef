//! The S3 lock file's operations over any [`Io`]: what every binding calls.
//!
//! [`S3Lock`] decides everything a binding would otherwise have to: when the
//! store's conditional writes are proved (and the verdict kept per lock
//! object, shared by [`S3Lock::sharing_verdicts`]), credentials refreshed
//! before each request, a lock acquired just as the caller cancelled given
//! back, releases with their deadline, and leases: the [`Renewal`] future
//! renews on the lease's schedule, abandons a renewal that is still in flight
//! at the give-up instant, and publishes the loss; [`S3Lock::release_lease`]
//! stops it first and still deletes our last version after a failed renewal.
//! A binding spawns [`Renewal::run`] on its runtime (tokio, a browser's
//! `spawn_local`): that is all it does for leases.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{drive, entropy, locked, race, Cancel, Either, Hooks, Io, Latch, Notice};
use crate::dynamodb::{self, DynamoDbTable};
use crate::error::Error;
use crate::s3::{
    Acquire, AcquireOptions, ConditionalWriteVerdicts, Credentials, HeldLock, LockHolder, LockInfo,
    LostReason, Renew, S3LockConfig, Status, Unlock, UnlockOutcome,
};
use crate::sansio::Machine;
use crate::sansio::Wait;
use crate::time::ClockOffset;

/// Where an S3 lock's credentials come from, asked before each request.
///
/// [`Credentials`] themselves are a source that never changes; the native
/// driver adds the AWS chain, a binding its language's providers (a boto3
/// session, an AWS SDK v3 provider function).
pub trait CredentialSource {
    /// The credentials to sign the next request with.
    fn credentials(&self) -> impl Future<Output = Result<Credentials, Error>>;

    /// Whether they can change between requests (temporary credentials):
    /// then they are asked for again before every request.
    fn refreshes(&self) -> bool {
        true
    }
}

impl CredentialSource for Credentials {
    fn credentials(&self) -> impl Future<Output = Result<Credentials, Error>> {
        std::future::ready(Ok(self.clone()))
    }

    fn refreshes(&self) -> bool {
        false
    }
}

/// When to prove that a store enforces conditional writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyConditionalWrites {
    /// On the first successful acquire per endpoint and bucket (two extra
    /// requests, a conditional PUT and a conditional DELETE that must both be
    /// refused, once per [`S3Lock`] and those sharing its verdicts).
    #[default]
    OncePerStore,
    /// On every acquire.
    EveryAcquire,
    /// Never: trust the store. An explicit opt-out, for stores known to be
    /// correct where the extra request is unwanted; warned about once per
    /// store.
    TrustWithoutProof,
}

impl std::str::FromStr for VerifyConditionalWrites {
    type Err = Error;

    /// `once` (default), `always` or `never`, as every binding spells them.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "once" => Ok(VerifyConditionalWrites::OncePerStore),
            "always" => Ok(VerifyConditionalWrites::EveryAcquire),
            "never" => Ok(VerifyConditionalWrites::TrustWithoutProof),
            other => Err(Error::config(
                "verify_conditional_writes",
                format!("must be \"once\", \"always\" or \"never\" (got {other:?})"),
            )),
        }
    }
}

pub use super::RELEASE_BUDGET;

/// How long a release on an exit path (an exception, a cancellation, Ctrl-C,
/// interpreter exit) may take: short, so leaving stays prompt when the store
/// is unreachable.
pub const EXIT_RELEASE_BUDGET: Duration = Duration::from_secs(10);

/// After a caller's own transport failed with a programming error (not a
/// network failure) and the operation was cancelled for it, how long the
/// cleanup of a lock it may have written may still run before the operation
/// is dropped.
pub const BROKEN_TRANSPORT_GRACE: Duration = Duration::from_secs(2);

/// An S3 lock file (Terraform-compatible), run over `I` with credentials from
/// `C`.
pub struct S3Lock<I, C> {
    config: Arc<S3LockConfig>,
    credentials: C,
    io: I,
    offset: Mutex<ClockOffset>,
    verify: Mutex<VerifyConditionalWrites>,
    verdicts: ConditionalWriteVerdicts,
    who: String,
}

impl<I, C> std::fmt::Debug for S3Lock<I, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Lock")
            .field("config", &self.config)
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

/// Reports waits and refreshes credentials during one run.
struct RunHooks<'a, C, F> {
    credentials: &'a C,
    on_notice: F,
}

/// The S3 machines that sign requests.
pub trait SignedOperation: Machine {
    /// Use these credentials for the following requests.
    fn set_credentials(&mut self, c: Credentials);
    /// The clock correction learned (carried to the next operation).
    fn clock_offset(&self) -> ClockOffset;
}

impl SignedOperation for Acquire {
    fn set_credentials(&mut self, c: Credentials) {
        Acquire::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Acquire::clock_offset(self)
    }
}
impl SignedOperation for Unlock {
    fn set_credentials(&mut self, c: Credentials) {
        Unlock::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Unlock::clock_offset(self)
    }
}
impl SignedOperation for Renew {
    fn set_credentials(&mut self, c: Credentials) {
        Renew::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        Renew::clock_offset(self)
    }
}
impl SignedOperation for Status {
    // A status read signs once, up front: it is short.
    fn set_credentials(&mut self, _c: Credentials) {}
    fn clock_offset(&self) -> ClockOffset {
        Status::clock_offset(self)
    }
}

impl SignedOperation for dynamodb::Acquire {
    fn set_credentials(&mut self, c: Credentials) {
        dynamodb::Acquire::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        dynamodb::Acquire::clock_offset(self)
    }
}
impl SignedOperation for dynamodb::Release {
    fn set_credentials(&mut self, c: Credentials) {
        dynamodb::Release::set_credentials(self, c)
    }
    fn clock_offset(&self) -> ClockOffset {
        dynamodb::Release::clock_offset(self)
    }
}
impl SignedOperation for dynamodb::Status {
    // A status read signs once, up front: it is short.
    fn set_credentials(&mut self, _c: Credentials) {}
    fn clock_offset(&self) -> ClockOffset {
        dynamodb::Status::clock_offset(self)
    }
}

impl<M: SignedOperation, C: CredentialSource, F: FnMut(Notice)> Hooks<M> for RunHooks<'_, C, F> {
    async fn before_send(&mut self, machine: &mut M) {
        if self.credentials.refreshes() {
            match self.credentials.credentials().await {
                Ok(c) => machine.set_credentials(c),
                Err(e) => log::warn!("could not refresh credentials, using the previous ones: {e}"),
            }
        }
    }

    fn notice(&mut self, notice: Notice) {
        (self.on_notice)(notice)
    }
}

impl<I: Io, C: CredentialSource> S3Lock<I, C> {
    /// A lock on `config`'s lock file. `who` is the default `Who` of the
    /// locks it writes (`user@hostname`, as Terraform writes it).
    pub fn new(config: S3LockConfig, credentials: C, io: I, who: impl Into<String>) -> Self {
        S3Lock {
            config: Arc::new(config),
            credentials,
            io,
            offset: Mutex::new(ClockOffset::default()),
            verify: Mutex::new(VerifyConditionalWrites::default()),
            verdicts: ConditionalWriteVerdicts::new(),
            who: who.into(),
        }
    }

    /// Share the memory of proved stores with another lock (so a store is
    /// proved once for both).
    pub fn sharing_verdicts(mut self, verdicts: ConditionalWriteVerdicts) -> Self {
        self.verdicts = verdicts;
        self
    }

    /// The memory of proved stores this lock uses.
    pub fn verdicts(&self) -> &ConditionalWriteVerdicts {
        &self.verdicts
    }

    /// Choose when the store's conditional-write support is proved.
    pub fn set_verify_conditional_writes(&self, verify: VerifyConditionalWrites) {
        *locked(&self.verify) = verify;
    }

    /// The lock target.
    pub fn config(&self) -> &S3LockConfig {
        &self.config
    }

    /// What errors of this lock are about, for [`Error::explain`].
    pub fn context(&self) -> crate::error::Context {
        crate::error::Context {
            kind: crate::error::Kind::S3,
            target: self.config.target_display(),
            endpoint: match (self.config.dynamodb(), self.config.lock_file()) {
                (Some(t), false) => t.endpoint_display(),
                _ => self.config.endpoint_display(),
            },
        }
    }

    /// The runtime this lock runs on.
    pub fn io(&self) -> &I {
        &self.io
    }

    /// Default acquire options for this lock (`Who` as given to [`S3Lock::new`]).
    pub fn options(&self) -> AcquireOptions {
        AcquireOptions::new(self.who.clone())
    }

    fn clock_offset(&self) -> ClockOffset {
        *locked(&self.offset)
    }

    /// Run one operation: credentials refreshed before each request, notices
    /// to `on_notice`, the learnt clock offset kept for the next operation.
    async fn run<M: SignedOperation>(
        &self,
        machine: &mut M,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<M::Output, Error> {
        let mut hooks = RunHooks {
            credentials: &self.credentials,
            on_notice,
        };
        let result = drive(machine, &self.io, cancel, &mut hooks).await;
        *locked(&self.offset) = machine.clock_offset();
        result
    }

    /// Acquire the lock as `opts` says, cancellable through `cancel`, with
    /// progress to `on_notice`.
    ///
    /// With a DynamoDB table the lock is the pair Terraform takes: the S3
    /// lock file first (unless turned off), then the DynamoDB item, both
    /// with the same LockInfo. Waiting and the timeout cover the pair: the
    /// item is waited for, with the file held, for what remains of the wait
    /// (every pair-taker takes the file first, so this cannot deadlock). If
    /// the item cannot be had, the file is given back; when that fails too,
    /// both errors are reported ([`Error::Paired`]).
    ///
    /// If the caller cancels just as the lock is taken, the lock is given back
    /// before [`Error::Cancelled`] is returned: a cancelled acquire never
    /// leaves a lock behind.
    pub async fn acquire(
        &self,
        opts: AcquireOptions,
        cancel: &Cancel,
        mut on_notice: impl FnMut(Notice),
    ) -> Result<HeldLock, Error> {
        let started = self.io.now().monotonic;
        if self.config.dynamodb().is_some() {
            refuse_lease_with_table(&opts)?;
        }
        let held = if self.config.lock_file() {
            self.acquire_file(opts.clone(), cancel, &mut on_notice)
                .await?
        } else {
            opts.validate()?;
            let now = self.io.now();
            let info = LockInfo::new(
                entropy(&self.io).lock_id,
                opts.operation.clone(),
                opts.info.clone(),
                opts.who.clone(),
                self.config.lock_info_path(),
                self.clock_offset().apply(now.wall),
            );
            HeldLock {
                info,
                etag: String::new(),
                verified_conditional_writes: false,
                lease: None,
                written_at: now.monotonic,
            }
        };
        if let Some(table) = self.config.dynamodb() {
            let waited = self.io.now().monotonic.saturating_sub(started);
            let wait = match opts.wait {
                Wait::For(d) => Wait::For(d.saturating_sub(waited)),
                other => other,
            };
            let waiting = dynamodb::acquire::Waiting {
                wait,
                wait_backoff: opts.wait_backoff,
                retry_backoff: opts.retry_backoff,
                transient_budget: opts.transient_budget,
                cleanup_budget: opts.cleanup_budget,
                waited_before: waited,
            };
            if let Err(e) = self
                .acquire_item(table, &held, waiting, cancel, &mut on_notice)
                .await
            {
                return Err(self.give_back_file(&held, e).await);
            }
        }
        if cancel.is_cancelled() {
            log::info!(
                "acquired {} as the caller cancelled: releasing it",
                self.config.target_display()
            );
            if let Err(e) = self.release(&held, EXIT_RELEASE_BUDGET).await {
                log::error!(
                    "could not release {} (lock ID {}) after cancellation: {e}; \
                     remove it with force-unlock",
                    self.config.target_display(),
                    held.info.id
                );
            }
            return Err(Error::Cancelled);
        }
        Ok(held)
    }

    /// The lock file part of [`Self::acquire`].
    async fn acquire_file(
        &self,
        mut opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<HeldLock, Error> {
        let policy = *locked(&self.verify);
        opts.verify_conditional_writes = match policy {
            VerifyConditionalWrites::OncePerStore => !self.verdicts.is_verified(&self.config),
            VerifyConditionalWrites::EveryAcquire => true,
            VerifyConditionalWrites::TrustWithoutProof => false,
        };
        let credentials = self.credentials.credentials().await?;
        let mut machine = Acquire::new(
            self.config.clone(),
            credentials,
            opts,
            entropy(&self.io),
            self.clock_offset(),
            self.io.now(),
        )
        .with_verdicts(self.verdicts.clone());
        let result = self.run(&mut machine, cancel, on_notice).await;
        let held = result?;
        if held.verified_conditional_writes {
            self.verdicts.mark_verified(&self.config);
        }
        Ok(held)
    }

    /// The DynamoDB part of [`Self::acquire`]: the item, with `held`'s LockInfo.
    async fn acquire_item(
        &self,
        table: &Arc<DynamoDbTable>,
        held: &HeldLock,
        waiting: dynamodb::acquire::Waiting,
        cancel: &Cancel,
        on_notice: impl FnMut(Notice),
    ) -> Result<String, Error> {
        let credentials = self.credentials.credentials().await?;
        let mut machine = dynamodb::Acquire::new(
            table.clone(),
            credentials,
            self.config.lock_info_path(),
            &held.info,
            waiting,
            entropy(&self.io).jitter_seed,
            self.clock_offset(),
        );
        let result = self.run(&mut machine, cancel, on_notice).await;
        result.map_err(|e| about_item(table, e))
    }

    /// After the DynamoDB item could not be had (`err`): give the lock file
    /// back, as Terraform does, and say so when that fails too.
    async fn give_back_file(&self, held: &HeldLock, err: Error) -> Error {
        if !self.config.lock_file() {
            return err;
        }
        match self.release_file(held, EXIT_RELEASE_BUDGET).await {
            Ok(_) => err,
            Err(cleanup) => {
                log::error!(
                    "could not give back the lock file {} (lock ID {}) after the DynamoDB lock \
                     failed: {cleanup}",
                    self.config.lock_key(),
                    held.info.id
                );
                Error::Paired {
                    context: format!(
                        "the DynamoDB lock failed, and giving back the lock file failed too \
                         ({cleanup}; remove it with force-unlock {})",
                        held.info.id
                    ),
                    error: Box::new(err),
                }
            }
        }
    }

    /// Release a lock we hold: one `DELETE If-Match` of the lock file, then
    /// (with a DynamoDB table) one `DeleteItem` conditioned on our `Info`,
    /// each retried on transient failures within `budget`
    /// ([`RELEASE_BUDGET`] normally, [`EXIT_RELEASE_BUDGET`] on exit paths).
    /// Both are always tried, file first; a failure says which one failed
    /// ([`Error::Paired`]). It cannot be cancelled: a release that was
    /// started is seen through.
    pub async fn release(&self, lock: &HeldLock, budget: Duration) -> Result<UnlockOutcome, Error> {
        let file = if self.config.lock_file() {
            Some(self.release_file(lock, budget).await)
        } else {
            None
        };
        let item = match self.config.dynamodb() {
            Some(table) => {
                let info = String::from_utf8_lossy(&lock.info.to_json()).into_owned();
                Some(self.release_item(table, info, budget).await)
            }
            None => None,
        };
        pair_outcome(file, item)
    }

    async fn release_file(
        &self,
        lock: &HeldLock,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        let credentials = self.credentials.credentials().await?;
        let mut machine = Unlock::release(
            self.config.clone(),
            credentials,
            &lock.info,
            &lock.etag,
            budget,
            entropy(&self.io).jitter_seed,
            self.clock_offset(),
        )
        .with_verdicts(self.verdicts.clone());
        self.run(&mut machine, &Cancel::new(), |_| {}).await
    }

    async fn release_item(
        &self,
        table: &Arc<DynamoDbTable>,
        info: String,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        let credentials = self.credentials.credentials().await?;
        let mut machine = dynamodb::Release::ours(
            table.clone(),
            credentials,
            self.config.lock_info_path(),
            info,
            budget,
            entropy(&self.io).jitter_seed,
            self.clock_offset(),
        );
        let result = self.run(&mut machine, &Cancel::new(), |_| {}).await;
        result.map_err(|e| about_item(table, e))
    }

    /// Delete the lock whose ID is `lock_id`, as `terraform force-unlock`
    /// does: only if the current lock carries that ID, conditioned on its
    /// ETag (the lock file) or its `Info` (the DynamoDB item). With both,
    /// both are tried, file first.
    pub async fn force_unlock(&self, lock_id: &str) -> Result<UnlockOutcome, Error> {
        if lock_id.trim().is_empty() {
            return Err(Error::config(
                "lock_id",
                "must not be empty: pass the ID shown as the holder's lock ID",
            ));
        }
        let file = if self.config.lock_file() {
            let credentials = self.credentials.credentials().await?;
            let mut machine = Unlock::force(
                self.config.clone(),
                credentials,
                lock_id,
                RELEASE_BUDGET,
                entropy(&self.io).jitter_seed,
                self.clock_offset(),
            )
            .with_verdicts(self.verdicts.clone());
            Some(self.run(&mut machine, &Cancel::new(), |_| {}).await)
        } else {
            None
        };
        let item = match self.config.dynamodb() {
            Some(table) => {
                let credentials = self.credentials.credentials().await?;
                let mut machine = dynamodb::Release::force(
                    table.clone(),
                    credentials,
                    self.config.lock_info_path(),
                    lock_id,
                    RELEASE_BUDGET,
                    entropy(&self.io).jitter_seed,
                    self.clock_offset(),
                );
                let result = self.run(&mut machine, &Cancel::new(), |_| {}).await;
                Some(result.map_err(|e| about_item(table, e)))
            }
            None => None,
        };
        pair_outcome(file, item)
    }

    /// Who holds the lock now, without taking it (`None`: free). With a
    /// DynamoDB table, a holder of either the file or the item is reported
    /// (the file's first).
    pub async fn status(&self, cancel: &Cancel) -> Result<Option<LockHolder>, Error> {
        if self.config.lock_file() {
            let credentials = self.credentials.credentials().await?;
            let mut machine = Status::new(
                self.config.clone(),
                credentials,
                RELEASE_BUDGET,
                entropy(&self.io).jitter_seed,
                self.clock_offset(),
            );
            if let Some(holder) = self.run(&mut machine, cancel, |_| {}).await? {
                return Ok(Some(holder));
            }
        }
        match self.config.dynamodb() {
            Some(table) => {
                let credentials = self.credentials.credentials().await?;
                let mut machine = dynamodb::Status::new(
                    table.clone(),
                    credentials,
                    self.config.lock_info_path(),
                    RELEASE_BUDGET,
                    entropy(&self.io).jitter_seed,
                    self.clock_offset(),
                );
                let result = self.run(&mut machine, cancel, |_| {}).await;
                result.map_err(|e| about_item(table, e))
            }
            None => Ok(None),
        }
    }
}

/// A failure of the DynamoDB server (5xx, throttling until the deadline, a
/// rejected request, transport, an answer that is not DynamoDB's) says which
/// server it was: the lock's context names the S3 store. The other errors
/// already say what they are about (a holder, the table, the permissions).
fn about_item(table: &DynamoDbTable, e: Error) -> Error {
    match e {
        Error::Server { .. }
        | Error::Rejected { .. }
        | Error::Transport { .. }
        | Error::MalformedResponse { .. } => Error::Paired {
            context: format!(
                "the DynamoDB lock table {} at {}",
                table.table(),
                table.endpoint_display()
            ),
            error: Box::new(e),
        },
        other => other,
    }
}

/// Leases and takeovers rewrite the lock file; the DynamoDB item has no
/// such renewal, and a takeover of the file would leave the item's holder
/// in place. Refused rather than half-done.
fn refuse_lease_with_table(opts: &AcquireOptions) -> Result<(), Error> {
    if opts.lease.is_some() {
        return Err(Error::config(
            "lease",
            "leases are not supported with a DynamoDB lock table (dynamodb_table): the item \
             cannot be renewed; drop the lease, or the table",
        ));
    }
    if opts.takeover != Default::default() {
        return Err(Error::config(
            "takeover",
            "taking over locks is not supported with a DynamoDB lock table (dynamodb_table); \
             remove a stale lock with force-unlock",
        ));
    }
    Ok(())
}

/// One outcome for the file's and the item's (either may be absent): a
/// failure names which failed, and what became of the other.
fn pair_outcome(
    file: Option<Result<UnlockOutcome, Error>>,
    item: Option<Result<UnlockOutcome, Error>>,
) -> Result<UnlockOutcome, Error> {
    let released = |o: &UnlockOutcome| *o == UnlockOutcome::Released;
    match (file, item) {
        (Some(file), None) => file,
        (None, Some(item)) => item,
        (None, None) => Err(Error::Misuse("a lock with neither a file nor an item")),
        (Some(Ok(f)), Some(Ok(i))) => Ok(if released(&f) || released(&i) {
            UnlockOutcome::Released
        } else {
            UnlockOutcome::AlreadyGone
        }),
        (Some(Err(e)), Some(Ok(_))) => Err(Error::Paired {
            context: "the S3 lock file could not be removed (the DynamoDB lock item was)".into(),
            error: Box::new(e),
        }),
        (Some(Ok(_)), Some(Err(e))) => Err(Error::Paired {
            context: "the DynamoDB lock item could not be removed (the S3 lock file was)".into(),
            error: Box::new(e),
        }),
        (Some(Err(f)), Some(Err(i))) => Err(Error::Paired {
            context: format!(
                "neither could be removed; the DynamoDB lock item: {i}; the S3 lock file"
            ),
            error: Box::new(f),
        }),
    }
}

/// A lock held with a lease, renewed by its [`Renewal`].
///
/// Dropping it without releasing stops the renewal: the lock then expires
/// after its lease and can be taken over.
#[derive(Debug)]
pub struct Lease {
    held: Arc<Mutex<HeldLock>>,
    lost: Latch<LostReason>,
    stop: Cancel,
    finished: Latch<()>,
}

impl Lease {
    /// The lock as currently held (its ETag changes with each renewal).
    pub fn held(&self) -> HeldLock {
        locked(&self.held).clone()
    }

    /// Fencing token: (generation, current ETag). See [`crate::s3::lease`]
    /// for what it does and does not guarantee.
    pub fn fencing_token(&self) -> (u64, String) {
        let h = self.held();
        (h.generation(), h.etag)
    }

    /// Why the lock was lost, if it was (does not wait).
    pub fn lost(&self) -> Option<LostReason> {
        self.lost.get()
    }

    /// Resolves when the lock is lost; never while the lease is healthy.
    pub fn wait_lost(&self) -> impl Future<Output = LostReason> + '_ {
        self.lost.wait()
    }

    /// A handle another task can wait on: it resolves with the reason when
    /// the lock is lost, or with `None` once renewal ended without a loss
    /// (released or dropped).
    pub fn loss_watch(&self) -> LossWatch {
        LossWatch {
            lost: self.lost.clone(),
            finished: self.finished.clone(),
        }
    }

    /// Stop renewing and wait for an in-flight renewal to finish.
    pub async fn stop_renewing(&self) {
        self.stop.cancel();
        self.finished.wait().await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// See [`Lease::loss_watch`].
#[derive(Clone, Debug)]
pub struct LossWatch {
    lost: Latch<LostReason>,
    finished: Latch<()>,
}

impl LossWatch {
    /// Why the lock was lost, if it was (does not wait).
    pub fn get(&self) -> Option<LostReason> {
        self.lost.get()
    }

    /// The loss, or `None` once renewal ended without one.
    pub async fn wait(&self) -> Option<LostReason> {
        match race(self.lost.wait(), self.finished.wait()).await {
            Either::Left(reason) => Some(reason),
            // A loss published just before the end still counts.
            Either::Right(()) => self.lost.get(),
        }
    }
}

/// The background work of a [`Lease`]: spawn [`Renewal::run`] on the
/// runtime. It ends when the lease is released or dropped, or the lock is
/// lost.
#[must_use = "a lease is renewed only while its Renewal runs"]
pub struct Renewal<I, C, F> {
    lock: Arc<S3Lock<I, C>>,
    held: Arc<Mutex<HeldLock>>,
    lost: Latch<LostReason>,
    stop: Cancel,
    finished: Latch<()>,
    on_notice: F,
}

impl<I: Io, C: CredentialSource> S3Lock<I, C> {
    /// Look after `held` (acquired with a lease): the [`Lease`] to keep and
    /// release, and the [`Renewal`] to spawn. Lost-lock notices go to
    /// `on_notice` (from the renewal task).
    pub fn keep_alive<F: FnMut(Notice)>(
        self: &Arc<Self>,
        held: HeldLock,
        on_notice: F,
    ) -> Result<(Lease, Renewal<I, C, F>), Error> {
        let terms = held.lease.ok_or_else(|| {
            Error::config(
                "lease",
                "the lock was acquired without a lease, so there is nothing to renew",
            )
        })?;
        terms.validate()?;
        let lease = Lease {
            held: Arc::new(Mutex::new(held)),
            lost: Latch::new(),
            stop: Cancel::new(),
            finished: Latch::new(),
        };
        let renewal = Renewal {
            lock: self.clone(),
            held: lease.held.clone(),
            lost: lease.lost.clone(),
            stop: lease.stop.clone(),
            finished: lease.finished.clone(),
            on_notice,
        };
        Ok((lease, renewal))
    }

    /// Acquire with a lease (`opts.lease` must be set): the [`Lease`] and its
    /// [`Renewal`] to spawn.
    pub async fn acquire_lease<F: FnMut(Notice)>(
        self: &Arc<Self>,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: F,
    ) -> Result<(Lease, Renewal<I, C, F>), Error> {
        let terms = opts.lease.ok_or_else(|| {
            Error::config("lease", "acquiring with a lease needs the lease duration")
        })?;
        terms.validate()?;
        let mut on_notice = on_notice;
        let held = self.acquire(opts, cancel, &mut on_notice).await?;
        match self.keep_alive(held.clone(), on_notice) {
            Ok(kept) => Ok(kept),
            Err(e) => {
                // Never keep a lock we cannot look after.
                let _ = self.release(&held, EXIT_RELEASE_BUDGET).await;
                Err(e)
            }
        }
    }

    /// Stop renewing and release within `budget`. Reports [`Error::Lost`]
    /// with its reason if the lock was lost meanwhile.
    pub async fn release_lease(
        &self,
        lease: &Lease,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        lease.stop_renewing().await;
        match lease.lost() {
            None => self.release(&lease.held(), budget).await,
            // Renewals failed (store unreachable?), yet the lock may still be
            // ours: a conditional delete of our last version is safe and
            // frees it now instead of at lease expiry. The loss is reported
            // either way.
            Some(reason @ LostReason::RenewalFailed { .. }) => {
                match self.release(&lease.held(), budget).await {
                    Ok(outcome) => log::info!("after a failed renewal, release gave {outcome:?}"),
                    Err(e) => log::warn!("after a failed renewal, release failed too: {e}"),
                }
                Err(Error::Lost { reason })
            }
            // Stolen or gone: nothing of ours is left to delete.
            Some(reason) => Err(Error::Lost { reason }),
        }
    }
}

/// A lock we hold, with or without a lease: what a binding keeps between
/// acquiring and releasing, whichever way the lock was configured.
#[derive(Debug)]
pub enum Holding {
    /// Held Terraform-style: until released or force-unlocked.
    Plain(Box<HeldLock>),
    /// Held with a lease, renewed by its [`Renewal`].
    Leased(Lease),
}

impl Holding {
    /// The lock as currently held (a lease's ETag changes with each renewal).
    pub fn held(&self) -> HeldLock {
        match self {
            Holding::Plain(h) => (**h).clone(),
            Holding::Leased(l) => l.held(),
        }
    }

    /// The loss watch of a lease; `None` for a lock without one (it cannot
    /// be lost behind our back: only force-unlocked).
    pub fn loss_watch(&self) -> Option<LossWatch> {
        match self {
            Holding::Plain(_) => None,
            Holding::Leased(l) => Some(l.loss_watch()),
        }
    }
}

impl<I: Io, C: CredentialSource> S3Lock<I, C> {
    /// Acquire as `opts` says: with a lease when `opts.lease` is set (then
    /// the [`Renewal`] to spawn comes with it), Terraform-style otherwise.
    pub async fn acquire_holding<F: FnMut(Notice)>(
        self: &Arc<Self>,
        opts: AcquireOptions,
        cancel: &Cancel,
        on_notice: F,
    ) -> Result<(Holding, Option<Renewal<I, C, F>>), Error> {
        if opts.lease.is_some() {
            let (lease, renewal) = self.acquire_lease(opts, cancel, on_notice).await?;
            Ok((Holding::Leased(lease), Some(renewal)))
        } else {
            let held = self.acquire(opts, cancel, on_notice).await?;
            Ok((Holding::Plain(Box::new(held)), None))
        }
    }

    /// Release whatever `holding` is within `budget` ([`Self::release`] or
    /// [`Self::release_lease`]). After a failure other than [`Error::Lost`]
    /// the same `holding` can be released again (renewal stays stopped).
    pub async fn release_holding(
        &self,
        holding: &Holding,
        budget: Duration,
    ) -> Result<UnlockOutcome, Error> {
        match holding {
            Holding::Plain(held) => {
                let outcome = self.release(held, budget).await?;
                if outcome == UnlockOutcome::AlreadyGone {
                    // Terraform fails loudly here; the caller cannot tell
                    // from "nothing to delete" alone that its lock vanished
                    // while it worked.
                    log::warn!(
                        "releasing {} (lock ID {}): the lock was already gone: someone removed \
                         it (force-unlock?) while we held it, so from then on the work done \
                         under it was not protected",
                        self.config.lock_key(),
                        held.info.id
                    );
                }
                Ok(outcome)
            }
            Holding::Leased(lease) => self.release_lease(lease, budget).await,
        }
    }
}

impl<I, C, F> Drop for Renewal<I, C, F> {
    fn drop(&mut self) {
        // A renewal that never ran, or was dropped mid-run (its runtime shut
        // down), renews no more: say so, or releasing its lease would wait
        // forever for it to finish.
        self.finished.set(());
    }
}

impl<I: Io, C: CredentialSource, F: FnMut(Notice)> Renewal<I, C, F> {
    /// Renew until the lease is released, dropped or lost.
    pub async fn run(mut self) {
        self.renew_until_stopped().await;
        self.finished.set(());
    }

    fn lose(&mut self, reason: LostReason) {
        if self.lost.set(reason.clone()) {
            (self.on_notice)(Notice::Lost { reason });
        }
    }

    async fn renew_until_stopped(&mut self) {
        let lock = self.lock.clone();
        loop {
            let held = locked(&self.held).clone();
            let Some(terms) = held.lease else { return };
            let give_up_at = terms.give_up_at(held.written_at);
            if let Either::Right(()) = race(
                lock.io.sleep_until(terms.renew_at(held.written_at)),
                self.stop.cancelled(),
            )
            .await
            {
                return;
            }
            // Fetching credentials may stall too (a metadata endpoint): the
            // give-up instant holds for it as for the request.
            let credentials = match race(
                lock.credentials.credentials(),
                lock.io.sleep_until(give_up_at),
            )
            .await
            {
                Either::Left(Ok(c)) => c,
                Either::Left(Err(e)) if lock.io.now().monotonic < give_up_at => {
                    log::warn!("cannot refresh credentials for renewal: {e}");
                    let retry_at = lock.io.now().monotonic + Duration::from_millis(200);
                    lock.io.sleep_until(retry_at.min(give_up_at)).await;
                    continue;
                }
                Either::Left(Err(e)) => {
                    self.lose(LostReason::RenewalFailed {
                        last_error: e.to_string(),
                    });
                    return;
                }
                Either::Right(()) => {
                    self.lose(LostReason::RenewalFailed {
                        last_error: "credentials could not be had before the lease's give-up \
                                     time"
                            .into(),
                    });
                    return;
                }
            };
            let mut machine = match Renew::new(
                lock.config.clone(),
                credentials,
                &held,
                entropy(&lock.io).jitter_seed,
                lock.clock_offset(),
                lock.io.now(),
            ) {
                Ok(m) => m,
                Err(e) => {
                    self.lose(LostReason::RenewalFailed {
                        last_error: e.to_string(),
                    });
                    return;
                }
            };
            let on_notice = &mut self.on_notice;
            match lock.run(&mut machine, &self.stop, &mut *on_notice).await {
                Ok(renewed) => *locked(&self.held) = renewed,
                Err(Error::Cancelled) => return,
                Err(Error::Lost { reason }) => {
                    self.lose(reason);
                    return;
                }
                Err(other) => {
                    self.lose(LostReason::RenewalFailed {
                        last_error: other.to_string(),
                    });
                    return;
                }
            }
        }
    }
}
