use std::io::BufRead;

use super::log::{Entry, read_error};
use crate::error::AuditError;

// Column positions of PostgreSQL's csvlog (stable since 9.0).
const USER: usize = 1;
const DATABASE: usize = 2;
const MESSAGE: usize = 13;
const APPLICATION: usize = 22;
/// csvlog rows have had at least this many fields since PostgreSQL 9.0.
const MIN_FIELDS: usize = 23;

pub(crate) fn read(
    reader: Box<dyn BufRead>,
    name: &str,
    on_entry: &mut dyn FnMut(Entry<'_>),
) -> Result<(), AuditError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(csv_error(name, line, e)),
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.len() < MIN_FIELDS {
            return Err(AuditError::input(
                format!("{name}:{line}"),
                format!(
                    "not a PostgreSQL csvlog row: {} fields, expected at least {MIN_FIELDS} (is log_destination = 'csvlog'?)",
                    record.len()
                ),
            ));
        }
        let field = |i: usize| -> Result<&str, AuditError> {
            std::str::from_utf8(&record[i]).map_err(|e| {
                AuditError::input(
                    format!("{name}:{line}"),
                    format!(
                        "field {} is not valid UTF-8 (byte {} of the field)",
                        i + 1,
                        e.valid_up_to()
                    ),
                )
            })
        };
        let message = field(MESSAGE)?;
        // Most rows are not statements; avoid decoding the rest for them.
        if !(message.starts_with("statement: ")
            || message.starts_with("execute ")
            || message.starts_with("duration: "))
        {
            continue;
        }
        on_entry(Entry {
            user: field(USER)?,
            database: field(DATABASE)?,
            application: field(APPLICATION)?,
            message,
        });
    }
}

fn csv_error(name: &str, line: u64, e: csv::Error) -> AuditError {
    let line = e.position().map_or(line, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => read_error(name, line, io),
        csv::ErrorKind::Utf8 { err, .. } => {
            AuditError::input(format!("{name}:{line}"), format!("not valid UTF-8: {err}"))
        }
        other => {
            AuditError::input(format!("{name}:{line}"), format!("malformed csvlog row: {other:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(log: &[u8]) -> Result<Vec<[String; 4]>, AuditError> {
        crate::source::log::entries_of(read, "x.csv", log)
    }

    /// A csvlog row as PostgreSQL 15 writes it (26 fields).
    fn row(user: &str, message: &str, application: &str) -> String {
        format!(
            "2026-11-22 05:10:00.123 UTC,\"{user}\",\"shop\",812,\"[local]\",6740f0a8.32c,3,\"SELECT\",2026-11-22 05:09:59 UTC,3/17,0,LOG,00000,\"{message}\",,,,,,,,,\"{application}\",client backend,,0\n"
        )
    }

    #[test]
    fn reads_statements_and_skips_the_rest() {
        let log = row("orders_svc", "statement: SELECT \"\"id\"\", 'a,b'\nFROM products", "api")
            + &row("orders_svc", "connection authorized: user=orders_svc", "")
            + &row("batch", "duration: 0.2 ms  execute S_1: UPDATE x SET y = 1", "pgjdbc");
        let got = entries(log.as_bytes()).unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            ["orders_svc", "shop", "api", "statement: SELECT \"id\", 'a,b'\nFROM products"]
                .map(String::from)
        );
        assert_eq!(got[1][0], "batch");
        assert_eq!(got[1][2], "pgjdbc");
        assert_eq!(got[1][3], "duration: 0.2 ms  execute S_1: UPDATE x SET y = 1");
    }

    #[test]
    fn a_short_row_is_refused_at_its_line() {
        let log = row("a", "statement: SELECT 1", "") + "2026-11-22 05:10:00 UTC,a,b\n";
        let e = entries(log.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("x.csv:2: not a PostgreSQL csvlog row: 3 fields"), "{e}");
        assert!(e.contains("log_destination = 'csvlog'"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_refused_with_its_field() {
        let mut log = row("a", "statement: SELECT 1", "").into_bytes();
        // The user's name ends in a byte that is not UTF-8.
        let bad = row("a\u{1}", "statement: SELECT 2", "").into_bytes();
        log.extend(bad.into_iter().map(|b| if b == 1 { 0xff } else { b }));
        let e = entries(&log).unwrap_err().to_string();
        assert!(e.starts_with("x.csv:2: field 2 is not valid UTF-8 (byte 1"), "{e}");
    }

    #[test]
    fn a_quote_left_open_early_in_a_row_leaves_it_short() {
        // The user's quote never closes: the rest of the file is one field.
        let log = row("a", "statement: SELECT 1", "") + "2026-11-22,\"a,shop\n";
        let e = entries(log.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("x.csv:2: not a PostgreSQL csvlog row"), "{e}");
    }
}
