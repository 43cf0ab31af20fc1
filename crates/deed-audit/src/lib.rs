//! `deed audit`: the catalogue of who reads and writes what.
//!
//! Statements come from [`source`]s (pg_stat_statements, csvlog/jsonlog
//! files, a service's shipped SQL), are grouped by shape in a
//! [`Collector`] so each distinct statement is parsed once, and are
//! aggregated into a [`Catalogue`] of service × relation accesses. The
//! [`rules`] turn the catalogue and the manifest into findings, and
//! [`report`] renders both as a table, JSON, Markdown or an HTML page.
//! [`init`] proposes a first manifest from the same catalogue.

mod attribution;
mod catalogue;
mod collector;
mod error;
pub mod init;
mod limits;
pub mod report;
pub mod rules;
mod run;
pub mod source;

pub use attribution::{Attribution, is_admin, is_unknown};
pub use catalogue::{Access, AccessKind, Catalogue, QueryRef, Unparsed};
pub use collector::Collector;
pub use error::AuditError;
pub use limits::Limits;
pub use rules::{Excepted, Finding, Rule};
pub use run::{AuditOutcome, AuditRequest, run};
