//! `deed doctor`: before a user finds out one step at a time, check every
//! prerequisite of every rung at once — pg_stat_statements preloaded and
//! readable, statement logging, what `deed apply` does (proved by doing it
//! in a transaction rolled back: [`prove`]), pg_dump of the right version,
//! `wal_level = logical`, slots and replication — against the manifest and
//! the server, name the managed service it runs on, and say what to change,
//! that service's way.
//!
//! Observe (one session, a few catalog reads, the proofs, `pg_dump
//! --version`) → judge ([`checks`], pure) → render. With `--bus`, each bus
//! too: reached, signed in, holding each capturing service's events
//! ([`observe_bus`] → [`bus_checks`]).

mod bus;
mod judge;
mod observe;
pub mod prove;
mod render;

pub use bus::{BusObserved, Reach, ServiceOnBus, bus_checks, observe_bus};
pub use judge::{Check, Level, checks};
pub use observe::{Observed, observe};
pub use render::{json, table};
