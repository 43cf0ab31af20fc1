//! Which replication slot holds a service's events in this database.

use deed_pg::Client;

use crate::error::RelayError;
use crate::source::q;

/// The service's slot in this database (see [`deed_events::capture_slot`]).
pub async fn resolve(client: &Client, service: &str) -> Result<String, RelayError> {
    Ok(deed_events::capture_slot(client, service)
        .await
        .map_err(q("looking for the replication slot"))?)
}

/// The service's capture epochs in this database (`deed split` records one
/// where it moves the writes), ascending.
pub async fn epochs(client: &Client, service: &str) -> Result<Vec<(u64, u32)>, RelayError> {
    let mut out = Vec::new();
    for e in deed_state::epochs::of(client, service).await? {
        let lsn = deed_events::parse_lsn(&e.since_lsn).ok_or_else(|| {
            RelayError::Setup(format!("deed.capture_epochs: bad LSN {:?}", e.since_lsn))
        })?;
        out.push((lsn, e.epoch.max(0) as u32));
    }
    Ok(out)
}
