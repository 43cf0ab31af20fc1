//! Partitions merged back into commit order.
//!
//! On Kafka one event type's events are spread over partitions by key;
//! each partition is in commit order, but a reader gets the partitions at
//! their own pace. A projection applies events in commit order (its
//! position is a point in that order), so the reader holds what it reads
//! per partition and hands over the earliest head of them all, but only
//! when no partition can still bring an earlier event:
//!
//! - a partition with events held brings nothing earlier than its head
//!   (a partition is in commit order; an event sent again after a relay
//!   crash is earlier, but it is a copy of one already handed over or
//!   still held before it, and the projection skips it by position);
//! - an empty partition brings nothing at or before its *safe* position:
//!   the last [`deed_events::Reached`] record whose offset for it the
//!   reader has read past (every event at or before that record's position
//!   is below that offset).

use std::collections::{BTreeMap, VecDeque};

/// A message read and not yet handed over.
#[derive(Debug)]
pub struct Held<T> {
    pub offset: i64,
    /// `""` sorts first: an unreadable message is handed over at once.
    pub position: String,
    pub item: T,
}

#[derive(Debug)]
struct Part<T> {
    held: VecDeque<Held<T>>,
    /// The offset after the last message read.
    next: i64,
    /// The offset every later record's requirement starts from.
    required: i64,
    /// Records not yet read past: (position, offset to reach).
    waiting: VecDeque<(String, i64)>,
    /// Every event at or before this is read.
    safe: String,
}

#[derive(Debug)]
pub struct Merge<T> {
    parts: BTreeMap<i32, Part<T>>,
}

impl<T> Merge<T> {
    /// Partitions read from `start`, each already holding every event
    /// below `known` (the offsets when the reader opened, at or after its
    /// last record was written).
    pub fn new(start: &BTreeMap<i32, i64>, known: &BTreeMap<i32, i64>) -> Merge<T> {
        let parts = start
            .iter()
            .map(|(p, s)| {
                let part = Part {
                    held: VecDeque::new(),
                    next: *s,
                    required: known.get(p).copied().unwrap_or(0),
                    waiting: VecDeque::new(),
                    safe: String::new(),
                };
                (*p, part)
            })
            .collect();
        Merge { parts }
    }

    /// A relay's record: every event at or before `position` is below
    /// `offsets` (partitions it names; for the others, below what earlier
    /// records and the opening said).
    pub fn reached(&mut self, position: &str, offsets: Option<&BTreeMap<i32, i64>>) {
        for (p, part) in self.parts.iter_mut() {
            if let Some(o) = offsets.and_then(|o| o.get(p)) {
                part.required = part.required.max(*o);
            }
            part.waiting.push_back((position.to_string(), part.required));
            part.advance();
        }
    }

    /// A message read from `partition`.
    pub fn push(&mut self, partition: i32, held: Held<T>) {
        let Some(part) = self.parts.get_mut(&partition) else { return };
        part.next = part.next.max(held.offset + 1);
        part.held.push_back(held);
        part.advance();
    }

    /// The earliest message no partition can precede, if there is one.
    pub fn pop(&mut self) -> Option<Held<T>> {
        let mut bound: Option<&str> = None;
        let mut earliest: Option<(i32, &str)> = None;
        for (p, part) in &self.parts {
            match part.held.front() {
                Some(h) => {
                    if earliest.is_none_or(|(_, e)| h.position.as_str() < e) {
                        earliest = Some((*p, h.position.as_str()));
                    }
                }
                None => {
                    if bound.is_none_or(|b| part.safe.as_str() < b) {
                        bound = Some(part.safe.as_str());
                    }
                }
            }
        }
        let (p, position) = earliest?;
        if bound.is_some_and(|b| position > b) {
            return None;
        }
        self.parts.get_mut(&p).and_then(|part| part.held.pop_front())
    }

    /// The partitions read.
    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.parts.keys().copied()
    }

    /// Messages held in `partition`.
    pub fn held(&self, partition: i32) -> usize {
        self.parts.get(&partition).map_or(0, |p| p.held.len())
    }

    /// Where each partition is to be read from next time: its first
    /// message held, or past the last read.
    pub fn resume_offsets(&self) -> BTreeMap<i32, i64> {
        self.parts
            .iter()
            .map(|(p, part)| (*p, part.held.front().map_or(part.next, |h| h.offset)))
            .collect()
    }
}

impl<T> Part<T> {
    fn advance(&mut self) {
        while self.waiting.front().is_some_and(|(_, o)| *o <= self.next) {
            let (position, _) = self.waiting.pop_front().expect("checked");
            if position > self.safe {
                self.safe = position;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(offset: i64, position: &str) -> Held<()> {
        Held { offset, position: position.into(), item: () }
    }

    fn drain(m: &mut Merge<()>) -> Vec<String> {
        std::iter::from_fn(|| m.pop()).map(|h| h.position).collect()
    }

    #[test]
    fn an_empty_partition_holds_back_later_events_until_a_record_covers_it() {
        let parts = BTreeMap::from([(0, 0), (1, 0)]);
        let mut m: Merge<()> = Merge::new(&parts, &BTreeMap::new());
        m.push(0, held(0, "b"));
        // Partition 1 may still bring "a".
        assert!(drain(&mut m).is_empty());
        m.reached("b", Some(&BTreeMap::from([(0, 1), (1, 1)])));
        assert!(drain(&mut m).is_empty(), "partition 1 is not read up to offset 1");
        m.push(1, held(0, "a"));
        assert_eq!(drain(&mut m), ["a", "b"]);
        assert_eq!(m.resume_offsets(), BTreeMap::from([(0, 1), (1, 1)]));
    }

    #[test]
    fn partitions_with_events_are_merged_by_position() {
        let parts = BTreeMap::from([(0, 5), (1, 9), (2, 0)]);
        let mut m: Merge<()> = Merge::new(&parts, &BTreeMap::from([(0, 7), (1, 9)]));
        m.push(0, held(5, "a"));
        m.push(0, held(6, "d"));
        m.push(1, held(9, "b"));
        m.push(1, held(10, "c"));
        // Partition 2 is empty with no record yet.
        assert!(drain(&mut m).is_empty());
        m.reached("c", None);
        // Everything at or before "c" is read (partitions 0 and 1 past
        // their known offsets, partition 2 never written).
        assert_eq!(drain(&mut m), ["a", "b", "c"]);
        assert_eq!(m.held(0), 1);
        assert_eq!(m.resume_offsets(), BTreeMap::from([(0, 6), (1, 11), (2, 0)]));
        m.push(2, held(0, "e"));
        // Partition 1 is empty and safe only up to "c": it may bring an
        // event between "c" and "d".
        assert!(drain(&mut m).is_empty());
        m.reached("e", Some(&BTreeMap::from([(2, 1)])));
        assert_eq!(drain(&mut m), ["d", "e"]);
    }

    #[test]
    fn a_copy_sent_again_after_a_crash_comes_out_and_is_skipped_by_position() {
        let parts = BTreeMap::from([(0, 0)]);
        let mut m: Merge<()> = Merge::new(&parts, &BTreeMap::new());
        m.push(0, held(0, "a"));
        m.push(0, held(1, "b"));
        m.push(0, held(2, "a"));
        m.push(0, held(3, "b"));
        m.push(0, held(4, "c"));
        assert_eq!(drain(&mut m), ["a", "b", "a", "b", "c"]);
    }
}
