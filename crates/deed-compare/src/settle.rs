//! Re-checking the keys the first pass found different, at later
//! consistent points, until each one is equal, proven different, or
//! still changing.
//!
//! A difference is real when two looks in a row see it the same: the same
//! source row and the same projection row, the later look taken after a
//! fence the projection has passed, which came after the earlier look's
//! source read. A key that changed on either side between two looks is in
//! flight and looked at again, up to the last round; a row deleted and
//! inserted again between two looks (the same source row, a projection
//! row in between) is caught the same way.

use std::collections::HashMap;

use deed_ident::Ident;
use deed_pg::Client;

use crate::error::CompareError;
use crate::follow::Fence;
use crate::read::{self, KeyedRow};
use crate::scan::Candidate;
use crate::shape::Side;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settled {
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    /// Keys and the columns that differ.
    pub different: Vec<(String, Vec<String>)>,
    pub in_flight: Vec<String>,
    /// Consistent points looked at after the first pass.
    pub rechecks: u32,
    /// The last fence waited for, when there was one.
    pub fence: Option<u64>,
}

pub struct Sides<'a> {
    pub source: &'a Client,
    pub target: &'a Client,
    pub s: &'a Side,
    pub t: &'a Side,
    pub columns: &'a [Ident],
}

/// Settles `candidates`, at most `rounds` more looks.
pub async fn settle<F: Fence>(
    sides: &Sides<'_>,
    candidates: Vec<Candidate>,
    mut follow: Option<&mut F>,
    rounds: u32,
) -> Result<Settled, CompareError> {
    let mut out = Settled::default();
    let mut pending: Vec<Pending> =
        candidates.into_iter().map(|c| (c.key, (c.source, c.target))).collect();
    while !pending.is_empty() && out.rechecks < rounds {
        out.rechecks += 1;
        if let Some(f) = follow.as_deref_mut() {
            out.fence = Some(f.catch_up(sides.source, sides.target).await?);
        }
        let keys: Vec<String> = pending.iter().map(|(k, _)| k.clone()).collect();
        // The projection first: then the source read is the later one,
        // and a source row unchanged since the last look was there before
        // the fence the projection has passed.
        let t_rows = read::key_rows(sides.target, sides.t, &keys).await?;
        let s_rows = read::key_rows(sides.source, sides.s, &keys).await?;
        pending = classify(pending, &s_rows, &t_rows, sides.columns, &mut out);
    }
    out.in_flight = pending.into_iter().map(|(k, _)| k).collect();
    for list in [&mut out.missing, &mut out.extra, &mut out.in_flight] {
        list.sort();
    }
    out.different.sort();
    Ok(out)
}

/// A key still being looked at, with the source's and the projection's
/// row hashes at the last look.
type Pending = (String, (Option<i64>, Option<i64>));

/// Sorts one look's keys into settled kinds; returns those still moving.
fn classify(
    pending: Vec<Pending>,
    s_rows: &HashMap<String, KeyedRow>,
    t_rows: &HashMap<String, KeyedRow>,
    columns: &[Ident],
    out: &mut Settled,
) -> Vec<Pending> {
    let mut next = Vec::new();
    for (key, before) in pending {
        let s = s_rows.get(&key);
        let t = t_rows.get(&key);
        let now = (s.map(|r| r.hash), t.map(|r| r.hash));
        if now.0 == now.1 {
            continue;
        }
        if now != before {
            next.push((key, now));
            continue;
        }
        match (s, t) {
            (Some(_), None) => out.missing.push(key),
            (None, Some(_)) => out.extra.push(key),
            (Some(s), Some(t)) => {
                let differ = columns
                    .iter()
                    .zip(s.columns.iter().zip(&t.columns))
                    .filter(|(_, (a, b))| a != b)
                    .map(|(c, _)| c.as_str().to_string())
                    .collect();
                out.different.push((key, differ));
            }
            (None, None) => {}
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hash: i64, columns: &[i64]) -> KeyedRow {
        KeyedRow { hash, columns: columns.to_vec() }
    }

    #[test]
    fn a_difference_seen_the_same_twice_is_real() {
        let cols: Vec<Ident> =
            ["id", "name", "price"].iter().map(|c| Ident::new(*c).unwrap()).collect();
        let s: HashMap<String, KeyedRow> = [
            ("same".to_string(), row(1, &[1, 2, 3])),
            ("moved".to_string(), row(7, &[1, 2, 7])),
            ("changed".to_string(), row(4, &[1, 5, 4])),
            ("missing".to_string(), row(6, &[1, 1, 1])),
        ]
        .into_iter()
        .collect();
        let t: HashMap<String, KeyedRow> = [
            ("same".to_string(), row(1, &[1, 2, 3])),
            ("moved".to_string(), row(2, &[1, 2, 3])),
            ("changed".to_string(), row(9, &[1, 2, 4])),
            ("extra".to_string(), row(8, &[1, 1, 1])),
        ]
        .into_iter()
        .collect();
        let pending = vec![
            ("same".to_string(), (Some(0), Some(1))),
            ("moved".to_string(), (Some(3), Some(2))),
            ("changed".to_string(), (Some(4), Some(9))),
            ("missing".to_string(), (Some(6), None)),
            ("extra".to_string(), (None, Some(8))),
            // Deleted, inserted again and applied, deleted again: the same
            // source row, another projection row.
            ("again".to_string(), (None, None)),
        ];
        let mut t = t;
        t.insert("again".to_string(), row(5, &[1, 1, 1]));
        let mut out = Settled::default();
        let next = classify(pending, &s, &t, &cols, &mut out);
        assert_eq!(
            next,
            vec![("moved".to_string(), (Some(7), Some(2))), ("again".to_string(), (None, Some(5)))]
        );
        assert_eq!(out.missing, vec!["missing"]);
        assert_eq!(out.extra, vec!["extra"]);
        assert_eq!(out.different, vec![("changed".to_string(), vec!["name".to_string()])]);
    }
}
