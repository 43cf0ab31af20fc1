//! The event envelope: a stable JSON format, byte for byte the same
//! whichever sink carries it.

use std::sync::Arc;

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
        let mut s = String::with_capacity(35);
        self.write_text(&mut s);
        s
    }

    /// Appends [`Position::text`] to `out`.
    pub fn write_text(&self, out: &mut String) {
        if self.epoch != 0 {
            out.push('E');
            push_hex(out, u64::from(self.epoch), 8);
            out.push(':');
        }
        push_hex(out, self.commit_lsn, 16);
        out.push('/');
        push_hex(out, u64::from(self.index), 8);
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
    let mut s = String::with_capacity(17);
    push_lsn(&mut s, lsn);
    s
}

/// Appends [`lsn_text`] to `out`.
pub fn push_lsn(out: &mut String, lsn: u64) {
    let hi = lsn >> 32;
    let lo = lsn & 0xFFFF_FFFF;
    let digits = |v: u64| (64 - v.leading_zeros() as usize).div_ceil(4).max(1);
    push_hex(out, hi, digits(hi));
    out.push('/');
    push_hex(out, lo, digits(lo));
}

/// Appends the low `width` hex digits of `v`, upper case, zero-padded.
fn push_hex(out: &mut String, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for i in (0..width).rev() {
        out.push(DIGITS[((v >> (4 * i)) & 0xF) as usize] as char);
    }
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

/// One event as it leaves deed. The relay builds a great many of these, so
/// the key and payload are kept as the JSON text they will be written as,
/// and the strings shared by every event of a kind or transaction are
/// shared, not copied.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `<service>/<position>`: stable, so a redelivered event is
    /// recognisable as the same one.
    pub id: String,
    /// `<service>.<event>`.
    pub kind: Arc<str>,
    /// The contract version the payload follows, for state events.
    pub contract: Option<Arc<str>>,
    /// The event key, as JSON text: an object of the key columns for state
    /// events, the key given to `deed.emit` for domain events.
    pub key: String,
    pub op: Op,
    pub committed_at: Arc<str>,
    /// The row (exactly the contract's columns) or the domain payload, as
    /// JSON text; `null` for a delete.
    pub payload: String,
    /// Set on deletes: the key is gone.
    pub tombstone: bool,
    pub at: Position,
    /// `deed.<service>.<event>`.
    pub subject: Arc<str>,
}

/// The strings every event of one kind shares.
#[derive(Debug, Clone)]
pub struct Kind {
    pub service: Arc<str>,
    pub kind: Arc<str>,
    pub subject: Arc<str>,
}

impl Kind {
    pub fn new(service: &str, event: &str) -> Kind {
        Kind {
            service: service.into(),
            kind: format!("{service}.{event}").into(),
            subject: event_subject(service, event).into(),
        }
    }
}

impl Envelope {
    pub fn new(service: &str, event: &str, at: Position, committed_at: String) -> Envelope {
        Envelope::of(&Kind::new(service, event), at, committed_at.into())
    }

    /// An event of `kind` at `at`, with a null key and payload.
    pub fn of(kind: &Kind, at: Position, committed_at: Arc<str>) -> Envelope {
        let mut id = String::with_capacity(kind.service.len() + 40);
        id.push_str(&kind.service);
        id.push('/');
        at.write_text(&mut id);
        Envelope {
            id,
            kind: kind.kind.clone(),
            contract: None,
            key: "null".into(),
            op: Op::Domain,
            committed_at,
            payload: "null".into(),
            tombstone: false,
            at,
            subject: kind.subject.clone(),
        }
    }

    /// The position's text (see [`Position::text`]).
    pub fn position(&self) -> String {
        self.at.text()
    }

    /// The commit LSN, as PostgreSQL prints it.
    pub fn lsn(&self) -> String {
        lsn_text(self.at.commit_lsn)
    }

    /// The envelope's JSON, the same bytes on every sink:
    /// `{"id","type","contract","key","op","position","lsn","committed_at","payload"[,"tombstone":true]}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(160 + self.key.len() + self.payload.len());
        self.write_json(&mut out);
        out.into_bytes()
    }

    /// Appends the envelope's JSON to `out`.
    pub fn write_json(&self, out: &mut String) {
        out.push_str("{\"id\":");
        push_json_str(out, &self.id);
        out.push_str(",\"type\":");
        push_json_str(out, &self.kind);
        out.push_str(",\"contract\":");
        match &self.contract {
            Some(c) => push_json_str(out, c),
            None => out.push_str("null"),
        }
        out.push_str(",\"key\":");
        out.push_str(&self.key);
        out.push_str(",\"op\":\"");
        out.push_str(self.op.as_str());
        out.push_str("\",\"position\":\"");
        self.at.write_text(out);
        out.push_str("\",\"lsn\":\"");
        push_lsn(out, self.at.commit_lsn);
        out.push_str("\",\"committed_at\":");
        push_json_str(out, &self.committed_at);
        out.push_str(",\"payload\":");
        out.push_str(&self.payload);
        if self.tombstone {
            out.push_str(",\"tombstone\":true");
        }
        out.push('}');
    }

    /// The NATS subject, `deed.<service>.<event>`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The key as a string, for logs and the inbox.
    pub fn key_text(&self) -> String {
        match serde_json::from_str::<Json>(&self.key) {
            Ok(Json::String(s)) => s,
            _ => self.key.clone(),
        }
    }
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
pub fn push_json_str(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    // Most strings need no escape: one tight scan, one copy.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0C => "\\f",
            0..=0x1F => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
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
        for lsn in [0, 1, 0xF, 0x10, 0x1_0016_B374, 0xFFFF_FFFF_FFFF_FFFF, 0x10_0000_0000] {
            assert_eq!(lsn_text(lsn), format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF));
            assert_eq!(parse_lsn(&lsn_text(lsn)), Some(lsn));
        }
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
        e.key = r#"{"id":7}"#.into();
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

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "tab\tline\nret\r",
            "\u{1}\u{8}\u{c}\u{1f}",
            "é ü 日本 🎉",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
