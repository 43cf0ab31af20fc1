//! PostgreSQL's logical replication protocol (the `pgoutput` plugin,
//! protocol version 1, with logical messages), as the slot functions
//! return it: one message per row.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed pgoutput message: {0}")]
pub struct DecodeError(pub String);

/// A column of a relation, as the Relation message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    pub key: bool,
}

/// One column's value in a tuple, borrowed from the message it came in:
/// a row is turned into JSON and dropped, so its values are never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    /// An unchanged TOASTed value that was not sent.
    Unchanged,
    Text(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    Begin {
        final_lsn: u64,
        commit_ts: i64,
        xid: u32,
    },
    Commit {
        commit_lsn: u64,
        end_lsn: u64,
        commit_ts: i64,
    },
    Relation {
        id: u32,
        namespace: String,
        name: String,
        replica_identity: u8,
        columns: Vec<Column>,
    },
    Insert {
        relation: u32,
        new: Vec<Value<'a>>,
    },
    /// `old` is the old key (`K`, other columns null) or the whole old
    /// row (`O`, `old_full`), when logged.
    Update {
        relation: u32,
        old: Option<Vec<Value<'a>>>,
        old_full: bool,
        new: Vec<Value<'a>>,
    },
    Delete {
        relation: u32,
        old: Vec<Value<'a>>,
    },
    Truncate {
        relations: Vec<u32>,
    },
    Message {
        transactional: bool,
        lsn: u64,
        prefix: &'a str,
        content: &'a [u8],
    },
    /// Origin and Type messages, which deed does not need.
    Other(u8),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len()).ok_or_else(|| {
            DecodeError(format!(
                "wanted {n} bytes at offset {}, have {}",
                self.at,
                self.b.len() - self.at
            ))
        })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_string)
    }
    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let rest = &self.b[self.at..];
        let nul = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| DecodeError("unterminated string".into()))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|e| DecodeError(format!("string not UTF-8: {e}")))?;
        self.at += nul + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Value<'a>>, DecodeError> {
        let n = self.u16()?;
        (0..n)
            .map(|_| match self.u8()? {
                b'n' => Ok(Value::Null),
                b'u' => Ok(Value::Unchanged),
                b't' => {
                    let len = self.u32()? as usize;
                    let bytes = self.take(len)?;
                    // The server sends text in the database encoding; deed
                    // requires UTF-8 databases for capture.
                    std::str::from_utf8(bytes)
                        .map(Value::Text)
                        .map_err(|e| DecodeError(format!("column value not UTF-8: {e}")))
                }
                other => Err(DecodeError(format!("unknown tuple value kind {:?}", other as char))),
            })
            .collect()
    }
}

pub fn decode(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let mut r = Reader { b: bytes, at: 0 };
    let kind = r.u8()?;
    let m = match kind {
        b'B' => Message::Begin { final_lsn: r.u64()?, commit_ts: r.i64()?, xid: r.u32()? },
        b'C' => {
            let _flags = r.u8()?;
            Message::Commit { commit_lsn: r.u64()?, end_lsn: r.u64()?, commit_ts: r.i64()? }
        }
        b'R' => {
            let id = r.u32()?;
            let namespace = r.cstr()?;
            let name = r.cstr()?;
            let replica_identity = r.u8()?;
            let n = r.u16()?;
            let columns = (0..n)
                .map(|_| {
                    let flags = r.u8()?;
                    let name = r.cstr()?;
                    let type_oid = r.u32()?;
                    let _typmod = r.u32()?;
                    Ok(Column { name, type_oid, key: flags & 1 == 1 })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            Message::Relation { id, namespace, name, replica_identity, columns }
        }
        b'I' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'N' => Message::Insert { relation, new: r.tuple()? },
                other => {
                    return Err(DecodeError(format!(
                        "insert without a new tuple ({:?})",
                        other as char
                    )));
                }
            }
        }
        b'U' => {
            let relation = r.u32()?;
            let mut old = None;
            let mut marker = r.u8()?;
            let old_full = marker == b'O';
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8()?;
            }
            if marker != b'N' {
                return Err(DecodeError(format!(
                    "update without a new tuple ({:?})",
                    marker as char
                )));
            }
            Message::Update { relation, old, old_full, new: r.tuple()? }
        }
        b'D' => {
            let relation = r.u32()?;
            match r.u8()? {
                b'K' | b'O' => Message::Delete { relation, old: r.tuple()? },
                other => {
                    return Err(DecodeError(format!(
                        "delete without an old tuple ({:?})",
                        other as char
                    )));
                }
            }
        }
        b'T' => {
            let n = r.u32()?;
            let _options = r.u8()?;
            Message::Truncate { relations: (0..n).map(|_| r.u32()).collect::<Result<_, _>>()? }
        }
        b'M' => {
            let flags = r.u8()?;
            let lsn = r.u64()?;
            let prefix = r.str()?;
            let len = r.u32()? as usize;
            Message::Message { transactional: flags & 1 == 1, lsn, prefix, content: r.take(len)? }
        }
        b'O' | b'Y' => Message::Other(kind),
        other => return Err(DecodeError(format!("unknown message type {:?}", other as char))),
    };
    Ok(m)
}

/// `0/16B3748`, the way PostgreSQL writes an LSN.
pub use deed_events::{lsn_text, parse_lsn};

/// Microseconds since 2000-01-01 (PostgreSQL's epoch) as RFC 3339 UTC.
pub fn pg_time_text(micros: i64) -> String {
    const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;
    let unix_micros = micros + PG_EPOCH_UNIX_SECS * 1_000_000;
    let secs = unix_micros.div_euclid(1_000_000);
    let frac = unix_micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let d = deed_manifest::Date::from_days(days);
    if !(0..=9999).contains(&d.year) {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            d.year,
            d.month,
            d.day,
            rem / 3600,
            (rem / 60) % 60,
            rem % 60,
            frac
        );
    }
    // Once per transaction: written digit by digit rather than formatted.
    let mut s = String::with_capacity(27);
    for (v, width, then) in [
        (d.year as i64, 4, '-'),
        (i64::from(d.month), 2, '-'),
        (i64::from(d.day), 2, 'T'),
        (rem / 3600, 2, ':'),
        ((rem / 60) % 60, 2, ':'),
        (rem % 60, 2, '.'),
        (frac, 6, 'Z'),
    ] {
        for i in (0..width).rev() {
            s.push(char::from(b'0' + ((v / 10i64.pow(i)) % 10) as u8));
        }
        s.push(then);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be16(v: u16) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn be32(v: u32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn be64(v: u64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    #[test]
    fn decodes_each_message() {
        let mut b = vec![b'B'];
        b.extend(be64(0x16B3748));
        b.extend(be64(5));
        b.extend(be32(726));
        assert_eq!(
            decode(&b).unwrap(),
            Message::Begin { final_lsn: 0x16B3748, commit_ts: 5, xid: 726 }
        );

        let mut r = vec![b'R'];
        r.extend(be32(16384));
        r.extend(b"public\0products\0");
        r.push(b'd');
        r.extend(be16(2));
        r.push(1);
        r.extend(b"id\0");
        r.extend(be32(23));
        r.extend(be32(u32::MAX));
        r.push(0);
        r.extend(b"name\0");
        r.extend(be32(25));
        r.extend(be32(u32::MAX));
        let Message::Relation { columns, name, .. } = decode(&r).unwrap() else { panic!() };
        assert_eq!(name, "products");
        assert_eq!(columns[0], Column { name: "id".into(), type_oid: 23, key: true });

        let mut u = vec![b'U'];
        u.extend(be32(16384));
        u.push(b'O');
        u.extend(be16(2));
        u.push(b't');
        u.extend(be32(1));
        u.push(b'7');
        u.push(b't');
        u.extend(be32(3));
        u.extend("pén".as_bytes().iter().take(3));
        assert!(decode(&u).is_err(), "truncated multi-byte text must be an error, not a panic");

        let mut u = vec![b'U'];
        u.extend(be32(16384));
        u.push(b'N');
        u.extend(be16(2));
        u.push(b't');
        u.extend(be32(1));
        u.push(b'7');
        u.push(b'u');
        assert_eq!(
            decode(&u).unwrap(),
            Message::Update {
                relation: 16384,
                old: None,
                old_full: false,
                new: vec![Value::Text("7"), Value::Unchanged]
            }
        );

        let mut m = vec![b'M', 1];
        m.extend(be64(42));
        m.extend(b"deed:orders\0");
        m.extend(be32(2));
        m.extend(b"{}");
        assert_eq!(
            decode(&m).unwrap(),
            Message::Message {
                transactional: true,
                lsn: 42,
                prefix: "deed:orders",
                content: b"{}"
            }
        );
        assert!(decode(b"Z").is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn lsns_and_times() {
        assert_eq!(lsn_text(0x1_0016_B374), "1/16B374");
        assert_eq!(parse_lsn("1/16B374"), Some(0x1_0016_B374));
        assert_eq!(pg_time_text(0), "2000-01-01T00:00:00.000000Z");
        assert_eq!(pg_time_text(848_592_949_146_123), "2026-11-21T16:15:49.146123Z");
    }
}
