//! The event envelope: a stable JSON format, byte for byte the same
//! whichever sink carries it.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::names::event_subject;

/// Where an event sits in the owner's commit order: the commit's LSN and
/// the event's place in that transaction. Its text form (`000000000169AB30/00000002`)
/// sorts the way commits happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Which server's WAL `commit_lsn` is in: 0 until `deed split` first
    /// moves the service's writes, then one more at every move. LSNs of two
    /// servers are not comparable; (epoch, LSN) is.
    pub epoch: u32,
    pub commit_lsn: u64,
    pub index: u32,
}

impl Position {
    /// `<LSN>/<index>` in fixed-width hex, prefixed by `E<epoch>:` from
    /// epoch 1 on: text that sorts in commit order, also in SQL under any
    /// collation (epoch 0 positions start with a digit, later ones with
    /// `E`, and LSNs stay far below 2^60).
    pub fn text(&self) -> String {
        if self.epoch == 0 {
            format!("{:016X}/{:08X}", self.commit_lsn, self.index)
        } else {
            format!("E{:08X}:{:016X}/{:08X}", self.epoch, self.commit_lsn, self.index)
        }
    }
}

impl Position {
    /// The text of the last position before every event committed at or
    /// after `lsn`: a consumer that has reached it has seen exactly the
    /// commits before `lsn`.
    pub fn before_text(lsn: u64) -> String {
        match lsn.checked_sub(1) {
            Some(prev) => Position { epoch: 0, commit_lsn: prev, index: u32::MAX }.text(),
            None => String::new(),
        }
    }
}

/// An LSN as PostgreSQL prints it (`1/16B374`); [`parse_lsn`] reads it back.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// An LSN as PostgreSQL prints it (`1/16B374`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Insert,
    Update,
    Delete,
    Domain,
    /// The table was emptied (`TRUNCATE`): one event per table and state
    /// event, with an empty key; a projection clears its table.
    Truncate,
}

/// One event as it leaves deed.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// `<service>/<position>`: stable, so a redelivered event is
    /// recognisable as the same one.
    pub id: String,
    /// `<service>.<event>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The contract version the payload follows, for state events.
    pub contract: Option<String>,
    /// The event key: an object of the key columns for state events, the
    /// key given to `deed.emit` for domain events.
    pub key: Json,
    pub op: Op,
    pub position: String,
    /// The commit LSN, as PostgreSQL prints it.
    pub lsn: String,
    pub committed_at: String,
    /// The row (exactly the contract's columns) or the domain payload;
    /// `null` for a delete.
    pub payload: Json,
    /// Set on deletes: the key is gone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tombstone: bool,
    #[serde(skip)]
    pub at: Position,
    #[serde(skip)]
    pub event: String,
}

impl Envelope {
    pub fn new(service: &str, event: &str, at: Position, committed_at: String) -> Envelope {
        Envelope {
            id: format!("{service}/{}", at.text()),
            kind: format!("{service}.{event}"),
            contract: None,
            key: Json::Null,
            op: Op::Domain,
            position: at.text(),
            lsn: lsn_text(at.commit_lsn),
            committed_at,
            payload: Json::Null,
            tombstone: false,
            at,
            event: event.to_string(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// The NATS subject, `deed.<service>.<event>`.
    pub fn subject(&self) -> String {
        let (service, event) = self.kind.split_once('.').unwrap_or((&self.kind, ""));
        event_subject(service, event)
    }

    /// The key as a string, for logs and the inbox.
    pub fn key_text(&self) -> String {
        match &self.key {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Domain => "domain",
            Op::Truncate => "truncate",
        }
    }
}

/// An envelope as a consumer reads it back (from the inbox or JetStream).
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub contract: Option<String>,
    pub key: Json,
    pub op: Op,
    pub position: String,
    #[serde(default)]
    pub lsn: String,
    pub committed_at: String,
    #[serde(default)]
    pub payload: Json,
    #[serde(default)]
    pub tombstone: bool,
}

impl Received {
    /// Reads an envelope's JSON, saying what is wrong with a bad one.
    pub fn parse(bytes: &[u8]) -> Result<Received, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a deed envelope: {e}"))
    }

    /// Whether the event removes its key.
    pub fn is_delete(&self) -> bool {
        self.op == Op::Delete || self.tombstone
    }

    /// Whether the event empties the table its state comes from.
    pub fn is_truncate(&self) -> bool {
        self.op == Op::Truncate
    }

    /// The key in one canonical text form, to group events by key.
    pub fn key_text(&self) -> String {
        match &self.key {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_sort_like_commits() {
        let a = Position { epoch: 0, commit_lsn: 0x9_0000_0000, index: 2 }.text();
        let b = Position { epoch: 0, commit_lsn: 0xA_0000_0000, index: 0 }.text();
        // A later epoch sorts after every position of an earlier one,
        // whatever its LSN.
        let c = Position { epoch: 1, commit_lsn: 0x100, index: 0 }.text();
        let d = Position { epoch: 2, commit_lsn: 0x50, index: 0 }.text();
        assert!(b < c && c < d, "{b} {c} {d}");
        assert_eq!(c, "E00000001:0000000000000100/00000000");
        assert!(a < b);
        assert_eq!(a, "0000000900000000/00000002");
        let before = Position::before_text(0xA_0000_0000);
        assert!(before > a && before < b, "{before}");
        assert_eq!(parse_lsn("1/16B374"), Some(0x1_0016_B374));
    }

    #[test]
    fn serialises_stably() {
        let mut e = Envelope::new(
            "catalog",
            "product_changed",
            Position { epoch: 0, commit_lsn: 0x16B3748, index: 1 },
            "2026-11-21T16:15:49.146123Z".into(),
        );
        e.op = Op::Delete;
        e.key = serde_json::json!({"id": 7});
        e.tombstone = true;
        e.contract = Some("catalog.products.v1".into());
        assert_eq!(
            String::from_utf8(e.to_json()).unwrap(),
            r#"{"id":"catalog/00000000016B3748/00000001","type":"catalog.product_changed","contract":"catalog.products.v1","key":{"id":7},"op":"delete","position":"00000000016B3748/00000001","lsn":"0/16B3748","committed_at":"2026-11-21T16:15:49.146123Z","payload":null,"tombstone":true}"#
        );
        assert_eq!(e.subject(), "deed.catalog.product_changed");
        let back = Received::parse(&e.to_json()).unwrap();
        assert!(back.is_delete());
        assert_eq!(back.key_text(), r#"{"id":7}"#);
        assert_eq!(back.position, "00000000016B3748/00000001");
    }
}
