//! Reading `deed.projections` from outside `deed project`: where a
//! projection stands, for `deed compare` to know whether it has caught up
//! to a fence, and how much all have applied, for the demo. (`deed project` itself keeps the whole record, in
//! `deed_project::store`, in the same transaction as the rows it applies.)

use deed_pg::PgError;
use tokio_postgres::GenericClient;

/// Where one projection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The position of the last event applied (the envelope's `position`:
    /// text that sorts in the owner's commit order).
    pub position: String,
    /// `backfill` while the fenced backfill copies, then `live`.
    pub phase: String,
}

impl Progress {
    /// Whether it applies events (its backfill, if any, is done).
    pub fn is_live(&self) -> bool {
        self.phase == "live"
    }
}

/// The projection `service`.`name` in this (consumer's) database; `None`
/// when it has not started, or `deed project` never ran here.
pub async fn progress(
    client: &impl GenericClient,
    service: &str,
    name: &str,
) -> Result<Option<Progress>, PgError> {
    if !crate::exists(client, crate::Table::Projections).await? {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT position, phase FROM deed.projections WHERE service = $1 AND name = $2",
            &[&service, &name],
        )
        .await
        .map_err(|e| PgError::query("reading deed.projections", e))?;
    Ok(row.map(|r| Progress { position: r.get(0), phase: r.get(1) }))
}

/// How many events every projection in this database has applied, in
/// all; none where `deed project` never ran here.
pub async fn applied_total(client: &impl GenericClient) -> Result<i64, PgError> {
    if !crate::exists(client, crate::Table::Projections).await? {
        return Ok(0);
    }
    Ok(client
        .query_one("SELECT coalesce(sum(applied), 0)::bigint FROM deed.projections", &[])
        .await
        .map_err(|e| PgError::query("reading deed.projections", e))?
        .get(0))
}
