//! RabbitMQ (AMQP 0.9.1): a URL parsed once, and how deed connects.
//!
//! `amqp://user:password@host:5672/vhost` (or `amqps://…` for TLS, with
//! the system's root certificates). A URL with a user and no password
//! takes it from `DEED_AMQP_PASSWORD`, so a secret need not be on a
//! command line. The password is never shown: `Display` and `Debug` give
//! the URL redacted.

use std::fmt;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};

use crate::error::BusError;

/// The variable a password comes from when the URL has none.
pub const PASSWORD_VARIABLE: &str = "DEED_AMQP_PASSWORD";

/// A RabbitMQ broker's URL.
#[derive(Clone)]
pub struct AmqpUrl {
    uri: AMQPUri,
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
        Ok(AmqpUrl { uri, written: text.to_string() })
    }

    /// Connects, naming deed (and `purpose`) to the broker.
    pub async fn connect(&self, purpose: &str) -> Result<Connection, BusError> {
        let props =
            ConnectionProperties::default().with_connection_name(format!("deed {purpose}").into());
        Connection::connect_uri(self.uri.clone(), props)
            .await
            .map_err(|e| BusError::Connect { url: self.to_string(), reason: e.to_string() })
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
}
