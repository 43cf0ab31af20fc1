//! Bringing deed's tables in one database to the current schema: read
//! each table's version from the catalog (one query, no privilege beyond
//! `USAGE` on the catalog), and only when one is behind, apply what it
//! lacks in one transaction under a lock of its own.

use std::collections::BTreeMap;

use deed_pg::PgError;
use tokio_postgres::GenericClient;

use crate::Table;
use crate::migrations::{MIGRATIONS, VERSION_PREFIX, latest, mark};

/// The advisory lock two deed processes migrating one database at once
/// take in turn: the bytes of "deed" and 2 (1 is the lock of the commands
/// that change a database, which a migration must not wait for).
pub const SCHEMA_LOCK_KEY: i64 = 0x6465_6564_0000_0002;

/// A table as found: missing, present without a recorded version (made
/// by an older deed, or by a role that could not record it), or at one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// `owned`: the role looking may change it (it is, or is a member
    /// of, the table's owner).
    Unrecorded {
        owned: bool,
    },
    At(u32),
}

impl Found {
    /// The version its migrations start after.
    fn applied(self) -> u32 {
        match self {
            Found::At(v) => v,
            Found::Missing | Found::Unrecorded { .. } => 0,
        }
    }

    /// Whether the role looking should bring it up: not when an older
    /// deed made it under another role, which alone may change it (it is
    /// used as it is, and recorded when its owner's deed next runs).
    fn to_migrate(self, table: Table) -> bool {
        match self {
            Found::At(v) => v < latest(table),
            Found::Missing => true,
            Found::Unrecorded { owned } => owned,
        }
    }
}

/// What [`ensure`] did: each table it changed, from and to which version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ensured {
    pub migrated: Vec<(Table, Found, u32)>,
}

/// Each of `tables` as the database has it.
pub async fn found(
    client: &impl GenericClient,
    tables: &[Table],
) -> Result<BTreeMap<Table, Found>, PgError> {
    let names: Vec<&str> = tables.iter().map(|t| t.name()).collect();
    let rows = client
        .query(
            "SELECT c.relname::text, pg_catalog.obj_description(c.oid, 'pg_class'),
                    pg_catalog.pg_has_role(c.relowner, 'USAGE')
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'deed' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1)",
            &[&names],
        )
        .await
        .map_err(|e| PgError::query("reading the versions of deed's tables", e))?;
    let mut out: BTreeMap<Table, Found> = tables.iter().map(|t| (*t, Found::Missing)).collect();
    for row in rows {
        let name: String = row.get(0);
        let comment: Option<String> = row.get(1);
        let Some(table) = tables.iter().find(|t| t.name() == name) else { continue };
        let version = comment
            .as_deref()
            .and_then(|c| c.strip_prefix(VERSION_PREFIX))
            .and_then(|v| v.trim().parse().ok());
        let owned: bool = row.get(2);
        out.insert(*table, version.map_or(Found::Unrecorded { owned }, Found::At));
    }
    Ok(out)
}

/// The statements that bring `tables` from `found` to their latest
/// versions (after `schema`, which makes schema `deed`), recording each
/// version reached.
fn pending(tables: &[Table], found: &BTreeMap<Table, Found>, schema: &str) -> Vec<String> {
    let mut out = vec![schema.to_string()];
    for table in tables {
        let from = found.get(table).copied().unwrap_or(Found::Missing);
        if !from.to_migrate(*table) {
            continue;
        }
        for m in MIGRATIONS.iter().filter(|m| m.table == *table && m.version > from.applied()) {
            out.extend(m.statements.iter().map(|s| s.to_string()));
        }
        out.push(mark(*table, latest(*table)));
    }
    out
}

/// Every statement that creates `tables` at their latest versions from
/// nothing, as a plan shows and runs them; each is safe to run again.
pub fn statements(tables: &[Table]) -> Vec<String> {
    pending(tables, &BTreeMap::new(), "CREATE SCHEMA IF NOT EXISTS deed")
}

/// Schema `deed`, made only where it is missing: `CREATE SCHEMA IF NOT
/// EXISTS` needs the right to create schemas even when it exists.
const SCHEMA_IF_MISSING: &str = "DO $deed$ BEGIN
  IF pg_catalog.to_regnamespace('deed') IS NULL THEN
    CREATE SCHEMA deed;
  END IF;
END $deed$";

/// Brings `tables` to their latest versions, in a transaction of its own.
/// When all are current (every run but the first after an upgrade) it
/// only reads the catalog: a role that may not create anything in schema
/// `deed` still passes. A table an older deed made under another role is
/// used as it is (only its owner may change it).
pub async fn ensure(client: &deed_pg::Client, tables: &[Table]) -> Result<Ensured, PgError> {
    let before = found(client, tables).await?;
    if !tables.iter().any(|t| before[t].to_migrate(*t)) {
        return Ok(Ensured::default());
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| PgError::query("starting to migrate deed's tables", e))?;
    let result = migrate(client, tables).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute(end).await;
    let ensured = result?;
    ended.map_err(|e| PgError::query("committing the migration of deed's tables", e))?;
    Ok(ensured)
}

/// [`ensure`] inside the caller's transaction `tx`, which the changes
/// commit or roll back with.
pub async fn ensure_in(
    tx: &tokio_postgres::Transaction<'_>,
    tables: &[Table],
) -> Result<Ensured, PgError> {
    migrate(tx, tables).await
}

/// Under the schema lock, re-reads the versions (another process may
/// have migrated meanwhile) and applies what is still missing.
async fn migrate(client: &impl GenericClient, tables: &[Table]) -> Result<Ensured, PgError> {
    client
        .execute("SELECT pg_catalog.pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
        .await
        .map_err(|e| PgError::query("taking the lock of deed's schema", e))?;
    let now = found(client, tables).await?;
    for sql in pending(tables, &now, SCHEMA_IF_MISSING) {
        client.batch_execute(&sql).await.map_err(|e| {
            PgError::query(format!("migrating deed's tables: {}", first_line(&sql)), e)
        })?;
    }
    let migrated = tables
        .iter()
        .filter(|t| now[t].to_migrate(**t))
        .map(|t| (*t, now[t], latest(*t)))
        .collect();
    Ok(Ensured { migrated })
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}
