//! What the shared database holds of the service being moved: its tables
//! with their columns, constraints, indexes and sequences, read from the
//! live catalog on a session whose search path is `pg_catalog` only, so
//! every name the server prints for us (`format_type`,
//! `pg_get_constraintdef`, `pg_get_indexdef`) comes schema-qualified.

use deed_ident::{Ident, QualifiedName};
use deed_pg::Client;

use crate::error::{SplitError, query};

/// One table of the service.
#[derive(Debug, Clone)]
pub struct Table {
    pub oid: u32,
    pub name: QualifiedName,
    pub columns: Vec<Column>,
    /// Check constraints, created with the table.
    pub checks: Vec<Constraint>,
    /// Primary key, unique, exclusion and foreign-key constraints, added
    /// after the copy (an index is cheaper built once than row by row).
    pub constraints: Vec<Constraint>,
    /// Indexes that back no constraint.
    pub indexes: Vec<(Ident, String)>,
    /// The primary key's columns; empty when it has none.
    pub key: Vec<Ident>,
    pub key_constraint: Option<Constraint>,
    /// `REPLICA IDENTITY FULL` (capture's old rows need it).
    pub replica_full: bool,
    pub owner: String,
    pub kind: char,
    pub persistence: char,
    pub row_security: bool,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: Ident,
    /// `format_type`: SQL-safe as printed.
    pub sql_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// `a` (always) or `d` (by default) for identity columns.
    pub identity: Option<char>,
    /// The expression of a stored generated column.
    pub generated: Option<String>,
    /// `COLLATE …` when the column's collation is not its type's.
    pub collation: Option<String>,
    pub type_oid: u32,
}

#[derive(Debug, Clone)]
pub struct Constraint {
    pub name: Ident,
    pub kind: char,
    pub definition: String,
    /// The table a foreign key references.
    pub references: Option<u32>,
}

/// A sequence the service's tables draw from.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub oid: u32,
    pub name: QualifiedName,
    /// `AS … INCREMENT BY … MINVALUE … MAXVALUE … START WITH … CACHE … [NO] CYCLE`.
    pub options: String,
    /// The identity column it belongs to: created by the column itself.
    pub identity_of: Option<(QualifiedName, Ident)>,
    /// `OWNED BY`: dropped with its column.
    pub owned_by: Option<(QualifiedName, Ident)>,
}

/// A user-defined enum a column uses.
#[derive(Debug, Clone)]
pub struct EnumType {
    pub oid: u32,
    pub name: QualifiedName,
    pub labels: Vec<String>,
}

/// What the service's relations are, in the shared database.
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    pub tables: Vec<Table>,
    pub sequences: Vec<Sequence>,
    pub enums: Vec<EnumType>,
    /// Other user types columns use (domains, composites, extensions'),
    /// which are not created on the target.
    pub other_types: Vec<(u32, QualifiedName, String)>,
    /// Relations in `owns` the database does not have.
    pub missing: Vec<QualifiedName>,
    /// Relations in `owns` that are not tables (views, sequences listed
    /// by name are found through their tables).
    pub not_tables: Vec<(QualifiedName, char)>,
}

impl Inspected {
    pub fn table_oids(&self) -> Vec<u32> {
        self.tables.iter().map(|t| t.oid).collect()
    }

    pub fn table(&self, oid: u32) -> Option<&Table> {
        self.tables.iter().find(|t| t.oid == oid)
    }
}

fn qualified(schema: &str, name: &str) -> QualifiedName {
    QualifiedName::from_catalog(schema, name).expect("catalog names are valid identifiers")
}

fn ident(name: &str) -> Ident {
    Ident::new(name).expect("catalog names are valid identifiers")
}

/// Reads every relation of `owns` and what its tables need.
pub async fn inspect(client: &Client, owns: &[QualifiedName]) -> Result<Inspected, SplitError> {
    let mut out = Inspected::default();
    for relation in owns {
        let row = client
            .query_opt(
                "SELECT c.oid, c.relkind::text, pg_get_userbyid(c.relowner)::text,
                        c.relreplident::text, c.relpersistence::text, c.relrowsecurity
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2",
                &[&relation.schema.as_str(), &relation.name.as_str()],
            )
            .await
            .map_err(query("reading the service's relations"))?;
        let Some(row) = row else {
            out.missing.push(relation.clone());
            continue;
        };
        let kind = first_char(row.get(1));
        if kind != 'r' && kind != 'p' {
            out.not_tables.push((relation.clone(), kind));
            continue;
        }
        let oid: u32 = row.get(0);
        let mut table = Table {
            oid,
            name: relation.clone(),
            columns: columns(client, oid).await?,
            checks: Vec::new(),
            constraints: Vec::new(),
            indexes: indexes(client, oid).await?,
            key: Vec::new(),
            key_constraint: None,
            replica_full: first_char(row.get(3)) == 'f',
            owner: row.get(2),
            kind,
            persistence: first_char(row.get(4)),
            row_security: row.get(5),
        };
        for c in constraints(client, oid).await? {
            match c.kind {
                'c' => table.checks.push(c),
                'p' => table.key_constraint = Some(c),
                _ => table.constraints.push(c),
            }
        }
        table.key = key(client, oid).await?;
        out.tables.push(table);
    }
    out.sequences = sequences(client, &out.table_oids()).await?;
    let (enums, others) = types(client, &out.tables).await?;
    out.enums = enums;
    out.other_types = others;
    Ok(out)
}

fn first_char(text: String) -> char {
    text.chars().next().unwrap_or(' ')
}

async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, SplitError> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
                    CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN
                      (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                         FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                        WHERE co.oid = a.attcollation) END,
                    a.atttypid
               FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(query("reading the columns"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let expr: Option<String> = r.get(3);
            let identity = first_char(r.get(4));
            let generated = first_char(r.get(5));
            let is_generated = generated == 's';
            Column {
                name: ident(r.get(0)),
                sql_type: r.get(1),
                not_null: r.get(2),
                default: if is_generated { None } else { expr.clone() },
                identity: (identity == 'a' || identity == 'd').then_some(identity),
                generated: if is_generated { expr } else { None },
                collation: r.get(6),
                type_oid: r.get(7),
            }
        })
        .collect())
}

async fn constraints(client: &Client, oid: u32) -> Result<Vec<Constraint>, SplitError> {
    let rows = client
        .query(
            "SELECT conname::text, contype::text, pg_get_constraintdef(oid), confrelid
               FROM pg_constraint WHERE conrelid = $1 AND contype IN ('p', 'u', 'c', 'f', 'x')
              ORDER BY contype <> 'p', conname",
            &[&oid],
        )
        .await
        .map_err(query("reading the constraints"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let references: u32 = r.get(3);
            Constraint {
                name: ident(r.get(0)),
                kind: first_char(r.get(1)),
                definition: r.get(2),
                references: (references != 0).then_some(references),
            }
        })
        .collect())
}

async fn indexes(client: &Client, oid: u32) -> Result<Vec<(Ident, String)>, SplitError> {
    let rows = client
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid = $1
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                                                             AND k.conrelid = i.indrelid)
              ORDER BY c.relname",
            &[&oid],
        )
        .await
        .map_err(query("reading the indexes"))?;
    Ok(rows.iter().map(|r| (ident(r.get(0)), r.get(1))).collect())
}

async fn key(client: &Client, oid: u32) -> Result<Vec<Ident>, SplitError> {
    let rows = client
        .query(
            "SELECT a.attname::text
               FROM pg_index i
               JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = $1 AND i.indisprimary
              ORDER BY k.n",
            &[&oid],
        )
        .await
        .map_err(query("reading the primary key"))?;
    Ok(rows.iter().map(|r| ident(r.get(0))).collect())
}

/// Sequences owned by the tables' columns (serial, identity) or named in
/// their defaults.
async fn sequences(client: &Client, tables: &[u32]) -> Result<Vec<Sequence>, SplitError> {
    let rows = client
        .query(
            "WITH used AS (
               SELECT d.objid AS seq FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND d.refobjid = ANY($1) AND d.deptype IN ('a', 'i')
               UNION
               SELECT d.refobjid FROM pg_depend d JOIN pg_attrdef ad ON ad.oid = d.objid
                WHERE d.classid = 'pg_attrdef'::regclass AND d.refclassid = 'pg_class'::regclass
                  AND ad.adrelid = ANY($1))
             SELECT c.oid, n.nspname::text, c.relname::text,
                    'AS ' || format_type(s.seqtypid, NULL) || ' INCREMENT BY ' || s.seqincrement
                      || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax
                      || ' START WITH ' || s.seqstart || ' CACHE ' || s.seqcache
                      || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END,
                    o.deptype::text, tn.nspname::text, tc.relname::text, ta.attname::text
               FROM used JOIN pg_class c ON c.oid = used.seq AND c.relkind = 'S'
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_sequence s ON s.seqrelid = c.oid
               LEFT JOIN pg_depend o ON o.classid = 'pg_class'::regclass AND o.objid = c.oid
                    AND o.refclassid = 'pg_class'::regclass AND o.deptype IN ('a', 'i')
               LEFT JOIN pg_class tc ON tc.oid = o.refobjid
               LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
               LEFT JOIN pg_attribute ta ON ta.attrelid = o.refobjid AND ta.attnum = o.refobjsubid
              ORDER BY n.nspname, c.relname",
            &[&tables],
        )
        .await
        .map_err(query("reading the sequences"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let dep: Option<String> = r.get(4);
            let of = match (r.get::<_, Option<String>>(5), r.get::<_, Option<String>>(6)) {
                (Some(s), Some(t)) => {
                    r.get::<_, Option<String>>(7).map(|c| (qualified(&s, &t), ident(&c)))
                }
                _ => None,
            };
            let identity = dep.as_deref() == Some("i");
            Sequence {
                oid: r.get(0),
                name: qualified(r.get(1), r.get(2)),
                options: r.get(3),
                identity_of: if identity { of.clone() } else { None },
                owned_by: if identity { None } else { of },
            }
        })
        .collect())
}

/// User-defined types the columns use (arrays by their element): enums,
/// which move, and the rest, which must already exist on the target.
async fn types(
    client: &Client,
    tables: &[Table],
) -> Result<(Vec<EnumType>, Vec<(u32, QualifiedName, String)>), SplitError> {
    let oids: Vec<u32> = tables.iter().flat_map(|t| t.columns.iter().map(|c| c.type_oid)).collect();
    let rows = client
        .query(
            "SELECT DISTINCT b.oid, n.nspname::text, b.typname::text, b.typtype::text,
                    coalesce((SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                                FROM pg_enum e WHERE e.enumtypid = b.oid), '{}')
               FROM pg_type t
               JOIN pg_type b ON b.oid = CASE WHEN t.typelem <> 0 AND t.typlen = -1
                                              THEN t.typelem ELSE t.oid END
               JOIN pg_namespace n ON n.oid = b.typnamespace
              WHERE t.oid = ANY($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              ORDER BY 2, 3",
            &[&oids],
        )
        .await
        .map_err(query("reading the columns' types"))?;
    let mut enums = Vec::new();
    let mut others = Vec::new();
    for r in rows {
        let name = qualified(r.get(1), r.get(2));
        let kind: String = r.get(3);
        if kind == "e" {
            enums.push(EnumType { oid: r.get(0), name, labels: r.get(4) });
        } else {
            let what = match kind.as_str() {
                "d" => "domain",
                "c" => "composite type",
                "r" | "m" => "range type",
                _ => "type",
            };
            others.push((r.get(0), name, what.to_string()));
        }
    }
    Ok((enums, others))
}
