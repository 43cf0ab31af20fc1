use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;

use super::SourceSummary;
use super::message::statement_text;
use crate::attribution::Attribution;
use crate::collector::Collector;
use crate::error::AuditError;
use crate::limits::{Bounded, Limits};

/// Which log entries count.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only statements run in this database; `None` takes every database.
    pub database: Option<String>,
    pub limits: Limits,
    /// `log_line_prefix` of a `stderr` log: given (then the log is read as
    /// stderr), or the server's, or PostgreSQL's default.
    pub line_prefix: Option<String>,
    pub line_prefix_given: bool,
}

/// One log entry's fields that matter, borrowed from the reader's buffer.
pub(crate) struct Entry<'a> {
    pub user: &'a str,
    pub database: &'a str,
    pub application: &'a str,
    pub message: &'a str,
}

/// Feeds the statements of a PostgreSQL csvlog, jsonlog or stderr log file
/// (plain or gzip-compressed; `-` is stdin) into the collector.
pub fn read_log(
    path: &Path,
    options: &LogOptions,
    attribution: &Attribution<'_>,
    collector: &mut Collector<'_>,
) -> Result<SourceSummary, AuditError> {
    let name =
        if path == Path::new("-") { "<stdin>".to_string() } else { path.display().to_string() };
    let read_bytes = Rc::new(Cell::new(0u64));
    let (raw, total): (Box<dyn Read>, Option<u64>) = if path == Path::new("-") {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(path).map_err(|e| AuditError::io(format!("opening {name}"), e))?;
        let len = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(file), len)
    };
    let raw = Counting { inner: raw, count: read_bytes.clone() };
    let mut progress = Progress::new(&name, total, read_bytes);
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let head = reader.fill_buf().map_err(|e| AuditError::io(format!("reading {name}"), e))?;
    let decoded: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut reader: Box<dyn BufRead> =
        Box::new(BufReader::with_capacity(1 << 20, Bounded::new(decoded, &options.limits)));
    let head = reader.fill_buf().map_err(|e| read_error(&name, 1, e))?;
    let json = head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let stderr = options.line_prefix_given || (!json && !looks_like_csv(head));

    let before = collector.statements();
    let mut skipped_databases = 0u64;
    let mut deed_own = 0u64;
    let mut on_entry = |e: Entry<'_>| {
        progress.tick(collector.statements() - before);
        let Some(sql) = statement_text(e.message) else { return };
        // deed's own sessions are named `deed`: its catalog queries are
        // nobody's access.
        if e.application == deed_pg::DEED_APPLICATION {
            deed_own += 1;
            return;
        }
        if options.database.as_deref().is_some_and(|d| d != e.database) {
            skipped_databases += 1;
            return;
        }
        let service = attribution.service(Some(e.user), Some(e.application));
        collector.add(&service, sql, 1);
    };
    let kind = if stderr {
        let prefix = options.line_prefix.as_deref().unwrap_or(super::stderrlog::DEFAULT_PREFIX);
        let pattern = super::stderrlog::LinePattern::new(prefix).map_err(|e| {
            AuditError::input(name.clone(), format!("{e} (log_line_prefix {prefix:?})"))
        })?;
        super::stderrlog::read(reader, &name, &pattern, &mut on_entry)?;
        "stderr log"
    } else if json {
        super::jsonlog::read(reader, &name, &mut on_entry)?;
        "jsonlog"
    } else {
        super::csvlog::read(reader, &name, &mut on_entry)?;
        "csvlog"
    };
    progress.finish();
    let mut notes = Vec::new();
    if deed_own > 0 {
        notes.push(format!(
            "{} deed itself ran (application_name deed) left out",
            deed_text::plural(deed_own, "statement", "statements")
        ));
    }
    if skipped_databases > 0 {
        let db = options.database.as_deref().unwrap_or_default();
        notes.push(format!(
            "{} in databases other than {db} skipped",
            deed_text::plural(skipped_databases, "statement", "statements")
        ));
    }
    Ok(SourceSummary {
        kind: kind.into(),
        detail: name,
        statements: collector.statements() - before,
        notes,
        warnings: Vec::new(),
    })
}

/// A csvlog row starts with its timestamp and a comma; a stderr line has
/// its `SEVERITY:  ` (two spaces) before any comma unless its prefix holds
/// one, and then `--log-line-prefix` says which it is.
fn looks_like_csv(head: &[u8]) -> bool {
    let first = head.split(|b| *b == b'\n').find(|l| !l.iter().all(u8::is_ascii_whitespace));
    let Some(line) = first else { return true };
    let line = String::from_utf8_lossy(line);
    match (line.find(','), line.find(":  ")) {
        (Some(comma), Some(severity)) => comma < severity,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Reading errors from a decompressing reader are input errors (a corrupt
/// gzip stream), not I/O failures of the machine.
pub(crate) fn read_error(name: &str, line: u64, e: std::io::Error) -> AuditError {
    use std::io::ErrorKind;
    if e.kind() == ErrorKind::UnexpectedEof {
        // Only a decoder reports this: the file ends inside its gzip stream.
        AuditError::input(
            format!("{name}:{line}"),
            format!(
                "the compressed log ends early ({e}): is the file truncated, or still being written?"
            ),
        )
    } else if e.kind() == ErrorKind::InvalidInput || e.kind() == ErrorKind::InvalidData {
        AuditError::input(format!("{name}:{line}"), format!("cannot read the log: {e}"))
    } else {
        AuditError::io(format!("reading {name}"), e)
    }
}

/// Counts bytes as they are read, for progress against the file size.
struct Counting {
    inner: Box<dyn Read>,
    count: Rc<Cell<u64>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A one-line progress report on a terminal's stderr; silent when stderr
/// is not a terminal (CI, pipes) or the input's size is unknown.
struct Progress {
    name: String,
    total: u64,
    read: Rc<Cell<u64>>,
    enabled: bool,
    entries: u64,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(name: &str, total: Option<u64>, read: Rc<Cell<u64>>) -> Self {
        Progress {
            name: name.to_string(),
            total: total.unwrap_or(0),
            read,
            enabled: total.is_some_and(|t| t > 0) && std::io::stderr().is_terminal(),
            entries: 0,
            last: Instant::now(),
            shown: false,
        }
    }

    fn tick(&mut self, statements: u64) {
        self.entries += 1;
        if !self.enabled
            || self.entries % 4096 != 0
            || self.last.elapsed() < Duration::from_millis(250)
        {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let read = self.read.get();
        eprint!(
            "\r\x1b[2Kreading {}: {}% of {} MB, {} statements",
            self.name,
            read * 100 / self.total,
            self.total >> 20,
            statements
        );
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

/// A log format's reader: csvlog's or jsonlog's `read`.
#[cfg(test)]
pub(crate) type Reader =
    fn(Box<dyn BufRead>, &str, &mut dyn FnMut(Entry<'_>)) -> Result<(), AuditError>;

/// (user, database, application, message) of each entry `read` finds in
/// `log`, or its error: how the readers' tests run them.
#[cfg(test)]
pub(crate) fn entries_of(
    read: Reader,
    name: &str,
    log: &[u8],
) -> Result<Vec<[String; 4]>, AuditError> {
    let mut out = Vec::new();
    read(Box::new(std::io::Cursor::new(log.to_vec())), name, &mut |e| {
        out.push([e.user, e.database, e.application, e.message].map(str::to_string))
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::looks_like_csv;

    #[test]
    fn tells_csvlog_from_stderr() {
        assert!(looks_like_csv(b"2026-11-22 05:10:00.123 UTC,\"a\",\"shop\",812\n"));
        assert!(looks_like_csv(b"\n\n2026-11-22 05:10:00.123 UTC,\"a\"\n"));
        assert!(!looks_like_csv(b"2026-11-22 05:10:00.123 UTC [812] LOG:  statement: SELECT 1\n"));
        // A comma after the severity is the statement's, not a field's.
        assert!(!looks_like_csv(b"2026-11-22 [812] LOG:  statement: SELECT a, b FROM t\n"));
        // A prefix with a comma before the severity reads as csv;
        // --log-line-prefix says otherwise.
        assert!(looks_like_csv(b"user=a,db=b LOG:  statement: SELECT 1\n"));
    }
}
