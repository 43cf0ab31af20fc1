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

/// How a range is cut into buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum Cut {
    /// `width_bucket` over sorted bounds: any key (bucket 0 is below the
    /// first bound, bucket `n` from the last one on).
    Bounds(Vec<KeyTexts>),
    /// A single integer key shifted right: bucket `i` holds keys from
    /// `i << s` to `(i + 1) << s`, one operation a row.
    Shift(u32),
}

impl Range {
    /// Bucket `i` of this range cut by `cut`.
    pub fn bucket(&self, cut: &Cut, i: i64) -> Range {
        match cut {
            Cut::Bounds(bounds) => {
                let i = i as usize;
                let lo = if i == 0 { self.lo.clone() } else { Some(bounds[i - 1].clone()) };
                let hi = if i == bounds.len() { self.hi.clone() } else { Some(bounds[i].clone()) };
                Range { lo, hi }
            }
            Cut::Shift(s) => {
                let at = |n: i128| {
                    let v = n << s;
                    (i128::from(i64::MIN)..=i128::from(i64::MAX))
                        .contains(&v)
                        .then(|| vec![v.to_string()])
                };
                Range { lo: at(i128::from(i)), hi: at(i128::from(i) + 1) }
            }
        }
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

/// The bucket expression of `cut`, as `int8`.
pub fn bucket(side: &Side, cut: &Cut, params: &mut Params) -> String {
    let bounds = match cut {
        Cut::Shift(s) => return format!("({} >> {s})::pg_catalog.int8", side.key_expr()),
        Cut::Bounds(b) if b.is_empty() => return "0::pg_catalog.int8".into(),
        Cut::Bounds(b) => b,
    };
    let first = params.values.len() + 1;
    for column in 0..side.key_len() {
        let texts: Vec<String> = bounds.iter().map(|b| b[column].clone()).collect();
        params.push(texts);
    }
    format!(
        "pg_catalog.width_bucket({}, {})::pg_catalog.int8",
        side.key_expr(),
        side.bounds_array(first)
    )
}
