//! Where events go: NATS JetStream, Kafka, RabbitMQ, an HTTP endpoint, or an
//! inbox table in another PostgreSQL database. Every sink carries the same envelope
//! bytes, and a position is confirmed to the slot only once the sink has
//! stored everything before it.

pub(crate) mod amqp;
pub(crate) mod kafka;
pub(crate) mod nats;
mod postgres;
pub mod settings;
pub mod webhook;

use crate::envelope::Envelope;
use crate::error::RelayError;
use deed_bus::NatsAuth;

pub use amqp::AmqpSink;
pub use kafka::KafkaSink;
pub use nats::NatsSink;
pub use postgres::PgSink;
pub use settings::StreamSettings;
pub use webhook::{WebhookSettings, WebhookSink};

/// What one delivery did beyond storing the events.
#[derive(Debug, Default, Clone, Copy)]
pub struct Delivered {
    /// Events the sink already had (a redelivery after a crash).
    pub duplicates: u64,
    /// Events that can never be delivered (too large for the broker),
    /// recorded as dead letters instead so the stream moves on.
    pub dead_letters: u64,
}

impl Delivered {
    pub fn add(&mut self, other: &Delivered) {
        self.duplicates += other.duplicates;
        self.dead_letters += other.dead_letters;
    }
}

pub enum Sink {
    Nats(Box<NatsSink>),
    Amqp(Box<AmqpSink>),
    Kafka(Box<KafkaSink>),
    Webhook(Box<WebhookSink>),
    Postgres(PgSink),
}

/// A sent batch, to be settled: what its acknowledgement depends on.
#[derive(Debug, Clone, Copy)]
pub enum Ticket {
    Nats(nats::Ticket),
    Amqp(amqp::Ticket),
    Kafka(kafka::Ticket),
    /// Already stored (the inbox's insert returns once committed).
    Stored(Delivered),
}

impl Sink {
    /// A bus URL (see [`deed_bus::Bus`]).
    pub async fn connect(url: &str, service: &str) -> Result<Sink, RelayError> {
        Sink::connect_with(url, service, &StreamSettings::default()).await
    }

    /// Like [`Sink::connect`], with the JetStream stream's settings.
    pub async fn connect_with(
        url: &str,
        service: &str,
        stream: &StreamSettings,
    ) -> Result<Sink, RelayError> {
        Sink::connect_as(url, service, stream, &NatsAuth::default()).await
    }

    /// Like [`Sink::connect_with`], signing in to NATS with `auth`.
    pub async fn connect_as(
        url: &str,
        service: &str,
        stream: &StreamSettings,
        auth: &NatsAuth,
    ) -> Result<Sink, RelayError> {
        Sink::connect_to(url, service, stream, auth, &WebhookSettings::default()).await
    }

    /// Like [`Sink::connect_as`], posting to a webhook with `webhook`.
    pub async fn connect_to(
        url: &str,
        service: &str,
        stream: &StreamSettings,
        auth: &NatsAuth,
        webhook: &WebhookSettings,
    ) -> Result<Sink, RelayError> {
        match deed_bus::Bus::parse(url)? {
            deed_bus::Bus::Nats(servers) => Ok(Sink::Nats(Box::new(
                NatsSink::connect_as(&servers, service, stream, auth).await?,
            ))),
            deed_bus::Bus::Amqp(url) => {
                Ok(Sink::Amqp(Box::new(AmqpSink::connect(&url, service, stream).await?)))
            }
            deed_bus::Bus::Kafka(url) => {
                Ok(Sink::Kafka(Box::new(KafkaSink::connect(&url, service, stream).await?)))
            }
            deed_bus::Bus::Webhook(url) => {
                Ok(Sink::Webhook(Box::new(WebhookSink::connect(&url, webhook)?)))
            }
            deed_bus::Bus::Inbox(url) => Ok(Sink::Postgres(PgSink::connect(&url, service).await?)),
        }
    }

    /// Stores the events, in order; returns only once the sink has them.
    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let ticket = self.send(events).await?;
        self.settle(ticket).await
    }

    /// Hands the events to the sink, in order after those sent before,
    /// without waiting for the broker's acknowledgements.
    pub async fn send(&mut self, events: &[Envelope]) -> Result<Ticket, RelayError> {
        if events.is_empty() {
            return Ok(Ticket::Stored(Delivered::default()));
        }
        match self {
            Sink::Nats(s) => Ok(Ticket::Nats(s.send(events).await?)),
            Sink::Amqp(s) => Ok(Ticket::Amqp(s.send(events).await?)),
            Sink::Kafka(s) => Ok(Ticket::Kafka(s.send(events).await?)),
            Sink::Postgres(s) => Ok(Ticket::Stored(s.deliver(events).await?)),
            Sink::Webhook(s) => Ok(Ticket::Stored(s.deliver(events).await?)),
        }
    }

    /// Waits until everything sent up to `ticket` is stored. Cancel-safe.
    pub async fn settle(&mut self, ticket: Ticket) -> Result<Delivered, RelayError> {
        match (self, ticket) {
            (_, Ticket::Stored(d)) => Ok(d),
            (Sink::Nats(s), Ticket::Nats(t)) => s.settle(t).await,
            (Sink::Amqp(s), Ticket::Amqp(t)) => s.settle(t).await,
            (Sink::Kafka(s), Ticket::Kafka(t)) => s.settle(t).await,
            (_, t) => Err(RelayError::Setup(format!("a ticket of another sink: {t:?}"))),
        }
    }
}

/// What a dead letter on a bus says: the event without its payload, and
/// why it could not be delivered.
pub(crate) fn dead_letter_body(e: &Envelope, error: &str) -> Vec<u8> {
    let key: serde_json::Value =
        serde_json::from_str(&e.key).unwrap_or(serde_json::Value::String(e.key.clone()));
    let body = serde_json::json!({
        "id": e.id, "type": &*e.kind, "key": key, "op": e.op, "position": e.position(),
        "lsn": e.lsn(), "committed_at": &*e.committed_at, "error": error, "payload_bytes": e.to_json().len(),
    });
    serde_json::to_vec(&body).expect("json")
}
