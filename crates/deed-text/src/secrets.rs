//! Values of keys named like secrets, hidden in a line of TOML (or any
//! `key = value` text) quoted back to the user: an unknown `password =
//! "…"` in a manifest must never reach a terminal or a CI log.

/// How TOML's multi-line strings open and close.
const DELIMITERS: [&str; 2] = ["\"\"\"", "'''"];

/// Whether a key's name says its value is a secret: it holds `password`,
/// `passwd`, `secret` or `token`, or is `key` or ends with `key` (`api_key`,
/// `private-key`, `apikey`), ignoring case.
pub fn is_secret_key(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"].iter().any(|w| lower.contains(w))
        || lower.ends_with("key")
}

/// A line with the value of every `secret_key = value` in it replaced by
/// `"***"` (inline tables included), and the raw values taken out, so a
/// message quoting one can be cleaned too. A multi-line string opened by
/// a secret key hides the rest of the line, and its delimiter is returned
/// for the lines that follow (see [`SecretLines`]).
pub fn mask_secret_values(line: &str) -> (String, Vec<String>, Option<&'static str>) {
    let mut out = String::with_capacity(line.len());
    let mut taken = Vec::new();
    let mut rest = line;
    while let Some(eq) = find_assignment(rest) {
        let key = key_before(&rest[..eq]);
        out.push_str(&rest[..=eq]);
        let after = &rest[eq + 1..];
        if !key.is_some_and(is_secret_key) {
            rest = after;
            continue;
        }
        let spaces = after.len() - after.trim_start().len();
        let value = &after[spaces..];
        // An event's `key` lists column names: no secret there.
        if key.is_some_and(|k| k.eq_ignore_ascii_case("key")) && value.starts_with('[') {
            rest = after;
            continue;
        }
        out.push_str(&after[..spaces]);
        if let Some(delim) = DELIMITERS.into_iter().find(|d| value.starts_with(d)) {
            match value[3..].find(delim) {
                Some(end) => {
                    taken.push(value[3..3 + end].to_string());
                    out.push_str("\"***\"");
                    rest = &value[3 + end + 3..];
                    continue;
                }
                None => {
                    taken.push(value[3..].to_string());
                    out.push_str("\"***\"");
                    return (out, taken, Some(delim));
                }
            }
        }
        let len = value_len(value);
        let raw = &value[..len];
        let inner = raw.trim_matches(|c| c == '"' || c == '\'');
        if !inner.is_empty() {
            taken.push(inner.to_string());
        }
        out.push_str("\"***\"");
        rest = &value[len..];
    }
    out.push_str(rest);
    (out, taken, None)
}

/// Where the next `=` that assigns a value is, outside quotes.
fn find_assignment(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return None,
            (None, '=') => return Some(i),
            _ => {}
        }
        escaped = false;
    }
    None
}

/// The last segment of the key just before an `=`: `a.b."c d"` gives `c d`.
fn key_before(text: &str) -> Option<&str> {
    let t = text.trim_end();
    if let Some(body) = t.strip_suffix('"').or_else(|| t.strip_suffix('\'')) {
        let open = body.rfind(['"', '\''])?;
        return Some(&body[open + 1..]);
    }
    let start = t
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let key = &t[start..];
    (!key.is_empty()).then_some(key)
}

/// The length of one TOML value at the start of `value`: a string, an
/// array (brackets balanced outside strings), or a bare word.
fn value_len(value: &str) -> usize {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => {
                quote = None;
                if depth == 0 {
                    return i + c.len_utf8();
                }
            }
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            (None, ',' | '}' | ']' | '#') if depth == 0 => return i,
            (None, c) if c.is_whitespace() && depth == 0 => return i,
            _ => {}
        }
        escaped = false;
    }
    value.len()
}

/// Masks the lines of a whole text in order, so a line inside a
/// multi-line string that a secret key opened is hidden whole.
#[derive(Debug, Default)]
pub struct SecretLines {
    /// The multi-line string still open: its closing delimiter, and whether
    /// a secret key opened it.
    open: Option<(&'static str, bool)>,
}

impl SecretLines {
    /// The next line, masked; the raw secret values are added to `taken`.
    pub fn next_line(&mut self, line: &str, taken: &mut Vec<String>) -> String {
        // The end of a multi-line string opened earlier, hidden if secret.
        let (head, rest) = match self.open {
            None => (String::new(), line),
            Some((delim, secret)) => match line.find(delim) {
                None if secret => {
                    taken.push(line.to_string());
                    return "***".into();
                }
                None => return line.to_string(),
                Some(end) => {
                    let head = if secret {
                        taken.push(line[..end].to_string());
                        format!("***{delim}")
                    } else {
                        line[..end + 3].to_string()
                    };
                    (head, &line[end + 3..])
                }
            },
        };
        let (masked, more, opened) = mask_secret_values(rest);
        taken.extend(more);
        self.open =
            opened.map(|d| (d, true)).or_else(|| unclosed_multiline(rest).map(|d| (d, false)));
        head + &masked
    }
}

/// A multi-line string opened on `line` and not closed there.
fn unclosed_multiline(line: &str) -> Option<&'static str> {
    DELIMITERS.into_iter().find(|delim| line.matches(delim).count() % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(line: &str) -> String {
        mask_secret_values(line).0
    }

    #[test]
    fn hides_secret_values_only() {
        assert_eq!(masked(r#"password = "hunter2""#), r#"password = "***""#);
        assert_eq!(masked(r#"db_password='x y' # note"#), r#"db_password="***" # note"#);
        assert_eq!(masked(r#""api key" = "k\"1""#), r#""api key" = "***""#);
        assert_eq!(masked("services.a.token = 12345"), r#"services.a.token = "***""#);
        assert_eq!(
            masked(r#"db = { user = "u", passwd = "p", port = 5 }"#),
            r#"db = { user = "u", passwd = "***", port = 5 }"#
        );
        assert_eq!(masked(r#"secrets = ["a", "b]"]"#), r#"secrets = "***""#);
        assert_eq!(masked(r#"name = "password = x""#), r#"name = "password = x""#);
        assert_eq!(masked(r#"owns = ["public.a"]"#), r#"owns = ["public.a"]"#);
        assert_eq!(masked(r#"key = ["id"]"#), r#"key = ["id"]"#);
        assert_eq!(masked(r#"key = "k""#), r#"key = "***""#);
        let (line, taken, open) = mask_secret_values(r#"token = """abc"#);
        assert_eq!((line.as_str(), open), (r#"token = "***""#, Some(r#"""""#)));
        assert_eq!(taken, vec!["abc".to_string()]);
        assert_eq!(mask_secret_values(r#"token = "s3""#).1, vec!["s3".to_string()]);
    }

    #[test]
    fn hides_the_lines_of_a_multiline_secret() {
        let mut lines = SecretLines::default();
        let mut taken = Vec::new();
        let text = "a = 1\nsecret = '''\nline two\nend''' # c\nb = \"\"\"\npassword = x\n\"\"\"\n";
        let out: Vec<String> = text.lines().map(|l| lines.next_line(l, &mut taken)).collect();
        assert_eq!(
            out,
            [
                "a = 1",
                "secret = \"***\"",
                "***",
                "***''' # c",
                "b = \"\"\"",
                "password = x",
                "\"\"\""
            ]
        );
        assert!(taken.contains(&"line two".to_string()));
    }
}
