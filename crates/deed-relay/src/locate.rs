//! Where a service's events are captured: the shared database, or, once
//! `deed split` has moved its writes, the service's own database. A relay
//! first drains the side the writes left (its events up to the move), then
//! reads the side that has them, so events keep their commit order across
//! the move.

use deed_manifest::Manifest;
use deed_pg::redact_url;

use deed_events::ADVISORY_LOCK_KEY;

use crate::error::RelayError;
use crate::source::q;

/// The database to read, and the one to drain first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSides {
    pub live: String,
    pub earlier: Option<String>,
}

pub async fn locate(
    shared_url: &str,
    manifest: &Manifest,
    service: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<CaptureSides, RelayError> {
    let shared = deed_pg::connect(shared_url).await?;
    let Some(side) = deed_state::splits::side(&shared, service).await? else {
        return Ok(CaptureSides { live: shared_url.to_string(), earlier: None });
    };
    let written = side.target_written;
    let s = manifest
        .service(service)
        .ok_or_else(|| RelayError::Setup(format!("the manifest has no service {service:?}")))?;
    let own = match manifest.service_database_url(s, lookup) {
        Ok(Some(url)) => Some(url),
        Ok(None) => written
            .as_deref()
            .map(|w| deed_manifest::resolve_references(w, lookup))
            .transpose()
            .map_err(|e| RelayError::Setup(format!("deed.splits target of {service}: {e}")))?,
        Err(e) => return Err(RelayError::Setup(e.to_string())),
    };
    let own = own.filter(|u| u != shared_url);
    match (side.on_target, own) {
        (true, Some(own)) => Ok(CaptureSides { live: own, earlier: Some(shared_url.to_string()) }),
        (true, None) => Err(RelayError::Setup(format!(
            "{service}'s writes were moved to its own database by `deed split`, but deed.toml has no `database` for it: set it (the relay reads {service}'s events there)"
        ))),
        (false, own) => Ok(CaptureSides { live: shared_url.to_string(), earlier: own }),
    }
}

impl CaptureSides {
    /// For logs: where each side is, without passwords.
    pub fn describe(&self) -> String {
        match &self.earlier {
            Some(e) => format!("{} (after draining {})", redact_url(&self.live), redact_url(e)),
            None => redact_url(&self.live),
        }
    }
}

/// Drops the service's capture slot on the side its writes left, once the
/// relay has drained it: nothing of the service is captured there any
/// more, and the slot would only hold WAL. Under deed's lock in the shared
/// database, and only while the split still says the writes are elsewhere,
/// so a rollback (which recreates the slot under the same lock) cannot lose
/// its first events to it.
pub async fn retire_earlier(
    shared_url: &str,
    earlier_url: &str,
    spec: &crate::CaptureSpec,
    earlier_is_shared: bool,
) -> Result<bool, RelayError> {
    let service = spec.service.as_str();
    let mut shared = deed_pg::connect(shared_url).await?;
    let tx = shared.transaction().await.map_err(q("starting to retire a slot"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADVISORY_LOCK_KEY])
        .await
        .map_err(q("taking deed's lock"))?;
    let elsewhere = match deed_state::splits::side(&tx, service).await? {
        Some(side) if side.on_target => earlier_is_shared,
        Some(_) => !earlier_is_shared,
        None => false,
    };
    if !elsewhere {
        return Ok(false);
    }
    let earlier = if earlier_is_shared { None } else { Some(deed_pg::connect(earlier_url).await?) };
    let client = earlier.as_ref().unwrap_or_else(|| tx.client());
    // And what the database itself says: a switch killed before it was
    // recorded leaves the writes granted there.
    let owner = deed_events::owner_role(service);
    for (schema, table) in spec.tables.keys() {
        let name = deed_ident::QualifiedName::from_catalog(schema, table)
            .map_err(|e| RelayError::Setup(e.to_string()))?;
        let writable: Option<bool> = client
            .query_one(
                "SELECT CASE WHEN to_regclass($2) IS NULL THEN NULL
                             ELSE has_table_privilege($1, $2, 'INSERT') END",
                &[&owner.as_str(), &name.quoted()],
            )
            .await
            .map_err(q("reading the owner's privileges"))?
            .get(0);
        if writable == Some(true) {
            return Ok(false);
        }
    }
    let slot = crate::slot::resolve(client, service).await?;
    let dropped = client
        .query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
              WHERE slot_name = $1 AND database = current_database() AND NOT active",
            &[&slot],
        )
        .await
        .map_err(q("dropping the drained slot"))?
        .len();
    tx.commit().await.map_err(q("retiring the slot"))?;
    Ok(dropped > 0)
}
