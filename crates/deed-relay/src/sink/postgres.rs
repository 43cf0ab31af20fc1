use deed_pg::{Client, PgError};
use tokio_postgres::Statement;

use super::Delivered;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// The embedded default: the inbox table in the consumer's database (its
/// schema is the event model's, [`INBOX_DDL`]). Each delivery is one
/// statement, so one transaction.
pub struct PgSink {
    client: Client,
    insert: Statement,
}

pub use deed_events::INBOX_DDL;

/// Each column arrives as one array, so a delivery is one statement
/// however many events it carries.
const INSERT: &str = "INSERT INTO deed.inbox (event_id, type, contract, key, op, position, lsn, committed_at, payload, tombstone, envelope)
 SELECT id, t, c, k::jsonb, o, p, l::pg_lsn, ts::timestamptz, NULLIF(pl, 'null')::jsonb, tb, env::json
   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
               $8::text[], $9::text[], $10::bool[], $11::text[]) AS x(id, t, c, k, o, p, l, ts, pl, tb, env)
 ON CONFLICT (event_id) DO NOTHING";

impl PgSink {
    pub async fn connect(url: &str, _service: &str) -> Result<PgSink, RelayError> {
        let client = deed_pg::connect(url).await?;
        client
            .batch_execute(INBOX_DDL)
            .await
            .map_err(|e| PgError::query("creating deed.inbox", e))?;
        let insert = client
            .prepare(INSERT)
            .await
            .map_err(|e| PgError::query("preparing the inbox insert", e))?;
        Ok(PgSink { client, insert })
    }

    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let n = events.len();
        let (mut ids, mut types, mut contracts) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut ops, mut positions, mut lsns) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut times, mut tombstones, mut envelopes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut keys, mut payloads) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for e in events {
            ids.push(e.id.as_str());
            types.push(&*e.kind);
            contracts.push(e.contract.as_deref());
            keys.push(e.key.as_str());
            payloads.push(e.payload.as_str());
            ops.push(e.op.as_str());
            positions.push(e.position());
            lsns.push(e.lsn());
            times.push(&*e.committed_at);
            tombstones.push(e.tombstone);
            let mut json = String::with_capacity(200 + e.key.len() + e.payload.len());
            e.write_json(&mut json);
            envelopes.push(json);
        }
        let inserted = self
            .client
            .execute(
                &self.insert,
                &[
                    &ids,
                    &types,
                    &contracts,
                    &keys,
                    &ops,
                    &positions,
                    &lsns,
                    &times,
                    &payloads,
                    &tombstones,
                    &envelopes,
                ],
            )
            .await
            .map_err(|e| {
                RelayError::Sink(PgError::query("writing to deed.inbox", e).to_string())
            })?;
        Ok(Delivered { duplicates: n as u64 - inserted, dead_letters: 0 })
    }
}
