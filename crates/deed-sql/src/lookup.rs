use deed_ident::{Ident, QualifiedName};

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

/// Resolution without a database: the first search-path schema, except for
/// names that can only be system catalogs.
#[derive(Debug, Clone)]
pub struct OfflineLookup {
    pub search_path: Vec<Ident>,
}

impl Default for OfflineLookup {
    fn default() -> Self {
        OfflineLookup { search_path: vec![Ident::new("public").expect("valid")] }
    }
}

impl SchemaLookup for OfflineLookup {
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName> {
        let schema = match schema {
            Some(s) => s,
            None if name.starts_with("pg_") => "pg_catalog",
            None => self.search_path.first().map_or("public", |s| s.as_str()),
        };
        QualifiedName::from_catalog(schema, name).ok()
    }

    fn columns(&self, _relation: &QualifiedName) -> Option<Vec<String>> {
        None
    }
}

/// Schemas whose relations belong to PostgreSQL itself, never to a service.
pub fn is_system_schema(schema: &str) -> bool {
    schema == "pg_catalog"
        || schema == "information_schema"
        || schema == "pg_toast"
        || schema.starts_with("pg_temp")
        || schema.starts_with("pg_toast_temp")
}
