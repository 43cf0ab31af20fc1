//! Named points where a test may kill deed, as `kill -9` would, to prove
//! that every phase can be finished by running it again, or undone.
//! `DEED_SPLIT_CRASH_AT=<point>` aborts the process there, in builds with
//! the `failpoints` feature only: `cargo test` of the `deed` binary turns it
//! on (a dev-dependency feature); a release or `cargo install` build has
//! no crash point at all.

/// Aborts the process if `DEED_SPLIT_CRASH_AT` names this point.
#[cfg(feature = "failpoints")]
pub fn point(name: &str) {
    if std::env::var("DEED_SPLIT_CRASH_AT").is_ok_and(|p| p == name) {
        eprintln!("deed: killed at {name} (DEED_SPLIT_CRASH_AT)");
        std::process::abort();
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}
