//! The split's replication slots, made and dropped by deed's own
//! statements.
//!
//! A new logical slot waits until every transaction that holds a
//! transaction id on its server (in any database) has ended. Letting
//! `CREATE SUBSCRIPTION` make the slot would wait inside the subscriber's
//! own transaction, which holds an id on the other server: two splits
//! between the same two servers (one subscribing each way) then wait for
//! each other for ever. deed makes the slot on the publisher first, as a
//! statement of its own with a bounded wait, then subscribes to it; a
//! wait that runs out names the transactions it waited for.

use std::time::{Duration, Instant};

use deed_ident::quote_literal;
use deed_pg::{Client, SqlState};

use crate::error::{SplitError, query};

/// Creates logical slot `slot` (pgoutput) on `server` unless it exists,
/// waiting at most `timeout` for open transactions there.
pub async fn create(
    server: &Client,
    slot: &str,
    side: &str,
    timeout: Duration,
) -> Result<(), SplitError> {
    // One implicit transaction: the wait's bound goes with it.
    let sql = format!(
        "SET LOCAL lock_timeout = '{}ms';
         SELECT pg_create_logical_replication_slot({slot}, 'pgoutput')
          WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = {slot})",
        timeout.as_millis().max(1),
        slot = quote_literal(slot),
    );
    match server.batch_execute(&sql).await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            let open = open_transactions(server).await.unwrap_or_default();
            Err(SplitError::Setup(format!(
                "creating replication slot {slot} on the {side} waited {} s for the transactions open on that server to end{open}; nothing was left behind: run this again once they have ended",
                timeout.as_secs()
            )))
        }
        Err(e) => Err(query("creating a replication slot")(e)),
    }
}

/// The oldest transactions holding an id on the server, for the message.
async fn open_transactions(server: &Client) -> Result<String, tokio_postgres::Error> {
    let rows = server
        .query(
            "SELECT format('pid %s (database %s, user %s, open for %s)', pid, datname, usename,
                    date_trunc('second', now() - xact_start))
               FROM pg_stat_activity
              WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
              ORDER BY xact_start LIMIT 3",
            &[],
        )
        .await?;
    let list: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok(if list.is_empty() { String::new() } else { format!(": {}", list.join("; ")) })
}

/// Drops `slot` on `server` if it is there; a walsender still exiting
/// holds it for a moment.
pub async fn drop(server: &Client, slot: &str) -> Result<(), SplitError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row = server
            .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .map_err(query("looking for the split's slot"))?;
        match row.map(|r| r.get::<_, bool>(0)) {
            None => return Ok(()),
            Some(false) => {
                server
                    .query("SELECT pg_drop_replication_slot($1)", &[&slot])
                    .await
                    .map_err(query("dropping the split's slot"))?;
                return Ok(());
            }
            Some(true) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(true) => {
                return Err(SplitError::Setup(format!(
                    "replication slot {slot} is still in use by another subscriber; drop that subscription first"
                )));
            }
        }
    }
}
