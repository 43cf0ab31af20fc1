//! Reading `deed.capture_epochs`: where, in the database that captures a
//! service's changes, each of its capture epochs begins (`deed split`
//! starts a new one on the side that takes the writes).

use deed_pg::PgError;
use tokio_postgres::GenericClient;

/// One capture epoch of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    pub epoch: i32,
    /// The WAL position it starts at, as PostgreSQL writes it (`0/16B3748`).
    pub since_lsn: String,
}

/// `service`'s epochs in this database, ascending; none where no split
/// ever recorded one.
pub async fn of(client: &impl GenericClient, service: &str) -> Result<Vec<Epoch>, PgError> {
    if !crate::exists(client, crate::Table::CaptureEpochs).await? {
        return Ok(Vec::new());
    }
    Ok(client
        .query(
            "SELECT epoch, since_lsn FROM deed.capture_epochs WHERE service = $1 ORDER BY epoch",
            &[&service],
        )
        .await
        .map_err(|e| PgError::query("reading deed.capture_epochs", e))?
        .iter()
        .map(|r| Epoch { epoch: r.get(0), since_lsn: r.get(1) })
        .collect())
}
