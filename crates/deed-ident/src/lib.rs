//! PostgreSQL identifiers and schema-qualified names.
//!
//! Every name deed reads from a manifest or writes into generated SQL goes
//! through this crate. Names are parsed with SQL's rules (bare words fold to
//! lower case, double-quoted words are taken verbatim), names that PostgreSQL
//! would silently truncate or cannot store are rejected, and every identifier
//! that reaches generated SQL is emitted double-quoted. [`SchemaLookup`] is
//! the one question name resolution asks of a schema, so the SQL analysis
//! and the live catalog meet without depending on each other.

mod ident;
mod lookup;
mod qualified;

pub use ident::{Ident, IdentError, MAX_IDENT_BYTES, quote_ident, quote_literal};
pub use lookup::{SchemaLookup, is_system_schema};
pub use qualified::QualifiedName;
