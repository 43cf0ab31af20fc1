//! Untrusted text made safe to print on one line of a terminal.

use std::borrow::Cow;

/// Control characters (newlines, escape sequences, carriage returns)
/// written as Rust-style escapes (`\n`, `\u{1b}`), so text from a log, a
/// file or a catalog can neither move the cursor nor start a line that
/// looks like deed's own output.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text for a terminal, as it is about to be printed: lines and tabs
/// stay, every other control character (an escape sequence, a carriage
/// return that would overwrite the line) is escaped. The last guard, for
/// whatever a renderer let through.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A SQL text on one line: whitespace collapsed, control characters
/// escaped, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    excerpt(&flat, max)
}

/// `1 change`, `2 changes`: a count with its noun.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// At most `max` characters of `text`, printable, with `…` when cut: for
/// quoting bad input in an error without echoing all of it.
pub fn excerpt(text: &str, max: usize) -> String {
    let cut = match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    let mut out = printable(cut).into_owned();
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\nb\u{1b}[31mc\r"), "a\\nb\\u{1b}[31mc\\r");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(excerpt("ab\n", 3), "ab\\n");
        assert_eq!(excerpt("é€x", 2), "é€…");
        assert_eq!(terminal_safe("a\n\tb\u{1b}[2J\r"), "a\n\tb\\u{1b}[2J\\r");
        assert_eq!(one_line("SELECT  a\n  FROM t", 9), "SELECT a …");
    }
}
