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
