/// A connection string fit for printing: any password is replaced by `***`,
/// whether it sits in the URL's user info, a `password=` query parameter, or
/// a `key=value` connection string.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let (scheme, rest) = url.split_at(scheme_end + 3);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.find(':') {
                    Some(colon) => format!("{}:***{}", &userinfo[..colon], host),
                    None => authority.to_string(),
                }
            }
            None => authority.to_string(),
        };
        return format!("{scheme}{authority}{}", redact_params(tail, '&'));
    }
    redact_params(url, ' ')
}

fn redact_params(text: &str, separator: char) -> String {
    text.split(separator)
        .map(|part| {
            let (prefix, kv) = match part.find('?') {
                Some(q) if separator == '&' => part.split_at(q + 1),
                _ => ("", part),
            };
            match kv.split_once('=') {
                Some((key, _)) if key.trim().eq_ignore_ascii_case("password") => {
                    format!("{prefix}{key}=***")
                }
                _ => part.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_everywhere() {
        assert_eq!(
            redact_url("postgres://app:s3cr@t@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(redact_url("postgresql://app@db/shop"), "postgresql://app@db/shop");
        assert_eq!(
            redact_url("postgres://db/shop?user=a&password=x&sslmode=require"),
            "postgres://db/shop?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://db/shop?password=x"), "postgres://db/shop?password=***");
        assert_eq!(
            redact_url("host=db user=a password=x dbname=s"),
            "host=db user=a password=*** dbname=s"
        );
    }
}
