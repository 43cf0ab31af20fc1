use deed_ident::{Ident, QualifiedName};
pub use deed_ident::{SchemaLookup, is_system_schema};

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

/// What earlier statements of the same session changed about name
/// resolution: a `SET search_path`, and temporary tables (which shadow
/// every schema for relations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SessionState {
    pub search_path: Option<Vec<Ident>>,
    pub temp_tables: std::collections::BTreeSet<String>,
}

impl SessionState {
    pub fn is_default(&self) -> bool {
        self.search_path.is_none() && self.temp_tables.is_empty()
    }
}

/// A lookup seen through a session's state.
pub struct SessionLookup<'a> {
    pub inner: &'a dyn SchemaLookup,
    pub state: &'a SessionState,
}

impl SchemaLookup for SessionLookup<'_> {
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName> {
        if schema.is_some() {
            return self.inner.resolve(schema, name);
        }
        if self.state.temp_tables.contains(name) {
            return QualifiedName::from_catalog("pg_temp", name).ok();
        }
        let Some(path) = &self.state.search_path else { return self.inner.resolve(None, name) };
        // pg_catalog first, then the path: the first schema that has it.
        let schemas = std::iter::once("pg_catalog").chain(path.iter().map(Ident::as_str));
        for s in schemas {
            let q = QualifiedName::from_catalog(s, name).ok()?;
            if self.inner.columns(&q).is_some() {
                return Some(q);
            }
        }
        match path.first() {
            Some(first) => QualifiedName::from_catalog(first.as_str(), name).ok(),
            None => self.inner.resolve(None, name),
        }
    }

    fn columns(&self, relation: &QualifiedName) -> Option<Vec<String>> {
        self.inner.columns(relation)
    }
}
