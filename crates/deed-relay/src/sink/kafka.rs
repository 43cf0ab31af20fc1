//! Kafka: a topic per event type (`deed.<service>.<event>`, or the URL's
//! `topic=` pattern), the event's key as the message key, so all events of
//! one key land in one partition, in commit order.
//!
//! The producer is idempotent with `acks=all`: a broker keeps each
//! message once and in order per partition even when the client resends.
//! Sends are pipelined; the slot is confirmed only once the brokers
//! acknowledged everything before. Then the relay records on the service's
//! positions topic how far it got ([`deed_events::Reached`]): readers of
//! several partitions merge them back into commit order with it. After a
//! crash the relay sends the unconfirmed events again, with the same ids
//! and positions, and projections skip them by position.
//!
//! Topics are created with the partitions, replication factor and
//! retention asked for; a topic that exists with other ones is reported,
//! not changed. An event larger than the URL's `max_message_bytes` is
//! recorded on the dead-letter topic, without its payload, and the rest go
//! on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use deed_bus::KafkaWitness;
use deed_events::{Position, Reached};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::Delivered;
use super::settings::StreamSettings;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// Room left in `max_message_bytes` for the key, headers and framing.
const OVERHEAD: usize = 4096;

pub struct KafkaSink {
    producer: FutureProducer<KafkaWitness>,
    admin: AdminClient<KafkaWitness>,
    /// What the producer and the admin client last heard go wrong.
    witness: KafkaWitness,
    url: deed_bus::KafkaUrl,
    service: String,
    settings: StreamSettings,
    /// Topics made or checked, so each is looked at once.
    ready: Vec<Arc<str>>,
    /// Each event kind's topic, named once.
    topics: Vec<(Arc<str>, Arc<str>)>,
    /// Deliveries not yet settled, in send order, with their topic.
    pending: VecDeque<(Arc<str>, DeliveryFuture)>,
    next: u64,
    base: u64,
    /// What this relay has stored: topic → partition → next offset.
    reached: Reached,
    /// The record of `reached` sent last, not yet acknowledged.
    recording: Option<DeliveryFuture>,
    positions_topic: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Ticket {
    upto: u64,
    dead_letters: u64,
    last: Option<Position>,
}

fn failed(
    url: &deed_bus::KafkaUrl,
    witness: &KafkaWitness,
    what: &str,
    e: impl std::fmt::Display,
) -> RelayError {
    RelayError::Sink(format!("{what} on {url}: {}", witness.explain(e)))
}

impl KafkaSink {
    pub async fn connect(
        url: &deed_bus::KafkaUrl,
        service: &str,
        settings: &StreamSettings,
    ) -> Result<KafkaSink, RelayError> {
        url.check_files()?;
        let max = (url.max_message_bytes + OVERHEAD).to_string();
        let witness = KafkaWitness::default();
        let producer: FutureProducer<KafkaWitness> = url
            .config(
                &format!("relay {service}"),
                &[
                    ("enable.idempotence", "true"),
                    ("acks", "all"),
                    ("linger.ms", "5"),
                    ("message.max.bytes", &max),
                    ("compression.type", "none"),
                ],
            )
            .create_with_context(witness.clone())
            .map_err(|e| {
                RelayError::Setup(format!("cannot make a Kafka producer for {url}: {e}"))
            })?;
        let admin: AdminClient<KafkaWitness> = url
            .config(&format!("relay {service}"), &[])
            .create_with_context(witness.clone())
            .map_err(|e| {
                RelayError::Setup(format!("cannot make a Kafka admin client for {url}: {e}"))
            })?;
        let mut sink = KafkaSink {
            producer,
            admin,
            witness,
            url: url.clone(),
            service: service.to_string(),
            settings: settings.clone(),
            ready: Vec::new(),
            topics: Vec::new(),
            pending: VecDeque::new(),
            next: 0,
            base: 0,
            reached: Reached::default(),
            recording: None,
            positions_topic: url.positions_topic(service),
        };
        let positions = sink.positions_topic.clone();
        sink.ensure(&positions, 1).await?;
        Ok(sink)
    }

    /// The topic exists with the settings asked for: made if missing,
    /// checked if not.
    async fn ensure(&mut self, topic: &str, partitions: i32) -> Result<Arc<str>, RelayError> {
        if let Some(t) = self.ready.iter().find(|t| &***t == topic) {
            return Ok(t.clone());
        }
        let replicas = self.settings.replicas as i32;
        let retention = if self.settings.max_age.is_zero() {
            "-1".to_string()
        } else {
            self.settings.max_age.as_millis().to_string()
        };
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replicas))
            .set("retention.ms", &retention);
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        let made =
            self.admin.create_topics([&new], &opts).await.map_err(|e| {
                failed(&self.url, &self.witness, &format!("creating topic {topic}"), e)
            })?;
        match made.into_iter().next() {
            Some(Ok(_)) => {
                tracing::info!(topic, partitions, replicas, "created Kafka topic");
            }
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
                self.check(topic, partitions, replicas, &retention).await?;
            }
            Some(Err((_, code))) => {
                return Err(RelayError::Setup(format!(
                    "cannot create Kafka topic {topic} on {}: {code} (create it with {partitions} partitions and replication factor {replicas}, or give deed's user the CREATE permission)",
                    self.url
                )));
            }
            None => {
                return Err(failed(
                    &self.url,
                    &self.witness,
                    &format!("creating topic {topic}"),
                    "no answer",
                ));
            }
        }
        let t: Arc<str> = topic.into();
        self.ready.push(t.clone());
        Ok(t)
    }

    /// An existing topic with other settings is reported, not changed.
    async fn check(
        &self,
        topic: &str,
        partitions: i32,
        replicas: i32,
        retention: &str,
    ) -> Result<(), RelayError> {
        let producer = self.producer.clone();
        let name = topic.to_string();
        let meta = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(Some(&name), Duration::from_secs(30))
        })
        .await
        .map_err(|e| RelayError::Sink(e.to_string()))?
        .map_err(|e| failed(&self.url, &self.witness, &format!("reading topic {topic}"), e))?;
        let mut differs = Vec::new();
        if let Some(t) = meta.topics().iter().find(|t| t.name() == topic) {
            let have = t.partitions().len() as i32;
            if have != partitions {
                differs.push(format!("{have} partitions, not {partitions}"));
            }
            let rf = t.partitions().first().map_or(0, |p| p.replicas().len() as i32);
            if rf != replicas && rf != 0 {
                differs.push(format!("replication factor {rf}, not {replicas}"));
            }
        }
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        // A broker that cannot describe its configuration is not checked
        // for retention.
        if let Ok(described) =
            self.admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts).await
        {
            if let Some(Ok(resource)) = described.first() {
                if let Some(have) = resource.get("retention.ms").and_then(|e| e.value.as_deref()) {
                    let unlimited = |v: &str| v.starts_with('-');
                    if have != retention && !(unlimited(have) && unlimited(retention)) {
                        differs.push(format!("retention.ms {have}, not {retention}"));
                    }
                }
            }
        }
        if differs.is_empty() {
            return Ok(());
        }
        Err(RelayError::Setup(format!(
            "Kafka topic {topic} exists with other settings ({}); deed does not change a topic it did not create: change it with your Kafka tools, or ask for what it has (--partitions, --stream-replicas, --stream-max-age)",
            differs.join("; ")
        )))
    }

    /// Sends the events, in order, without waiting for acknowledgements.
    pub async fn send(&mut self, events: &[Envelope]) -> Result<Ticket, RelayError> {
        let mut dead_letters = 0;
        let partitions = self.settings.partitions as i32;
        for e in events {
            let topic = match self.topics.iter().find(|(kind, _)| **kind == *e.kind) {
                Some((_, topic)) => topic.clone(),
                None => {
                    let event = e.kind.split_once('.').map_or(&*e.kind, |(_, ev)| ev);
                    let name = self.url.topic(&self.service, event);
                    let topic = self.ensure(&name, partitions).await?;
                    self.topics.push((e.kind.clone(), topic.clone()));
                    topic
                }
            };
            let body = e.to_json();
            if body.len() + e.key.len() > self.url.max_message_bytes {
                let error = format!(
                    "{} bytes, more than the largest message ({} bytes, max_message_bytes in the URL)",
                    body.len(),
                    self.url.max_message_bytes
                );
                self.dead_letter(e, &error).await?;
                dead_letters += 1;
                continue;
            }
            let position = e.position();
            let mut headers = OwnedHeaders::new()
                .insert(Header { key: "deed-id", value: Some(e.id.as_bytes()) })
                .insert(Header { key: "deed-type", value: Some(e.kind.as_bytes()) })
                .insert(Header { key: "deed-position", value: Some(position.as_bytes()) });
            if let Some(c) = &e.contract {
                headers =
                    headers.insert(Header { key: "deed-contract", value: Some(c.as_bytes()) });
            }
            let record =
                FutureRecord::to(&topic).key(e.key.as_bytes()).payload(&body).headers(headers);
            self.produce(topic.clone(), record).await?;
        }
        Ok(Ticket { upto: self.next, dead_letters, last: events.last().map(|e| e.at) })
    }

    /// Queues one message, settling the oldest while the client's queue
    /// is full.
    async fn produce(
        &mut self,
        topic: Arc<str>,
        mut record: FutureRecord<'_, [u8], Vec<u8>>,
    ) -> Result<(), RelayError> {
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.pending.push_back((topic, delivery));
                    self.next += 1;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    if self.pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        let upto = self.base + 1;
                        self.settle_upto(upto).await?;
                    }
                }
                Err((e, _)) => {
                    return Err(failed(
                        &self.url,
                        &self.witness,
                        &format!("sending to {topic}"),
                        e,
                    ));
                }
            }
        }
    }

    async fn settle_upto(&mut self, upto: u64) -> Result<(), RelayError> {
        while self.base < upto {
            let Some((topic, front)) = self.pending.front_mut() else { break };
            let result = front.await.map_err(|_| {
                failed(
                    &self.url,
                    &self.witness,
                    "waiting for an acknowledgement",
                    "the producer went away",
                )
            })?;
            let topic = topic.clone();
            self.pending.pop_front();
            self.base += 1;
            match result {
                Ok(d) => {
                    let next = self.reached.offsets.entry(topic.to_string()).or_default();
                    let at = next.entry(d.partition).or_insert(0);
                    *at = (*at).max(d.offset + 1);
                }
                Err((KafkaError::MessageProduction(code), _))
                    if matches!(
                        code,
                        RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::InvalidMessageSize
                    ) =>
                {
                    return Err(RelayError::Setup(format!(
                        "a broker refused an event on {topic} as too large ({code}): set max_message_bytes in the --to URL to the topic's max.message.bytes, so larger events become dead letters"
                    )));
                }
                Err((e, _)) => {
                    return Err(failed(
                        &self.url,
                        &self.witness,
                        &format!("storing an event on {topic}"),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Waits until the brokers acknowledged everything sent before the
    /// ticket, then records how far that is on the positions topic (and
    /// waits for that too). Cancel-safe.
    pub async fn settle(&mut self, ticket: Ticket) -> Result<Delivered, RelayError> {
        self.settle_upto(ticket.upto).await?;
        if let Some(last) = ticket.last {
            let position = last.text();
            if position > self.reached.position {
                self.reached.position = position;
                let body = self.reached.to_json();
                let record = FutureRecord::<[u8], Vec<u8>>::to(&self.positions_topic)
                    .key(self.service.as_bytes())
                    .payload(&body);
                let delivery = self.producer.send_result(record).map_err(|(e, _)| {
                    failed(
                        &self.url,
                        &self.witness,
                        &format!("recording the position on {}", self.positions_topic),
                        e,
                    )
                })?;
                self.recording = Some(delivery);
            }
        }
        if let Some(recording) = self.recording.as_mut() {
            let result = recording.await.map_err(|_| {
                failed(
                    &self.url,
                    &self.witness,
                    "waiting for an acknowledgement",
                    "the producer went away",
                )
            })?;
            self.recording = None;
            result.map_err(|(e, _)| {
                failed(
                    &self.url,
                    &self.witness,
                    &format!("recording the position on {}", self.positions_topic),
                    e,
                )
            })?;
        }
        Ok(Delivered { duplicates: 0, dead_letters: ticket.dead_letters })
    }

    /// Records an event that cannot be delivered, without its payload, on
    /// the dead-letter topic (keyed like the event).
    async fn dead_letter(&mut self, e: &Envelope, error: &str) -> Result<(), RelayError> {
        tracing::error!(event = %e.id, kind = %e.kind, error, "event cannot be delivered; recorded as a dead letter");
        let topic = self.url.dead_letter_topic(&self.service);
        let topic = self.ensure(&topic, 1).await?;
        let body = super::dead_letter_body(e, error);
        let headers = OwnedHeaders::new()
            .insert(Header { key: "deed-id", value: Some(e.id.as_bytes()) })
            .insert(Header { key: "deed-type", value: Some(e.kind.as_bytes()) });
        let record = FutureRecord::to(&topic).key(e.key.as_bytes()).payload(&body).headers(headers);
        self.produce(topic.clone(), record).await
    }
}
