//! A bus URL, parsed once.

use std::fmt;

use async_nats::ServerAddr;

use crate::amqp::AmqpUrl;
use crate::error::BusError;
use crate::kafka::KafkaUrl;
use crate::nats::redact_nats_url;
use crate::webhook::WebhookUrl;

/// Where events are written or read.
#[derive(Clone)]
pub enum Bus {
    /// The inbox in the PostgreSQL database at this URL.
    Inbox(String),
    /// NATS JetStream.
    Nats(NatsServers),
    /// RabbitMQ: a stream queue per producing service.
    Amqp(AmqpUrl),
    /// Kafka: a topic per event type (or per service).
    Kafka(KafkaUrl),
    /// An HTTP endpoint (the relay's sink only).
    Webhook(WebhookUrl),
}

/// One NATS server or several of a cluster, with the credentials a URL
/// carried (`nats://user:password@h`, `nats://token@h`), percent-decoded.
/// `Debug` and `Display` never show them.
#[derive(Clone)]
pub struct NatsServers {
    pub(crate) servers: Vec<ServerAddr>,
    /// As given, for messages: redacted when shown.
    written: String,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) token: Option<String>,
}

impl Bus {
    /// The kind of bus, as metrics label it: `inbox`, `nats`, `rabbitmq`,
    /// `kafka` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Bus::Inbox(_) => "inbox",
            Bus::Nats(_) => "nats",
            Bus::Amqp(_) => "rabbitmq",
            Bus::Kafka(_) => "kafka",
            Bus::Webhook(_) => "webhook",
        }
    }

    /// `postgres://…`, or a comma-separated list of NATS servers
    /// (`nats://`, `tls://`; a later entry may be a bare `host:port`).
    pub fn parse(text: &str) -> Result<Bus, BusError> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Bus::Inbox(text.to_string()));
        }
        if text.starts_with("nats://") || text.starts_with("tls://") {
            return Ok(Bus::Nats(NatsServers::parse(text)?));
        }
        if text.starts_with("amqp://") || text.starts_with("amqps://") {
            return Ok(Bus::Amqp(AmqpUrl::parse(text)?));
        }
        if text.starts_with("kafka://") || text.starts_with("kafkas://") {
            return Ok(Bus::Kafka(KafkaUrl::parse(text)?));
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return Ok(Bus::Webhook(WebhookUrl::parse(text)?));
        }
        let shown = deed_pg::redact_url(&redact_nats_url(text));
        Err(BusError::BadUrl {
            url: shown,
            reason: "not a bus deed knows: give nats://host:port (several comma-separated for a cluster), kafka://host:9092 (several comma-separated), amqp://user@host:5672/vhost for RabbitMQ, https://… for a webhook, or postgres://… for an inbox".into(),
        })
    }
}

impl NatsServers {
    pub fn parse(text: &str) -> Result<NatsServers, BusError> {
        let bad = |reason: String| BusError::BadUrl { url: redact_nats_url(text), reason };
        let mut servers = Vec::new();
        for (i, one) in text.split(',').map(str::trim).enumerate() {
            if one.is_empty() {
                return Err(bad(format!("server {} of the list is empty", i + 1)));
            }
            let addr = one.parse::<ServerAddr>().map_err(|e| {
                bad(format!("server {} ({}) is not a NATS URL: {e}", i + 1, redact_nats_url(one)))
            })?;
            servers.push(addr);
        }
        // The client reads no credentials from a URL: deed takes them.
        let (mut user, mut password, mut token) = (None, None, None);
        if let Some(s) = servers.iter().find(|s| s.username().is_some()) {
            let name = deed_text::percent_decode(s.username().unwrap_or_default());
            match s.password() {
                Some(p) => {
                    user = Some(name);
                    password = Some(deed_text::percent_decode(p));
                }
                None => token = Some(name),
            }
        }
        Ok(NatsServers { servers, written: text.to_string(), user, password, token })
    }
}

/// Without credentials.
impl fmt::Display for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_nats_url(&self.written))
    }
}

impl fmt::Debug for NatsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsServers({self})")
    }
}

/// Without credentials.
impl fmt::Display for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bus::Inbox(url) => f.write_str(&deed_pg::redact_url(url)),
            Bus::Nats(n) => n.fmt(f),
            Bus::Amqp(a) => a.fmt(f),
            Bus::Kafka(k) => k.fmt(f),
            Bus::Webhook(w) => w.fmt(f),
        }
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bus({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_and_their_credentials() {
        let Bus::Nats(n) = Bus::parse("nats://u:p%40ss@a:4222, nats://b:4223,c:4224").unwrap()
        else {
            panic!("a NATS bus")
        };
        assert_eq!(n.servers.len(), 3);
        assert_eq!((n.user.as_deref(), n.password.as_deref()), (Some("u"), Some("p@ss")));
        assert_eq!(n.to_string(), "nats://***@a:4222,nats://b:4223,c:4224");
        let Bus::Nats(n) = Bus::parse("tls://t%2Fk@h:1").unwrap() else { panic!() };
        assert_eq!(n.token.as_deref(), Some("t/k"));
        assert!(!format!("{n:?}").contains("t%2Fk"));
        assert!(matches!(Bus::parse("postgres://u:pw@h/db"), Ok(Bus::Inbox(_))));
        let e = Bus::parse("pulsar://s3cret@b:6650").unwrap_err().to_string();
        assert!(e.contains("not a bus") && !e.contains("s3cret"), "{e}");
        let e = Bus::parse("nats://a:1,,nats://b:2").unwrap_err().to_string();
        assert!(e.contains("server 2"), "{e}");
        let e = Bus::parse("nats://a:99999").unwrap_err().to_string();
        assert!(e.contains("server 1"), "{e}");
    }
}
