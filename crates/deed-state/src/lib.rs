//! deed's own tables, in schema `deed` of each database deed works in:
//! one home for their DDL, their schema versions and the reads other
//! crates make of them.
//!
//! - [`Table`]: the tables, and where each lives.
//! - [`MIGRATIONS`]: every change to them, in order; a table's version is
//!   the number of its migrations applied, recorded in its comment.
//! - [`ensure`] / [`ensure_in`]: bring tables to their latest version
//!   (one catalog read when they already are); [`statements`]: the same
//!   from nothing, for a plan that shows what it will run.
//! - [`splits`]: which services moved out of a shared database, and which
//!   side of a split takes a service's writes; [`epochs`]: where each of a
//!   service's capture epochs begins; [`projections`]: where a projection
//!   stands; [`inbox`]: what the inbox holds; [`exists`] / [`all_exist`]:
//!   whether tables are there at all.
//!
//! A database an older deed set up (its tables carry no version) is
//! brought up by the same path: every migration is safe to run again.

mod ensure;
pub mod epochs;
pub mod inbox;
mod migrations;
pub mod projections;
pub mod splits;
mod table;

pub use ensure::{Ensured, Found, SCHEMA_LOCK_KEY, ensure, ensure_in, found, statements};
pub use migrations::{MIGRATIONS, Migration, latest};
pub use table::{Table, all_exist, exists};
