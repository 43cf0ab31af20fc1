//! How names resolve: the question name resolution asks of a schema,
//! answered by the live catalog (`deed_pg::Catalog`), by a manifest, or
//! offline; and which schemas are PostgreSQL's own.

use crate::QualifiedName;

/// What the analysis may ask about the database's schema. With a live
/// catalog, names resolve exactly as PostgreSQL would resolve them and
/// unqualified columns in joins can be attributed; offline, the first
/// schema of the search path is assumed and such columns stay uncertain.
pub trait SchemaLookup {
    /// The relation an unqualified or qualified name refers to.
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName>;
    /// Column names of a relation, when known.
    fn columns(&self, relation: &QualifiedName) -> Option<Vec<String>>;
}

/// Schemas whose relations belong to PostgreSQL itself, never to a service.
pub fn is_system_schema(schema: &str) -> bool {
    schema == "pg_catalog"
        || schema == "information_schema"
        || schema == "pg_toast"
        || schema.starts_with("pg_temp")
        || schema.starts_with("pg_toast_temp")
}
