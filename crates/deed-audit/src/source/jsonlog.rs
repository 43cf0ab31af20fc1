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
