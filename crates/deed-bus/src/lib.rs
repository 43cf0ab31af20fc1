//! Where deed's events travel, named by one URL that `deed relay --to`,
//! `deed project --from`, `deed tail --from` and `deed compare
//! --events-from` all read the same way ([`Bus::parse`]):
//!
//! - `postgres://…` (or `postgresql://…`): the inbox in a PostgreSQL
//!   database, the embedded default;
//! - `nats://h1:4222,nats://h2:4222,…` (or `tls://…`, or bare
//!   `host:port` after the first): NATS JetStream, one server or several
//!   of a cluster, the client moving to another when one goes away
//!   ([`NatsServers`]);
//! - `amqp://…` (or `amqps://…`): RabbitMQ, the service's events in a
//!   stream queue ([`AmqpUrl`]);
//! - `kafka://b1:9092,b2:9092` (or `kafkas://…` for TLS): Kafka, a topic
//!   per event type, SASL and TLS settings in the query ([`KafkaUrl`]);
//! - `https://…` (or `http://…` for local use): an endpoint deed POSTs
//!   batches of events to ([`WebhookUrl`]).
//!
//! [`NatsAuth`] is how deed signs in to NATS (user and password or a token
//! from the URL or the environment, an nkey seed, a `.creds` file, TLS with
//! a CA and a client certificate), for publishers and consumers alike.
//! Secrets are never printed: URLs are shown redacted
//! ([`redact_nats_url`]), errors name files and variables, not contents.

mod amqp;
mod error;
mod kafka;
mod kafka_witness;
mod nats;
mod url;
mod webhook;

pub use amqp::{
    AmqpUrl, PASSWORD_VARIABLE as AMQP_PASSWORD_VARIABLE, queue_exists as amqp_queue_exists,
};
pub use error::BusError;
pub use kafka::{
    KafkaUrl, PASSWORD_VARIABLE as KAFKA_PASSWORD_VARIABLE, Sasl,
    TOPIC_PATTERN as KAFKA_TOPIC_PATTERN,
};
pub use kafka_witness::Witness as KafkaWitness;
pub use nats::{NatsAuth, redact_nats_url};
pub use url::{Bus, NatsServers};
pub use webhook::WebhookUrl;
