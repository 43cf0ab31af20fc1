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

/// `1 change`, `2 changes`, `1,234 changes`: a count with its noun.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{} {many}", thousands(n)),
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
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

/// A long line of bad input cut to a window of at most `max` characters
/// around a 1-based `column`, control characters escaped, `…` where cut;
/// with where the caret under `width` characters from `column` goes in
/// what is shown (its 1-based column and width). An error quoting a 5 MB
/// line shows a few hundred bytes of it.
pub fn snippet(line: &str, column: usize, width: usize, max: usize) -> (String, usize, usize) {
    let max = max.max(8);
    // Character counts and offsets: bytes on an ASCII line (std's fast
    // paths, for lines of megabytes), characters otherwise.
    let ascii = line.is_ascii();
    let len = if ascii { line.len() } else { line.chars().count() };
    let at = column.saturating_sub(1).min(len);
    let start = if len <= max { 0 } else { at.saturating_sub(max / 3) };
    let end = (start + max).min(len);
    let start = if end - start < max { end.saturating_sub(max) } else { start };
    let byte = |n: usize| -> usize {
        if ascii { n } else { line.char_indices().nth(n).map_or(line.len(), |(i, _)| i) }
    };
    let window = &line[byte(start)..byte(end)];
    let mut out = String::with_capacity(window.len() + 8);
    if start > 0 {
        out.push('…');
    }
    let (mut caret, mut caret_end) = (None, None);
    let mut shown = usize::from(start > 0);
    for (i, c) in window.chars().enumerate() {
        let i = start + i;
        if i == at {
            caret = Some(shown);
        }
        if i == at + width.max(1) {
            caret_end = Some(shown);
        }
        if c.is_control() {
            let escaped: String = c.escape_default().collect();
            shown += escaped.chars().count();
            out.push_str(&escaped);
        } else {
            shown += 1;
            out.push(c);
        }
    }
    if end < len {
        out.push('…');
    }
    let caret = caret.unwrap_or(shown);
    let caret_end = caret_end.unwrap_or(shown).max(caret + 1);
    (out, caret + 1, caret_end - caret)
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

    #[test]
    fn windows_of_long_lines() {
        assert_eq!(snippet("a = 1", 5, 1, 80), ("a = 1".to_string(), 5, 1));
        assert_eq!(snippet("a\tb = x", 6, 1, 80), ("a\\tb = x".to_string(), 7, 1));
        let long = format!("{}X{}", "a".repeat(5_000_000), "b".repeat(1000));
        let (shown, col, width) = snippet(&long, 5_000_001, 1, 240);
        assert!(shown.len() < 1000, "{}", shown.len());
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(shown.chars().nth(col - 1), Some('X'));
        assert_eq!(width, 1);
        let (shown, col, width) = snippet(&long, 1, 5_001_000, 240);
        assert_eq!((col, width), (1, 240));
        assert_eq!(shown.chars().count(), 241);
    }
}
