//! The statements a compare runs on each side: per-bucket checksums,
//! the rows of small buckets, the rows of given keys, and bounds.

use std::collections::{BTreeMap, HashMap};

use deed_pg::Client;
use futures_util::future::try_join_all;

use crate::error::{CompareError, query};
use crate::range::{Cut, KeyTexts, Params, Range, bucket, condition};
use crate::shape::Side;

/// Rows and the XOR of their hashes, per bucket.
pub type Checksums = BTreeMap<i64, (i64, i64)>;

/// A row's key (JSON text) and its hash.
pub type RowHashes = HashMap<String, i64>;

/// Below this many buckets, their rows are read by key range (an index
/// scan each); above it, by one pass that keeps the wanted buckets.
const RANGE_READS: usize = 32;

/// Checksums of `range` cut by `cut`: one pass, hashed on the server.
pub async fn checksums(
    client: &Client,
    side: &Side,
    range: &Range,
    cut: &Cut,
) -> Result<Checksums, CompareError> {
    let mut p = Params::default();
    let b = bucket(side, cut, &mut p);
    let cond = condition(side, range, &mut p);
    let sql = format!(
        "SELECT {b}, count(*), coalesce(pg_catalog.bit_xor({}), 0) FROM {} WHERE {cond} GROUP BY 1",
        side.row_hash(),
        side.relation.quoted()
    );
    let rows = client.query(&sql, &p.refs()).await.map_err(query("checksumming key ranges"))?;
    Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
}

/// The rows (key and hash) of the given buckets of `range`.
pub async fn bucket_rows(
    client: &Client,
    side: &Side,
    range: &Range,
    cut: &Cut,
    buckets: &[i64],
) -> Result<RowHashes, CompareError> {
    let select = format!("{}, {}", side.match_key(), side.row_hash());
    let mut out = RowHashes::new();
    if buckets.len() <= RANGE_READS {
        let reads = buckets.iter().map(|&i| {
            let r = range.bucket(cut, i);
            let mut p = Params::default();
            let cond = condition(side, &r, &mut p);
            let sql = format!("SELECT {select} FROM {} WHERE {cond}", side.relation.quoted());
            async move { client.query(&sql, &p.refs()).await }
        });
        for rows in
            try_join_all(reads).await.map_err(query("reading the rows of differing ranges"))?
        {
            out.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
        }
        return Ok(out);
    }
    let mut p = Params::default();
    let b = bucket(side, cut, &mut p);
    let cond = condition(side, range, &mut p);
    let wanted = p.push(buckets.to_vec());
    let sql = format!(
        "SELECT k, h FROM (SELECT {b} AS b, {} AS k, {} AS h FROM {} WHERE {cond}) s
          WHERE s.b = ANY (${wanted}::int8[])",
        side.match_key(),
        side.row_hash(),
        side.relation.quoted()
    );
    let rows = client
        .query(&sql, &p.refs())
        .await
        .map_err(query("reading the rows of differing ranges"))?;
    out.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    Ok(out)
}

/// A row read by key: its hash and one hash per compared column.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedRow {
    pub hash: i64,
    pub columns: Vec<i64>,
}

/// The rows of the given keys (JSON texts).
pub async fn key_rows(
    client: &Client,
    side: &Side,
    keys: &[String],
) -> Result<HashMap<String, KeyedRow>, CompareError> {
    let mut out = HashMap::new();
    for chunk in keys.chunks(10_000) {
        let json = format!("[{}]", chunk.join(","));
        let sql = format!(
            "SELECT {}, {}, {} FROM {} WHERE {} IN ({})",
            side.key_json(),
            side.row_hash(),
            side.column_hashes(),
            side.relation.quoted(),
            side.plain_key(),
            side.keys_from_json(1)
        );
        let rows = client.query(&sql, &[&json]).await.map_err(query("re-reading keys"))?;
        out.extend(rows.iter().map(|r| (r.get(0), KeyedRow { hash: r.get(1), columns: r.get(2) })));
    }
    Ok(out)
}

/// About `pieces` bounds inside `range`, from a sort of its keys: for a
/// range too large to read whole, on whichever side holds more of it.
pub async fn split(
    client: &Client,
    side: &Side,
    range: &Range,
    rows: i64,
    pieces: i64,
) -> Result<Vec<KeyTexts>, CompareError> {
    let mut p = Params::default();
    let cond = condition(side, range, &mut p);
    let step = p.push((rows / pieces.max(1)).max(1));
    let sql = format!(
        "SELECT {names} FROM (SELECT {texts}, pg_catalog.row_number() OVER (ORDER BY {key}) AS rn
                             FROM {rel} WHERE {cond}) s
          WHERE s.rn % ${step}::int8 = 0 ORDER BY s.rn",
        names = key_names(side),
        texts = named_texts(side),
        key = side.key_expr(),
        rel = side.relation.quoted(),
    );
    let rows = client.query(&sql, &p.refs()).await.map_err(query("splitting a key range"))?;
    Ok(dedup(rows.iter().map(|r| (0..side.key_len()).map(|i| r.get(i)).collect()).collect()))
}

/// Bounds for the whole table from a random sample of its rows, about
/// one per `per_bucket` rows and at most `max`. Tables only; `None` for
/// a relation that cannot be sampled.
pub async fn sample(
    client: &Client,
    side: &Side,
    per_bucket: i64,
    max: i64,
) -> Result<Option<Vec<KeyTexts>>, CompareError> {
    let row = client
        .query_one(
            "SELECT c.relkind::text, c.reltuples::float8,
                    pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::int8
               FROM pg_catalog.pg_class c WHERE c.oid = $1::text::regclass",
            &[&side.relation.quoted()],
        )
        .await
        .map_err(query("sizing the projection table"))?;
    let (kind, tuples, pages): (String, f64, i64) = (row.get(0), row.get(1), row.get(2));
    if kind != "r" && kind != "m" {
        return Ok(None);
    }
    let estimate = if tuples > 0.0 { tuples } else { (pages.max(1) * 60) as f64 };
    let wanted = (estimate / per_bucket as f64).clamp(1.0, max as f64);
    let percent = (100.0 * 2.0 * wanted / estimate).clamp(0.001, 100.0);
    let sql = format!(
        "SELECT {names} FROM (SELECT {texts}, pg_catalog.row_number() OVER (ORDER BY {key}) AS rn,
                                    count(*) OVER () AS n
                               FROM {rel} TABLESAMPLE BERNOULLI ($1::float8)) s
          WHERE s.rn % greatest(1, (s.n / $2::float8)::int8) = 0 ORDER BY s.rn",
        names = key_names(side),
        texts = named_texts(side),
        key = side.key_expr(),
        rel = side.relation.quoted(),
    );
    let rows = client
        .query(&sql, &[&percent, &wanted])
        .await
        .map_err(query("sampling the projection's keys"))?;
    Ok(Some(dedup(rows.iter().map(|r| (0..side.key_len()).map(|i| r.get(i)).collect()).collect())))
}

/// For a single integer key: its least and greatest values (from the
/// index when there is one) and the planner's row estimate.
pub async fn integer_span(
    client: &Client,
    side: &Side,
) -> Result<Option<(i64, i64, f64)>, CompareError> {
    let sql = format!(
        "SELECT min({k})::int8, max({k})::int8,
                (SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::float8
                             ELSE pg_catalog.pg_relation_size(c.oid)::float8 / 100 END
                   FROM pg_catalog.pg_class c WHERE c.oid = $1::text::regclass)
           FROM {rel}",
        k = side.plain_key(),
        rel = side.relation.quoted()
    );
    let row = client
        .query_one(&sql, &[&side.relation.quoted()])
        .await
        .map_err(query("reading the projection's key span"))?;
    let (lo, hi, rows): (Option<i64>, Option<i64>, Option<f64>) =
        (row.get(0), row.get(1), row.get(2));
    Ok(lo.zip(hi).map(|(lo, hi)| (lo, hi, rows.unwrap_or(0.0))))
}

fn key_names(side: &Side) -> String {
    (0..side.key_len()).map(|i| format!("s.k{i}")).collect::<Vec<_>>().join(", ")
}

fn named_texts(side: &Side) -> String {
    side.key_texts()
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} AS k{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn dedup(mut bounds: Vec<KeyTexts>) -> Vec<KeyTexts> {
    bounds.dedup();
    bounds
}
