//! Rung 3: a projection proven equal to its source, and the cutover that
//! then revokes the consumer's direct read.
//!
//! `deed compare` checksums both sides per key range on the servers, in
//! parallel and in one snapshot each ([`scan`]), reads back only small
//! ranges that differ, then re-checks those keys at later consistent
//! points ([`follow`], [`settle`]) so that rows still changing are
//! reported as in flight, never as differences. The verdict is recorded
//! in the consumer's database ([`verdict`]). [`cutover`] revokes the read
//! a projection replaces once a recent clean verdict allows it, editing
//! deed.toml in the same step.

pub mod cutover;
mod error;
pub mod follow;
mod range;
mod read;
pub mod report;
mod run;
pub mod scan;
pub mod settle;
pub mod shape;
pub mod verdict;

pub use error::CompareError;
pub use report::{CompareReport, DifferentRow};
pub use run::{CompareOptions, Target, compare, diff, target};
pub use shape::{Pair, SESSION};
