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
