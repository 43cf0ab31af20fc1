//! What the relay records on a partitioned bus (Kafka) after each
//! delivery: the position up to which every event of the service is
//! stored, and the offset each partition it wrote to had reached by then.
//!
//! A reader of several partitions can hand events over in commit order
//! only if it knows that a partition with nothing to read holds no earlier
//! event still on its way: the record says so. An event at or before
//! `position` is in its partition below `offsets[topic][partition]`, so a
//! reader past those offsets has seen every such event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// The position of the last event stored, in its text form.
    pub position: String,
    /// Topic → partition → the offset after the last event this relay
    /// stored there.
    pub offsets: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl Reached {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain JSON")
    }

    pub fn parse(raw: &[u8]) -> Option<Reached> {
        serde_json::from_slice(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut r = Reached { position: "0000000001000000/00000001".into(), ..Default::default() };
        r.offsets.entry("deed.users.user_changed".into()).or_default().insert(3, 17);
        assert_eq!(
            String::from_utf8(r.to_json()).unwrap(),
            r#"{"position":"0000000001000000/00000001","offsets":{"deed.users.user_changed":{"3":17}}}"#
        );
        assert_eq!(Reached::parse(&r.to_json()), Some(r));
        assert_eq!(Reached::parse(b"not json"), None);
    }
}
