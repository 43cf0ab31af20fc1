//! Where a projector reads events: the inbox in the consumer's own
//! database (the embedded default, filled by `deed relay --to postgres://…`),
//! JetStream (a durable consumer per projection), a RabbitMQ stream
//! queue (a consumer per projection from a recorded offset) or Kafka
//! (every partition of the event's topic, merged back into commit order). All hand over
//! events of one type in the producer's commit order, possibly with
//! duplicates of events already applied, which the position skips.

pub mod amqp;
pub mod inbox;
pub mod kafka;
mod merge;
pub mod nats;

use crate::error::ProjectError;
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

pub enum Source {
    Inbox(inbox::Inbox),
    Nats(Box<nats::NatsSource>),
    Amqp(Box<amqp::AmqpSource>),
    Kafka(Box<kafka::KafkaSource>),
}

impl Source {
    /// `None`: the inbox in the consumer's database (`target`); a bus URL
    /// (see [`deed_bus::Bus`]): the inbox of that database, or JetStream,
    /// one server or a cluster, signed in with `auth`.
    pub async fn open(
        from: Option<&str>,
        target: &str,
        auth: &deed_bus::NatsAuth,
    ) -> Result<Source, ProjectError> {
        let Some(from) = from.filter(|f| *f != "inbox") else {
            return Ok(Source::Inbox(inbox::Inbox::connect(target).await?));
        };
        match deed_bus::Bus::parse(from).map_err(|e| ProjectError::Setup(format!("--from {e}")))? {
            deed_bus::Bus::Inbox(url) => Ok(Source::Inbox(inbox::Inbox::connect(&url).await?)),
            deed_bus::Bus::Nats(servers) => {
                Ok(Source::Nats(Box::new(nats::NatsSource::connect(&servers, auth).await?)))
            }
            deed_bus::Bus::Amqp(url) => {
                Ok(Source::Amqp(Box::new(amqp::AmqpSource::connect(&url, target).await?)))
            }
            deed_bus::Bus::Kafka(url) => {
                Ok(Source::Kafka(Box::new(kafka::KafkaSource::connect(&url).await?)))
            }
            deed_bus::Bus::Webhook(url) => {
                Err(ProjectError::Setup(format!("--from {}", url.not_a_source())))
            }
        }
    }

    /// Up to `limit` events of the projection after `position`.
    pub async fn fetch(
        &mut self,
        spec: &ProjectionSpec,
        position: &str,
        limit: usize,
    ) -> Result<Vec<Incoming>, ProjectError> {
        match self {
            Source::Inbox(i) => i.fetch(&spec.event, position, limit).await,
            Source::Nats(n) => n.fetch(spec, limit).await,
            Source::Amqp(a) => a.fetch(spec, limit).await,
            Source::Kafka(k) => k.fetch(spec, limit).await,
        }
    }

    /// The inbox, which can be read ahead of what is committed.
    pub fn inbox(&self) -> Option<&inbox::Inbox> {
        match self {
            Source::Inbox(i) => Some(i),
            Source::Nats(_) | Source::Amqp(_) | Source::Kafka(_) => None,
        }
    }

    /// Confirms to the source what has been committed.
    pub async fn committed(&mut self, spec: &ProjectionSpec) -> Result<(), ProjectError> {
        match self {
            Source::Inbox(_) => Ok(()),
            Source::Nats(n) => n.ack(spec).await,
            Source::Amqp(a) => a.committed(spec).await,
            Source::Kafka(k) => k.committed(spec).await,
        }
    }
}

/// Counts how many of a projection's events wait on a bus, as the bus
/// counts them (see [`nats::NatsSource::pending`], [`kafka::pending`]).
/// RabbitMQ's stream queues keep no count of a consumer's backlog, and the
/// inbox is counted by position in [`crate::health`]: both are refused.
pub struct Backlog {
    /// The bus, without credentials.
    pub shown: String,
    reader: Counter,
}

enum Counter {
    Nats(Box<nats::NatsSource>),
    Kafka(Box<deed_bus::KafkaUrl>),
}

impl Backlog {
    pub async fn open(
        bus: &deed_bus::Bus,
        auth: &deed_bus::NatsAuth,
    ) -> Result<Backlog, ProjectError> {
        let reader = match bus {
            deed_bus::Bus::Nats(servers) => {
                Counter::Nats(Box::new(nats::NatsSource::connect(servers, auth).await?))
            }
            deed_bus::Bus::Kafka(url) => Counter::Kafka(Box::new(url.clone())),
            other => {
                return Err(ProjectError::Setup(format!(
                    "--bus {other}: deed counts what waits on JetStream and Kafka; RabbitMQ's stream queues keep no count of a consumer's backlog, and the inbox's is always shown"
                )));
            }
        };
        Ok(Backlog { shown: bus.to_string(), reader })
    }

    /// Whether [`Backlog::open`] can count what waits on `bus`.
    pub fn counts(bus: &deed_bus::Bus) -> bool {
        matches!(bus, deed_bus::Bus::Nats(_) | deed_bus::Bus::Kafka(_))
    }

    /// The projection's events waiting; `None` where nothing of it is on
    /// the bus yet (no stream, consumer or topic).
    pub async fn pending(&self, spec: &ProjectionSpec) -> Result<Option<u64>, ProjectError> {
        match &self.reader {
            Counter::Nats(n) => n.pending(spec).await,
            Counter::Kafka(url) => kafka::pending(url, spec).await,
        }
    }
}
