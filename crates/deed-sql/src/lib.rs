//! What a SQL statement reads and writes.
//!
//! Statements are parsed by PostgreSQL's own grammar (libpg_query, through
//! the `pg_query` crate); this crate walks the parse tree with SQL's scoping
//! rules to find every relation read and written, the columns used where
//! they can be determined, and `*` expansions. CTE names, subquery aliases
//! and function results are never mistaken for tables.
//!
//! It also provides [`fingerprint`] for grouping statements that differ only
//! in constants, and [`mask_literals`], a cheap pre-key that lets a caller
//! skip the parser for texts it has already seen in another guise.

mod access;
mod error;
mod ffi;
mod fingerprint;
mod function;
mod handler;
mod lookup;
mod mask;
pub mod nullability;
mod scope;
mod script;
mod split;
mod walk;

pub use access::{RelationAccess, SessionEffects, Statement, StatementAnalysis};
pub use error::SqlError;
pub use fingerprint::fingerprint;
pub use function::{BodyAnalysis, analyze_body, plpgsql_queries};
pub use handler::{ENVELOPE_FIELDS, Handler, HandlerError, HandlerParam, parse_handler};
pub use lookup::{OfflineLookup, SchemaLookup, SessionLookup, SessionState, is_system_schema};
pub use mask::mask_literals;
pub use script::{Placeholders, clean_script};
pub use split::{line_col, split_statements};
pub use walk::analyze;
