//! Dead letters: events a projection could not apply, kept with the error
//! in the consumer's database. While a key has one, its later events wait
//! behind it (also recorded here), so per-key order holds; other keys go on.

use std::collections::HashMap;

use deed_pg::Client;
use tokio_postgres::{GenericClient, Transaction};

use crate::error::{Failure, ProjectError, query};
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

/// Keys with a dead letter → the event they wait behind.
pub type Blocked = HashMap<String, String>;

pub async fn blocked(
    client: &impl GenericClient,
    spec: &ProjectionSpec,
) -> Result<Blocked, ProjectError> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (key) key, event_id FROM deed.dead_letters
              WHERE service = $1 AND projection = $2 ORDER BY key, position",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("reading deed.dead_letters"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Records an event that failed (`behind` is `None`) or that waits behind
/// a failed one of its key.
pub async fn record(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    e: &Incoming,
    failure: &Failure,
    behind: Option<&str>,
) -> Result<(), ProjectError> {
    tx.execute(
        "INSERT INTO deed.dead_letters (service, projection, event_id, key, position, envelope, error, sqlstate, waiting_behind)
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9)
         ON CONFLICT (service, projection, event_id) DO NOTHING",
        &[
            &spec.service,
            &spec.name,
            &e.id,
            &e.key_text(),
            &e.position,
            &e.raw_json(),
            &failure.message,
            &failure.sqlstate,
            &behind,
        ],
    )
    .await
    .map_err(query("recording a dead letter"))?;
    Ok(())
}

/// One dead letter, oldest first within its key.
pub struct DeadLetter {
    pub incoming: Incoming,
    pub key: String,
}

pub async fn list(
    client: &impl GenericClient,
    spec: &ProjectionSpec,
) -> Result<Vec<DeadLetter>, ProjectError> {
    let rows = client
        .query(
            "SELECT event_id, position, envelope::text, key FROM deed.dead_letters
              WHERE service = $1 AND projection = $2 ORDER BY key, position",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("reading deed.dead_letters"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let raw: String = r.get(2);
            // An unreadable event was stored as a JSON string of its text.
            let raw = match serde_json::from_str::<serde_json::Value>(&raw) {
                Ok(serde_json::Value::String(s)) => s,
                _ => raw,
            };
            DeadLetter { incoming: Incoming::parse(raw, r.get(0), r.get(1)), key: r.get(3) }
        })
        .collect())
}

pub async fn remove(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    event_id: &str,
) -> Result<(), ProjectError> {
    tx.execute(
        "DELETE FROM deed.dead_letters WHERE service = $1 AND projection = $2 AND event_id = $3",
        &[&spec.service, &spec.name, &event_id],
    )
    .await
    .map_err(query("removing a retried dead letter"))?;
    Ok(())
}

pub async fn failed_again(
    tx: &Transaction<'_>,
    spec: &ProjectionSpec,
    event_id: &str,
    failure: &Failure,
) -> Result<(), ProjectError> {
    tx.execute(
        "UPDATE deed.dead_letters SET error = $4, sqlstate = $5, waiting_behind = NULL,
                attempts = attempts + 1, failed_at = clock_timestamp()
          WHERE service = $1 AND projection = $2 AND event_id = $3",
        &[&spec.service, &spec.name, &event_id, &failure.message, &failure.sqlstate],
    )
    .await
    .map_err(query("recording a retry's failure"))?;
    Ok(())
}

/// Dead letters per projection of a service (for status and metrics).
pub async fn counts(client: &Client, service: &str) -> Result<Vec<(String, i64)>, ProjectError> {
    let rows = client
        .query(
            "SELECT projection, count(*) FROM deed.dead_letters WHERE service = $1 GROUP BY projection ORDER BY projection",
            &[&service],
        )
        .await
        .map_err(query("counting dead letters"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
