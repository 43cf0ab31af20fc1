//! RabbitMQ (AMQP 0.9.1): a URL parsed once, and how deed connects.
//!
//! `amqp://user:password@host:5672/vhost` (or `amqps://…` for TLS, the
//! broker verified against the system's root certificates and `ca=FILE`;
//! `cert=FILE&key=FILE` show a client certificate, for brokers that ask
//! for one, and with `auth_mechanism=external` sign in by it; RabbitMQ's
//! own names `cacertfile`, `certfile` and `keyfile` are read too). A URL
//! with a user and no password takes it from `DEED_AMQP_PASSWORD`, so a
//! secret need not be on a command line. The password is never shown:
//! `Display` and `Debug` give the URL redacted.

use std::fmt;
use std::path::PathBuf;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

use crate::error::BusError;

/// The variable a password comes from when the URL has none.
pub const PASSWORD_VARIABLE: &str = "DEED_AMQP_PASSWORD";

/// A RabbitMQ broker's URL.
#[derive(Clone)]
pub struct AmqpUrl {
    uri: AMQPUri,
    /// PEM files: CA certificates the broker's chains to, and a client
    /// certificate with its key.
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// As given, for messages: redacted when shown.
    written: String,
}

impl AmqpUrl {
    pub fn parse(text: &str) -> Result<AmqpUrl, BusError> {
        let text = text.trim();
        let bad = |reason: String| BusError::BadUrl { url: deed_pg::redact_url(text), reason };
        if text.contains(',') {
            return Err(bad("one RabbitMQ URL only (a cluster is reached through one address or a load balancer)".into()));
        }
        let mut uri: AMQPUri =
            text.parse().map_err(|e: String| bad(format!("not an AMQP URL: {e}")))?;
        let has_password = text
            .split_once("://")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once('@'))
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        if !has_password && text.contains('@') {
            if let Ok(p) = std::env::var(PASSWORD_VARIABLE) {
                uri.authority.userinfo.password = p;
            }
        }
        let (mut ca, mut cert, mut key) = (None, None, None);
        let query = text.split_once('?').map_or("", |(_, q)| q);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let file = Some(PathBuf::from(deed_text::percent_decode(v)));
            match k {
                "ca" | "cacertfile" => ca = file,
                "cert" | "certfile" => cert = file,
                "key" | "keyfile" => key = file,
                _ => {}
            }
        }
        if cert.is_some() != key.is_some() {
            return Err(bad("a client certificate needs its key: give both cert= and key=".into()));
        }
        if (ca.is_some() || cert.is_some()) && uri.scheme != AMQPScheme::AMQPS {
            return Err(bad("ca=, cert= and key= are for TLS: write amqps://".into()));
        }
        Ok(AmqpUrl { uri, ca, cert, key, written: text.to_string() })
    }

    /// The TLS settings: the files read now, so an error names the file.
    fn tls(&self) -> Result<OwnedTLSConfig, BusError> {
        let read = |what: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| {
                BusError::Setup(format!(
                    "cannot read the RabbitMQ {what} file {}: {e}",
                    path.display()
                ))
            })
        };
        let mut tls = OwnedTLSConfig::default();
        if let Some(ca) = &self.ca {
            tls.cert_chain = Some(String::from_utf8_lossy(&read("CA", ca)?).into_owned());
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            tls.identity = Some(OwnedIdentity::PKCS8 {
                pem: read("client certificate", cert)?,
                key: read("client key", key)?,
            });
        }
        Ok(tls)
    }

    /// Connects, naming deed (and `purpose`) to the broker.
    pub async fn connect(&self, purpose: &str) -> Result<Connection, BusError> {
        let props =
            ConnectionProperties::default().with_connection_name(format!("deed {purpose}").into());
        let failed = |reason: String| BusError::Connect { url: self.to_string(), reason };
        let runtime = lapin::runtime::default_runtime().map_err(|e| failed(e.to_string()))?;
        Connection::connect_uri_with_config(self.uri.clone(), props, self.tls()?, runtime)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}

/// Without the password.
impl fmt::Display for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&deed_pg::redact_url(&self.written))
    }
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({self})")
    }
}

/// Whether `queue` exists, by a passive declare on a channel of its own (a
/// failed one closes its channel): `Ok(false)` when the broker says it is
/// not there, its refusal or a broken connection otherwise.
pub async fn queue_exists(conn: &Connection, queue: &str) -> Result<bool, lapin::Error> {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    let ch = conn.create_channel().await?;
    let passive = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
    match ch.queue_declare(queue.into(), passive, Default::default()).await {
        Ok(_) => {
            let _ = ch.close(200, "done".into()).await;
            Ok(true)
        }
        Err(e) => match e.kind() {
            lapin::ErrorKind::ProtocolError(p)
                if matches!(p.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) =>
            {
                Ok(false)
            }
            _ => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u = AmqpUrl::parse("amqp://deed:s3cret@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(u.uri.authority.userinfo.password, "s3cret");
        assert!(!u.to_string().contains("s3cret") && !format!("{u:?}").contains("s3cret"));
        let e = AmqpUrl::parse("amqp://u:s3cret@h:notaport/").unwrap_err().to_string();
        assert!(e.contains("not an AMQP URL") && !e.contains("s3cret"), "{e}");
        let e = AmqpUrl::parse("amqp://a:5672,amqp://b:5672").unwrap_err().to_string();
        assert!(e.contains("one RabbitMQ URL"), "{e}");
    }

    #[test]
    fn tls_files_come_from_the_query_under_either_name() {
        let u = AmqpUrl::parse("amqps://u:p@h/%2f?ca=/c.pem&certfile=/me.pem&key=/me.key").unwrap();
        assert_eq!(u.ca, Some(PathBuf::from("/c.pem")));
        assert_eq!(u.cert, Some(PathBuf::from("/me.pem")));
        assert_eq!(u.key, Some(PathBuf::from("/me.key")));
        let e = AmqpUrl::parse("amqps://h/?cert=/me.pem").unwrap_err().to_string();
        assert!(e.contains("needs its key"), "{e}");
        let e = AmqpUrl::parse("amqp://h/?ca=/c.pem").unwrap_err().to_string();
        assert!(e.contains("write amqps://"), "{e}");
        let e = AmqpUrl::parse("amqps://u:s3cret@h/?ca=/none.pem").unwrap().tls().unwrap_err();
        assert!(e.to_string().contains("/none.pem"), "{e}");
    }
}
