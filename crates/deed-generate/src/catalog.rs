//! Reading the live catalog, in a few queries for any number of
//! relations: their columns with their types (domains and arrays
//! resolved, enum labels listed), views' definitions, tables' primary
//! keys.

use std::collections::BTreeMap;

use deed_pg::Client;

use crate::error::{GenerateError, query};
use crate::model::{PgType, Scalar, TypeKind};

/// One column of a relation, as the catalog has it.
#[derive(Debug, Clone)]
pub struct RawColumn {
    pub name: String,
    pub type_oid: u32,
    /// `format_type` with the column's modifier: `numeric(10,2)`.
    pub sql: String,
    pub not_null: bool,
}

/// What the catalog says of many relations at once, each written as SQL
/// (quoted as needed): read in a few queries however many there are.
#[derive(Default)]
pub struct Relations {
    /// Columns in order; a relation that does not exist is absent.
    pub columns: BTreeMap<String, Vec<RawColumn>>,
    /// Views' queries, as PostgreSQL prints them for this session.
    pub definitions: BTreeMap<String, String>,
    /// Primary keys' columns, in key order (empty: none).
    pub keys: BTreeMap<String, Vec<String>>,
}

impl Relations {
    /// Reads the columns of each of `names` not read yet.
    pub async fn load_columns(
        &mut self,
        client: &Client,
        names: &[String],
    ) -> Result<(), GenerateError> {
        let mut wanted: Vec<&String> =
            names.iter().filter(|n| !self.columns.contains_key(*n)).collect();
        wanted.sort();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let rows = client
            .query(
                "SELECT t.name, a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnotnull
                   FROM unnest($1::text[]) WITH ORDINALITY AS t(name, ord)
                   JOIN pg_class c ON c.oid = to_regclass(t.name)
                   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY t.ord, a.attnum",
                &[&wanted],
            )
            .await
            .map_err(query("reading relations' columns"))?;
        for r in rows {
            let list = self.columns.entry(r.get(0)).or_default();
            if let Some(name) = r.get::<_, Option<String>>(1) {
                list.push(RawColumn {
                    name,
                    type_oid: r.get(2),
                    sql: r.get(3),
                    not_null: r.get(4),
                });
            }
        }
        Ok(())
    }

    /// Reads the definitions of `views`.
    pub async fn load_definitions(
        &mut self,
        client: &Client,
        views: &[String],
    ) -> Result<(), GenerateError> {
        let rows = client
            .query(
                "SELECT t.name, pg_get_viewdef(to_regclass(t.name), true)
                   FROM unnest($1::text[]) AS t(name)",
                &[&views],
            )
            .await
            .map_err(query("reading views' definitions"))?;
        for r in rows {
            self.definitions.insert(r.get(0), r.get::<_, Option<String>>(1).unwrap_or_default());
        }
        Ok(())
    }

    /// Reads the primary keys of `tables`.
    pub async fn load_keys(
        &mut self,
        client: &Client,
        tables: &[String],
    ) -> Result<(), GenerateError> {
        let rows = client
            .query(
                "SELECT t.name,
                        array(SELECT a.attname::text
                                FROM pg_index i
                                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                               WHERE i.indrelid = to_regclass(t.name) AND i.indisprimary
                               ORDER BY array_position(i.indkey::int2[], a.attnum))
                   FROM unnest($1::text[]) AS t(name)",
                &[&tables],
            )
            .await
            .map_err(query("reading tables' primary keys"))?;
        for r in rows {
            self.keys.insert(r.get(0), r.get(1));
        }
        Ok(())
    }
}

/// One row of `pg_type`, as far as types are told apart here.
#[derive(Debug, Clone)]
struct TypeRow {
    name: String,
    kind: char,
    base: u32,
    element: u32,
    category: char,
    labels: Vec<String>,
}

/// Types by OID, read as needed: domains resolved to their base type,
/// arrays to their element type.
#[derive(Default)]
pub struct Types {
    rows: BTreeMap<u32, TypeRow>,
}

impl Types {
    /// Reads every type `oids` need (their bases and elements too).
    pub async fn load(&mut self, client: &Client, oids: &[u32]) -> Result<(), GenerateError> {
        let mut wanted: Vec<u32> =
            oids.iter().copied().filter(|o| !self.rows.contains_key(o)).collect();
        while !wanted.is_empty() {
            wanted.sort_unstable();
            wanted.dedup();
            let rows = client
                .query(
                    "SELECT t.oid, t.typname::text, t.typtype::text, t.typbasetype, t.typelem,
                            t.typcategory::text,
                            array(SELECT e.enumlabel::text FROM pg_enum e
                                   WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
                       FROM pg_type t WHERE t.oid = ANY ($1)",
                    &[&wanted],
                )
                .await
                .map_err(query("reading column types"))?;
            let mut next = Vec::new();
            for r in rows {
                let oid: u32 = r.get(0);
                let row = TypeRow {
                    name: r.get(1),
                    kind: r.get::<_, String>(2).chars().next().unwrap_or('b'),
                    base: r.get(3),
                    element: r.get(4),
                    category: r.get::<_, String>(5).chars().next().unwrap_or('U'),
                    labels: r.get(6),
                };
                for o in [row.base, row.element] {
                    if o != 0 && !self.rows.contains_key(&o) {
                        next.push(o);
                    }
                }
                self.rows.insert(oid, row);
            }
            wanted = next;
        }
        Ok(())
    }

    /// The type of `oid`, with `sql` as the column's type is written.
    pub fn resolve(&self, oid: u32, sql: &str) -> PgType {
        PgType { sql: sql.to_string(), kind: self.kind(oid, 0) }
    }

    fn kind(&self, oid: u32, depth: usize) -> TypeKind {
        let Some(t) = self.rows.get(&oid).filter(|_| depth < 16) else {
            return TypeKind::Scalar(Scalar::Other);
        };
        if t.kind == 'd' {
            return self.kind(t.base, depth + 1);
        }
        if t.kind == 'e' {
            return TypeKind::Enum(t.labels.clone());
        }
        if t.category == 'A' && t.element != 0 {
            let element = self.rows.get(&t.element).map_or(String::new(), |e| e.name.clone());
            return TypeKind::Array(Box::new(PgType {
                sql: element,
                kind: self.kind(t.element, depth + 1),
            }));
        }
        TypeKind::Scalar(Scalar::from_catalog(&t.name))
    }
}
