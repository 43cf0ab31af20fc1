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
    let exists: bool = client
        .query_one("SELECT to_regclass('deed.capture_epochs') IS NOT NULL", &[])
        .await
        .map_err(q("looking for deed.capture_epochs"))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT since_lsn, epoch FROM deed.capture_epochs WHERE service = $1 ORDER BY epoch",
            &[&service],
        )
        .await
        .map_err(q("reading deed.capture_epochs"))?;
    let mut out = Vec::new();
    for r in rows {
        let since: String = r.get(0);
        let epoch: i32 = r.get(1);
        let lsn = deed_events::parse_lsn(&since)
            .ok_or_else(|| RelayError::Setup(format!("deed.capture_epochs: bad LSN {since:?}")))?;
        out.push((lsn, epoch.max(0) as u32));
    }
    Ok(out)
}
