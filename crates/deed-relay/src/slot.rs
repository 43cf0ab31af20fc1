//! Which replication slot holds a service's events in this database.

use deed_pg::Client;

use crate::error::RelayError;
use crate::source::q;

/// `deed_<service>_<database oid>`, or the name an earlier version gave
/// it (`deed_<service>`) when only that one exists in this database.
pub async fn resolve(client: &Client, service: &str) -> Result<String, RelayError> {
    let oid: u32 = client
        .query_one("SELECT oid FROM pg_database WHERE datname = current_database()", &[])
        .await
        .map_err(q("reading the database's oid"))?
        .get(0);
    let current = deed_events::slot_name(service, oid);
    let legacy = deed_events::legacy_slot_name(service);
    let found: Vec<String> = client
        .query(
            "SELECT slot_name::text FROM pg_replication_slots
              WHERE database = current_database() AND slot_name IN ($1, $2)",
            &[&current, &legacy],
        )
        .await
        .map_err(q("looking for the replication slot"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(if found == [legacy.clone()] { legacy } else { current })
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
