//! A table projection's table: created from the contract view's columns
//! when missing, checked when it exists.

use deed_ident::{Ident, QualifiedName};
use deed_pg::Client;

use crate::error::{ProjectError, query};
use crate::spec::{ProjectionSpec, TableSpec};

/// A column and its type as `format_type` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub sql_type: String,
}

/// The columns of a relation, in order; empty when it does not exist.
pub async fn columns(
    client: &Client,
    relation: &QualifiedName,
) -> Result<Vec<Column>, ProjectError> {
    let rows = client
        .query(
            "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&relation.schema.as_str(), &relation.name.as_str()],
        )
        .await
        .map_err(query("reading a relation's columns"))?;
    Ok(rows.iter().map(|r| Column { name: r.get(0), sql_type: r.get(1) }).collect())
}

/// The contract's columns with the view's types, in the contract's order.
pub async fn contract_columns(
    source: &Client,
    spec: &ProjectionSpec,
    t: &TableSpec,
) -> Result<Vec<Column>, ProjectError> {
    let view = columns(source, &t.view).await?;
    if view.is_empty() {
        return Err(ProjectError::Setup(format!(
            "{}: projection {} reads contract view {}, which does not exist in the owner's database: run `deed apply` first",
            spec.location, spec.name, t.view
        )));
    }
    t.columns
        .iter()
        .map(|c| {
            view.iter().find(|v| v.name == c.as_str()).cloned().ok_or_else(|| {
                ProjectError::Setup(format!(
                    "{}: contract view {} has no column {c}: run `deed apply` to publish the manifest's contract",
                    spec.location, t.view
                ))
            })
        })
        .collect()
}

/// Creates the table if missing (returns true), or checks that it has
/// every contract column with the same type and a unique key.
pub async fn ensure(
    target: &Client,
    spec: &ProjectionSpec,
    t: &TableSpec,
    wanted: &[Column],
    logins: &[Ident],
) -> Result<bool, ProjectError> {
    let existing = columns(target, &t.table).await?;
    if existing.is_empty() {
        create(target, t, wanted, logins).await?;
        return Ok(true);
    }
    let mut problems = Vec::new();
    for w in wanted {
        match existing.iter().find(|e| e.name == w.name) {
            None => problems.push(format!("{} has no column {} ({})", t.table, w.name, w.sql_type)),
            Some(e) if e.sql_type != w.sql_type => problems.push(format!(
                "{}.{} is {}, but {} carries {}",
                t.table, w.name, e.sql_type, spec.event, w.sql_type
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() && !has_unique_key(target, t).await? {
        let key: Vec<&str> = t.key.iter().map(|k| k.as_str()).collect();
        problems.push(format!(
            "{} has no primary key or unique index on ({}), the event's key",
            t.table,
            key.join(", ")
        ));
    }
    if problems.is_empty() {
        return Ok(false);
    }
    Err(ProjectError::Setup(format!(
        "{}: projection {}: {}; alter the table, or drop it and let deed create it",
        spec.target_location,
        spec.name,
        problems.join("; ")
    )))
}

async fn has_unique_key(target: &Client, t: &TableSpec) -> Result<bool, ProjectError> {
    let key: Vec<&str> = t.key.iter().map(|k| k.as_str()).collect();
    let row = target
        .query_one(
            "SELECT EXISTS (
               SELECT 1 FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL
                  AND i.indnkeyatts = cardinality($3::text[])
                  AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
                         FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey))
                      = (SELECT array_agg(k ORDER BY k) FROM unnest($3::text[]) k))",
            &[&t.table.schema.as_str(), &t.table.name.as_str(), &key],
        )
        .await
        .map_err(query("reading the projection table's indexes"))?;
    Ok(row.get(0))
}

/// The statement that creates a projection table.
pub fn create_sql(t: &TableSpec, wanted: &[Column], logins: &[Ident]) -> String {
    // `wanted` is the contract's columns, in the contract's order.
    let cols: Vec<String> = t
        .columns
        .iter()
        .zip(wanted)
        .map(|(name, c)| format!("    {} {}", name.quoted(), c.sql_type))
        .collect();
    let key: Vec<String> = t.key.iter().map(|k| k.quoted()).collect();
    let mut sql = format!(
        "CREATE SCHEMA IF NOT EXISTS {};\nCREATE TABLE {} (\n{},\n    PRIMARY KEY ({})\n);\n",
        t.table.schema.quoted(),
        t.table.quoted(),
        cols.join(",\n"),
        key.join(", ")
    );
    for login in logins {
        sql.push_str(&format!("GRANT SELECT ON {} TO {};\n", t.table.quoted(), login.quoted()));
    }
    sql
}

async fn create(
    target: &Client,
    t: &TableSpec,
    wanted: &[Column],
    logins: &[Ident],
) -> Result<(), ProjectError> {
    // A login that does not exist on this server gets no grant.
    let names: Vec<&str> = logins.iter().map(|l| l.as_str()).collect();
    let existing: Vec<String> = target
        .query("SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY ($1)", &[&names])
        .await
        .map_err(query("looking up the service's logins"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let grantees: Vec<Ident> =
        logins.iter().filter(|l| existing.iter().any(|e| e == l.as_str())).cloned().collect();
    let sql = create_sql(t, wanted, &grantees);
    target
        .batch_execute(&format!("BEGIN;\n{sql}COMMIT;"))
        .await
        .map_err(query("creating the projection table"))
}
