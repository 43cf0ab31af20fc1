//! Backfill: a new table projection first copies the rows that exist,
//! from the producer's contract view, read as the consumer's own login
//! (so rung 1's grants decide what it may see), then follows the stream.
//!
//! The scheme is a fence, not watermarks. Events are kept (in the inbox,
//! or the JetStream stream) until the projection has applied them, so
//! there is no need to interleave the copy with the stream as DBLog does
//! for a log it cannot pause. Instead:
//! 1. Fence: read the WAL insert position F on the owner's database, then
//!    wait until every transaction that was running then has ended. Any
//!    transaction whose commit record lies before F is now visible to
//!    every new snapshot.
//! 2. Copy in key order, in chunks, each chunk its own ordinary SELECT
//!    (no lock beyond that, no long transaction on the owner). Each
//!    chunk's snapshot sees at least every commit before F.
//! 3. Then apply every event after F, in order. A state event carries the
//!    whole row, so replaying a key's later events over a copied row ends
//!    at the key's last state, whichever snapshot the row came from; a
//!    key whose events all lie before F was copied in its final state.
//!    No gap (every commit is before F, so in the copy, or after F, so
//!    replayed) and no duplicate (the table is keyed; replays overwrite).
//!
//! Progress is recorded with each chunk, in the chunk's transaction, so a
//! kill re-reads at most the one chunk that was not committed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use deed_pg::Client;
use serde_json::Value as Json;

use deed_pg::BACKFILL_MARKER;

use crate::error::{ProjectError, query};
use crate::spec::{ProjectionSpec, TableSpec};
use crate::store::{self, Progress};
use crate::table::Column;
use tokio::sync::watch;

/// Bytes gathered before they are sent on to the consumer's database.
const COPY_BUFFER: usize = 256 << 10;

/// How long the fence waits for older transactions before giving up.
const FENCE_TIMEOUT: Duration = Duration::from_secs(600);

/// Takes the fence on the owner's database: the position after which
/// events must be replayed over the copy.
pub async fn fence(source: &Client) -> Result<String, ProjectError> {
    Ok(deed_events::Position::before_text(fence_lsn(source).await?))
}

/// The owner's WAL insert position, returned once every transaction open
/// at it has ended: whatever committed before it is visible, and whatever
/// commits later has a later commit LSN.
pub async fn fence_lsn(source: &Client) -> Result<u64, ProjectError> {
    let row = source
        .query_one(
            "SELECT pg_catalog.pg_current_wal_insert_lsn()::text,
                    pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text",
            &[],
        )
        .await
        .map_err(query("reading the owner's WAL position for the backfill fence"))?;
    let (lsn, xmax): (String, String) = (row.get(0), row.get(1));
    let started = Instant::now();
    loop {
        let done: bool = source
            .query_one(
                "SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) >= $1::text::xid8",
                &[&xmax],
            )
            .await
            .map_err(query("waiting for transactions older than the backfill fence"))?
            .get(0);
        if done {
            break;
        }
        if started.elapsed() > FENCE_TIMEOUT {
            return Err(ProjectError::Setup(format!(
                "the backfill waited {} s for transactions that were open at its fence to end; find them with \
                 SELECT pid, xact_start, state, query FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start",
                FENCE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    deed_events::parse_lsn(&lsn).ok_or_else(|| ProjectError::Setup(format!("unexpected LSN {lsn}")))
}

/// The statements of one table's backfill. COPY takes no parameters, so
/// key bounds are written into the statements as typed constants.
struct Chunks {
    view: String,
    table: String,
    cols: String,
    keys: Vec<String>,
    /// The key columns' names, unquoted, and types, as `format_type`
    /// prints them.
    names: Vec<String>,
    types: Vec<String>,
    /// `json_build_object('k', k, …)`: a key as JSON.
    key_obj: String,
    chunk: usize,
}

impl Chunks {
    fn new(t: &TableSpec, types: Vec<String>, chunk: usize) -> Chunks {
        let cols: Vec<String> = t.columns.iter().map(|c| c.quoted()).collect();
        let key: Vec<String> = t.key.iter().map(|k| k.quoted()).collect();
        let key_obj: Vec<String> = t
            .key
            .iter()
            .map(|k| format!("{}, b.{}", deed_ident::quote_literal(k.as_str()), k.quoted()))
            .collect();
        Chunks {
            view: t.view.quoted(),
            table: t.table.quoted(),
            cols: cols.join(", "),
            keys: key,
            names: t.key.iter().map(|k| k.as_str().to_string()).collect(),
            types,
            key_obj: format!("pg_catalog.json_build_object({})::text", key_obj.join(", ")),
            chunk,
        }
    }

    /// Every n-th key after `after`, in order: the chunks' upper bounds,
    /// found with one sort of the keys. (A contract view is a security
    /// barrier, so `ORDER BY key OFFSET n` around it cannot walk the
    /// key's index and sorts the rest of the table for every chunk:
    /// measured 240 ms a chunk on 2 million rows. The range reads below
    /// can: their comparisons are leakproof and reach the index.)
    fn boundaries(&self, after: Option<&Json>) -> String {
        let filter = self.range("v", after, None);
        let vk: Vec<String> = self.keys.iter().map(|k| format!("v.{k}")).collect();
        format!(
            "SELECT {BACKFILL_MARKER} {} FROM (SELECT {}, pg_catalog.row_number() OVER (ORDER BY {}) AS deed_rn FROM {} v {filter}) b
              WHERE b.deed_rn % {} = 0 ORDER BY b.deed_rn",
            self.key_obj,
            vk.join(", "),
            vk.join(", "),
            self.view,
            self.chunk
        )
    }

    /// A bound of a key range, `(v.k1, v.k2) > ('1'::integer, 'a'::text)`:
    /// constants of the key's own types, so the planner walks the key's
    /// index (a bound it cannot see into made it scan the whole table per
    /// chunk).
    fn bound(&self, alias: &str, op: &str, json: &Json) -> String {
        let cols: Vec<String> = self.keys.iter().map(|k| format!("{alias}.{k}")).collect();
        // By name: a key read back from jsonb has its own field order.
        let values: Vec<String> = self
            .names
            .iter()
            .zip(&self.types)
            .map(|(name, ty)| {
                let text = match &json[name.as_str()] {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{}::{ty}", deed_ident::quote_literal(&text))
            })
            .collect();
        format!("({}) {op} ({})", cols.join(", "), values.join(", "))
    }

    /// `WHERE` for the keys in (after, upto], either end open; empty for
    /// the whole table.
    fn range(&self, alias: &str, after: Option<&Json>, upto: Option<&Json>) -> String {
        let conds: Vec<String> = [(">", after), ("<=", upto)]
            .into_iter()
            .filter_map(|(op, b)| b.map(|b| self.bound(alias, op, b)))
            .collect();
        if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) }
    }

    /// The rows in (after, upto], as COPY text.
    fn copy_out(&self, after: Option<&Json>, upto: Option<&Json>) -> String {
        let filter = self.range("v", after, upto);
        format!(
            "COPY (SELECT {BACKFILL_MARKER} {} FROM {} v {filter}) TO STDOUT",
            self.cols, self.view
        )
    }

    /// Removes the table's rows in (after, upto]: the chunk replaces them.
    fn clear(&self, after: Option<&Json>, upto: Option<&Json>) -> String {
        format!("DELETE FROM {} AS t {}", self.table, self.range("t", after, upto))
    }

    fn copy_in(&self) -> String {
        format!("COPY {} ({}) FROM STDIN", self.table, self.cols)
    }
}

async fn has_rows_after(
    target: &Client,
    chunks: &Chunks,
    after: Option<&Json>,
) -> Result<bool, ProjectError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} AS t {})",
        chunks.table,
        chunks.range("t", after, None)
    );
    Ok(target.query_one(&sql, &[]).await.map_err(query("reading the projection table"))?.get(0))
}

async fn boundaries(
    source: &Client,
    chunks: &Chunks,
    after: Option<&Json>,
) -> Result<VecDeque<Json>, ProjectError> {
    let rows = source
        .query(&chunks.boundaries(after), &[])
        .await
        .map_err(query("reading the contract view's keys for the backfill"))?;
    Ok(rows.iter().filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok()).collect())
}

/// Streams the chunk from the owner's view into the consumer's table:
/// COPY out, COPY in, no row passing through deed's hands as values.
async fn copy_chunk(
    source: &Client,
    tx: &tokio_postgres::Transaction<'_>,
    chunks: &Chunks,
    after: Option<&Json>,
    upto: Option<&Json>,
    clear: bool,
) -> Result<u64, ProjectError> {
    use futures_util::{SinkExt, StreamExt};
    if clear {
        // A table filled moments ago has no statistics: without this the
        // planner may scan all of it for every chunk.
        tx.batch_execute("SET LOCAL enable_seqscan = off")
            .await
            .map_err(query("clearing a backfill chunk's range"))?;
        tx.execute(&chunks.clear(after, upto), &[])
            .await
            .map_err(query("clearing a backfill chunk's range"))?;
    }
    let out = source
        .copy_out(&chunks.copy_out(after, upto))
        .await
        .map_err(query("reading the contract view for the backfill"))?;
    let sink = tx.copy_in(&chunks.copy_in()).await.map_err(query("writing a backfill chunk"))?;
    futures_util::pin_mut!(out);
    futures_util::pin_mut!(sink);
    // COPY OUT hands over one message per row; COPY IN takes the bytes
    // in any split, so they go on in large pieces (a flush per row made
    // the copy ten times slower).
    let mut buf = bytes::BytesMut::with_capacity(COPY_BUFFER);
    while let Some(data) = out.next().await {
        buf.extend_from_slice(&data.map_err(query("reading the contract view for the backfill"))?);
        if buf.len() >= COPY_BUFFER {
            sink.send(buf.split().freeze()).await.map_err(query("writing a backfill chunk"))?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.freeze()).await.map_err(query("writing a backfill chunk"))?;
    }
    sink.finish().await.map_err(query("writing a backfill chunk"))
}

/// One table projection's backfill.
pub struct Backfill<'a> {
    pub spec: &'a ProjectionSpec,
    /// The contract's columns with the view's types.
    pub columns: &'a [Column],
    /// Rows per chunk (a transaction on the consumer's side).
    pub chunk: usize,
    /// Set to stop between chunks.
    pub stop: &'a watch::Receiver<bool>,
}

/// Copies the contract view into the projection table from where the
/// backfill stands, then makes the projection live. Returns rows copied.
pub async fn run(
    b: &Backfill<'_>,
    source: &Client,
    target: &mut Client,
    progress: &Progress,
    mut on_chunk: impl FnMut(i64),
) -> Result<i64, ProjectError> {
    let spec = b.spec;
    let reader = match &spec.reader {
        Some(reader) => Some((reader, deed_pg::act_as(source, reader).await?)),
        None => None,
    };
    let reads = Reads { source, reader };
    copy_all(b, &reads, target, progress, &mut on_chunk).await
}

/// How the backfill reads the owner's side. With a consumer's login, each
/// read is a transaction of its own acting as the login (so its grants
/// decide what it sees), rolled back after: it only reads, and a grant
/// deed lends itself to act as the login (a managed service's admin holds
/// only ADMIN on the logins it made) goes with it, so none is left behind
/// whenever the process dies. No transaction spans the backfill either,
/// which would hold back vacuum on the owner's database for its length.
struct Reads<'a> {
    source: &'a Client,
    /// The login, and the statements that make a transaction act as it.
    reader: Option<(&'a deed_ident::Ident, String)>,
}

impl Reads<'_> {
    async fn begin(&self) -> Result<(), ProjectError> {
        let Some((reader, enter)) = &self.reader else { return Ok(()) };
        if let Err(e) = self.source.batch_execute(&format!("BEGIN; {enter}")).await {
            let _ = self.source.batch_execute("ROLLBACK").await;
            return Err(ProjectError::Setup(format!(
                "the backfill reads as {reader}, the consumer's login, so that its grants decide what it sees, but deed's connection cannot: {}; connect deed as a role that is a member of {reader}",
                crate::error::Failure::from_db(&e).message
            )));
        }
        Ok(())
    }

    async fn end(&self) -> Result<(), ProjectError> {
        if self.reader.is_none() {
            return Ok(());
        }
        self.source
            .batch_execute("ROLLBACK")
            .await
            .map_err(query("ending a read of the contract view"))
    }
}

async fn copy_all(
    b: &Backfill<'_>,
    reads: &Reads<'_>,
    target: &mut Client,
    progress: &Progress,
    on_chunk: &mut impl FnMut(i64),
) -> Result<i64, ProjectError> {
    let (spec, chunk, stop) = (b.spec, b.chunk, b.stop);
    let columns = b.columns;
    let t = spec.table().expect("only table projections are backfilled");
    let types: Vec<String> = t
        .key
        .iter()
        .map(|k| {
            columns
                .iter()
                .find(|c| c.name == k.as_str())
                .map(|c| c.sql_type.clone())
                .unwrap_or_else(|| "text".into())
        })
        .collect();
    let chunks = Chunks::new(t, types, chunk.max(1));
    let mut after = progress.after.clone();
    // Only rows already past where the copy stands (an earlier copy, a
    // table that had rows) need clearing; nothing else writes the table
    // while it is backfilled.
    let clear = has_rows_after(target, &chunks, after.as_ref()).await?;
    reads.begin().await?;
    let bounds = boundaries(reads.source, &chunks, after.as_ref()).await;
    reads.end().await?;
    let mut bounds = bounds?;
    let mut total = 0;
    loop {
        let upto = bounds.pop_front();
        let done = upto.is_none();
        let tx = target.transaction().await.map_err(query("starting a backfill transaction"))?;
        reads.begin().await?;
        let rows =
            copy_chunk(reads.source, &tx, &chunks, after.as_ref(), upto.as_ref(), clear).await;
        reads.end().await?;
        let rows = rows? as i64;
        store::backfilled(&tx, spec, upto.as_ref().or(after.as_ref()), rows, done).await?;
        tx.commit().await.map_err(query("committing a backfill chunk"))?;
        total += rows;
        on_chunk(rows);
        // A stop asked for ends the backfill between chunks; the next run
        // goes on from here.
        if done || *stop.borrow() {
            break;
        }
        after = upto;
    }
    Ok(total)
}
