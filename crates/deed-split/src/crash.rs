//! Named points where a test may kill deed, as `kill -9` would, to prove
//! that every phase can be finished by running it again, or undone.
//! `DEED_SPLIT_CRASH_AT=<point>` aborts the process there; unset, nothing
//! happens.

/// Aborts the process if `DEED_SPLIT_CRASH_AT` names this point.
pub fn point(name: &str) {
    if std::env::var("DEED_SPLIT_CRASH_AT").is_ok_and(|p| p == name) {
        eprintln!("deed: killed at {name} (DEED_SPLIT_CRASH_AT)");
        std::process::abort();
    }
}
