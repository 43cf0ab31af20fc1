//! PostgreSQL's default log format, `stderr`: one line per message, led by
//! `log_line_prefix`, continued on lines that start with a tab. The prefix
//! is what makes it parseable: its escapes (`%u` user, `%d` database, `%a`
//! application, `%m` time, `%p` pid, …) become a pattern, and a line that
//! does not match it continues nothing and is skipped.

use std::io::BufRead;

use regex::Regex;

use super::log::{Entry, read_error};
use crate::error::AuditError;

/// PostgreSQL's default `log_line_prefix`.
pub const DEFAULT_PREFIX: &str = "%m [%p] ";

/// A compiled `log_line_prefix`, followed by `SEVERITY:  message`.
pub(crate) struct LinePattern {
    regex: Regex,
}

impl LinePattern {
    pub fn new(prefix: &str) -> Result<LinePattern, String> {
        let mut pattern = String::from("^");
        let mut optional_tail = false;
        let mut chars = prefix.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                pattern.push_str(&regex::escape(&c.to_string()));
                continue;
            }
            // A padding width (`%-10u`) may sit between % and the escape.
            while chars.peek().is_some_and(|c| c.is_ascii_digit() || *c == '-') {
                chars.next();
            }
            let Some(e) = chars.next() else { return Err("the prefix ends with %".into()) };
            let piece = match e {
                'u' => r"\s*(?P<user>[^\s@\[\]]*?)\s*",
                'd' => r"\s*(?P<db>[^\s@\[\]]*?)\s*",
                'a' => r"\s*(?P<app>.*?)\s*",
                'm' | 't' | 's' => r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:-]+)?",
                'n' => r"\d+(?:\.\d+)?",
                'p' | 'P' | 'l' | 'x' => r"\s*\d*\s*",
                'r' | 'h' | 'c' | 'v' | 'i' | 'e' | 'Q' | 'b' | 'L' | 'k' => r"\s*\S*?\s*",
                '%' => "%",
                'q' => {
                    // What follows only appears for session processes.
                    optional_tail = true;
                    "(?:"
                }
                other => return Err(format!("unknown escape %{other} in log_line_prefix")),
            };
            pattern.push_str(piece);
        }
        if optional_tail {
            pattern.push_str(")?");
        }
        pattern.push_str(r"(?P<severity>[A-Z]+):  (?P<message>.*)$");
        Regex::new(&pattern)
            .map(|regex| LinePattern { regex })
            .map_err(|e| format!("log_line_prefix cannot be read: {e}"))
    }
}

/// A message being assembled from its first line and its continuations.
struct Pending {
    user: String,
    database: String,
    application: String,
    severity: String,
    message: String,
}

pub(crate) fn read(
    mut reader: Box<dyn BufRead>,
    name: &str,
    pattern: &LinePattern,
    on_entry: &mut dyn FnMut(Entry<'_>),
) -> Result<(), AuditError> {
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    let mut pending: Option<Pending> = None;
    let flush = |p: &Option<Pending>, on_entry: &mut dyn FnMut(Entry<'_>)| {
        if let Some(p) = p.as_ref().filter(|p| p.severity == "LOG") {
            on_entry(Entry {
                user: &p.user,
                database: &p.database,
                application: &p.application,
                message: &p.message,
            });
        }
    };
    loop {
        buf.clear();
        line += 1;
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| read_error(name, line, e))?;
        if n == 0 {
            flush(&pending, on_entry);
            return Ok(());
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            AuditError::input(format!("{name}:{line}:{}", e.valid_up_to() + 1), "not valid UTF-8")
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        if let Some(more) = text.strip_prefix('\t') {
            if let Some(p) = pending.as_mut() {
                p.message.push('\n');
                p.message.push_str(more);
            }
            continue;
        }
        flush(&pending, on_entry);
        pending = pattern.regex.captures(text).map(|c| {
            let get = |k: &str| c.name(k).map_or("", |m| m.as_str()).to_string();
            Pending {
                user: get("user"),
                database: get("db"),
                application: get("app"),
                severity: get("severity"),
                message: get("message"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(prefix: &str, log: &str) -> Vec<(String, String, String, String)> {
        let pattern = LinePattern::new(prefix).unwrap();
        let mut out = Vec::new();
        read(
            Box::new(std::io::Cursor::new(log.as_bytes().to_vec())),
            "t.log",
            &pattern,
            &mut |e| {
                out.push((
                    e.user.to_string(),
                    e.database.to_string(),
                    e.application.to_string(),
                    e.message.to_string(),
                ))
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn reads_the_common_prefixes() {
        let log = "2026-11-22 05:10:00.123 UTC [812] orders_svc@shop LOG:  statement: SELECT id\n\
                   \tFROM products\n\
                   2026-11-22 05:10:01.000 UTC [813] catalog_svc@shop ERROR:  boom\n\
                   2026-11-22 05:10:02.000 UTC [813] catalog_svc@shop STATEMENT:  UPDATE x\n\
                   2026-11-22 05:10:03.000 UTC [99] LOG:  checkpoint starting: time\n";
        let got = entries("%m [%p] %q%u@%d ", log);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "orders_svc");
        assert_eq!(got[0].1, "shop");
        assert_eq!(got[0].3, "statement: SELECT id\nFROM products");
        assert_eq!(got[1].3, "checkpoint starting: time");
        let got = entries(
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
            "2026-11-22 05:10:00 UTC [5]: [3-1] user=a,db=b,app=psql tool,client=10.0.0.1 LOG:  duration: 0.1 ms  statement: SELECT 1\n",
        );
        assert_eq!(
            got[0],
            (
                "a".into(),
                "b".into(),
                "psql tool".into(),
                "duration: 0.1 ms  statement: SELECT 1".into()
            )
        );
        let got =
            entries(DEFAULT_PREFIX, "2026-11-22 05:10:00.5 UTC [7] LOG:  statement: SELECT 2\n");
        assert_eq!(got[0].3, "statement: SELECT 2");
        assert!(LinePattern::new("%z ").is_err());
    }
}
