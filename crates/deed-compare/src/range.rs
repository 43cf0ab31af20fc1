//! Key ranges and the buckets bounds cut them into.

use tokio_postgres::types::ToSql;

use crate::shape::Side;

/// Key columns as text, in key order.
pub type KeyTexts = Vec<String>;

/// `lo` inclusive, `hi` exclusive; `None` is unbounded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Range {
    pub lo: Option<KeyTexts>,
    pub hi: Option<KeyTexts>,
}

impl Range {
    /// The `width_bucket` bucket `i` of this range cut by `bounds` (bucket
    /// 0 is below the first bound, bucket `n` from the last one on).
    pub fn bucket(&self, bounds: &[KeyTexts], i: usize) -> Range {
        let lo = if i == 0 { self.lo.clone() } else { Some(bounds[i - 1].clone()) };
        let hi = if i == bounds.len() { self.hi.clone() } else { Some(bounds[i].clone()) };
        Range { lo, hi }
    }
}

/// Parameters of a statement, gathered as its SQL is written.
#[derive(Default)]
pub struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value and returns its `$n`.
    pub fn push(&mut self, v: impl ToSql + Sync + Send + 'static) -> usize {
        self.values.push(Box::new(v));
        self.values.len()
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// A key bound as one text parameter per column; returns the first `$n`.
    fn key(&mut self, key: &KeyTexts) -> usize {
        let first = self.values.len() + 1;
        for k in key {
            self.push(k.clone());
        }
        first
    }
}

/// The `WHERE` condition selecting `range` on `side` (`true` for all).
pub fn condition(side: &Side, range: &Range, params: &mut Params) -> String {
    let mut parts = Vec::new();
    if let Some(lo) = &range.lo {
        let n = params.key(lo);
        parts.push(format!("{} >= {}", side.key_expr(), side.key_at(n)));
    }
    if let Some(hi) = &range.hi {
        let n = params.key(hi);
        parts.push(format!("{} < {}", side.key_expr(), side.key_at(n)));
    }
    if parts.is_empty() { "true".into() } else { parts.join(" AND ") }
}

/// The bucket expression of `bounds` (`0` when there are none).
pub fn bucket(side: &Side, bounds: &[KeyTexts], params: &mut Params) -> String {
    if bounds.is_empty() {
        return "0".into();
    }
    let first = params.values.len() + 1;
    for column in 0..side.key_len() {
        let texts: Vec<String> = bounds.iter().map(|b| b[column].clone()).collect();
        params.push(texts);
    }
    format!("pg_catalog.width_bucket({}, {})", side.key_expr(), side.bounds_array(first))
}
