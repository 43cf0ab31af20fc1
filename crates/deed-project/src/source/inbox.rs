//! Reading the inbox: events of one type after a position, in position
//! order (the relay writes them in commit order, one transaction at a time).

use deed_pg::Client;

use crate::error::{ProjectError, query};
use crate::incoming::Incoming;

/// Rows the relay wrote before the inbox kept whole envelopes are put
/// back together from their columns.
const FETCH: &str = "
SELECT event_id, position, coalesce(envelope::text, pg_catalog.json_build_object(
         'id', event_id, 'type', type, 'contract', contract, 'key', key, 'op', op, 'position', position,
         'lsn', lsn::text,
         'committed_at', pg_catalog.to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
         'payload', payload, 'tombstone', tombstone)::text)
  FROM deed.inbox
 WHERE type = $1 AND position > $2
 ORDER BY position
 LIMIT $3";

pub async fn fetch(
    client: &Client,
    event_type: &str,
    position: &str,
    limit: usize,
) -> Result<Vec<Incoming>, ProjectError> {
    let rows = client
        .query(FETCH, &[&event_type, &position, &(limit as i64)])
        .await
        .map_err(query("reading deed.inbox"))?;
    Ok(rows.into_iter().map(|r| Incoming::parse(r.get(2), r.get(0), r.get(1))).collect())
}
