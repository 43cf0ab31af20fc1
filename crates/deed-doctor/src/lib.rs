//! `deed doctor`: before a user finds out one step at a time, check every
//! prerequisite of every rung at once — pg_stat_statements preloaded and
//! readable, statement logging, roles deed may create, pg_dump of the right
//! version, `wal_level = logical`, slots and the REPLICATION attribute —
//! against the manifest and the server, and say what to change.
//!
//! Observe (one session, a few catalog reads, `pg_dump --version`) →
//! judge ([`checks`], pure) → render.

mod judge;
mod observe;
mod render;

pub use judge::{Check, Level, checks};
pub use observe::{Observed, observe};
pub use render::{json, table};
