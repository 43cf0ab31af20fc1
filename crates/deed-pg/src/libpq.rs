/// Splits a connection string for a libpq program such as `pg_dump`: the
/// string without its password, and the password for `PGPASSWORD`, so it
/// never appears in the process list.
pub fn split_password(url: &str) -> (String, Option<String>) {
    let mut password = None;
    if let Some(scheme_end) = url.find("://") {
        let (scheme, rest) = url.split_at(scheme_end + 3);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, pass)) => {
                        password = Some(percent_decode(pass));
                        format!("{user}{host}")
                    }
                    None => authority.to_string(),
                }
            }
            None => authority.to_string(),
        };
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .filter(|kv| match kv.split_once('=') {
                Some(("password", v)) => {
                    password = Some(percent_decode(v));
                    false
                }
                _ => true,
            })
            .collect();
        let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
        return (format!("{scheme}{authority}{path}{query}"), password);
    }
    // key=value: read as libpq reads it, quotes and escapes included.
    match deed_text::parse_conninfo(url) {
        Some(pairs) => {
            let (secret, kept): (Vec<_>, Vec<_>) =
                pairs.into_iter().partition(|(k, _)| k == "password");
            (deed_text::write_conninfo(&kept), secret.into_iter().next_back().map(|(_, v)| v))
        }
        None => (url.to_string(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::split_password;

    #[test]
    fn takes_the_password_out() {
        assert_eq!(
            split_password("postgres://app:p%40ss@db:5432/shop?sslmode=require"),
            ("postgres://app@db:5432/shop?sslmode=require".to_string(), Some("p@ss".to_string()))
        );
        assert_eq!(
            split_password("postgres://db/shop?user=a&password=x&sslmode=disable"),
            ("postgres://db/shop?user=a&sslmode=disable".to_string(), Some("x".to_string()))
        );
        assert_eq!(
            split_password("host=db password=x dbname=s"),
            ("host='db' dbname='s'".to_string(), Some("x".to_string()))
        );
        assert_eq!(
            split_password("host=db password='a b' dbname=s"),
            ("host='db' dbname='s'".to_string(), Some("a b".to_string()))
        );
        assert_eq!(split_password("postgres://db/shop"), ("postgres://db/shop".to_string(), None));
    }
}
