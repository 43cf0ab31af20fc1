//! Where statements come from. Every source feeds the same [`Collector`],
//! attributing each statement to a service on the way in.
//!
//! [`Collector`]: crate::Collector

mod csvlog;
mod database_code;
mod jsonlog;
mod log;
mod message;
mod pgss;
mod static_sql;
mod stderrlog;

pub use database_code::read_database_code;
pub use log::{LogOptions, read_log};
pub use pgss::read_pg_stat_statements;
pub use static_sql::{SqlFile, load_sql_dir, read_sql_file, read_static_sql, sql_paths};

use serde::Serialize;

/// What one source contributed, for the report header.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// `pg_stat_statements`, `csvlog`, `jsonlog`, `stderr log` or `sql`.
    pub kind: String,
    /// The database, file or directory read.
    pub detail: String,
    pub statements: u64,
    /// Anything the user should know about what was skipped or hidden.
    pub notes: Vec<String>,
    /// Input that could not be read and was skipped, each at its
    /// `file:line:col` (a statement that does not parse); the rest of the
    /// source is still audited. `--strict` makes any of them an error.
    pub warnings: Vec<String>,
}
