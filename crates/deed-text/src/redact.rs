//! Connection strings without their passwords.
//!
//! A password can hold any character, and users do not always
//! percent-encode it: `postgres://app:pa/ss?w@rd@db/shop` is a typo libpq
//! rejects, and deed must not print it in the error that says so. So the
//! rules below lean to hiding too much: the user part of a URL ends at the
//! last `@` that is not inside a `key=value` query value, and when that
//! finds nothing but the authority still reads `user:secret`, everything
//! up to the last `@` is hidden.

/// `url` (a URL or a libpq `key=value` string) with every password
/// replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match url.find("://") {
        Some(i) => {
            let (scheme, rest) = url.split_at(i + 3);
            format!("{scheme}{}", redact_uri_rest(rest))
        }
        None => match crate::conninfo::parse_conninfo(url) {
            Some(pairs) if pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case("password")) => {
                let shown: Vec<(String, String)> = pairs
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if k.eq_ignore_ascii_case("password") { "***".into() } else { v };
                        (k, v)
                    })
                    .collect();
                crate::conninfo::write_conninfo(&shown)
            }
            Some(_) => url.to_string(),
            None => redact_conninfo(url, false),
        },
    }
}

/// Every connection string in `text` redacted: URLs (`scheme://…`, up to a
/// quote or whitespace) and `password=` settings.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |p| p + 1);
        let end = rest[i..].find(['"', '\'', ' ', '\t', '\n']).map_or(rest.len(), |e| i + e);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    redact_conninfo(&out, true)
}

fn redact_uri_rest(rest: &str) -> String {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let ends = userinfo_ends(rest);
    let userinfo_end = match ends.last() {
        Some(&e) => Some(e),
        // `user:pa?b=c@host`: the `@` looks like part of a query value,
        // but the authority is `user:pa`, not `host:port`.
        None => match authority.split_once(':') {
            Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => None,
            Some(_) => rest.rfind('@'),
            None => None,
        },
    };
    let (userinfo, tail) = match userinfo_end {
        Some(e) => rest.split_at(e),
        None => ("", rest),
    };
    let userinfo = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => userinfo.to_string(),
    };
    format!("{userinfo}{}", redact_query(tail))
}

/// Positions of `@` that can end the user part: every one not inside the
/// value of a `key=value` query parameter.
fn userinfo_ends(rest: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_query = false;
    let mut in_value = false;
    for (i, c) in rest.char_indices() {
        match c {
            '?' if !in_query => in_query = true,
            '&' if in_query => in_value = false,
            '=' if in_query => in_value = true,
            '@' if !in_value => out.push(i),
            _ => {}
        }
    }
    out
}

/// `password=…` in a URL's query, up to the next `&key=`.
fn redact_query(tail: &str) -> String {
    let Some(q) = tail.find('?') else { return tail.to_string() };
    let (path, query) = tail.split_at(q + 1);
    let mut out = path.to_string();
    let mut parts = query.split('&').peekable();
    let mut first = true;
    while let Some(part) = parts.next() {
        if !first {
            out.push('&');
        }
        first = false;
        match part.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                out.push_str(&format!("{key}=***"));
                // An unencoded `&` inside the password: skip the pieces
                // that are no `key=value` of their own.
                while parts.peek().is_some_and(|p| !is_param(p)) {
                    parts.next();
                }
            }
            _ => out.push_str(part),
        }
    }
    out
}

fn is_param(part: &str) -> bool {
    part.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// libpq's `key = value` syntax: spaces around `=` allowed, values either
/// bare (up to whitespace) or single-quoted with `\'` and `\\` escapes.
/// Inside other text (`in_text`), a bare value also ends at a quote.
fn redact_conninfo(text: &str, in_text: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_password_key(rest) {
        let (before, from_key) = rest.split_at(at);
        out.push_str(before);
        let eq = from_key.find('=').expect("found with its =");
        out.push_str(&from_key[..=eq]);
        let value = &from_key[eq + 1..];
        let spaces = value.len() - value.trim_start().len();
        out.push_str(&value[..spaces]);
        out.push_str("***");
        rest = &value[spaces + value_len(&value[spaces..], in_text)..];
    }
    out.push_str(rest);
    out
}

/// Where a `password` key (followed by optional spaces and `=`) starts.
fn find_password_key(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let boundary = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = lower[at + 8..].trim_start();
        if boundary && after.starts_with('=') {
            return Some(at);
        }
        from = at + 8;
    }
    None
}

fn value_len(value: &str, in_text: bool) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return i + 2,
                _ => escaped = false,
            }
        }
        return value.len();
    }
    // In other text (TOML, JSON), a double-quoted value is the value.
    if let Some(quoted) = value.strip_prefix('"').filter(|_| in_text) {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => return i + 2,
                _ => escaped = false,
            }
        }
        return value.len();
    }
    let end = |c: char| c.is_whitespace() || (in_text && matches!(c, '"' | '\''));
    value.find(end).unwrap_or(value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            ("postgres://app:s3cr@t@db:5432/shop", "postgres://app:***@db:5432/shop"),
            ("postgresql://app@db/shop", "postgresql://app@db/shop"),
            ("postgres://u:pa/ss@db/shop", "postgres://u:***@db/shop"),
            ("postgres://u:pa?ss@db/shop", "postgres://u:***@db/shop"),
            ("postgres://u:a?b=c@db/shop", "postgres://u:***@db/shop"),
            (
                "postgres://u:p@ss/x@db/shop?sslmode=require",
                "postgres://u:***@db/shop?sslmode=require",
            ),
            ("postgres://u:12/34@db/shop", "postgres://u:***@db/shop"),
            (
                "postgres://u:pw@db/shop?application_name=a@b",
                "postgres://u:***@db/shop?application_name=a@b",
            ),
            ("postgres://db:5432/shop?user=a@b", "postgres://db:5432/shop?user=a@b"),
            (
                "postgres://db/shop?user=a&password=x&sslmode=require",
                "postgres://db/shop?user=a&password=***&sslmode=require",
            ),
            (
                "postgres://db/shop?password=a&b&sslmode=disable",
                "postgres://db/shop?password=***&sslmode=disable",
            ),
            ("nats://user:hunter2@127.0.0.1:4222", "nats://user:***@127.0.0.1:4222"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn key_value_strings() {
        let cases = [
            ("host=db user=a password=x dbname=s", "host='db' user='a' password='***' dbname='s'"),
            ("host=db password = x dbname=s", "host='db' password='***' dbname='s'"),
            ("host=db password='a b' dbname=s", "host='db' password='***' dbname='s'"),
            ("host=db password='it\\'s x' dbname=s", "host='db' password='***' dbname='s'"),
            ("host=db PASSWORD=x", "host='db' PASSWORD='***'"),
            ("host=db mypassword=x", "host=db mypassword=x"),
            ("host=db password='open", "host=db password=***"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }

    #[test]
    fn secrets_in_text() {
        assert_eq!(
            redact_secrets(r#"url = "postgres://u:pa/ss@db/x" # note"#),
            r#"url = "postgres://u:***@db/x" # note"#
        );
        assert_eq!(redact_secrets("url = 'host=db password=x'"), "url = 'host=db password=***'");
        assert_eq!(redact_secrets("nothing here"), "nothing here");
        // A TOML or JSON value in double quotes is hidden whole.
        assert_eq!(redact_secrets(r#"password = "a b\"c" x"#), "password = *** x");
    }
}
