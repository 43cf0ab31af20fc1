//! An HTTP endpoint that takes deed's events (`https://…`, or `http://…`
//! for local use), parsed once. A token in the URL (user, password or
//! query) is never shown: `Display` gives scheme, host, port and path.

use std::fmt;

use crate::error::BusError;

#[derive(Clone)]
pub struct WebhookUrl {
    url: reqwest::Url,
}

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<WebhookUrl, BusError> {
        let text = text.trim();
        let url = reqwest::Url::parse(text).map_err(|e| BusError::BadUrl {
            url: deed_pg::redact_url(text.split('?').next().unwrap_or_default()),
            reason: format!("not an HTTP URL: {e}"),
        })?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(BusError::BadUrl {
                url: deed_pg::redact_url(text.split('?').next().unwrap_or_default()),
                reason: "the URL names no host".into(),
            });
        }
        Ok(WebhookUrl { url })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The error for reading events from an endpoint (`deed project`,
    /// `tail`, `compare`): deed only posts to one.
    pub fn not_a_source(&self) -> BusError {
        BusError::BadUrl {
            url: self.to_string(),
            reason: "an HTTP endpoint is where `deed relay` posts events, not where deed reads them: give the inbox or bus the events are kept in".into(),
        }
    }
}

/// Without user, password or query.
impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.url;
        write!(f, "{}://{}", u.scheme(), u.host_str().unwrap_or_default())?;
        if let Some(p) = u.port() {
            write!(f, ":{p}")?;
        }
        f.write_str(u.path())?;
        if u.query().is_some() {
            f.write_str("?…")?;
        }
        Ok(())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_never_show_their_tokens() {
        let u =
            WebhookUrl::parse("https://u:s3cret@hooks.example.com:8443/deed?token=t0ken").unwrap();
        assert_eq!(u.to_string(), "https://hooks.example.com:8443/deed?…");
        assert!(!format!("{u:?}").contains("s3cret") && !format!("{u:?}").contains("t0ken"));
        assert!(u.is_https());
        let e = WebhookUrl::parse("http://[::1").unwrap_err().to_string();
        assert!(e.contains("not an HTTP URL"), "{e}");
    }
}
