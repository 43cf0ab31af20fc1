//! Capture health, whether or not a relay runs: is anyone delivering, how
//! far behind is the slot, and how much WAL it makes the server keep. A
//! stopped relay must show up here before its slot fills the disk.

use deed_manifest::Manifest;
use deed_pg::Client;
use serde::Serialize;

use crate::error::RelayError;
use crate::leader::lock_key;
use crate::source::q;

#[derive(Debug, Clone, Serialize)]
pub struct CaptureHealth {
    pub service: String,
    pub slot: String,
    pub slot_exists: bool,
    pub publication: String,
    pub publication_exists: bool,
    /// A relay holds the service's delivery lock.
    pub relay_running: bool,
    /// A relay has been failing and retrying since this time (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_failing_since: Option<String>,
    /// WAL written since the last confirmed delivery.
    pub lag_bytes: i64,
    /// WAL the server keeps on disk for this slot.
    pub retained_wal_bytes: i64,
    /// `reserved`, `extended`, `unreserved` or `lost` (pg_replication_slots).
    pub wal_status: String,
    /// The server's `max_slot_wal_keep_size`; `-1` means unbounded.
    pub max_slot_wal_keep_size: String,
    /// Conditions that need someone now; `deed status` exits 1 on any.
    pub problems: Vec<String>,
    /// Conditions worth knowing.
    pub warnings: Vec<String>,
}

/// Checks every service that declares events.
pub async fn capture_health(
    client: &Client,
    manifest: &Manifest,
    max_retained_bytes: i64,
) -> Result<Vec<CaptureHealth>, RelayError> {
    let moved = deed_state::splits::moved(client).await?;
    let here: Vec<String> =
        manifest.services.iter().map(|s| s.name.clone()).filter(|s| !moved.contains(s)).collect();
    capture_health_of(client, manifest, max_retained_bytes, &here).await
}

/// The health of `services`' capture in this database.
pub async fn capture_health_of(
    client: &Client,
    manifest: &Manifest,
    max_retained_bytes: i64,
    services: &[String],
) -> Result<Vec<CaptureHealth>, RelayError> {
    let keep: String = client
        .query_one("SELECT current_setting('max_slot_wal_keep_size')", &[])
        .await
        .map_err(q("reading max_slot_wal_keep_size"))?
        .get(0);
    let failing: Vec<String> = client
        .query(
            "SELECT application_name FROM pg_stat_activity WHERE starts_with(application_name, $1)",
            &[&crate::presence::FAILING],
        )
        .await
        .map_err(q("looking for failing relays"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let publications: Vec<String> = client
        .query("SELECT pubname::text FROM pg_publication", &[])
        .await
        .map_err(q("reading publications"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for s in manifest.services.iter().filter(|s| !s.events.is_empty() && services.contains(&s.name))
    {
        let publication = deed_events::publication_name(&s.name).as_str().to_string();
        let slot = crate::slot::resolve(client, &s.name).await?;
        let row = client
            .query_opt(
                "SELECT coalesce((pg_current_wal_insert_lsn() - confirmed_flush_lsn)::int8, 0),
                        coalesce((pg_current_wal_insert_lsn() - restart_lsn)::int8, 0),
                        coalesce(wal_status, '')
                   FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()",
                &[&slot],
            )
            .await
            .map_err(q("reading the replication slot"))?;
        // A bigint advisory key shows in pg_locks as two oids.
        let key = lock_key(&s.name) as u64;
        let (hi, lo) = ((key >> 32) as i64, (key & 0xffff_ffff) as i64);
        let relay_running: bool = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                  WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
                    AND l.classid::int8 = $1 AND l.objid::int8 = $2 AND l.objsubid = 1)",
                &[&hi, &lo],
            )
            .await
            .map_err(q("looking for a running relay"))?
            .get(0);
        let mut h = CaptureHealth {
            service: s.name.clone(),
            slot: slot.clone(),
            slot_exists: row.is_some(),
            publication_exists: publications.contains(&publication),
            publication,
            relay_running,
            relay_failing_since: crate::presence::failing_since(&failing, &s.name),
            lag_bytes: 0,
            retained_wal_bytes: 0,
            wal_status: String::new(),
            max_slot_wal_keep_size: keep.clone(),
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        match row {
            None => h
                .problems
                .push(format!("no replication slot {slot}: nothing is captured; run `deed apply`")),
            Some(r) => {
                h.lag_bytes = r.get(0);
                h.retained_wal_bytes = r.get(1);
                h.wal_status = r.get(2);
            }
        }
        judge(&mut h, max_retained_bytes);
        out.push(h);
    }
    Ok(out)
}

fn judge(h: &mut CaptureHealth, max_retained_bytes: i64) {
    if !h.publication_exists {
        h.problems.push(format!(
            "publication {} is missing: no relay can deliver {}'s events; run `deed apply`",
            h.publication, h.service
        ));
    }
    if let Some(since) = &h.relay_failing_since {
        h.problems.push(format!(
            "a relay has been failing since {since} and keeps retrying; its log says why"
        ));
    }
    if !h.slot_exists {
        return;
    }
    match h.wal_status.as_str() {
        "lost" => h.problems.push(
            "the server removed WAL this slot still needed (max_slot_wal_keep_size): events were lost; \
             re-create capture and rebuild consumers from the contract views"
                .into(),
        ),
        "unreserved" => h.problems.push(
            "the slot is past max_slot_wal_keep_size and will lose WAL at the next checkpoint"
                .into(),
        ),
        _ => {}
    }
    if h.retained_wal_bytes > max_retained_bytes {
        h.problems.push(format!(
            "the slot keeps {} of WAL (limit {}){}",
            deed_text::bytes_pretty(h.retained_wal_bytes),
            deed_text::bytes_pretty(max_retained_bytes),
            if h.relay_running { "; the relay is behind" } else { "; start `deed relay`" }
        ));
    } else if !h.relay_running && h.lag_bytes > 0 {
        h.warnings.push(format!(
            "no relay is delivering; {} of WAL waits and the server keeps it",
            deed_text::bytes_pretty(h.lag_bytes)
        ));
    }
    if h.max_slot_wal_keep_size == "-1" {
        h.warnings.push(
            "max_slot_wal_keep_size is unbounded: a relay stopped for long can fill the server's disk"
                .into(),
        );
    }
}

/// The capture section of `deed status`.
pub fn render(health: &[CaptureHealth]) -> String {
    if health.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nCapture (rung 2)\n");
    for h in health {
        out.push_str(&format!("  {}\n", state_line(h)));
        for p in &h.problems {
            out.push_str(&format!("    PROBLEM: {p}\n"));
        }
        for w in &h.warnings {
            out.push_str(&format!("    warning: {w}\n"));
        }
    }
    out
}

/// One service's capture in a sentence: its slot, whether a relay
/// delivers, its lag and the WAL it keeps.
pub fn state_line(h: &CaptureHealth) -> String {
    let state = if !h.slot_exists {
        "no slot".to_string()
    } else {
        format!(
            "relay {}, lag {}, retained WAL {}{}",
            if h.relay_failing_since.is_some() {
                "FAILING"
            } else if h.relay_running {
                "delivering"
            } else {
                "NOT RUNNING"
            },
            deed_text::bytes_pretty(h.lag_bytes),
            deed_text::bytes_pretty(h.retained_wal_bytes),
            if h.wal_status.is_empty() { String::new() } else { format!(" ({})", h.wal_status) }
        )
    };
    format!("{} (slot {}): {state}", h.service, h.slot)
}
