//! RabbitMQ: each service's events in a stream queue.
//!
//! Events are published to the topic exchange `deed` with the event's
//! subject as routing key (`deed.<service>.<event>`); the service's stream
//! queue `deed.<service>` is bound to `deed.<service>.#`. A stream keeps
//! every event in publish order, which is commit order (one relay
//! publishes, on one channel), so per-key order holds with no partitioning
//! to choose; consumers read it from any offset without taking events
//! from each other, as a JetStream consumer does, so each projection,
//! `deed tail` and `deed compare` read the same events independently. A
//! consistent-hash exchange over classic queues would spread keys over
//! queues, but each event would then be consumed once, by one reader.
//!
//! Messages are persistent, carry the event id as `message_id` and the
//! type, contract and position as headers, and are published with
//! publisher confirms: the slot is confirmed only after the broker has
//! confirmed everything before. A stream does not drop a redelivered
//! event (RabbitMQ deduplicates only over its stream protocol): after a
//! crash the last unconfirmed events arrive again with the same ids and
//! positions, and a projection skips them by position.

use std::collections::VecDeque;

use deed_events::{AMQP_EXCHANGE, amqp_binding, amqp_stream, dead_letter_subject};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind, PublisherConfirm};

use super::{Delivered, StreamSettings};
use crate::envelope::Envelope;
use crate::error::RelayError;

/// RabbitMQ's default largest message (`max_message_size`, 128 MiB): a
/// larger event is recorded as a dead letter instead.
pub const MAX_MESSAGE: usize = 128 * 1024 * 1024;

pub struct AmqpSink {
    // Kept open for the channel's life.
    _connection: Connection,
    channel: Channel,
    service: String,
    /// Confirms not yet settled, in publish order.
    pending: VecDeque<PublisherConfirm>,
    /// Publishes numbered from the first: `pending`'s first is `base`.
    next: u64,
    base: u64,
    url: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Ticket {
    upto: u64,
    dead_letters: u64,
}

fn sink_error(url: &str, what: &str, e: lapin::Error) -> RelayError {
    RelayError::Sink(format!("{what} on {url}: {e}"))
}

impl AmqpSink {
    /// Connects, and declares the exchange and the service's stream queue,
    /// which keeps events for `stream.max_age` (zero: until a policy says
    /// otherwise). An existing queue with other settings is refused by the
    /// broker, and reported.
    pub async fn connect(
        url: &deed_bus::AmqpUrl,
        service: &str,
        stream: &StreamSettings,
    ) -> Result<AmqpSink, RelayError> {
        let shown = url.to_string();
        let connection = url.connect(&format!("relay {service}")).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| sink_error(&shown, "opening a channel", e))?;
        declare(&channel, service, stream).await.map_err(|e| {
            let what = format!(
                "cannot declare RabbitMQ exchange {AMQP_EXCHANGE} and stream queue {} on {shown}: {e}",
                amqp_stream(service)
            );
            if refused(&e) {
                // Someone must change the queue or the user's permissions.
                RelayError::Setup(format!(
                    "{what} (a queue of that name that is not a durable stream, or one whose x-max-age is not --stream-max-age, is refused and left as it is: change the flag, or the queue, or give deed a vhost of its own)"
                ))
            } else {
                // A node restarting ("home node … is down"), a connection
                // lost: the relay asks again.
                RelayError::Sink(what)
            }
        })?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| sink_error(&shown, "turning on publisher confirms", e))?;
        Ok(AmqpSink {
            _connection: connection,
            channel,
            service: service.to_string(),
            pending: VecDeque::new(),
            next: 0,
            base: 0,
            url: shown,
        })
    }

    /// Publishes the events, in order, without waiting for confirms.
    pub async fn send(&mut self, events: &[Envelope]) -> Result<Ticket, RelayError> {
        let mut dead_letters = 0;
        for e in events {
            let body = e.to_json();
            if body.len() > MAX_MESSAGE {
                let error = format!(
                    "{} bytes, more than RabbitMQ's largest message ({MAX_MESSAGE} bytes)",
                    body.len()
                );
                self.dead_letter(e, &error).await?;
                dead_letters += 1;
                continue;
            }
            let mut headers = FieldTable::default();
            headers.insert("deed-type".into(), text(&e.kind));
            if let Some(c) = &e.contract {
                headers.insert("deed-contract".into(), text(c));
            }
            headers.insert("deed-position".into(), text(&e.position()));
            let props = BasicProperties::default()
                .with_message_id(e.id.as_str().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(headers);
            self.publish(e.subject(), &body, props, &e.id).await?;
        }
        Ok(Ticket { upto: self.next, dead_letters })
    }

    async fn publish(
        &mut self,
        routing_key: &str,
        body: &[u8],
        props: BasicProperties,
        id: &str,
    ) -> Result<(), RelayError> {
        let options = BasicPublishOptions { mandatory: true, ..Default::default() };
        let confirm = self
            .channel
            .basic_publish(AMQP_EXCHANGE.into(), routing_key.into(), options, body, props)
            .await
            .map_err(|e| sink_error(&self.url, &format!("publishing {id}"), e))?;
        self.pending.push_back(confirm);
        self.next += 1;
        Ok(())
    }

    /// Waits until the broker has confirmed every publish before the
    /// ticket. Cancel-safe: a confirm is taken off only once it arrived.
    pub async fn settle(&mut self, ticket: Ticket) -> Result<Delivered, RelayError> {
        while self.base < ticket.upto {
            let Some(front) = self.pending.front_mut() else { break };
            let confirmation =
                front.await.map_err(|e| sink_error(&self.url, "waiting for a confirm", e))?;
            self.pending.pop_front();
            self.base += 1;
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) => {
                    return Err(RelayError::Sink(format!(
                        "RabbitMQ returned an event as unroutable ({}): is stream queue {} still bound to exchange {AMQP_EXCHANGE}?",
                        returned.reply_text,
                        amqp_stream(&self.service)
                    )));
                }
                Confirmation::Nack(_) => {
                    return Err(RelayError::Sink(format!(
                        "RabbitMQ did not store an event (nack) on {}: is the stream's leader up?",
                        self.url
                    )));
                }
                Confirmation::NotRequested => {}
            }
        }
        Ok(Delivered { duplicates: 0, dead_letters: ticket.dead_letters })
    }

    /// Records an event that cannot be delivered, without its payload, on
    /// `deed.<service>.dead_letter` in the same stream.
    async fn dead_letter(&mut self, e: &Envelope, error: &str) -> Result<(), RelayError> {
        let body = super::dead_letter_body(e, error);
        let props = BasicProperties::default()
            .with_message_id(format!("{}/dead_letter", e.id).into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let subject = dead_letter_subject(&self.service);
        self.publish(&subject, &body, props, &e.id).await
    }
}

/// The broker's refusal of what deed declares: the queue exists with
/// other arguments, or the user may not declare or bind it. Not a node
/// that is down or restarting, which passes.
fn refused(e: &lapin::Error) -> bool {
    use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => matches!(
            amqp.kind(),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED | AMQPSoftError::ACCESSREFUSED)
                | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED | AMQPHardError::NOTIMPLEMENTED)
        ),
        _ => false,
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// The stream's `x-max-age`: whole seconds, as RabbitMQ writes them
/// (`3600s`); none for zero.
fn max_age(stream: &StreamSettings) -> Option<String> {
    let secs = stream.max_age.as_secs();
    (secs > 0).then(|| format!("{secs}s"))
}

async fn declare(
    channel: &Channel,
    service: &str,
    stream: &StreamSettings,
) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(AMQP_EXCHANGE.into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await?;
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), AMQPValue::LongString("stream".into()));
    if let Some(age) = max_age(stream) {
        args.insert("x-max-age".into(), AMQPValue::LongString(age.into()));
    }
    let queue = amqp_stream(service);
    let options = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.as_str().into(), options, args).await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            AMQP_EXCHANGE.into(),
            amqp_binding(service).into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
