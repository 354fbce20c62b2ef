//! Test support: the log records emitted on the current thread, so a test can
//! check that a warning was (or was not) logged. Machines run synchronously
//! on the test's thread, hence a thread-local store: parallel tests never see
//! each other's records. One logger for the whole crate: `log` accepts only
//! one per process.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static RECORDS: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        RECORDS.with(|r| {
            r.borrow_mut()
                .push((record.level(), record.args().to_string()))
        });
    }

    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

/// Install the logger (once) and forget this thread's earlier records.
pub(crate) fn start() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Another logger installed first would swallow the records: the
        // assertions on them then fail loudly rather than pass vacuously.
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
    RECORDS.with(|r| r.borrow_mut().clear());
}

/// The records logged on this thread since [`start`].
pub(crate) fn records() -> Vec<(log::Level, String)> {
    RECORDS.with(|r| r.borrow().clone())
}

/// Run `f`, returning its result and the records it logged on this thread.
pub(crate) fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<(log::Level, String)>) {
    start();
    let result = f();
    let records = RECORDS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    (result, records)
}

/// The messages logged at WARN (or ERROR) among `records`.
pub(crate) fn warnings(records: &[(log::Level, String)]) -> Vec<&str> {
    records
        .iter()
        .filter(|(level, _)| *level <= log::Level::Warn)
        .map(|(_, m)| m.as_str())
        .collect()
}
