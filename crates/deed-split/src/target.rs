//! What the target database already has of the service's objects, and
//! whether it can take them: a re-run finds its own tables and creates
//! nothing twice; a table that exists with other columns, or with rows
//! deed did not copy, is refused.

use std::collections::{BTreeMap, BTreeSet};

use deed_pg::Client;

use crate::error::{SplitError, query};
use crate::inspect::Inspected;
use crate::refuse::Refusal;

#[derive(Debug, Clone, Default)]
pub struct TableLive {
    /// (name, `format_type`) in column order.
    pub columns: Vec<(String, String)>,
    pub constraints: BTreeSet<String>,
    pub indexes: BTreeSet<String>,
    pub has_rows: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TargetLive {
    pub schemas: BTreeSet<String>,
    /// Qualified names as `QualifiedName` prints them.
    pub types: BTreeSet<String>,
    pub sequences: BTreeSet<String>,
    pub tables: BTreeMap<String, TableLive>,
    pub superuser: bool,
    pub wal_level: String,
    /// The forward subscription exists: rows in the tables are deed's copy.
    pub subscribed: bool,
}

fn qualified_text(schema: &str, name: &str) -> String {
    deed_ident::QualifiedName::from_catalog(schema, name)
        .map(|q| q.to_string())
        .unwrap_or_else(|_| format!("{schema}.{name}"))
}

pub async fn observe(
    client: &Client,
    found: &Inspected,
    service: &str,
) -> Result<TargetLive, SplitError> {
    let mut live = TargetLive::default();
    let row = client
        .query_one(
            "SELECT rolsuper, current_setting('wal_level') FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(query("reading the target's settings"))?;
    live.superuser = row.get(0);
    live.wal_level = row.get(1);
    live.subscribed = crate::replicate::subscription_exists(
        client,
        service,
        deed_events::SplitDirection::Forward,
    )
    .await?;
    for r in client
        .query("SELECT nspname::text FROM pg_namespace", &[])
        .await
        .map_err(query("reading the target's schemas"))?
    {
        live.schemas.insert(r.get(0));
    }
    for r in client
        .query(
            "SELECT n.nspname::text, t.typname::text FROM pg_type t
               JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .map_err(query("reading the target's types"))?
    {
        live.types.insert(qualified_text(r.get(0), r.get(1)));
    }
    for r in client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S'",
            &[],
        )
        .await
        .map_err(query("reading the target's sequences"))?
    {
        live.sequences.insert(qualified_text(r.get(0), r.get(1)));
    }
    for t in &found.tables {
        let oid: Option<u32> = client
            .query_opt(
                "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                &[&t.name.schema.as_str(), &t.name.name.as_str()],
            )
            .await
            .map_err(query("looking for the table on the target"))?
            .map(|r| r.get(0));
        let Some(oid) = oid else { continue };
        let mut have = TableLive::default();
        for r in client
            .query(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
                  WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&oid],
            )
            .await
            .map_err(query("reading the target table's columns"))?
        {
            have.columns.push((r.get(0), r.get(1)));
        }
        for r in client
            .query("SELECT conname::text FROM pg_constraint WHERE conrelid = $1", &[&oid])
            .await
            .map_err(query("reading the target table's constraints"))?
        {
            have.constraints.insert(r.get(0));
        }
        for r in client
            .query(
                "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = $1",
                &[&oid],
            )
            .await
            .map_err(query("reading the target table's indexes"))?
        {
            have.indexes.insert(r.get(0));
        }
        have.has_rows = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name.quoted()), &[])
            .await
            .map_err(query("looking for rows on the target"))?
            .get(0);
        live.tables.insert(t.name.to_string(), have);
    }
    Ok(live)
}

/// Why the target cannot take the tables.
pub fn refusals(found: &Inspected, live: &TargetLive, target: &str) -> Vec<Refusal> {
    let mut out = Vec::new();
    let mut no = |at: String, reason: String, fix: &str| {
        out.push(Refusal { at, reason, fix: fix.to_string() });
    };
    if live.wal_level != "logical" {
        no(
            target.to_string(),
            format!(
                "wal_level is {}, not logical: the reverse replication and capture read the target's WAL",
                live.wal_level
            ),
            "set wal_level = logical on the target and restart it",
        );
    }
    for (_, name, what) in &found.other_types {
        if !live.types.contains(&name.to_string()) {
            no(
                format!("type {name}"),
                format!("the {what} {name} is used by a column and does not exist on the target"),
                "create it on the target first (CREATE EXTENSION, or its CREATE statement)",
            );
        }
    }
    for t in &found.tables {
        let Some(have) = live.tables.get(&t.name.to_string()) else { continue };
        let want: Vec<(String, String)> =
            t.columns.iter().map(|c| (c.name.as_str().to_string(), c.sql_type.clone())).collect();
        if have.columns != want {
            no(
                format!("{} on the target", t.name),
                "exists with other columns".into(),
                "drop it there, or split into another database",
            );
        } else if have.has_rows && !live.subscribed {
            no(
                format!("{} on the target", t.name),
                "exists with rows deed did not copy".into(),
                "empty it there, or split into another database",
            );
        }
    }
    out
}
