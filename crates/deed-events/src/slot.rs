//! Which replication slot holds a service's captured changes in one
//! database: the one resolver `deed apply`, the relay, `deed compare` and
//! `deed split` all ask, so none of them can miss a slot an earlier
//! version named differently (and leave it retaining WAL).

use crate::names::{legacy_slot_name, slot_name};

/// The service's slot given which deed slots exist in the database:
/// `deed_<service>_<database oid>`, or the name earlier versions gave it
/// (`deed_<service>`) when only that one exists there.
pub fn pick_slot(service: &str, database_oid: u32, exists: impl Fn(&str) -> bool) -> String {
    let current = slot_name(service, database_oid);
    let legacy = legacy_slot_name(service);
    if !exists(&current) && exists(&legacy) { legacy } else { current }
}

/// [`pick_slot`], asking the server the client is connected to.
pub async fn capture_slot(
    client: &tokio_postgres::Client,
    service: &str,
) -> Result<String, tokio_postgres::Error> {
    let oid: u32 = client
        .query_one(
            "SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()",
            &[],
        )
        .await?
        .get(0);
    let names = [slot_name(service, oid), legacy_slot_name(service)];
    let found: Vec<String> = client
        .query(
            "SELECT slot_name::text FROM pg_catalog.pg_replication_slots
              WHERE database = pg_catalog.current_database() AND slot_name::text = ANY($1)",
            &[&names.as_slice()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(pick_slot(service, oid, |name| found.iter().any(|f| f == name)))
}

#[cfg(test)]
mod tests {
    use super::pick_slot;

    #[test]
    fn the_legacy_name_only_when_alone() {
        let with = |names: &'static [&'static str]| move |n: &str| names.contains(&n);
        assert_eq!(pick_slot("c", 5, with(&[])), "deed_c_5");
        assert_eq!(pick_slot("c", 5, with(&["deed_c"])), "deed_c");
        assert_eq!(pick_slot("c", 5, with(&["deed_c", "deed_c_5"])), "deed_c_5");
        assert_eq!(pick_slot("c", 5, with(&["deed_c_5"])), "deed_c_5");
    }
}
