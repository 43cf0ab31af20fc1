//! Where events go: NATS JetStream, or an inbox table in another
//! PostgreSQL database.

pub(crate) mod nats;
mod postgres;
pub mod settings;

use crate::envelope::Envelope;
use crate::error::RelayError;

pub use nats::NatsSink;
pub use postgres::PgSink;
pub use settings::StreamSettings;

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
    Nats(NatsSink),
    Postgres(PgSink),
}

impl Sink {
    /// `nats://…` or `postgres://…` (or `postgresql://…`).
    pub async fn connect(url: &str, service: &str) -> Result<Sink, RelayError> {
        Sink::connect_with(url, service, &StreamSettings::default()).await
    }

    /// Like [`Sink::connect`], with the JetStream stream's settings.
    pub async fn connect_with(
        url: &str,
        service: &str,
        stream: &StreamSettings,
    ) -> Result<Sink, RelayError> {
        if url.starts_with("nats://") || url.starts_with("tls://") {
            Ok(Sink::Nats(NatsSink::connect_with(url, service, stream).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Sink::Postgres(PgSink::connect(url, service).await?))
        } else {
            Err(RelayError::Setup(format!(
                "unknown sink {}: use nats://host:port or postgres://…",
                deed_pg::redact_url(url)
            )))
        }
    }

    /// Stores the events, in order; returns only once the sink has them.
    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        match self {
            Sink::Nats(s) => s.deliver(events).await,
            Sink::Postgres(s) => s.deliver(events).await,
        }
    }
}
