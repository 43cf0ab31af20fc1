use deed_pg::{Client, PgError};
use tokio_postgres::Statement;

use super::Delivered;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// The embedded default: the inbox table in the consumer's database (its
/// schema is `deed_state`'s, `deed_state::Table::Inbox`). Each delivery is one
/// statement, so one transaction.
pub struct PgSink {
    client: Client,
    insert: Statement,
}

/// The envelopes arrive as one array of JSON texts, so a delivery is one
/// statement however many events it carries, and the server reads every
/// column from the envelope itself (`json` keeps its bytes as sent).
const INSERT: &str = "INSERT INTO deed.inbox (event_id, type, contract, key, op, position, lsn, committed_at, payload, tombstone, envelope)
 SELECT r.id, r.type, r.contract, r.key, r.op, r.position, r.lsn, r.committed_at,
        NULLIF(r.payload, 'null'::jsonb), coalesce(r.tombstone, false), t::json
   FROM unnest($1::text[]) AS t,
        json_to_record(t::json) AS r(id text, type text, contract text, key jsonb, op text, position text,
                                     lsn pg_lsn, committed_at timestamptz, payload jsonb, tombstone boolean)
 ON CONFLICT (event_id) DO NOTHING";

impl PgSink {
    pub async fn connect(url: &str, _service: &str) -> Result<PgSink, RelayError> {
        let client = deed_pg::connect(url).await?;
        deed_state::ensure(&client, &[deed_state::Table::Inbox]).await?;
        let insert = client
            .prepare(INSERT)
            .await
            .map_err(|e| PgError::query("preparing the inbox insert", e))?;
        Ok(PgSink { client, insert })
    }

    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let envelopes: Vec<String> = events
            .iter()
            .map(|e| {
                let mut json = String::with_capacity(200 + e.key.len() + e.payload.len());
                e.write_json(&mut json);
                json
            })
            .collect();
        let inserted = self.client.execute(&self.insert, &[&envelopes]).await.map_err(|e| {
            RelayError::Sink(PgError::query("writing to deed.inbox", e).to_string())
        })?;
        Ok(Delivered { duplicates: events.len() as u64 - inserted, dead_letters: 0 })
    }
}
