//! The first pass: both sides checksummed per key range in parallel, in
//! one snapshot each; ranges that differ are split again, and only small
//! ones have their rows (key and hash) read.
//!
//! Bounds come from a random sample of the projection table's keys (a
//! table, so it can be sampled), about one per [`Tuning::per_bucket`]
//! rows: one grouped pass per side finds the differing buckets, and each
//! differing bucket is small enough to read by key range. A bucket that
//! is still too large (a sample that missed a dense part, an empty
//! projection) is cut again from a sort of its own keys.

use std::collections::BTreeSet;

use deed_pg::Client;

use crate::error::{CompareError, query};
use crate::range::{Cut, Range};
use crate::read::{self, Checksums, RowHashes};
use crate::shape::Side;

#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Rows per bucket aimed at by the sample.
    pub per_bucket: i64,
    pub max_buckets: i64,
    /// A differing bucket up to this many rows is read; a larger one is
    /// cut into `pieces`.
    pub read_rows: i64,
    pub pieces: i64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { per_bucket: 32, max_buckets: 1 << 17, read_rows: 4096, pieces: 256 }
    }
}

/// A key whose row differs, with each side's row hash (`None`: no row).
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub key: String,
    pub source: Option<i64>,
    pub target: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub source_rows: i64,
    pub target_rows: i64,
    pub candidates: Vec<Candidate>,
    /// Key ranges checksummed, and rows read back.
    pub ranges: u64,
    pub rows_read: u64,
}

/// Runs the first pass, each side in a repeatable-read snapshot.
pub async fn scan(
    source: &Client,
    target: &Client,
    s: &Side,
    t: &Side,
    tuning: Tuning,
) -> Result<Scan, CompareError> {
    const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    tokio::try_join!(source.batch_execute(BEGIN), target.batch_execute(BEGIN))
        .map_err(query("starting the compare's snapshots"))?;
    let result = passes(source, target, s, t, tuning).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = tokio::try_join!(source.batch_execute(end), target.batch_execute(end));
    let scan = result?;
    ended.map_err(query("ending the compare's snapshots"))?;
    Ok(scan)
}

async fn passes(
    source: &Client,
    target: &Client,
    s: &Side,
    t: &Side,
    tuning: Tuning,
) -> Result<Scan, CompareError> {
    let cut = first_cut(target, s, t, tuning).await?;
    let mut out = Scan::default();
    let mut work: Vec<(Range, Cut)> = vec![(Range::default(), cut)];
    let mut top = true;
    while let Some((range, cut)) = work.pop() {
        let (cs, ct) = tokio::try_join!(
            read::checksums(source, s, &range, &cut),
            read::checksums(target, t, &range, &cut)
        )?;
        out.ranges += cs.len().max(ct.len()) as u64;
        if top {
            out.source_rows = cs.values().map(|v| v.0).sum();
            out.target_rows = ct.values().map(|v| v.0).sum();
            top = false;
        }
        let (small, large) = differing(&cs, &ct, tuning.read_rows);
        if !small.is_empty() {
            let (rs, rt) = tokio::try_join!(
                read::bucket_rows(source, s, &range, &cut, &small),
                read::bucket_rows(target, t, &range, &cut, &small)
            )?;
            out.rows_read += (rs.len() + rt.len()) as u64;
            out.candidates.extend(diff(rs, rt));
        }
        for (i, rows_s, rows_t) in large {
            let child = range.bucket(&cut, i);
            let (client, side, rows) =
                if rows_s >= rows_t { (source, s, rows_s) } else { (target, t, rows_t) };
            let sub = read::split(client, side, &child, rows, tuning.pieces).await?;
            if sub.is_empty() {
                // Nothing to cut by: read the range whole.
                let whole = Cut::Bounds(Vec::new());
                let (rs, rt) = tokio::try_join!(
                    read::bucket_rows(source, s, &child, &whole, &[0]),
                    read::bucket_rows(target, t, &child, &whole, &[0])
                )?;
                out.rows_read += (rs.len() + rt.len()) as u64;
                out.candidates.extend(diff(rs, rt));
            } else {
                work.push((child, Cut::Bounds(sub)));
            }
        }
    }
    for c in &mut out.candidates {
        c.key = t.json_key(std::mem::take(&mut c.key));
    }
    out.candidates.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The first cut: for a single integer key, a shift that makes buckets
/// of about `per_bucket` rows over the key's span (one operation a row,
/// no sample); otherwise bounds from a sample of the projection's keys.
async fn first_cut(
    target: &Client,
    s: &Side,
    t: &Side,
    tuning: Tuning,
) -> Result<Cut, CompareError> {
    if s.integer_key() && t.integer_key() {
        if let Some((lo, hi, rows)) = read::integer_span(target, t).await? {
            let buckets = (rows / tuning.per_bucket as f64).clamp(1.0, tuning.max_buckets as f64);
            let width = (i128::from(hi) - i128::from(lo)) as f64 / buckets;
            let shift = if width < 2.0 { 0 } else { width.log2().floor() as u32 };
            return Ok(Cut::Shift(shift.min(62)));
        }
    }
    let bounds = read::sample(target, t, tuning.per_bucket, tuning.max_buckets).await?;
    Ok(Cut::Bounds(bounds.unwrap_or_default()))
}

/// Buckets whose checksums differ: those small enough to read, and the
/// others with each side's row count.
fn differing(cs: &Checksums, ct: &Checksums, read_rows: i64) -> (Vec<i64>, Vec<(i64, i64, i64)>) {
    let ids: BTreeSet<i64> = cs.keys().chain(ct.keys()).copied().collect();
    let mut small = Vec::new();
    let mut large = Vec::new();
    for i in ids {
        let a = cs.get(&i).copied().unwrap_or((0, 0));
        let b = ct.get(&i).copied().unwrap_or((0, 0));
        if a == b {
            continue;
        }
        if a.0.max(b.0) <= read_rows {
            small.push(i);
        } else {
            large.push((i, a.0, b.0));
        }
    }
    (small, large)
}

/// Keys on one side only, or with different hashes.
fn diff(mut source: RowHashes, target: RowHashes) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (key, t) in target {
        match source.remove(&key) {
            Some(s) if s == t => {}
            s => out.push(Candidate { key, source: s, target: Some(t) }),
        }
    }
    out.extend(source.into_iter().map(|(key, s)| Candidate { key, source: Some(s), target: None }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_buckets_are_split_by_size() {
        let cs: Checksums = [(0, (10, 1)), (1, (5000, 2)), (2, (3, 3))].into_iter().collect();
        let ct: Checksums = [(0, (10, 1)), (1, (5000, 9)), (3, (1, 4))].into_iter().collect();
        let (small, large) = differing(&cs, &ct, 4096);
        assert_eq!(small, vec![2, 3]);
        assert_eq!(large, vec![(1, 5000, 5000)]);
    }

    #[test]
    fn rows_on_one_side_or_with_other_hashes_are_candidates() {
        let s: RowHashes =
            [("a".into(), 1), ("b".into(), 2), ("c".into(), 3)].into_iter().collect();
        let t: RowHashes =
            [("a".into(), 1), ("b".into(), 5), ("d".into(), 4)].into_iter().collect();
        let mut got = diff(s, t);
        got.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            got,
            vec![
                Candidate { key: "b".into(), source: Some(2), target: Some(5) },
                Candidate { key: "c".into(), source: Some(3), target: None },
                Candidate { key: "d".into(), source: None, target: Some(4) },
            ]
        );
    }
}
