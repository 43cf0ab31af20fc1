//! The relay's ordinary session on the service's database: it finds the
//! slot and the capture epochs, holds the leader lock, and reads the
//! slot's lag. (The events themselves come over replication, [`crate::stream`].)

use deed_pg::{Client, PgError, redact_url};

use crate::error::RelayError;
use crate::pgoutput::parse_lsn;
use crate::spec::CaptureSpec;

pub struct Source {
    client: Client,
    pub spec: CaptureSpec,
}

/// How far the slot is behind, and how much WAL it keeps.
#[derive(Debug, Default, Clone)]
pub struct SlotStats {
    pub lag_bytes: i64,
    pub retained_bytes: i64,
    pub wal_status: String,
    pub active: bool,
}

pub(crate) fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

impl Source {
    /// Connects, and finds the service's slot in this database.
    pub async fn connect(url: &str, mut spec: CaptureSpec) -> Result<Source, RelayError> {
        // deed's session settings fix how values are printed (value.rs).
        let client = deed_pg::connect(url).await?;
        spec.slot = crate::slot::resolve(&client, &spec.service).await?;
        spec.epochs = crate::slot::epochs(&client, &spec.service).await?;
        let row = client
            .query_opt(
                "SELECT plugin::text, coalesce(wal_status, '') FROM pg_replication_slots
                  WHERE slot_name = $1 AND database = current_database()",
                &[&spec.slot],
            )
            .await
            .map_err(q("looking for the replication slot"))?;
        match row.map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))) {
            Some((_, status)) if status == "lost" => {
                return Err(RelayError::Setup(format!(
                    "slot {} lost WAL it still needed (the server's max_slot_wal_keep_size): \
                     events were dropped and delivering the rest would hide the gap; drop and \
                     re-create capture (deed apply), then rebuild consumers from the contract views",
                    spec.slot
                )));
            }
            Some((p, _)) if p == "pgoutput" => {}
            Some((p, _)) => {
                return Err(RelayError::Setup(format!(
                    "slot {} uses plugin {p}, not pgoutput",
                    spec.slot
                )));
            }
            None => {
                return Err(RelayError::NoSlot {
                    slot: spec.slot.to_string(),
                    database: redact_url(url),
                    service: spec.service.clone(),
                });
            }
        }
        Ok(Source { client, spec })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// What it captures, with the slot found in this database.
    pub fn spec(&self) -> &CaptureSpec {
        &self.spec
    }

    /// The end of all WAL inserted so far, including commits not yet
    /// written out (with `synchronous_commit = off`).
    pub async fn current_lsn(&self) -> Result<u64, RelayError> {
        let text: String = self
            .client
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .await
            .map_err(q("reading the WAL position"))?
            .get(0);
        parse_lsn(&text).ok_or_else(|| RelayError::Setup(format!("unexpected LSN {text}")))
    }

    pub async fn stats(&self) -> Result<SlotStats, RelayError> {
        slot_stats(&self.client, &self.spec.slot).await
    }
}

/// Lag and retained WAL of a slot; works whether or not a relay runs.
pub async fn slot_stats(client: &Client, slot: &str) -> Result<SlotStats, RelayError> {
    let row = client
        .query_opt(
            "SELECT coalesce((pg_current_wal_insert_lsn() - confirmed_flush_lsn)::bigint, 0),
                    coalesce((pg_current_wal_insert_lsn() - restart_lsn)::bigint, 0),
                    coalesce(wal_status, ''), active
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(q("reading the slot's lag"))?
        .ok_or_else(|| RelayError::Setup(format!("no replication slot {slot}")))?;
    Ok(SlotStats {
        lag_bytes: row.get(0),
        retained_bytes: row.get(1),
        wal_status: row.get(2),
        active: row.get(3),
    })
}
