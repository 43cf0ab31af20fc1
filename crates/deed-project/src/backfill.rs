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

use std::time::{Duration, Instant};

use deed_pg::Client;
use serde_json::Value as Json;

use crate::apply::Applier;
use crate::error::{ProjectError, query};
use crate::spec::{ProjectionSpec, TableSpec};
use crate::store::{self, Progress};

/// How long the fence waits for older transactions before giving up.
const FENCE_TIMEOUT: Duration = Duration::from_secs(600);

/// Takes the fence on the owner's database: the position after which
/// events must be replayed over the copy.
pub async fn fence(source: &Client) -> Result<String, ProjectError> {
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
    let lsn = deed_events::parse_lsn(&lsn)
        .ok_or_else(|| ProjectError::Setup(format!("unexpected LSN {lsn}")))?;
    Ok(deed_events::Position::before_text(lsn))
}

/// The statements of one table's backfill.
struct Chunks {
    first: String,
    next: String,
}

impl Chunks {
    fn new(t: &TableSpec, chunk: usize) -> Chunks {
        let view = t.view.quoted();
        let cols: Vec<String> = t.columns.iter().map(|c| c.quoted()).collect();
        let key: Vec<String> = t.key.iter().map(|k| k.quoted()).collect();
        let desc: Vec<String> = key.iter().map(|k| format!("{k} DESC")).collect();
        let key_obj: Vec<String> = t
            .key
            .iter()
            .map(|k| format!("{}, {}", deed_ident::quote_literal(k.as_str()), k.quoted()))
            .collect();
        let body = |filter: &str| {
            format!(
                "WITH c AS (SELECT {cols} FROM {view} v {filter} ORDER BY {key} LIMIT {chunk})
                 SELECT coalesce(pg_catalog.json_agg(c ORDER BY {key}), '[]')::text, count(*),
                        (SELECT pg_catalog.json_build_object({obj})::text FROM c ORDER BY {desc} LIMIT 1)
                   FROM c",
                cols = cols.join(", "),
                key = key.join(", "),
                obj = key_obj.join(", "),
                desc = desc.join(", "),
            )
        };
        let vk: Vec<String> = key.iter().map(|k| format!("v.{k}")).collect();
        let after = format!(
            "WHERE ({}) > (SELECT {} FROM pg_catalog.jsonb_populate_record(NULL::{view}, $1::text::jsonb))",
            vk.join(", "),
            key.join(", ")
        );
        Chunks { first: body(""), next: body(&after) }
    }
}

/// One chunk as read: rows as a JSON array, their count, the last key.
struct Chunk {
    rows: String,
    count: i64,
    last: Option<Json>,
}

async fn read(
    source: &Client,
    chunks: &Chunks,
    after: Option<&Json>,
) -> Result<Chunk, ProjectError> {
    let row = match after {
        None => source.query_one(&chunks.first, &[]).await,
        Some(a) => source.query_one(&chunks.next, &[&a.to_string()]).await,
    }
    .map_err(query("reading the contract view for the backfill"))?;
    let last: Option<String> = row.get(2);
    Ok(Chunk {
        rows: row.get(0),
        count: row.get(1),
        last: last.and_then(|l| serde_json::from_str(&l).ok()),
    })
}

/// Rows of the projection table in (after, upto] that the chunk does not
/// have: removed at the source before the copy reached them.
fn stale_sql(t: &TableSpec, lower: bool, upper: bool) -> String {
    let table = t.table.quoted();
    let key: Vec<String> = t.key.iter().map(|k| k.quoted()).collect();
    let tk: Vec<String> = key.iter().map(|k| format!("t.{k}")).collect();
    let of = |param: &str, set: bool| {
        let f = if set { "jsonb_populate_recordset" } else { "jsonb_populate_record" };
        format!(
            "SELECT {} FROM pg_catalog.{f}(NULL::{table}, {param}::text::jsonb)",
            key.join(", ")
        )
    };
    let mut sql =
        format!("DELETE FROM {table} AS t WHERE ({}) NOT IN ({})", tk.join(", "), of("$1", true));
    if lower {
        sql.push_str(&format!(" AND ({}) > ({})", tk.join(", "), of("$2", false)));
    }
    if upper {
        sql.push_str(&format!(" AND ({}) <= ({})", tk.join(", "), of("$3", false)));
    }
    sql
}

/// Copies the contract view into the projection table from where the
/// backfill stands, then makes the projection live. Returns rows copied.
pub async fn run(
    source: &Client,
    target: &mut Client,
    applier: &Applier,
    progress: &Progress,
    chunk: usize,
    mut on_chunk: impl FnMut(i64),
) -> Result<i64, ProjectError> {
    let spec: &ProjectionSpec = &applier.spec;
    let t = spec.table().expect("only table projections are backfilled");
    let upsert = &applier.statements().expect("a table projection").upsert;
    if let Some(reader) = &spec.reader {
        source
            .batch_execute(&format!("SET ROLE {}", reader.quoted()))
            .await
            .map_err(|e| ProjectError::Setup(format!(
                "the backfill reads as {reader}, the consumer's login, so that its grants decide what it sees, but deed's connection cannot: {}; connect deed as a role that is a member of {reader}",
                crate::error::Failure::from_db(&e).message
            )))?;
    }
    let chunks = Chunks::new(t, chunk);
    let mut after = progress.after.clone();
    let mut total = 0;
    let mut next = read(source, &chunks, after.as_ref()).await;
    loop {
        let c = next?;
        let done = (c.count as usize) < chunk;
        let tx = target.transaction().await.map_err(query("starting a backfill transaction"))?;
        // Read the next chunk while this one is written.
        let write = async {
            tx.execute(upsert.as_str(), &[&c.rows]).await?;
            let after_text = after.as_ref().map(|a| a.to_string());
            let last_text = c.last.as_ref().map(|l| l.to_string());
            let upper = !done && c.last.is_some();
            let stale = stale_sql(t, after.is_some(), upper);
            match (after_text.as_ref(), upper) {
                (Some(a), true) => tx.execute(&stale, &[&c.rows, a, &last_text]).await,
                (Some(a), false) => tx.execute(&stale, &[&c.rows, a]).await,
                (None, true) => {
                    tx.execute(&stale.replace("$3", "$2"), &[&c.rows, &last_text]).await
                }
                (None, false) => tx.execute(&stale, &[&c.rows]).await,
            }
        };
        let (written, read_ahead) = if done {
            (write.await, None)
        } else {
            let (w, r) = tokio::join!(write, read(source, &chunks, c.last.as_ref()));
            (w, Some(r))
        };
        written.map_err(query("writing a backfill chunk"))?;
        store::backfilled(&tx, spec, c.last.as_ref().or(after.as_ref()), c.count, done).await?;
        tx.commit().await.map_err(query("committing a backfill chunk"))?;
        total += c.count;
        on_chunk(c.count);
        if done {
            break;
        }
        after = c.last;
        next = read_ahead.expect("read ahead unless done");
    }
    if spec.reader.is_some() {
        source
            .batch_execute("RESET ROLE")
            .await
            .map_err(query("resetting the role after the backfill"))?;
    }
    Ok(total)
}
