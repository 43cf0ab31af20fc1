//! SQL files as they are really written: psql scripts (meta-commands,
//! `COPY … FROM stdin` data, `:variables`, a byte-order mark, pg_dump's
//! `\restrict` line) and the SQL of drivers with their own placeholders
//! (`%(name)s` and `%s` of psycopg and SQLAlchemy, `:name`, `?`).
//!
//! [`clean_script`] turns such a text into plain SQL of the same length,
//! byte for byte, so every offset, line and column still points into the
//! file the user wrote: what psql would not send to the server is blanked
//! (newlines kept), and each placeholder becomes a parameter (`$1`) or,
//! for a one-character `?`, a constant.

/// Which driver placeholders to read as parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placeholders {
    /// `%(name)s`, `%s` and `:name` (psql variables too); `?` stays an
    /// operator, since jsonb has one.
    #[default]
    Auto,
    /// PostgreSQL's own `$1` only.
    Dollar,
    /// `%(name)s` and `%s` (psycopg, SQLAlchemy's default for psycopg).
    Pyformat,
    /// `:name` (SQLAlchemy `text()`, psql variables).
    Named,
    /// `?` (JDBC, database/sql drivers).
    Qmark,
}

impl Placeholders {
    pub fn parse(text: &str) -> Option<Placeholders> {
        Some(match text {
            "auto" => Placeholders::Auto,
            "dollar" => Placeholders::Dollar,
            "pyformat" => Placeholders::Pyformat,
            "named" => Placeholders::Named,
            "qmark" => Placeholders::Qmark,
            _ => return None,
        })
    }

    fn pyformat(self) -> bool {
        matches!(self, Placeholders::Auto | Placeholders::Pyformat)
    }

    fn named(self) -> bool {
        matches!(self, Placeholders::Auto | Placeholders::Named)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Code,
    /// A string literal; `true` when backslash escapes apply (`E'…'`).
    Single(bool),
    Double,
    LineComment,
    Block(u32),
    /// Inside `$tag$ … $tag$`; the tag is kept aside.
    Dollar,
}

/// Plain SQL of the same byte length as `text` (see the module docs).
pub fn clean_script(text: &str, placeholders: Placeholders) -> String {
    let (out, _) = lex(text, placeholders, true);
    // Only ASCII bytes were written over ASCII, and multi-byte characters
    // were blanked whole (a line at a time), so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The byte offsets of the `;` that end statements of a cleaned text.
pub(crate) fn statement_ends(text: &str) -> Vec<usize> {
    lex(text, Placeholders::Dollar, false).1
}

/// One pass over the text: the cleaned bytes, and where statements end.
/// `copy_data`: blank what follows `COPY … FROM stdin` (the raw script);
/// a cleaned text has none left.
fn lex(text: &str, placeholders: Placeholders, copy_data: bool) -> (Vec<u8>, Vec<usize>) {
    let mut ends = Vec::new();
    let mut atomic = Atomic::default();
    let mut out: Vec<u8> = text.as_bytes().to_vec();
    let b = text.as_bytes();
    let mut state = State::Code;
    let mut dollar_tag: &[u8] = b"";
    let mut statement_start = 0;
    let mut i = 0;
    if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        out[..3].copy_from_slice(b"   ");
        i = 3;
        statement_start = 3;
    }
    while i < b.len() {
        let c = b[i];
        match state {
            State::Code => match c {
                b'\'' => {
                    let escaped =
                        i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                    state = State::Single(escaped);
                }
                b'"' => state = State::Double,
                b'-' if b.get(i + 1) == Some(&b'-') => state = State::LineComment,
                b'/' if b.get(i + 1) == Some(&b'*') => {
                    state = State::Block(1);
                    i += 1;
                }
                b'$' => {
                    if let Some(len) = dollar_tag_len(&b[i..]) {
                        dollar_tag = &b[i..i + len];
                        state = State::Dollar;
                        i += len;
                        continue;
                    }
                }
                b'\\' => {
                    // A psql meta-command: to the end of the line.
                    let end = line_end(b, i);
                    blank(&mut out, i, end);
                    i = end;
                    continue;
                }
                b';' if atomic.depth > 0 => {}
                b';' => {
                    ends.push(i);
                    atomic = Atomic::default();
                    if copy_data
                        && is_copy_from_stdin(&String::from_utf8_lossy(&out[statement_start..i]))
                    {
                        let data_start = line_end(b, i) + 1;
                        let end = copy_data_end(b, data_start);
                        blank(&mut out, data_start.min(b.len()), end);
                        i = end;
                        statement_start = end;
                        continue;
                    }
                    statement_start = i + 1;
                }
                c if is_ident_start(c) && (i == 0 || !is_ident(b[i - 1])) => {
                    let end = i + b[i..].iter().take_while(|c| is_ident(**c)).count();
                    atomic.word(&text[i..end]);
                    i = end;
                    continue;
                }
                b':' if b.get(i + 1) == Some(&b':') => i += 1,
                b':' if placeholders.named() && (i == 0 || b[i - 1] != b':') => {
                    match b.get(i + 1) {
                        // psql `:'var'` and `:"var"` quote the value: a
                        // literal or an identifier of that name reads alike.
                        Some(b'\'') | Some(b'"') => out[i] = b' ',
                        Some(&n) if is_ident_start(n) => {
                            let end =
                                i + 1 + b[i + 1..].iter().take_while(|c| is_ident(**c)).count();
                            parameter(&mut out, i, end);
                            i = end;
                            continue;
                        }
                        _ => {}
                    }
                }
                b'%' if placeholders.pyformat() => {
                    if b.get(i + 1) == Some(&b's') {
                        parameter(&mut out, i, i + 2);
                        i += 2;
                        continue;
                    }
                    if b.get(i + 1) == Some(&b'(') {
                        if let Some(close) = b[i + 2..].iter().position(|c| *c == b')') {
                            let end = i + 2 + close + 1;
                            if b.get(end) == Some(&b's') {
                                parameter(&mut out, i, end + 1);
                                i = end + 1;
                                continue;
                            }
                        }
                    }
                }
                b'?' if placeholders == Placeholders::Qmark => out[i] = b'0',
                _ => {}
            },
            State::Single(escaped) => match c {
                b'\\' if escaped => i += 1,
                b'\'' if b.get(i + 1) == Some(&b'\'') => i += 1,
                b'\'' => state = State::Code,
                _ => {}
            },
            State::Double => {
                if c == b'"' {
                    if b.get(i + 1) == Some(&b'"') {
                        i += 1;
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::LineComment => {
                if c == b'\n' {
                    state = State::Code;
                }
            }
            State::Block(depth) => {
                if c == b'*' && b.get(i + 1) == Some(&b'/') {
                    state = if depth == 1 { State::Code } else { State::Block(depth - 1) };
                    i += 1;
                } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
                    state = State::Block(depth + 1);
                    i += 1;
                }
            }
            State::Dollar => {
                if b[i..].starts_with(dollar_tag) {
                    i += dollar_tag.len();
                    state = State::Code;
                    continue;
                }
            }
        }
        i += 1;
    }
    (out, ends)
}

/// psql's rule for `CREATE FUNCTION … BEGIN ATOMIC … END`: inside a
/// function or procedure definition, `BEGIN` and `CASE` open a block that
/// `END` closes, and a `;` inside a block does not end the statement.
#[derive(Default)]
struct Atomic {
    /// Words seen at the start of the statement, up to three.
    head: Vec<String>,
    routine: bool,
    depth: u32,
}

impl Atomic {
    fn word(&mut self, word: &str) {
        let w = word.to_ascii_lowercase();
        if self.head.len() < 4 {
            self.head.push(w.clone());
            let h: Vec<&str> = self.head.iter().map(String::as_str).collect();
            self.routine = matches!(
                h.as_slice(),
                ["create", "function" | "procedure", ..]
                    | ["create", "or", "replace", "function" | "procedure"]
            );
        }
        if !self.routine {
            return;
        }
        match w.as_str() {
            "begin" | "case" => self.depth += 1,
            "end" => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// `$tag$` or `$$` at the start of `b`: its length.
fn dollar_tag_len(b: &[u8]) -> Option<usize> {
    let body = b[1..].iter().take_while(|c| is_ident(**c) && **c != b'$').count();
    if body > 0 && b[1].is_ascii_digit() {
        return None;
    }
    (b.get(1 + body) == Some(&b'$')).then_some(body + 2)
}

fn line_end(b: &[u8], from: usize) -> usize {
    b[from..].iter().position(|c| *c == b'\n').map_or(b.len(), |p| from + p)
}

/// Spaces over `from..to`, newlines kept.
fn blank(out: &mut [u8], from: usize, to: usize) {
    for c in &mut out[from..to] {
        if *c != b'\n' {
            *c = b' ';
        }
    }
}

/// `$1`, padded with spaces to the placeholder's width.
fn parameter(out: &mut [u8], from: usize, to: usize) {
    out[from] = b'$';
    out[from + 1] = b'1';
    for c in &mut out[from + 2..to] {
        *c = b' ';
    }
}

fn is_copy_from_stdin(statement: &str) -> bool {
    let words: Vec<String> = statement.split_whitespace().map(|w| w.to_ascii_lowercase()).collect();
    words.first().is_some_and(|w| w == "copy")
        && words.windows(2).any(|w| w[0] == "from" && w[1].trim_end_matches(';') == "stdin")
}

/// Where `COPY … FROM stdin` data ends: after the `\.` line, or at the end.
fn copy_data_end(b: &[u8], from: usize) -> usize {
    let mut at = from;
    while at < b.len() {
        let end = line_end(b, at);
        let line = &b[at..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"\\." {
            return end;
        }
        at = end + 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> String {
        let out = clean_script(text, Placeholders::Auto);
        assert_eq!(out.len(), text.len(), "{text:?}");
        out
    }

    #[test]
    fn psql_scripts() {
        assert_eq!(clean("\u{feff}SELECT 1;"), "   SELECT 1;");
        assert_eq!(clean("\\set ON_ERROR_STOP on\nSELECT 1;"), "                     \nSELECT 1;");
        assert_eq!(clean("\\restrict abc\nSELECT 1;"), "             \nSELECT 1;");
        assert_eq!(
            clean("COPY t (a) FROM stdin;\n1\tx\n2\ty\n\\.\nSELECT 2;"),
            "COPY t (a) FROM stdin;\n   \n   \n  \nSELECT 2;"
        );
        assert_eq!(
            clean("SELECT * FROM t WHERE a = :'v' AND b = :v;"),
            "SELECT * FROM t WHERE a =  'v' AND b = $1;"
        );
        // Not meta-commands: inside strings, E-strings, dollar quotes, comments.
        for sql in [
            "SELECT 'a\\b', E'c\\'d\\\\', $$x\\y$$, $f$ \\q $f$ -- \\x\n;",
            "SELECT 1 /* \\x /* nested */ \\y */;",
            "SELECT a::text, b[1:2] FROM t;",
        ] {
            assert_eq!(clean(sql), sql);
        }
    }

    #[test]
    fn driver_placeholders() {
        assert_eq!(
            clean("SELECT * FROM t WHERE a = %(name)s AND b = %s"),
            "SELECT * FROM t WHERE a = $1       AND b = $1"
        );
        assert_eq!(
            clean("UPDATE t SET a = :a WHERE id = :id_1"),
            "UPDATE t SET a = $1 WHERE id = $1   "
        );
        assert_eq!(clean("SELECT '%s', data ? 'k' FROM t"), "SELECT '%s', data ? 'k' FROM t");
        assert_eq!(
            clean_script("SELECT * FROM t WHERE a = ? AND b = ?", Placeholders::Qmark),
            "SELECT * FROM t WHERE a = 0 AND b = 0"
        );
        assert_eq!(clean_script("SELECT :a, %s", Placeholders::Dollar), "SELECT :a, %s");
    }
}
