//! libpq's `key = value` connection strings, read as libpq reads them.

/// The `(key, value)` pairs of a `key = value` connection string, values
/// unquoted and unescaped; `None` when the text is not one.
pub fn parse_conninfo(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.push(chars.next()?);
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// `%40` and the like back to the characters they stand for, as a URL's
/// parts (a connection string's, a NATS server's) are written; an escape
/// that is not one stays as it is, bytes that are no UTF-8 become U+FFFD.
pub fn percent_decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// Pairs written back as a connection string, each value quoted.
pub fn write_conninfo(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_libpq_does() {
        let p = parse_conninfo("host=db  password = 'a b\\'c' user=x\\ y").unwrap();
        assert_eq!(
            p,
            [
                ("host".into(), "db".into()),
                ("password".into(), "a b'c".into()),
                ("user".into(), "x y".into())
            ]
        );
        assert!(parse_conninfo("host=db password='open").is_none());
        assert!(parse_conninfo("just words").is_none());
        assert_eq!(write_conninfo(&p[..2]), "host='db' password='a b\\'c'");
    }
}
