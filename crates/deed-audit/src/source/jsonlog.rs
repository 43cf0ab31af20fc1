use std::borrow::Cow;
use std::io::BufRead;

use serde::Deserialize;

use super::log::{Entry, read_error};
use crate::error::AuditError;

/// The jsonlog keys deed uses (PostgreSQL 15+); the rest are ignored.
#[derive(Deserialize)]
struct JsonEntry<'a> {
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dbname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    application_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

pub(crate) fn read(
    mut reader: Box<dyn BufRead>,
    name: &str,
    on_entry: &mut dyn FnMut(Entry<'_>),
) -> Result<(), AuditError> {
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| read_error(name, line, e))?;
        if n == 0 {
            return Ok(());
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let entry: JsonEntry<'_> = serde_json::from_slice(&buf).map_err(|e| {
            let what = if e.is_syntax() && std::str::from_utf8(&buf).is_err() {
                "not valid UTF-8".to_string()
            } else {
                format!("not a jsonlog entry: {e}")
            };
            AuditError::input(format!("{name}:{line}:{}", e.column()), what)
        })?;
        let Some(message) = entry.message.as_deref() else { continue };
        on_entry(Entry {
            user: entry.user.as_deref().unwrap_or(""),
            database: entry.dbname.as_deref().unwrap_or(""),
            application: entry.application_name.as_deref().unwrap_or(""),
            message,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(log: &[u8]) -> Result<Vec<[String; 4]>, AuditError> {
        crate::source::log::entries_of(read, "x.json", log)
    }

    #[test]
    fn reads_each_entry_and_tolerates_what_it_does_not_use() {
        let log = concat!(
            r#"{"timestamp":"2026-11-22 05:10:00.123 UTC","user":"orders_svc","dbname":"shop","pid":812,"error_severity":"LOG","message":"statement: SELECT \"id\"\nFROM products","application_name":"api","backend_type":"client backend"}"#,
            "\n\n   \n",
            r#"{"error_severity":"LOG","message":"checkpoint starting: time"}"#,
            "\n",
            r#"{"user":"x","dbname":"shop","error_severity":"LOG"}"#,
            "\n"
        );
        let got = entries(log.as_bytes()).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            ["orders_svc", "shop", "api", "statement: SELECT \"id\"\nFROM products"]
                .map(String::from)
        );
        // A server process's entry has no user or database.
        assert_eq!(got[1], ["", "", "", "checkpoint starting: time"].map(String::from));
    }

    #[test]
    fn a_bad_line_is_refused_at_its_line_and_column() {
        // `nope` is read as far as its `o`, where it stops being `null`.
        let log =
            concat!(r#"{"message":"statement: SELECT 1"}"#, "\n", r#"{"message": nope}"#, "\n");
        let e = entries(log.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("x.json:2:14: not a jsonlog entry"), "{e}");
        let e = entries(b"{\"message\":\"\xff\"}\n").unwrap_err().to_string();
        assert!(e.starts_with("x.json:1:") && e.contains("not valid UTF-8"), "{e}");
    }
}
