//! The subcommands.

use std::ffi::OsString;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use condlock::apstra::{Blocker, HeldMutex, MutexTag};
use condlock::backoff::BackoffState;
use condlock::drive::s3::CredentialSource as _;
use condlock::drive::{Cancel, Holder, Notice};
use condlock::error::{Context, Kind};
use condlock::native::{Lease, S3Lock, Transport};
use condlock::s3::list::{list_request, parse_list};
use condlock::s3::{HeldLock, LockHolder, UnlockOutcome};
use condlock::{Error, Wait};
use serde_json::json;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::args::{Cli, Command, TargetArgs};
use crate::output::{age_of, holder_line, s3_holder_json, short, tag_json, Mode, Reporter};
use crate::target::{self, Lock, Target};
use crate::{exit, Failure};

/// How long a release may take on the way out (after the command ended, or
/// on an interrupt): long enough for retries, short enough not to hang.
use condlock::drive::RELEASE_BUDGET;

/// Run a parsed command line; returns the exit status.
pub async fn dispatch(cli: Cli) -> i32 {
    let mode = Mode::choose(cli.quiet, cli.json);
    let result = match cli.command {
        Command::Run {
            target,
            at,
            timeout,
            lease,
            info,
            grace,
            command,
        } => run(mode, target, at, timeout, lease, info, grace, command).await,
        Command::Status { target, at } => status(mode, target, at).await,
        Command::Wait {
            target,
            at,
            timeout,
        } => wait(mode, target, at, timeout).await,
        Command::Acquire {
            target,
            at,
            timeout,
            info,
        } => acquire(mode, target, at, timeout, info).await,
        Command::Release { id, target, at } => release(mode, id, target, at).await,
        Command::ForceUnlock {
            id,
            target,
            at,
            force,
            tag,
        } => force_unlock(mode, id, target, at, force, tag).await,
        Command::List {
            target,
            at,
            prefix,
            stale_after,
            apstra,
        } => list(mode, target, at, prefix, stale_after, apstra).await,
        Command::Completions { .. } => Ok(exit::OK),
    };
    match result {
        Ok(status) => status,
        Err(f) => {
            Reporter::new(mode, String::new()).failure(&f);
            f.exit
        }
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        exit: exit::USAGE,
        code: "usage",
        message: message.into(),
    }
}

fn wait_of(timeout: Option<Duration>) -> Wait {
    match timeout {
        None => Wait::Forever,
        Some(d) if d.is_zero() => Wait::No,
        Some(d) => Wait::For(d),
    }
}

/// Resolve and open the named lock, with a reporter named after it.
async fn open(
    mode: Mode,
    t: Target,
    operation: &str,
    info: Option<String>,
) -> Result<(Lock, Arc<Reporter>), Failure> {
    let ignored = match &t {
        Target::S3 { ignored, .. } => ignored.clone(),
        Target::Apstra { .. } => Vec::new(),
    };
    let lock = target::open(t, operation, info).await?;
    let rep = Arc::new(Reporter::new(mode, lock.context().target));
    for name in ignored {
        rep.say(&format!(
            "note: the backend's {name} is not applied by condlock; credentials come from the \
             backend's keys or profile, else the AWS chain"
        ));
    }
    Ok((lock, rep))
}

/// A lock we hold.
enum Held {
    S3(HeldLock),
    S3Lease(Lease),
    Apstra(HeldMutex),
}

impl Held {
    fn id(&self) -> String {
        match self {
            Held::S3(h) => h.info.id.clone(),
            Held::S3Lease(l) => l.held().info.id,
            Held::Apstra(h) => h.tag_id.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        let s3 = |h: HeldLock| {
            s3_holder_json(&LockHolder {
                info: Ok(h.info),
                etag: h.etag,
                last_modified: None,
            })
        };
        match self {
            Held::S3(h) => s3(h.clone()),
            Held::S3Lease(l) => s3(l.held()),
            Held::Apstra(h) => json!({ "id": h.tag_id, "blueprint": h.blueprint.to_string(),
                                       "message": h.description }),
        }
    }
}

/// Take the lock, showing progress.
async fn take(
    lock: &Lock,
    rep: &Arc<Reporter>,
    wait: Wait,
    cancel: &Cancel,
) -> Result<Held, Error> {
    let r = rep.clone();
    let on_notice = move |n: Notice| r.notice(&n);
    let held = match lock {
        Lock::S3 { lock, opts } => {
            let mut opts = (**opts).clone();
            opts.wait = wait;
            if opts.lease.is_some() {
                Held::S3Lease(lock.acquire_lease_with(opts, cancel, on_notice).await?)
            } else {
                Held::S3(lock.acquire_with(opts, cancel, on_notice).await?)
            }
        }
        Lock::Apstra { mutex, opts } => {
            let mut opts = (**opts).clone();
            opts.wait = wait;
            Held::Apstra(mutex.acquire_with(opts, cancel, on_notice).await?)
        }
    };
    rep.clear();
    rep.event(
        "acquired",
        json!({ "id": held.id(), "holder": held.json() }),
    );
    Ok(held)
}

fn signals() -> Result<(Signal, Signal), Failure> {
    let f = |e: std::io::Error| Failure {
        exit: exit::OTHER,
        code: "signals",
        message: format!("cannot watch for signals: {e}"),
    };
    Ok((
        signal(SignalKind::interrupt()).map_err(f)?,
        signal(SignalKind::terminate()).map_err(f)?,
    ))
}

/// [`take`], where SIGINT or SIGTERM cancels the wait: the core then removes
/// anything it may have written before returning `cancelled`, so an
/// interrupted acquisition leaves no lock behind.
async fn take_interruptible(
    lock: &Lock,
    rep: &Arc<Reporter>,
    wait: Wait,
    sigint: &mut Signal,
    sigterm: &mut Signal,
) -> Result<Held, Error> {
    let cancel = Cancel::new();
    let acquiring = take(lock, rep, wait, &cancel);
    tokio::pin!(acquiring);
    loop {
        tokio::select! {
            r = &mut acquiring => break r,
            _ = sigint.recv() => cancel.cancel(),
            _ = sigterm.recv() => cancel.cancel(),
        }
    }
}

/// Release what we hold, within [`RELEASE_BUDGET`].
async fn give_back(lock: &Lock, held: Held) -> Result<UnlockOutcome, Error> {
    match (lock, held) {
        (Lock::S3 { lock, .. }, Held::S3(h)) => lock.release_within(&h, RELEASE_BUDGET).await,
        (Lock::S3 { lock, .. }, Held::S3Lease(l)) => {
            lock.release_lease_within(l, RELEASE_BUDGET).await
        }
        (Lock::Apstra { mutex, .. }, Held::Apstra(h)) => mutex.release(&h).await,
        _ => Err(Error::Misuse("released a lock of another kind")),
    }
}

/// The command line, for the lock's Info: printable, bounded.
fn describe(command: &[OsString]) -> String {
    let words: Vec<String> = command
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect();
    // Control characters are refused in LockInfo (they would rewrite the
    // terminal of whoever reads the holder).
    let text: String = words
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match text.char_indices().nth(1000) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mode: Mode,
    target: Option<String>,
    at: TargetArgs,
    timeout: Option<Duration>,
    lease: Option<Duration>,
    info: Option<String>,
    grace: Duration,
    command: Vec<OsString>,
) -> Result<i32, Failure> {
    let mut t = target::resolve(target.as_deref(), &at, true)?;
    match (&mut t, lease) {
        (Target::S3 { settings, .. }, Some(d)) => settings.lease = Some(d.as_secs_f64()),
        (Target::Apstra { .. }, Some(_)) => {
            return Err(usage(
                "--lease is for S3 locks: the Apstra mutex has no lease",
            ))
        }
        _ => {}
    }
    let info = info.unwrap_or_else(|| describe(&command));
    let (lock, rep) = open(mode, t, "condlock run", Some(info)).await?;
    let ctx = lock.context();
    let (mut sigint, mut sigterm) = signals()?;
    let held = take_interruptible(&lock, &rep, wait_of(timeout), &mut sigint, &mut sigterm)
        .await
        .map_err(|e| Failure::core(&e, &ctx))?;
    rep.say(&format!(
        "acquired {} (ID {}); running {}",
        rep.target,
        held.id(),
        describe(&command)
    ));

    // On a terminal the command stays in our process group, so that it can
    // read the terminal and gets Ctrl-C from it directly (forwarding SIGINT
    // too would interrupt it twice: a second interrupt makes Terraform stop
    // abruptly). Elsewhere it gets a group of its own and we forward both.
    let own_group = !std::io::stdin().is_terminal();
    let mut cmd = tokio::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    if own_group {
        cmd.process_group(0);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let released = give_back(&lock, held).await;
            if let Err(e) = released {
                rep.failure(&Failure::core(&e, &ctx));
            }
            return Err(Failure {
                exit: match e.kind() {
                    std::io::ErrorKind::NotFound => exit::NOT_FOUND,
                    _ => exit::CANNOT_RUN,
                },
                code: "cannot_run",
                message: format!(
                    "cannot run {}: {e}; the lock was released",
                    command[0].to_string_lossy()
                ),
            });
        }
    };
    let pid = child.id().and_then(|p| i32::try_from(p).ok());
    let signal_child = |sig: libc::c_int| {
        if let Some(pid) = pid {
            let whom = if own_group { -pid } else { pid };
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(whom, sig);
            }
        }
    };

    let mut lost = None;
    let waited = {
        let lost_wait = async {
            match &held {
                Held::S3Lease(l) => l.wait_lost().await,
                _ => std::future::pending().await,
            }
        };
        tokio::pin!(lost_wait);
        let mut kill_at: Option<tokio::time::Instant> = None;
        loop {
            let kill_sleep = tokio::time::sleep_until(
                kill_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86400)),
            );
            tokio::select! {
                s = child.wait() => break s,
                _ = sigint.recv() => if own_group { signal_child(libc::SIGINT) },
                _ = sigterm.recv() => signal_child(libc::SIGTERM),
                reason = &mut lost_wait, if lost.is_none() => {
                    // The renewal task already reported the loss; stop the
                    // command, which no longer runs under the lock.
                    lost = Some(reason);
                    signal_child(libc::SIGTERM);
                    kill_at = Some(tokio::time::Instant::now() + grace);
                }
                _ = kill_sleep, if kill_at.is_some() => {
                    rep.say(&format!(
                        "the command did not stop within {} of SIGTERM: sending SIGKILL",
                        short(grace)
                    ));
                    signal_child(libc::SIGKILL);
                    kill_at = None;
                }
            }
        }
    };
    let child_status = match waited {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt as _;
            s.code()
                .or_else(|| s.signal().map(|n| 128 + n))
                .unwrap_or(exit::OTHER)
        }
        Err(e) => {
            rep.say(&format!("cannot wait for the command: {e}"));
            exit::OTHER
        }
    };
    match give_back(&lock, held).await {
        Ok(outcome) => {
            rep.event(
                "released",
                json!({ "already_gone": outcome == UnlockOutcome::AlreadyGone,
                        "command_status": child_status }),
            );
            match lost {
                Some(reason) => {
                    let f = Failure::core(&Error::Lost { reason }, &ctx);
                    rep.failure(&f);
                    Ok(exit::LOST)
                }
                None => Ok(child_status),
            }
        }
        Err(e) => {
            let f = Failure::core(&e, &ctx);
            rep.failure(&f);
            Ok(if e.code() == "lost" || child_status == 0 {
                f.exit
            } else {
                child_status
            })
        }
    }
}

fn print_s3_holder(target: &str, h: &LockHolder) {
    println!("held: {target}");
    match &h.info {
        Ok(i) => {
            println!("  ID:        {}", i.id);
            println!("  Who:       {}", i.who);
            println!("  Operation: {}", i.operation);
            if !i.info.is_empty() {
                println!("  Info:      {}", i.info);
            }
            match age_of(&i.created) {
                Some(age) => println!("  Created:   {} ({} ago)", i.created, short(age)),
                None => println!("  Created:   {}", i.created),
            }
            if let Some(l) = &i.lease {
                println!("  Lease:     {}", short(l.duration()));
            }
        }
        Err(e) => println!("  unreadable lock (ETag {}): {e}", h.etag),
    }
}

fn print_tag(target: &str, t: &MutexTag) {
    println!("held: {target}");
    println!("  Tag ID:    {}", t.id);
    println!("  Message:   {}", t.message);
    if let Some(c) = &t.created_at {
        match t.age {
            Some(age) => println!("  Created:   {c} ({} ago)", short(age)),
            None => println!("  Created:   {c}"),
        }
    }
}

async fn status(mode: Mode, target: Option<String>, at: TargetArgs) -> Result<i32, Failure> {
    let t = target::resolve(target.as_deref(), &at, true)?;
    let (lock, rep) = open(mode, t, "condlock", None).await?;
    let ctx = lock.context();
    let quiet = mode == Mode::Quiet;
    // Free, or the holder as JSON and as text: one shape for both kinds.
    type Shown = (serde_json::Value, Box<dyn FnOnce()>);
    let target = rep.target.clone();
    let held: Option<Shown> = match &lock {
        Lock::S3 { lock, .. } => lock
            .status()
            .await
            .map_err(|e| Failure::core(&e, &ctx))?
            .map(|h| -> Shown {
                (
                    s3_holder_json(&h),
                    Box::new(move || print_s3_holder(&target, &h)),
                )
            }),
        Lock::Apstra { mutex, .. } => mutex
            .status()
            .await
            .map_err(|e| Failure::core(&e, &ctx))?
            .map(|t| -> Shown { (tag_json(&t), Box::new(move || print_tag(&target, &t))) }),
    };
    match held {
        None => {
            match mode {
                Mode::Json => println!("{}", json!({ "target": rep.target, "state": "free" })),
                _ if !quiet => println!("free: {}", rep.target),
                _ => {}
            }
            Ok(exit::OK)
        }
        Some((holder, print)) => {
            match mode {
                Mode::Json => println!(
                    "{}",
                    json!({ "target": rep.target, "state": "held", "holder": holder })
                ),
                _ if !quiet => print(),
                _ => {}
            }
            Ok(exit::HELD)
        }
    }
}

async fn wait(
    mode: Mode,
    target: Option<String>,
    at: TargetArgs,
    timeout: Option<Duration>,
) -> Result<i32, Failure> {
    let t = target::resolve(target.as_deref(), &at, true)?;
    let (lock, rep) = open(mode, t, "condlock", None).await?;
    let ctx = lock.context();
    let backoff = match &lock {
        Lock::S3 { opts, .. } => opts.wait_backoff,
        Lock::Apstra { opts, .. } => opts.wait_backoff,
    };
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ u64::from(std::process::id()))
        .unwrap_or(1);
    let mut delays = BackoffState::new(backoff, seed);
    let started = tokio::time::Instant::now();
    let mut last_identity = None;
    loop {
        let holder = match &lock {
            Lock::S3 { lock, .. } => lock
                .status()
                .await
                .map(|h| h.map(|h| Holder::S3(Box::new(h)))),
            Lock::Apstra { mutex, .. } => mutex
                .status()
                .await
                .map(|t| t.map(|t| Holder::Apstra(Box::new(Blocker::Tag(t))))),
        }
        .map_err(|e| Failure::core(&e, &ctx))?;
        let Some(holder) = holder else {
            rep.clear();
            rep.event(
                "free",
                json!({ "waited_seconds": started.elapsed().as_secs_f64() }),
            );
            return Ok(exit::OK);
        };
        let waited = started.elapsed();
        let next = delays.next_delay();
        if let Some(limit) = timeout {
            if waited + next > limit {
                let e = match holder {
                    Holder::S3(h) => Error::Timeout {
                        waited,
                        holder: Some(h),
                    },
                    Holder::Apstra(b) => Error::BlueprintLockTimeout {
                        blueprint: match &lock {
                            Lock::Apstra { mutex, .. } => mutex.blueprint().to_string(),
                            Lock::S3 { .. } => String::new(),
                        },
                        waited,
                        blocker: Some(b),
                    },
                    _ => Error::Timeout {
                        waited,
                        holder: None,
                    },
                };
                return Err(Failure::core(&e, &ctx));
            }
        }
        let identity = holder.identity();
        let new_holder = last_identity.as_ref() != Some(&identity);
        last_identity = Some(identity);
        rep.notice(&Notice::Waiting {
            holder,
            waited,
            next_try_in: next,
            new_holder,
        });
        tokio::time::sleep(next).await;
    }
}

async fn acquire(
    mode: Mode,
    target: Option<String>,
    at: TargetArgs,
    timeout: Option<Duration>,
    info: Option<String>,
) -> Result<i32, Failure> {
    let t = target::resolve(target.as_deref(), &at, true)?;
    let (lock, rep) = open(mode, t, "condlock acquire", info).await?;
    let ctx = lock.context();
    let (mut sigint, mut sigterm) = signals()?;
    let held = take_interruptible(&lock, &rep, wait_of(timeout), &mut sigint, &mut sigterm)
        .await
        .map_err(|e| Failure::core(&e, &ctx))?;
    match mode {
        Mode::Json => println!(
            "{}",
            json!({ "target": rep.target, "id": held.id(), "holder": held.json() })
        ),
        _ => println!("{}", held.id()),
    }
    Ok(exit::OK)
}

async fn release(
    mode: Mode,
    id: String,
    target: Option<String>,
    at: TargetArgs,
) -> Result<i32, Failure> {
    let t = target::resolve(target.as_deref(), &at, true)?;
    let (lock, rep) = open(mode, t, "condlock", None).await?;
    let ctx = lock.context();
    let outcome = match &lock {
        // Removing the lock only if it carries this ID, conditioned on its
        // ETag, is exactly what force-unlock does in the core.
        Lock::S3 { lock, .. } => lock
            .force_unlock(&id)
            .await
            .map_err(|e| Failure::core(&e, &ctx))?,
        Lock::Apstra { mutex, .. } => {
            match mutex.status().await.map_err(|e| Failure::core(&e, &ctx))? {
                None => UnlockOutcome::AlreadyGone,
                Some(t) if t.id == id => {
                    mutex
                        .client()
                        .force_unlock_tag(&id)
                        .await
                        .map_err(|e| Failure::core(&e, &ctx))?
                        .outcome
                }
                Some(t) => return Err(apstra_not_owned(&rep.target, &id, &t)),
            }
        }
    };
    report_unlock(&rep, &id, outcome);
    Ok(exit::OK)
}

fn apstra_not_owned(target: &str, id: &str, t: &MutexTag) -> Failure {
    Failure {
        exit: exit::NOT_OWNED,
        code: "not_owned",
        message: format!(
            "{target} is held by tag {} ({:?}), not {id}, so it was left alone",
            t.id, t.message
        ),
    }
}

fn report_unlock(rep: &Reporter, id: &str, outcome: UnlockOutcome) {
    let gone = outcome == UnlockOutcome::AlreadyGone;
    rep.event("released", json!({ "id": id, "already_gone": gone }));
    if gone {
        rep.say(&format!("{} was already free (no lock {id})", rep.target));
    } else {
        rep.say(&format!("released {} (ID {id})", rep.target));
    }
}

/// Ask on the terminal, as `terraform force-unlock` does; refuse when nobody
/// can answer.
fn confirm(what: &str, force: bool) -> Result<(), Failure> {
    if force {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            exit: exit::NOT_CONFIRMED,
            code: "not_confirmed",
            message: format!(
                "refusing to force-unlock {what} without -force: stdin is not a terminal, so \
                 nobody can confirm"
            ),
        });
    }
    eprint!(
        "Do you really want to force-unlock {what}?\n  Removing a lock that is still in use \
         lets two writers in.\n  Only 'yes' will be accepted to confirm.\n\n  Enter a value: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(Failure {
            exit: exit::NOT_CONFIRMED,
            code: "not_confirmed",
            message: "force-unlock cancelled: the lock was left alone".into(),
        })
    }
}

async fn force_unlock(
    mode: Mode,
    id: Option<String>,
    target: Option<String>,
    at: TargetArgs,
    force: bool,
    tag: Option<String>,
) -> Result<i32, Failure> {
    if let Some(tag) = tag {
        let client = target::apstra_client()?;
        let ctx = client.core().context();
        confirm(&format!("the Apstra mutex tag {tag}"), force)?;
        let done = client
            .force_unlock_tag(&tag)
            .await
            .map_err(|e| Failure::core(&e, &ctx))?;
        report_unlock(&Reporter::new(mode, ctx.target), &tag, done.outcome);
        return Ok(exit::OK);
    }
    let id = id.unwrap_or_default();
    let t = target::resolve(target.as_deref(), &at, true)?;
    let (lock, rep) = open(mode, t, "condlock", None).await?;
    let ctx = lock.context();
    let outcome = match &lock {
        Lock::S3 { lock: s3, .. } => {
            match s3.status().await.map_err(|e| Failure::core(&e, &ctx))? {
                None => UnlockOutcome::AlreadyGone,
                Some(h) if h.id() != Some(id.as_str()) => {
                    let e = Error::NotOwned {
                        holder: Some(Box::new(h)),
                    };
                    return Err(Failure::core(&e, &ctx));
                }
                Some(h) => {
                    confirm(
                        &format!(
                            "{} (held by {})",
                            rep.target,
                            holder_line(&Holder::S3(Box::new(h)))
                        ),
                        force,
                    )?;
                    s3_force(s3, &id)
                        .await
                        .map_err(|e| Failure::core(&e, &ctx))?
                }
            }
        }
        Lock::Apstra { mutex, .. } => {
            match mutex.status().await.map_err(|e| Failure::core(&e, &ctx))? {
                None => UnlockOutcome::AlreadyGone,
                Some(t) if t.id != id => return Err(apstra_not_owned(&rep.target, &id, &t)),
                Some(t) => {
                    confirm(
                        &format!("{} (tag {}, {:?})", rep.target, t.id, t.message),
                        force,
                    )?;
                    mutex
                        .client()
                        .force_unlock_tag(&id)
                        .await
                        .map_err(|e| Failure::core(&e, &ctx))?
                        .outcome
                }
            }
        }
    };
    report_unlock(&rep, &id, outcome);
    Ok(exit::OK)
}

async fn s3_force(lock: &S3Lock, id: &str) -> Result<UnlockOutcome, Error> {
    lock.force_unlock(id).await
}

/// One row of `list`.
struct Row {
    name: String,
    id: String,
    who: String,
    what: String,
    age: Option<Duration>,
    json: serde_json::Value,
}

fn print_rows(mode: Mode, rows: &[Row], header: [&str; 4]) {
    if mode == Mode::Json {
        for r in rows {
            println!("{}", r.json);
        }
        return;
    }
    if rows.is_empty() {
        if mode != Mode::Quiet {
            eprintln!("condlock: no locks found");
        }
        return;
    }
    let w = |f: fn(&Row) -> &str, h: &str| {
        rows.iter()
            .map(|r| f(r).len())
            .chain([h.len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (
        w(|r| &r.name, header[0]),
        w(|r| &r.id, header[1]),
        w(|r| &r.who, header[2]),
    );
    println!(
        "{:w0$}  {:w1$}  {:w2$}  {:8}  {}",
        header[0], header[1], header[2], "AGE", header[3]
    );
    for r in rows {
        println!(
            "{:w0$}  {:w1$}  {:w2$}  {:8}  {}",
            r.name,
            r.id,
            r.who,
            r.age.map(short).unwrap_or_else(|| "?".into()),
            r.what
        );
    }
}

async fn list(
    mode: Mode,
    target: Option<String>,
    at: TargetArgs,
    prefix: Option<String>,
    stale_after: Option<Duration>,
    apstra: bool,
) -> Result<i32, Failure> {
    let stale = |age: Option<Duration>| match (stale_after, age) {
        (None, _) => true,
        // A lock whose age cannot be told is worth a look.
        (Some(_), None) => true,
        (Some(limit), Some(age)) => age >= limit,
    };
    if apstra || at.apstra_blueprint.is_some() {
        let client = target::apstra_client()?;
        let ctx = client.core().context();
        let tags = client
            .list_mutexes()
            .await
            .map_err(|e| Failure::core(&e, &ctx))?;
        let rows: Vec<Row> = tags
            .into_iter()
            .filter(|t| {
                at.apstra_blueprint
                    .as_ref()
                    .is_none_or(|bp| &t.blueprint == bp)
            })
            .filter(|t| stale(t.age))
            .map(|t| Row {
                name: t.blueprint.clone(),
                id: t.id.clone(),
                who: if t.carries_token() {
                    "condlock"
                } else {
                    "other"
                }
                .into(),
                what: t.message.clone(),
                age: t.age,
                json: tag_json(&t),
            })
            .collect();
        print_rows(mode, &rows, ["BLUEPRINT", "TAG ID", "BY", "MESSAGE"]);
        return Ok(exit::OK);
    }
    let from_url = target.is_some();
    let t = target::resolve(target.as_deref(), &at, false)?;
    let Target::S3 {
        mut settings,
        profile,
        ..
    } = t
    else {
        return Err(usage(
            "list: name a bucket (s3://BUCKET[/PREFIX]) or use --apstra",
        ));
    };
    target::with_profile_values(&mut settings, profile.as_deref()).await?;
    let prefix = prefix.unwrap_or_else(|| {
        if from_url {
            settings.key.clone()
        } else {
            String::new()
        }
    });
    let bucket = settings.bucket.clone();
    // Listing is about the bucket: the key only has to be a valid one.
    let base = condlock::settings::S3Settings {
        key: "condlock-list".into(),
        workspace: None,
        ..(*settings).clone()
    };
    let resolved = base
        .resolve(&|k| std::env::var(k).ok(), &condlock::native::default_who())
        .map_err(|e| Failure::plain(&e))?;
    let ctx = Context {
        kind: Kind::S3,
        target: format!("s3://{bucket}/{prefix}"),
        endpoint: resolved.config.endpoint_display(),
    };
    let source = target::credentials(resolved.credentials.clone(), profile.as_deref()).await?;
    let creds = source
        .credentials()
        .await
        .map_err(|e| Failure::core(&e, &ctx))?;
    let transport =
        Transport::new(&target::transport(&resolved.transport)).map_err(|e| Failure::plain(&e))?;
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _page in 0..10_000 {
        let req = list_request(
            &resolved.config,
            &creds,
            &prefix,
            token.as_deref(),
            SystemTime::now(),
        )
        .map_err(|e| Failure::core(&e, &ctx))?;
        let resp = transport
            .send(req)
            .await
            .map_err(|f| Failure::core(&Error::from(f), &ctx))?;
        let page =
            parse_list(&resp, &resolved.config, &creds).map_err(|e| Failure::core(&e, &ctx))?;
        keys.extend(
            page.objects
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k.ends_with(".tflock")),
        );
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    let mut rows = Vec::new();
    for key in keys {
        let state_key = key.trim_end_matches(".tflock").to_string();
        let one = condlock::settings::S3Settings {
            key: state_key,
            workspace: None,
            ..(*settings).clone()
        }
        .resolve(&|k| std::env::var(k).ok(), &condlock::native::default_who());
        let holder = match one {
            Ok(r) => S3Lock::over(r.config, source.clone(), transport.clone())
                .status()
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let row = match holder {
            Ok(None) => continue, // released since the listing
            Ok(Some(h)) => {
                let (id, who, what, age) = match &h.info {
                    Ok(i) => (
                        i.id.clone(),
                        i.who.clone(),
                        i.operation.clone(),
                        age_of(&i.created),
                    ),
                    Err(e) => ("?".into(), "?".into(), e.to_string(), None),
                };
                Row {
                    json: json!({ "key": key, "holder": s3_holder_json(&h) }),
                    name: key,
                    id,
                    who,
                    what,
                    age,
                }
            }
            Err(e) => Row {
                json: json!({ "key": key, "error": e }),
                name: key,
                id: "?".into(),
                who: "?".into(),
                what: format!("cannot read: {e}"),
                age: None,
            },
        };
        if stale(row.age) {
            rows.push(row);
        }
    }
    print_rows(mode, &rows, ["KEY", "ID", "WHO", "OPERATION"]);
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_in_info_is_printable_quoted_and_bounded() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            describe(&args(&["sh", "-c", "echo a; exit 7", ""])),
            "sh -c 'echo a; exit 7' ''"
        );
        assert_eq!(
            describe(&args(&["printf", "a\nb\x1b[2J"])),
            "printf 'a?b?[2J'"
        );
        let long = describe(&args(&[&"x".repeat(5000)]));
        assert_eq!(long.chars().count(), 1003);
        assert!(long.ends_with("..."));
    }
}
