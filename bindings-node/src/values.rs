//! The values JavaScript sees, as JSON-shaped objects: the holder of a lock
//! (`LockInfo`), wait events, loss reasons. Conversions only.

use condlock::apstra::{Blocker, MutexTag};
use condlock::drive::{Holder, Notice};
use condlock::s3::{LockHolder, LockInfo, LostReason};
use serde_json::{json, Value};

/// A lock body (Terraform's LockInfo) with the object's ETag.
pub fn lock_info_json(info: &LockInfo, etag: &str) -> Value {
    json!({
        "id": info.id,
        "operation": info.operation,
        "info": info.info,
        "who": info.who,
        "version": info.version,
        "created": info.created,
        "path": info.path,
        "etag": etag,
        "description": info.to_string(),
    })
}

/// The holder of a lock. An unreadable lock body (someone wrote something
/// else there) keeps its ETag, with empty fields and `error` saying why.
pub fn holder_json(h: &LockHolder) -> Value {
    match &h.info {
        Ok(info) => {
            let mut v = lock_info_json(info, &h.etag);
            v["lastModified"] = h.last_modified.clone().into();
            v
        }
        Err(e) => json!({
            "id": "", "operation": "", "info": "", "who": "", "version": "",
            "created": "", "path": "", "etag": h.etag,
            "lastModified": h.last_modified,
            "error": e.to_string(),
            "description": h.to_string(),
        }),
    }
}

/// Why a lease was lost: `{ reason, message, holder? }`.
pub fn lost_json(reason: &LostReason) -> Value {
    let mut v = json!({ "reason": reason.kind(), "message": reason.to_string() });
    if let LostReason::Stolen {
        holder: Some(holder),
    } = reason
    {
        v["holder"] = holder_json(holder);
    }
    v
}

/// A progress notice for the `onWait` and `logger` hooks: `kind` plus the
/// notice's fields (milliseconds) and the core's one-line `message`.
pub fn notice_json(n: &Notice) -> Value {
    let ms = |d: &std::time::Duration| d.as_millis() as f64;
    let message = n.to_string();
    match n {
        Notice::Waiting {
            holder,
            waited,
            next_try_in,
            new_holder,
        } => json!({
            "kind": "waiting",
            "holder": match holder {
                Holder::S3(h) => holder_json(h),
                Holder::Apstra(b) => blocker_json(b),
                other => json!({ "description": other.to_string() }),
            },
            "elapsedMs": ms(waited),
            "nextTryMs": ms(next_try_in),
            "newHolder": new_holder,
            "message": message,
        }),
        Notice::Retrying {
            failures,
            failing_for,
            next_try_in,
            ..
        } => json!({
            "kind": "retrying",
            "failures": failures,
            "failingForMs": ms(failing_for),
            "nextTryMs": ms(next_try_in),
            "message": message,
        }),
        Notice::Fallback { .. } => json!({ "kind": "fallback", "message": message }),
        Notice::Lost { reason } => json!({
            "kind": "lost",
            "reason": reason.kind(),
            "message": message,
        }),
        _ => json!({ "kind": "other", "message": message }),
    }
}

/// What blocks an Apstra mutex: the holder's tag, or Apstra's own blueprint
/// lock (taken in the web UI).
pub fn blocker_json(b: &Blocker) -> Value {
    match b {
        Blocker::Tag(t) => tag_json(t),
        Blocker::BlueprintLock(s) => json!({
            "lockStatus": s.lock_status,
            "lockType": s.lock_type,
            "username": s.username,
            "firstName": s.first_name,
            "lastName": s.last_name,
            "userId": s.user_id,
            "description": b.to_string(),
        }),
    }
}

/// A mutex tag as JavaScript sees it.
pub fn tag_json(t: &MutexTag) -> Value {
    json!({
        "id": t.id,
        "blueprintId": t.blueprint,
        "label": t.label,
        "description": t.description,
        "message": t.message,
        "token": t.token.as_ref().map(|t| t.to_string()),
        "createdAt": t.created_at,
        "ageMs": t.age.map(|a| a.as_millis() as f64),
        "carriesCondlockToken": t.carries_token(),
    })
}
