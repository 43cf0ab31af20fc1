//! What is compared, and the SQL that reads it the same way on both sides:
//! key expressions, a row hash over normalized columns, and typed bounds.
//!
//! Columns of the same built-in type are hashed natively with
//! `hash_record_extended`, whose per-type hashes already treat equal
//! values as equal (`numeric` 1.0 and 1.00, `jsonb` in any key order,
//! `timestamptz` in any zone). Anything else is compared in a normalized
//! form: `json` as `jsonb`, numbers as `numeric`, the rest as text in a
//! session whose time zone and styles are pinned.

use deed_ident::{Ident, QualifiedName};
use deed_pg::Client;

use crate::error::{CompareError, query};

/// The relations compared and the columns that must agree.
#[derive(Debug, Clone)]
pub struct Pair {
    pub source: QualifiedName,
    pub target: QualifiedName,
    pub key: Vec<Ident>,
    /// Every compared column, the key's included.
    pub columns: Vec<Ident>,
}

/// One side's SQL pieces.
#[derive(Debug, Clone)]
pub struct Side {
    pub relation: QualifiedName,
    key: Vec<KeyColumn>,
    /// One normalized expression per compared column, in `Pair` order.
    columns: Vec<String>,
}

#[derive(Debug, Clone)]
struct KeyColumn {
    name: Ident,
    /// `format_type` of the column: SQL-safe as printed.
    sql_type: String,
    /// Compare with `COLLATE "C"`: the two sides sort text differently.
    bytewise: bool,
}

/// The settings both sessions share, so text forms agree.
pub const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; \
     SET work_mem = '256MB'";

/// Built-in types whose extended hash is value-equality: hashed natively.
const NATIVE: &[&str] = &[
    "int2",
    "int4",
    "int8",
    "numeric",
    "float4",
    "float8",
    "text",
    "varchar",
    "bpchar",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "time",
    "interval",
    "uuid",
    "jsonb",
    "bytea",
    "oid",
    "inet",
    "cidr",
    "macaddr",
    "char",
    "name",
];

#[derive(Debug, Clone)]
struct ColumnType {
    name: String,
    typname: String,
    category: String,
    sql_type: String,
    collation: Option<String>,
}

async fn column_types(
    client: &Client,
    relation: &QualifiedName,
) -> Result<Vec<ColumnType>, CompareError> {
    let rows = client
        .query(
            "WITH d AS (SELECT to_jsonb(d) - 'datacl' AS j FROM pg_catalog.pg_database d
                          WHERE d.datname = pg_catalog.current_database())
             SELECT a.attname::text, t.typname::text, t.typcategory::text,
                    pg_catalog.format_type(a.atttypid, NULL),
                    CASE WHEN a.attcollation = 0 THEN NULL
                         WHEN a.attcollation = 100 THEN
                              (SELECT concat_ws(':', j->>'datlocprovider', j->>'datcollate',
                                                coalesce(j->>'daticulocale', j->>'datlocale')) FROM d)
                         ELSE (SELECT to_jsonb(c)::text FROM pg_catalog.pg_collation c
                                WHERE c.oid = a.attcollation) END
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
              WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&relation.quoted()],
        )
        .await
        .map_err(query("reading the columns to compare"))?;
    Ok(rows
        .iter()
        .map(|r| ColumnType {
            name: r.get(0),
            typname: r.get(1),
            category: r.get(2),
            sql_type: r.get(3),
            collation: r.get(4),
        })
        .collect())
}

fn native(typname: &str) -> bool {
    let base = typname.strip_prefix('_').unwrap_or(typname);
    NATIVE.contains(&base)
}

/// The normalized expression of a column on each side.
fn normalized(column: &Ident, s: &ColumnType, t: &ColumnType) -> (String, String) {
    let q = column.quoted();
    let both = |cast: &str| (format!("{q}::{cast}"), format!("{q}::{cast}"));
    if s.typname == t.typname && native(&s.typname) {
        (q.clone(), q)
    } else if matches!(s.typname.as_str(), "json" | "jsonb")
        && matches!(t.typname.as_str(), "json" | "jsonb")
    {
        both("pg_catalog.jsonb")
    } else if s.category == "N" && t.category == "N" {
        both("pg_catalog.numeric")
    } else {
        both("pg_catalog.text")
    }
}

/// Reads both relations' columns and builds each side's SQL pieces.
pub async fn sides(
    source: &Client,
    target: &Client,
    pair: &Pair,
) -> Result<(Side, Side), CompareError> {
    let (s_types, t_types) =
        tokio::try_join!(column_types(source, &pair.source), column_types(target, &pair.target))?;
    let find = |types: &[ColumnType], c: &Ident, relation: &QualifiedName, side: &str| {
        types.iter().find(|t| t.name == c.as_str()).cloned().ok_or_else(|| {
            CompareError::Setup(format!("{side} {relation} has no column {c} to compare"))
        })
    };
    let mut s = Side { relation: pair.source.clone(), key: Vec::new(), columns: Vec::new() };
    let mut t = Side { relation: pair.target.clone(), key: Vec::new(), columns: Vec::new() };
    for c in &pair.columns {
        let st = find(&s_types, c, &pair.source, "the source")?;
        let tt = find(&t_types, c, &pair.target, "the projection")?;
        let (se, te) = normalized(c, &st, &tt);
        s.columns.push(se);
        t.columns.push(te);
    }
    for k in &pair.key {
        let st = find(&s_types, k, &pair.source, "the source")?;
        let tt = find(&t_types, k, &pair.target, "the projection")?;
        let bytewise = st.collation.is_some() && st.collation != tt.collation;
        s.key.push(KeyColumn { name: k.clone(), sql_type: st.sql_type, bytewise });
        t.key.push(KeyColumn { name: k.clone(), sql_type: tt.sql_type, bytewise });
    }
    Ok((s, t))
}

impl KeyColumn {
    fn expr(&self) -> String {
        if self.bytewise {
            format!("{} COLLATE \"C\"", self.name.quoted())
        } else {
            self.name.quoted()
        }
    }

    /// A bound: a text parameter cast to the column's type.
    fn constant(&self, param: usize) -> String {
        let c = format!("${param}::pg_catalog.text::{}", self.sql_type);
        if self.bytewise { format!("{c} COLLATE \"C\"") } else { c }
    }
}

impl Side {
    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    /// What rows are matched by when read in bulk: the key as JSON text,
    /// or for one integer column just its digits (the JSON is made for
    /// the few keys that differ, by [`Side::json_key`]).
    pub fn match_key(&self) -> String {
        if self.integer_key() {
            format!("{}::pg_catalog.text", self.key[0].name.quoted())
        } else {
            self.key_json()
        }
    }

    /// A [`Side::match_key`] as the JSON text [`Side::key_json`] prints.
    pub fn json_key(&self, matched: String) -> String {
        if self.integer_key() {
            let name =
                serde_json::to_string(self.key[0].name.as_str()).expect("a string serializes");
            format!("{{{name}: {matched}}}")
        } else {
            matched
        }
    }

    /// Whether the key is one integer column.
    pub fn integer_key(&self) -> bool {
        matches!(self.key.as_slice(), [k] if matches!(k.sql_type.as_str(), "smallint" | "integer" | "bigint"))
    }

    /// The key as one comparable value: the column, or a row of them.
    pub fn key_expr(&self) -> String {
        match self.key.as_slice() {
            [one] => one.expr(),
            many => {
                format!("ROW({})", many.iter().map(KeyColumn::expr).collect::<Vec<_>>().join(", "))
            }
        }
    }

    /// The key as JSON text, the identity rows are matched by and the
    /// form keys are reported in.
    pub fn key_json(&self) -> String {
        let parts: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("{}, {}", deed_ident::quote_literal(k.name.as_str()), k.name.quoted()))
            .collect();
        format!("pg_catalog.jsonb_build_object({})::pg_catalog.text", parts.join(", "))
    }

    /// The key columns as text, in order: what bounds are made of.
    pub fn key_texts(&self) -> Vec<String> {
        self.key.iter().map(|k| format!("{}::pg_catalog.text", k.name.quoted())).collect()
    }

    pub fn row_hash(&self) -> String {
        format!("pg_catalog.hash_record_extended(ROW({}), 0)", self.columns.join(", "))
    }

    /// One hash per compared column, to name the columns that differ.
    pub fn column_hashes(&self) -> String {
        let each: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("pg_catalog.hash_record_extended(ROW({c}), 0)"))
            .collect();
        format!("ARRAY[{}]::int8[]", each.join(", "))
    }

    /// The key compared with a bound given as text parameters from `first`.
    pub fn key_at(&self, first: usize) -> String {
        match self.key.as_slice() {
            [one] => one.constant(first),
            many => format!(
                "ROW({})",
                many.iter()
                    .enumerate()
                    .map(|(i, k)| k.constant(first + i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// An array of bounds from one `text[]` parameter per key column.
    pub fn bounds_array(&self, first: usize) -> String {
        match self.key.as_slice() {
            [one] => {
                let c = format!("${first}::pg_catalog.text[]::{}[]", one.sql_type);
                if one.bytewise {
                    format!(
                        "ARRAY(SELECT u COLLATE \"C\" FROM unnest({c}) WITH ORDINALITY AS x(u, o) ORDER BY o)"
                    )
                } else {
                    c
                }
            }
            many => {
                let names: Vec<String> = (0..many.len()).map(|i| format!("c{i}")).collect();
                let arrays: Vec<String> =
                    (0..many.len()).map(|i| format!("${}::pg_catalog.text[]", first + i)).collect();
                let row: Vec<String> = many
                    .iter()
                    .enumerate()
                    .map(|(i, k)| {
                        let e = format!("u.c{i}::{}", k.sql_type);
                        if k.bytewise { format!("{e} COLLATE \"C\"") } else { e }
                    })
                    .collect();
                format!(
                    "ARRAY(SELECT ROW({}) FROM unnest({}) WITH ORDINALITY AS u({}, o) ORDER BY u.o)",
                    row.join(", "),
                    arrays.join(", "),
                    names.join(", ")
                )
            }
        }
    }

    /// Keys given as a JSON array of key objects, typed, for `IN`.
    pub fn keys_from_json(&self, param: usize) -> String {
        let cols: Vec<String> = self
            .key
            .iter()
            .map(|k| {
                format!("(j->>{})::{}", deed_ident::quote_literal(k.name.as_str()), k.sql_type)
            })
            .collect();
        let key = cols.join(", ");
        format!(
            "SELECT {key} FROM pg_catalog.jsonb_array_elements(${param}::pg_catalog.text::pg_catalog.jsonb) AS j"
        )
    }

    /// The key without collation changes, for `IN` against typed keys.
    pub fn plain_key(&self) -> String {
        match self.key.as_slice() {
            [one] => one.name.quoted(),
            many => format!(
                "ROW({})",
                many.iter().map(|k| k.name.quoted()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}
