//! Why a copy fails, in the server's words. A failing table-sync worker
//! leaves only a count in `pg_stat_subscription_stats`; its message is in
//! the subscriber's log, which deed may not be able to read. So deed does
//! what the worker does, in a transaction it rolls back: it copies the
//! publisher's rows of each table not yet synchronised into the
//! subscriber's table, with the worker's `session_replication_role`, and
//! reports the server's error (SQLSTATE, message, detail, hint) for the
//! first that fails. At most [`ROWS`] rows a table, and never waiting
//! long on a lock the worker holds.

use deed_events::{SplitDirection, split_subscription};
use deed_pg::{Client, PgError};
use futures_util::{SinkExt, StreamExt};

use crate::error::{SplitError, query};
use crate::inspect::{Inspected, Table};

/// Rows copied at most from each table: a failure further on is left to
/// the server's log.
pub const ROWS: i64 = 100_000;

/// The first failing table's error, as the server gives it; `None` when
/// every table of the service's (`found` on the publisher) not yet
/// synchronised copies (up to [`ROWS`]) without one.
pub async fn copy_error(
    subscriber: &mut Client,
    publisher: &Client,
    found: &Inspected,
    service: &str,
    direction: SplitDirection,
) -> Result<Option<String>, SplitError> {
    let name = split_subscription(service, direction);
    let names = subscriber
        .query(
            "SELECT n.nspname::text, c.relname::text
               FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid
               JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE s.subname = $1 AND r.srsubstate NOT IN ('r', 's')
              ORDER BY 1, 2",
            &[&name.as_str()],
        )
        .await
        .map_err(query("reading the tables not yet copied"))?;
    for row in names {
        let (schema, table): (&str, &str) = (row.get(0), row.get(1));
        let Some(t) = found
            .tables
            .iter()
            .find(|t| t.name.schema.as_str() == schema && t.name.name.as_str() == table)
        else {
            continue;
        };
        if let Some(e) = try_copy(subscriber, publisher, t).await? {
            return Ok(Some(format!(
                "copying {} as the table-sync worker does gives: {e}",
                t.name
            )));
        }
    }
    Ok(None)
}

/// Copies up to [`ROWS`] rows of `table` and rolls back: the server's
/// refusal, described, or `None`.
async fn try_copy(
    subscriber: &mut Client,
    publisher: &Client,
    t: &Table,
) -> Result<Option<String>, SplitError> {
    // The worker copies every column but generated ones.
    let cols = t
        .columns
        .iter()
        .filter(|c| c.generated.is_none())
        .map(|c| c.name.quoted())
        .collect::<Vec<_>>()
        .join(", ");
    let table = &t.name;
    let tx = subscriber.transaction().await.map_err(query("starting a trial copy"))?;
    tx.batch_execute("SET LOCAL session_replication_role = replica; SET LOCAL lock_timeout = '5s'")
        .await
        .map_err(query("starting a trial copy"))?;
    let out = publisher
        .copy_out(&format!("COPY (SELECT {cols} FROM {} LIMIT {ROWS}) TO STDOUT", table.quoted()))
        .await
        .map_err(query("reading the published table"))?;
    // The publisher's errors are deed's to report; the subscriber's are the
    // diagnosis.
    let result: Result<Result<u64, tokio_postgres::Error>, tokio_postgres::Error> = async {
        let sink = match tx.copy_in(&format!("COPY {} ({cols}) FROM STDIN", table.quoted())).await {
            Ok(sink) => sink,
            Err(e) => return Ok(Err(e)),
        };
        futures_util::pin_mut!(out);
        futures_util::pin_mut!(sink);
        while let Some(data) = out.next().await {
            if let Err(e) = sink.feed(data?).await {
                return Ok(Err(e));
            }
        }
        Ok(sink.finish().await)
    }
    .await;
    tx.rollback().await.map_err(query("ending the trial copy"))?;
    match result.map_err(query("reading the published table"))? {
        Ok(_) => Ok(None),
        Err(e) => {
            let code = e.code().map(|c| format!(" [SQLSTATE {}]", c.code())).unwrap_or_default();
            let text = PgError::query("the server said", e).to_string();
            Ok(Some(format!("{text}{code}")))
        }
    }
}
