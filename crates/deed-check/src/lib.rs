//! `deed check`: a published contract is a public API, and this is the gate
//! that keeps a migration from breaking one.
//!
//! PostgreSQL is the oracle. The live schema (never its data) is copied
//! into a scratch database with `pg_dump --schema-only`, the manifest's
//! contract views are put in place, and the migrations run there one
//! statement at a time. After each statement every contract view's
//! signature (columns, order, types with typmod, definition, and the
//! nullability and identity of the columns beneath it) is compared with
//! the one before, so each break is reported at the statement that made
//! it, with the contract, its consumers and the safe route. A statement a
//! contract blocks is reported and stepped past, so one run reports every
//! finding of every file. The scratch database is dropped afterwards.
//!
//! It also checks consumers: every relation and column a consumer's SQL
//! uses must lie inside the contract versions it declares.

mod bump;
mod consumer;
mod error;
mod events;
mod finding;
mod follow;
mod interrupt;
mod judge;
mod migration;
pub mod report;
mod run;
mod scratch;
mod session;
mod signature;
mod tracked;

pub use bump::{bump, bump_file};
pub use consumer::{ConsumerOutcome, ConsumerViolation, check_consumer};
pub use error::CheckError;
pub use finding::{BreakKind, Finding};
pub use run::{CheckOutcome, CheckRequest, check};
