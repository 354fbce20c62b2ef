//! Apstra design tags: `GET /api/design/tags` lists and single tag objects,
//! read as blueprint mutexes (labels, descriptions with holder tokens,
//! `created_at` timestamps in any shape).
#![no_main]

use std::time::Duration;

use condlock::apstra::tag::{blueprint_of_label, parse_timestamp, split_description};
use condlock::fuzzing::{apstra_tag, apstra_tag_list};
use condlock_fuzz::wall_at;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (i32, &[u8])| {
    let (now_secs, body) = input;
    let now = wall_at(now_secs as i64);
    let check = |t: &condlock::apstra::MutexTag| {
        let _ = t.to_string();
        let _ = t.is_stale(Duration::from_secs(3600));
        assert_eq!(blueprint_of_label(&t.label), Some(t.blueprint.as_str()));
    };
    if let Ok(tags) = apstra_tag_list(body, now) {
        tags.iter().for_each(check);
    }
    if let Ok(Some(tag)) = apstra_tag(body, now) {
        check(&tag);
    }
    // The text helpers on their own, for inputs the JSON would not reach.
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_timestamp(text);
        let (message, _token) = split_description(text);
        assert!(message.len() <= text.len());
        let _ = blueprint_of_label(text);
    }
});
