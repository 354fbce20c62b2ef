//! What the user sees: progress while waiting (one live line on a terminal,
//! a plain line when waiting starts and when the holder changes otherwise,
//! JSON events with `--json`, nothing with `--quiet`), results and errors.
//!
//! Progress, events and errors go to stderr; results (`status`, `list`, the
//! lock ID of `acquire`) to stdout, so `run`'s command keeps its own stdout.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use condlock::apstra::{Blocker, MutexTag};
use condlock::drive::{Holder, Notice};
use condlock::s3::LockHolder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing but errors.
    Quiet,
    /// One JSON object per line.
    Json,
    /// One live line, redrawn (stderr is a terminal).
    Live,
    /// Plain lines, only when something changes.
    Plain,
}

impl Mode {
    /// The mode the flags and stderr ask for.
    pub fn choose(quiet: bool, json: bool) -> Mode {
        match (quiet, json) {
            (_, true) => Mode::Json,
            (true, false) => Mode::Quiet,
            _ if std::io::stderr().is_terminal() => Mode::Live,
            _ => Mode::Plain,
        }
    }
}

/// The reporter of one command.
#[derive(Debug)]
pub struct Reporter {
    /// How progress is shown.
    pub mode: Mode,
    /// The lock, as named in messages.
    pub target: String,
    bar: Mutex<Option<ProgressBar>>,
}

/// `3m20s`, `1h02m`: an age or a wait, rounded to the second.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// How long ago an RFC 3339 time was (`None`: unreadable, or in the future).
pub fn age_of(created: &str) -> Option<Duration> {
    let t = humantime::parse_rfc3339(created)
        .or_else(|_| humantime::parse_rfc3339_weak(created.trim_end_matches('Z')))
        .ok()?;
    SystemTime::now().duration_since(t).ok()
}

/// An S3 holder as JSON. The ETag is the lock's version, not a secret.
pub fn s3_holder_json(h: &LockHolder) -> Value {
    match &h.info {
        Ok(i) => json!({
            "id": i.id,
            "who": i.who,
            "operation": i.operation,
            "info": i.info,
            "created": i.created,
            "age_seconds": age_of(&i.created).map(|a| a.as_secs()),
            "version": i.version,
            "path": i.path,
            "etag": h.etag,
            "lease_seconds": i.lease.as_ref().map(|l| l.duration().as_secs_f64()),
        }),
        Err(e) => json!({ "unreadable": e.to_string(), "etag": h.etag }),
    }
}

/// An Apstra mutex tag as JSON.
pub fn tag_json(t: &MutexTag) -> Value {
    json!({
        "id": t.id,
        "blueprint": t.blueprint,
        "message": t.message,
        "created": t.created_at,
        "age_seconds": t.age.map(|a| a.as_secs()),
        "condlock": t.carries_token(),
    })
}

fn holder_json(h: &Holder) -> Value {
    match h {
        Holder::S3(h) => s3_holder_json(h),
        Holder::Apstra(b) => match b.as_ref() {
            Blocker::Tag(t) => tag_json(t),
            Blocker::BlueprintLock(s) => json!({
                "apstra_blueprint_lock": s.lock_status,
                "username": s.username,
            }),
        },
        _ => json!({ "holder": h.to_string() }),
    }
}

/// A holder on one line: who, what, for how long.
pub fn holder_line(h: &Holder) -> String {
    match h {
        Holder::S3(lh) => match &lh.info {
            Ok(i) => {
                let who = if i.who.is_empty() { "?" } else { &i.who };
                let mut s = format!("{who} (ID {}", i.id);
                if !i.operation.is_empty() {
                    s.push_str(&format!(", {}", i.operation));
                }
                if let Some(age) = age_of(&i.created) {
                    s.push_str(&format!(", held for {}", short(age)));
                }
                s.push(')');
                s
            }
            Err(_) => lh.to_string(),
        },
        Holder::Apstra(b) => match b.as_ref() {
            Blocker::Tag(t) => {
                let mut s = format!("{:?} (tag {}", t.message, t.id);
                if let Some(age) = t.age {
                    s.push_str(&format!(", held for {}", short(age)));
                }
                s.push(')');
                s
            }
            other => other.to_string(),
        },
        other => other.to_string(),
    }
}

impl Reporter {
    /// A reporter for `target`.
    pub fn new(mode: Mode, target: String) -> Self {
        Reporter {
            mode,
            target,
            bar: Mutex::new(None),
        }
    }

    /// Write one JSON event to stderr (`--json` only).
    pub fn event(&self, event: &str, mut fields: Value) {
        if self.mode != Mode::Json {
            return;
        }
        if let Some(map) = fields.as_object_mut() {
            map.insert("event".into(), json!(event));
            map.insert("target".into(), json!(self.target));
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{fields}");
    }

    /// A human line on stderr (not with `--quiet` or `--json`).
    pub fn say(&self, text: &str) {
        match self.mode {
            Mode::Quiet | Mode::Json => {}
            Mode::Plain => eprintln!("condlock: {text}"),
            Mode::Live => match self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                Some(bar) => bar.println(format!("condlock: {text}")),
                None => eprintln!("condlock: {text}"),
            },
        }
    }

    /// Show a progress notice from the core.
    pub fn notice(&self, n: &Notice) {
        match n {
            Notice::Waiting {
                holder,
                waited,
                next_try_in,
                new_holder,
            } => {
                self.event(
                    "waiting",
                    json!({
                        "holder": holder_json(holder),
                        "waited_seconds": waited.as_secs_f64(),
                        "next_try_seconds": next_try_in.as_secs_f64(),
                        "new_holder": new_holder,
                    }),
                );
                match self.mode {
                    // What matters first, since a narrow terminal cuts the
                    // end: who, for how long, our wait; then which lock.
                    Mode::Live => self.live(format!(
                        "held by {}; waited {}, next try in {} | {}",
                        holder_line(holder),
                        short(*waited),
                        short(*next_try_in),
                        self.target
                    )),
                    // Off a terminal, a line per change, not per attempt: logs
                    // of a long wait stay short.
                    Mode::Plain if *new_holder => eprintln!(
                        "condlock: waiting for {}, held by {}",
                        self.target,
                        holder_line(holder)
                    ),
                    _ => {}
                }
            }
            Notice::Lost { reason } => {
                self.event("lost", json!({ "reason": reason.to_string() }));
                self.say(&format!("the lock {} was lost: {reason}", self.target));
            }
            other => {
                self.event("notice", json!({ "message": other.to_string() }));
                self.say(&other.to_string());
            }
        }
    }

    fn live(&self, msg: String) {
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(msg);
    }

    /// Clear the live line (before a command's output, or a result).
    pub fn clear(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    /// Report a failure on stderr: the core's message, or a JSON event.
    pub fn failure(&self, f: &crate::Failure) {
        self.clear();
        if self.mode == Mode::Json {
            self.event(
                "error",
                json!({ "code": f.code, "exit_status": f.exit, "message": f.message }),
            );
        } else {
            eprintln!("condlock: {}", f.message);
        }
    }
}
