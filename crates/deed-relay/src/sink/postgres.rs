use deed_pg::{Client, PgError};

use super::Delivered;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// The embedded default: the inbox table in the consumer's database (its
/// schema is the event model's, [`INBOX_DDL`]). Each delivery is one
/// transaction.
pub struct PgSink {
    client: Client,
}

pub use deed_events::INBOX_DDL;

impl PgSink {
    pub async fn connect(url: &str, _service: &str) -> Result<PgSink, RelayError> {
        let client = deed_pg::connect(url).await?;
        client
            .batch_execute(INBOX_DDL)
            .await
            .map_err(|e| PgError::query("creating deed.inbox", e))?;
        Ok(PgSink { client })
    }

    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let col = |f: &dyn Fn(&Envelope) -> String| events.iter().map(f).collect::<Vec<String>>();
        let ids = col(&|e| e.id.clone());
        let types = col(&|e| e.kind.clone());
        let contracts: Vec<Option<String>> = events.iter().map(|e| e.contract.clone()).collect();
        let keys = col(&|e| e.key.to_string());
        let ops = col(&|e| {
            serde_json::to_value(e.op).expect("op").as_str().unwrap_or_default().to_string()
        });
        let positions = col(&|e| e.position.clone());
        let lsns = col(&|e| e.lsn.clone());
        let times = col(&|e| e.committed_at.clone());
        let payloads = col(&|e| e.payload.to_string());
        let tombstones: Vec<bool> = events.iter().map(|e| e.tombstone).collect();
        let envelopes: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.to_json()).expect("serde_json writes UTF-8"))
            .collect();
        let inserted = self
            .client
            .execute(
                "INSERT INTO deed.inbox (event_id, type, contract, key, op, position, lsn, committed_at, payload, tombstone, envelope)
                 SELECT id, t, c, k::jsonb, o, p, l::pg_lsn, ts::timestamptz, NULLIF(pl, 'null')::jsonb, tb, env::json
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                               $8::text[], $9::text[], $10::bool[], $11::text[]) AS x(id, t, c, k, o, p, l, ts, pl, tb, env)
                 ON CONFLICT (event_id) DO NOTHING",
                &[&ids, &types, &contracts, &keys, &ops, &positions, &lsns, &times, &payloads, &tombstones, &envelopes],
            )
            .await
            .map_err(|e| RelayError::Sink(PgError::query("writing to deed.inbox", e).to_string()))?;
        Ok(Delivered { duplicates: events.len() as u64 - inserted, dead_letters: 0 })
    }
}
