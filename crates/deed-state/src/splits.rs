//! Reading `deed.splits` from outside `deed split`: which services moved
//! out of the shared database, and which side of a split takes a
//! service's writes. (`deed split` itself keeps the whole record, in
//! `deed_split::state`.)

use std::collections::BTreeSet;

use deed_pg::PgError;
use tokio_postgres::GenericClient;

/// Which side of its split takes a service's writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The writes are on the service's own database (`live = 'target'`).
    pub on_target: bool,
    /// The target as given to `--to` when it held no password, for a
    /// relay to reach after a rollback took it out of deed.toml.
    pub target_written: Option<String>,
}

/// The services `deed split` moved out of this (shared) database: their
/// writes and capture are in their own database now, and capture setup
/// and the relay leave them alone here. Empty where no split ever ran.
pub async fn moved(client: &impl GenericClient) -> Result<BTreeSet<String>, PgError> {
    if !crate::exists(client, crate::Table::Splits).await? {
        return Ok(BTreeSet::new());
    }
    Ok(client
        .query("SELECT service FROM deed.splits WHERE live = 'target' OR phase = 'finished'", &[])
        .await
        .map_err(|e| PgError::query("reading deed.splits", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Where `service`'s split stands, if it has one.
pub async fn side(client: &impl GenericClient, service: &str) -> Result<Option<Side>, PgError> {
    if !crate::exists(client, crate::Table::Splits).await? {
        return Ok(None);
    }
    let row = client
        .query_opt("SELECT live, target_written FROM deed.splits WHERE service = $1", &[&service])
        .await
        .map_err(|e| PgError::query("reading deed.splits", e))?;
    Ok(row.map(|r| Side { on_target: r.get::<_, String>(0) == "target", target_written: r.get(1) }))
}
