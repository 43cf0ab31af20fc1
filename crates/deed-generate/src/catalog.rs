//! Reading the live catalog: a relation's columns with their types
//! (domains and arrays resolved, enum labels listed), a view's definition,
//! a table's primary key.

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

/// The columns of `relation` (written as SQL, quoted as needed), in
/// order; `None` when there is no such relation.
pub async fn columns(
    client: &Client,
    relation: &str,
) -> Result<Option<Vec<RawColumn>>, GenerateError> {
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&relation])
        .await
        .map_err(query("looking up a relation"))?
        .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, format_type(a.atttypid, a.atttypmod), a.attnotnull
               FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&relation],
        )
        .await
        .map_err(query("reading a relation's columns"))?;
    Ok(Some(
        rows.iter()
            .map(|r| RawColumn {
                name: r.get(0),
                type_oid: r.get(1),
                sql: r.get(2),
                not_null: r.get(3),
            })
            .collect(),
    ))
}

/// A view's query, as PostgreSQL prints it for this session.
pub async fn view_definition(client: &Client, view: &str) -> Result<String, GenerateError> {
    let row = client
        .query_one("SELECT pg_get_viewdef(to_regclass($1), true)", &[&view])
        .await
        .map_err(query("reading a view's definition"))?;
    Ok(row.get::<_, Option<String>>(0).unwrap_or_default())
}

/// The primary key's columns of `table`, in key order (empty: none).
pub async fn primary_key(client: &Client, table: &str) -> Result<Vec<String>, GenerateError> {
    let rows = client
        .query(
            "SELECT a.attname::text
               FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
              WHERE i.indrelid = to_regclass($1) AND i.indisprimary
              ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&table],
        )
        .await
        .map_err(query("reading a table's primary key"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
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
