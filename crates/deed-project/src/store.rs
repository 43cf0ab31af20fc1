//! The consumer's bookkeeping tables and each projection's progress.

use deed_pg::Client;
use serde_json::Value as Json;
use tokio_postgres::Transaction;

use crate::error::{ProjectError, query};
use crate::spec::ProjectionSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Backfill,
    Live,
}

#[derive(Debug, Clone)]
pub struct Progress {
    /// The last event applied or skipped; `""` before the first.
    pub position: String,
    pub phase: Phase,
    pub definition: String,
    /// The key of the last row copied.
    pub after: Option<Json>,
    pub rows: i64,
}

/// Creates deed's tables in the consumer's database if missing.
pub async fn ensure_schema(client: &Client) -> Result<(), ProjectError> {
    deed_state::ensure(client, &deed_state::Table::CONSUMER).await?;
    Ok(())
}

pub async fn load(
    client: &Client,
    spec: &ProjectionSpec,
) -> Result<Option<Progress>, ProjectError> {
    let row = client
        .query_opt(
            "SELECT position, phase, definition, backfill_after::text, backfill_rows
               FROM deed.projections WHERE service = $1 AND name = $2",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("reading deed.projections"))?;
    Ok(row.map(|r| Progress {
        position: r.get(0),
        phase: if r.get::<_, &str>(1) == "live" { Phase::Live } else { Phase::Backfill },
        definition: r.get(2),
        after: r.get::<_, Option<&str>>(3).and_then(|t| serde_json::from_str(t).ok()),
        rows: r.get(4),
    }))
}

/// (Re)starts a projection: a table projection at a backfill fenced at
/// `fence`, a handler live from `position`.
pub async fn start(
    client: &Client,
    spec: &ProjectionSpec,
    position: &str,
    backfill: bool,
) -> Result<(), ProjectError> {
    let phase = if backfill { "backfill" } else { "live" };
    let fence = backfill.then_some(position);
    client
        .execute(
            "INSERT INTO deed.projections (service, name, event, definition, position, phase, backfill_fence)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (service, name) DO UPDATE SET event = $3, definition = $4, position = $5, phase = $6,
               backfill_fence = $7, backfill_after = NULL, backfill_rows = 0, source_offset = NULL, defined_at = clock_timestamp(),
               updated_at = clock_timestamp()",
            &[&spec.service, &spec.name, &spec.event, &spec.definition(), &position, &phase, &fence],
        )
        .await
        .map_err(query("recording the projection's start"))?;
    Ok(())
}

/// Records a new definition without moving the position.
pub async fn redefine(client: &Client, spec: &ProjectionSpec) -> Result<(), ProjectError> {
    client
        .execute(
            "UPDATE deed.projections SET definition = $3, defined_at = clock_timestamp(), updated_at = clock_timestamp()
              WHERE service = $1 AND name = $2",
            &[&spec.service, &spec.name, &spec.definition()],
        )
        .await
        .map_err(query("recording the projection's definition"))?;
    Ok(())
}

/// Moves the progress from `from` to `to` in the transaction that holds
/// the effects; fails if anything else moved it meanwhile.
pub async fn advance(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    from: &str,
    to: &str,
    applied: i64,
    committed_at: Option<&str>,
) -> Result<(), ProjectError> {
    let n = tx
        .execute(
            "UPDATE deed.projections SET position = $4, applied = applied + $5,
                    last_committed_at = coalesce($6::text::timestamptz, last_committed_at), updated_at = clock_timestamp()
              WHERE service = $1 AND name = $2 AND position = $3 AND phase = 'live'",
            &[&spec.service, &spec.name, &from, &to, &applied, &committed_at],
        )
        .await
        .map_err(query("recording the projection's progress"))?;
    if n != 1 {
        return Err(ProjectError::Concurrent(format!("{}.{}", spec.service, spec.name)));
    }
    Ok(())
}

/// Locks a projection's progress row for the transaction and checks that
/// it is still at `position`.
pub async fn lock(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    position: &str,
) -> Result<(), ProjectError> {
    if lock_any(tx, spec).await?.as_deref() != Some(position) {
        return Err(ProjectError::Concurrent(format!("{}.{}", spec.service, spec.name)));
    }
    Ok(())
}

/// Locks a projection's progress row; returns its position.
pub async fn lock_any(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
) -> Result<Option<String>, ProjectError> {
    let row = tx
        .query_opt(
            "SELECT position FROM deed.projections WHERE service = $1 AND name = $2 FOR UPDATE",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("locking the projection's progress"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Records a copied chunk; `done` ends the backfill.
pub async fn backfilled(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    after: Option<&Json>,
    rows: i64,
    done: bool,
) -> Result<(), ProjectError> {
    let after = after.map(|a| a.to_string());
    let n = tx
        .execute(
            "UPDATE deed.projections SET backfill_after = coalesce($3::text::jsonb, backfill_after), backfill_rows = backfill_rows + $4,
                    phase = CASE WHEN $5 THEN 'live' ELSE phase END, updated_at = clock_timestamp()
              WHERE service = $1 AND name = $2 AND phase = 'backfill'",
            &[&spec.service, &spec.name, &after, &rows, &done],
        )
        .await
        .map_err(query("recording the backfill's progress"))?;
    if n != 1 {
        return Err(ProjectError::Concurrent(format!("{}.{}", spec.service, spec.name)));
    }
    Ok(())
}
