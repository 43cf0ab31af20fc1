//! Which UPDATEs change nothing a state event publishes (`unchanged =
//! "skip"`, the default): a worker bumping `login_count` or `updated_at`
//! is not news for a consumer of `id, email`.
//!
//! When the table logs its old rows (replica identity full, which deed
//! sets whenever a payload column can be stored out of line or the key is
//! not the primary key), the old and new values are compared exactly.
//! Otherwise the relay remembers a 128-bit digest of each key's last
//! published payload, in memory and bounded: after a restart or once the
//! memory is full, the first update of a key is published even if it
//! changed nothing, which consumers absorb (a state event is the whole
//! row, applied idempotently). A real change is never skipped.

use rustc_hash::FxHashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::pgoutput::Value;

/// Entries kept before the memory starts over (about 40 bytes each).
pub const MAX_KEYS: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Seen {
    /// Keyed by a 64-bit hash of (event, key): two keys sharing one can
    /// only make the relay publish, never skip, since a payload carries
    /// its key. The digests are already uniform, so the map need not hash
    /// them again.
    digests: FxHashMap<u64, u128>,
}

/// A digest of the values of the given columns: two SipHash passes with
/// different seeds, fed in one walk over the values.
pub fn digest<'a, 'v: 'a>(values: impl Iterator<Item = &'a Value<'v>>) -> u128 {
    let (mut a, mut b) = (DefaultHasher::new(), DefaultHasher::new());
    1u8.hash(&mut a);
    2u8.hash(&mut b);
    for v in values {
        let (tag, text): (u8, &str) = match v {
            Value::Null => (0, ""),
            Value::Unchanged => (1, ""),
            Value::Text(t) => (2, t),
        };
        for h in [&mut a, &mut b] {
            tag.hash(h);
            // `str`'s Hash writes its length too, so values never run together.
            text.hash(h);
        }
    }
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// With the whole old row logged: whether no column at `columns` changed.
/// A value not sent because it did not change (`Unchanged`) is the same.
pub fn same_values(old: &[Value], new: &[Value], columns: &[usize]) -> Option<bool> {
    let mut same = true;
    for &i in columns {
        match (old.get(i)?, new.get(i)?) {
            (_, Value::Unchanged) => {}
            // An old value that was not logged: no exact answer.
            (Value::Unchanged, _) => return None,
            (a, b) => same &= a == b,
        }
    }
    Some(same)
}

impl Seen {
    fn slot(event: &str, key: &str) -> u64 {
        let mut h = DefaultHasher::new();
        event.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    }

    /// Records the payload digest published for a key; returns whether it
    /// equals the one published before.
    pub fn publish(&mut self, event: &str, key: &str, digest: u128) -> bool {
        if self.digests.len() >= MAX_KEYS {
            self.digests.clear();
        }
        self.digests.insert(Self::slot(event, key), digest) == Some(digest)
    }

    /// Whether this payload is the one last published for the key.
    pub fn is_last(&self, event: &str, key: &str, digest: u128) -> bool {
        self.digests.get(&Self::slot(event, key)) == Some(&digest)
    }

    pub fn forget(&mut self, event: &str, key: &str) {
        self.digests.remove(&Self::slot(event, key));
    }

    /// Forgets every key (a TRUNCATE: whatever comes next is new). The
    /// slots hash event and key together, so all events go; that only
    /// means a few more publishes.
    pub fn forget_all(&mut self) {
        self.digests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value<'_> {
        Value::Text(s)
    }

    #[test]
    fn only_published_columns_count() {
        let old = [t("1"), t("a@x"), t("5")];
        let new = [t("1"), t("a@x"), t("6")];
        assert_eq!(same_values(&old, &new, &[0, 1]), Some(true));
        assert_eq!(same_values(&old, &new, &[0, 2]), Some(false));
        assert_eq!(same_values(&old, &[t("1"), Value::Unchanged, t("5")], &[1]), Some(true));
        assert_eq!(same_values(&[t("1"), Value::Unchanged], &[t("1"), t("b")], &[1]), None);
    }

    #[test]
    fn the_last_payload_of_each_key_is_remembered() {
        let mut seen = Seen::default();
        let a = digest([t("1"), t("a")].iter());
        let b = digest([t("1"), t("b")].iter());
        assert_ne!(a, b);
        assert_ne!(digest([Value::Null].iter()), digest([t("")].iter()));
        assert!(!seen.publish("e", "1", a));
        assert!(seen.is_last("e", "1", a));
        assert!(!seen.is_last("other", "1", a));
        assert!(!seen.publish("e", "1", b));
        seen.forget("e", "1");
        assert!(!seen.is_last("e", "1", b));
    }
}
