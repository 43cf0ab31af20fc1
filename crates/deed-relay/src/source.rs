//! Reading a service's replication slot through the SQL interface:
//! `pg_logical_slot_peek_binary_changes` with pgoutput, confirmed with
//! `pg_replication_slot_advance` only after the sink has the events. A
//! crash in between re-reads the same transactions, with the same event
//! ids, which the sinks recognise as duplicates.

use std::pin::pin;

use deed_pg::{Client, PgError, redact_url};
use futures_util::TryStreamExt;

use crate::envelope::Envelope;
use crate::error::RelayError;
use crate::pgoutput::{decode, lsn_text, parse_lsn};
use crate::sink::{Delivered, Sink};
use crate::spec::CaptureSpec;
use crate::transform::{Commit, Transformer};

pub struct Source {
    client: Client,
    pub spec: CaptureSpec,
    /// Epochs learned from the slot since connecting, carried from one
    /// pass to the next.
    epochs: std::sync::Mutex<Vec<(u64, u32)>>,
}

/// What one pass over the slot found and delivered.
#[derive(Debug, Default, Clone)]
pub struct Pumped {
    pub rows: usize,
    pub events: usize,
    pub delivered: Delivered,
    pub last: Option<Commit>,
    /// Transactions that produced events.
    pub transactions: u64,
    /// `deed split` moved the service's writes away from this database.
    pub moved: bool,
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
                return Err(RelayError::Setup(format!(
                    "no replication slot {} in {}: run `deed apply` to set up capture for {}",
                    spec.slot,
                    redact_url(url),
                    spec.service
                )));
            }
        }
        let epochs = std::sync::Mutex::new(spec.epochs.clone());
        Ok(Source { client, spec, epochs })
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

    /// Whether the server has flushed its WAL up to `lsn`. Logical decoding
    /// only reads flushed WAL, and with `synchronous_commit = off` a commit
    /// is reported before its WAL is flushed.
    pub async fn flushed(&self, lsn: u64) -> Result<bool, RelayError> {
        let text: String = self
            .client
            .query_one("SELECT pg_current_wal_flush_lsn()::text", &[])
            .await
            .map_err(q("reading the flushed WAL position"))?
            .get(0);
        Ok(parse_lsn(&text).is_some_and(|f| f >= lsn))
    }

    /// Reads up to about `limit` changes (whole transactions, so a large
    /// one is read entirely), delivering events to the sink every `chunk`
    /// events so memory stays bounded, and returns the last complete
    /// transaction. With `upto`, only transactions committed before it.
    pub async fn pump(
        &self,
        sink: &mut Sink,
        limit: i32,
        upto: Option<u64>,
        chunk: usize,
    ) -> Result<Pumped, RelayError> {
        let upto = upto.map(lsn_text);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&self.spec.slot, &upto, &limit, &self.spec.publication];
        let stream = self
            .client
            .query_raw(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, $3,
                    'proto_version', '1', 'publication_names', $4, 'messages', 'true')",
                params,
            )
            .await
            .map_err(q("reading the replication slot"))?;
        let mut stream = pin!(stream);
        let mut transformer = Transformer::new(&self.spec);
        transformer.set_epochs(self.epochs.lock().expect("epochs").clone());
        let mut buffer: Vec<Envelope> = Vec::with_capacity(chunk);
        let mut out = Pumped::default();
        while let Some(row) = stream.try_next().await.map_err(q("reading the replication slot"))? {
            out.rows += 1;
            let data: &[u8] = row.get(0);
            let before = buffer.len();
            if let Some(commit) = transformer.feed(decode(data)?, &mut buffer)? {
                out.transactions += u64::from(commit.events > 0);
                out.last = Some(commit);
            }
            out.events += buffer.len() - before;
            if buffer.len() >= chunk {
                let d = sink.deliver(&buffer).await?;
                out.delivered.add(&d);
                buffer.clear();
            }
        }
        if !buffer.is_empty() {
            let d = sink.deliver(&buffer).await?;
            out.delivered.add(&d);
        }
        out.moved = transformer.moved;
        *self.epochs.lock().expect("epochs") = transformer.epochs().to_vec();
        Ok(out)
    }

    /// Confirms everything up to `end_lsn` as delivered.
    pub async fn advance(&self, end_lsn: u64) -> Result<(), RelayError> {
        self.client
            .query(
                "SELECT pg_replication_slot_advance(slot_name, greatest($2::text::pg_lsn, confirmed_flush_lsn))
                   FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.spec.slot, &lsn_text(end_lsn)],
            )
            .await
            .map_err(q("confirming delivered events on the slot"))?;
        Ok(())
    }

    pub async fn stats(&self) -> Result<SlotStats, RelayError> {
        slot_stats(&self.client, &self.spec.slot).await
    }
}

/// Lag and retained WAL of a slot; works whether or not a relay runs.
pub async fn slot_stats(client: &Client, slot: &str) -> Result<SlotStats, RelayError> {
    let row = client
        .query_opt(
            "SELECT coalesce((pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, 0),
                    coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, 0),
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
