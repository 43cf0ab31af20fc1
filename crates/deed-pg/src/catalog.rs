use std::collections::{HashMap, HashSet};

use deed_ident::{Ident, QualifiedName, SchemaLookup};
use tokio_postgres::Client;

use crate::error::PgError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
}

impl RelationKind {
    fn from_relkind(c: &str) -> Option<Self> {
        Some(match c {
            "r" => RelationKind::Table,
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => return None,
        })
    }

    pub fn is_view(self) -> bool {
        matches!(self, RelationKind::View | RelationKind::MaterializedView)
    }
}

#[derive(Debug, Clone)]
struct RelationInfo {
    kind: RelationKind,
    columns: Vec<String>,
    /// Created by an extension (`pg_stat_statements`, say): the
    /// extension's, never a service's.
    extension: bool,
}

/// A snapshot of the relations in one database.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    relations: HashMap<QualifiedName, RelationInfo>,
    /// Relations a view's rule reads directly.
    view_sources: HashMap<QualifiedName, Vec<QualifiedName>>,
    search_path: Vec<Ident>,
}

impl Catalog {
    /// Reads every user and system relation with its columns, and the
    /// direct dependencies of every view.
    pub async fn load(client: &Client, search_path: &[Ident]) -> Result<Catalog, PgError> {
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, c.relkind::text,
                        coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                                 FILTER (WHERE a.attnum > 0 AND NOT a.attisdropped), '{}'),
                        EXISTS (SELECT 1 FROM pg_depend e
                                 WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid
                                   AND e.deptype = 'e')
                   FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   LEFT JOIN pg_attribute a ON a.attrelid = c.oid
                  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
                    AND n.nspname !~ '^pg_(toast|temp)'
                  GROUP BY c.oid, 1, 2, 3",
                &[],
            )
            .await
            .map_err(|e| PgError::query("reading relations from pg_class", e))?;
        let mut relations = HashMap::with_capacity(rows.len());
        for row in rows {
            let (schema, name, kind): (String, String, String) =
                (row.get(0), row.get(1), row.get(2));
            let (Ok(q), Some(kind)) =
                (QualifiedName::from_catalog(&schema, &name), RelationKind::from_relkind(&kind))
            else {
                continue;
            };
            relations.insert(q, RelationInfo { kind, columns: row.get(3), extension: row.get(4) });
        }
        let rows = client
            .query(
                "SELECT DISTINCT vn.nspname::text, v.relname::text, tn.nspname::text, t.relname::text
                   FROM pg_rewrite r
                   JOIN pg_class v ON v.oid = r.ev_class
                   JOIN pg_namespace vn ON vn.oid = v.relnamespace
                   JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                                   AND d.refclassid = 'pg_class'::regclass
                   JOIN pg_class t ON t.oid = d.refobjid
                   JOIN pg_namespace tn ON tn.oid = t.relnamespace
                  WHERE v.relkind IN ('v', 'm') AND t.oid <> v.oid
                    AND t.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[],
            )
            .await
            .map_err(|e| PgError::query("reading view dependencies from pg_depend", e))?;
        let mut view_sources: HashMap<QualifiedName, Vec<QualifiedName>> = HashMap::new();
        for row in rows {
            let view = QualifiedName::from_catalog(row.get(0), row.get(1));
            let source = QualifiedName::from_catalog(row.get(2), row.get(3));
            if let (Ok(v), Ok(s)) = (view, source) {
                view_sources.entry(v).or_default().push(s);
            }
        }
        Ok(Catalog { relations, view_sources, search_path: search_path.to_vec() })
    }

    pub fn kind(&self, relation: &QualifiedName) -> Option<RelationKind> {
        self.relations.get(relation).map(|r| r.kind)
    }

    /// A relation that belongs to an extension: like a system relation, no
    /// service owns it and using it crosses no ownership line.
    pub fn is_extension_member(&self, relation: &QualifiedName) -> bool {
        self.relations.get(relation).is_some_and(|r| r.extension)
    }

    pub fn contains(&self, relation: &QualifiedName) -> bool {
        self.relations.contains_key(relation)
    }

    /// The tables (and foreign tables) a view ultimately reads, following
    /// views on views.
    pub fn base_relations(&self, view: &QualifiedName) -> Vec<QualifiedName> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![view.clone()];
        while let Some(v) = stack.pop() {
            for source in self.view_sources.get(&v).into_iter().flatten() {
                if !seen.insert(source.clone()) {
                    continue;
                }
                match self.kind(source) {
                    Some(k) if k.is_view() => stack.push(source.clone()),
                    _ => out.push(source.clone()),
                }
            }
        }
        out.sort();
        out
    }

    /// User relations (outside system schemas, not an extension's), for
    /// reports that list all.
    pub fn user_relations(&self) -> impl Iterator<Item = (&QualifiedName, RelationKind)> {
        self.relations
            .iter()
            .filter(|(q, r)| !deed_ident::is_system_schema(q.schema.as_str()) && !r.extension)
            .map(|(q, r)| (q, r.kind))
    }
}

impl SchemaLookup for Catalog {
    /// Resolution as the server does it: `pg_catalog` first, then the
    /// search path; a name found nowhere is placed in the first schema.
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName> {
        if let Some(s) = schema {
            return QualifiedName::from_catalog(s, name).ok();
        }
        let candidates =
            std::iter::once("pg_catalog").chain(self.search_path.iter().map(|s| s.as_str()));
        for s in candidates {
            let q = QualifiedName::from_catalog(s, name).ok()?;
            if self.relations.contains_key(&q) {
                return Some(q);
            }
        }
        let first = self.search_path.first().map_or("public", |s| s.as_str());
        QualifiedName::from_catalog(first, name).ok()
    }

    fn columns(&self, relation: &QualifiedName) -> Option<Vec<String>> {
        self.relations.get(relation).map(|r| r.columns.clone())
    }
}
