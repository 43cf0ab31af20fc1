//! PostgreSQL identifiers and schema-qualified names.
//!
//! Every name deed reads from a manifest or writes into generated SQL goes
//! through this crate. Names are parsed with SQL's rules (bare words fold to
//! lower case, double-quoted words are taken verbatim), names that PostgreSQL
//! would silently truncate or cannot store are rejected, and every identifier
//! that reaches generated SQL is emitted double-quoted.

mod ident;
mod qualified;

pub use ident::{Ident, IdentError, MAX_IDENT_BYTES, quote_literal};
pub use qualified::QualifiedName;
