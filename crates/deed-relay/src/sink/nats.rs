use std::collections::VecDeque;
use std::time::Duration;

use async_nats::client::PublishErrorKind;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use bytes::Bytes;
use deed_events::{dead_letter_subject, service_subjects, stream_name};
use futures_util::StreamExt;
use serde::Deserialize;

use super::Delivered;
use super::settings::StreamSettings;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// A JetStream stream per owner service, `DEED_<SERVICE>`, holding
/// `deed.<service>.>`. Each event is published with its id as
/// `Nats-Msg-Id`, so the stream drops a redelivered event within its
/// duplicate window; the slot is confirmed only after every ack.
///
/// Publishes are pipelined: each carries a reply subject numbered in
/// publish order under one inbox this sink subscribes to, so acks are
/// counted as they come back instead of each waiting on its own future,
/// and many batches can be in flight at once.
pub struct NatsSink {
    client: async_nats::Client,
    js: jetstream::Context,
    service: String,
    acks: async_nats::Subscriber,
    /// `_INBOX.<unique>.`, the prefix of every reply subject.
    inbox: String,
    /// The number of the next publish.
    next: u64,
    /// The number of `pending`'s first entry.
    base: u64,
    pending: VecDeque<Acked>,
    /// Duplicates among publishes already settled, not yet reported.
    settled: Delivered,
    timeout: Duration,
    /// Subjects already made, by name: a service has a handful.
    subjects: Vec<async_nats::Subject>,
}

/// Subjects remembered at most; past that each publish makes its own.
const SUBJECTS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    Waiting,
    Stored,
    Duplicate,
}

/// What `settle` waits for: every publish numbered below `upto`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ticket {
    upto: u64,
    dead_letters: u64,
}

#[derive(Deserialize)]
struct PubAck {
    #[serde(default)]
    duplicate: bool,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    description: String,
}

impl NatsSink {
    pub async fn connect(url: &str, service: &str) -> Result<NatsSink, RelayError> {
        NatsSink::connect_with(url, service, &StreamSettings::default()).await
    }

    /// Connects, and creates the service's stream with `settings` unless it
    /// exists; one that exists with other settings is reported, not changed.
    pub async fn connect_with(
        url: &str,
        service: &str,
        settings: &StreamSettings,
    ) -> Result<NatsSink, RelayError> {
        let servers = deed_bus::NatsServers::parse(url)?;
        NatsSink::connect_as(&servers, service, settings, &deed_bus::NatsAuth::default()).await
    }

    /// Like [`NatsSink::connect_with`], to one of `servers`, signing in
    /// with `auth`.
    pub async fn connect_as(
        servers: &deed_bus::NatsServers,
        service: &str,
        settings: &StreamSettings,
        auth: &deed_bus::NatsAuth,
    ) -> Result<NatsSink, RelayError> {
        let client = auth.connect_to(servers).await?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        let name = stream_name(service);
        let subject = service_subjects(service);
        let config = settings.config(&name, &subject);
        let mut stream = js.get_or_create_stream(config).await.map_err(|e| {
            RelayError::Sink(format!("cannot create or find JetStream stream {name}: {e}"))
        })?;
        let info = stream
            .info()
            .await
            .map_err(|e| RelayError::Sink(format!("reading stream {name}: {e}")))?;
        if !info.config.subjects.iter().any(|s| s == &subject) {
            return Err(RelayError::Setup(format!(
                "JetStream stream {name} exists but does not hold {subject} (it holds {:?})",
                info.config.subjects
            )));
        }
        let differs = settings.differences(&info.config);
        if !differs.is_empty() {
            return Err(RelayError::Setup(format!(
                "JetStream stream {name} exists with other settings ({}); deed does not change a stream it did not just create: edit it (`nats stream edit {name}`) or ask for what it has",
                differs.join("; ")
            )));
        }
        let inbox = format!("{}.", client.new_inbox());
        let acks = client
            .subscribe(format!("{inbox}*"))
            .await
            .map_err(|e| RelayError::Sink(format!("subscribing to JetStream's acks: {e}")))?;
        Ok(NatsSink {
            client,
            js,
            service: service.to_string(),
            acks,
            inbox,
            next: 0,
            base: 0,
            pending: VecDeque::new(),
            settled: Delivered::default(),
            timeout: Duration::from_secs(5),
            subjects: Vec::new(),
        })
    }

    /// Publishes the events, in order, without waiting for their acks.
    pub async fn send(&mut self, events: &[Envelope]) -> Result<Ticket, RelayError> {
        let mut dead_letters = 0;
        let mut number = itoa::Buffer::new();
        for e in events {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, e.id.as_str());
            let digits = number.format(self.next);
            let mut reply = String::with_capacity(self.inbox.len() + digits.len());
            reply.push_str(&self.inbox);
            reply.push_str(digits);
            let payload = Bytes::from(e.to_json());
            let subject = self.subject(e.subject());
            match self.client.publish_with_reply_and_headers(subject, reply, headers, payload).await
            {
                Ok(()) => {
                    self.pending.push_back(Acked::Waiting);
                    self.next += 1;
                }
                Err(err) if err.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    self.dead_letter(e, &err.to_string()).await?;
                    dead_letters += 1;
                }
                Err(err) => return Err(RelayError::Sink(format!("publishing {}: {err}", e.id))),
            }
        }
        Ok(Ticket { upto: self.next, dead_letters })
    }

    fn subject(&mut self, name: &str) -> async_nats::Subject {
        if let Some(s) = self.subjects.iter().find(|s| s.as_str() == name) {
            return s.clone();
        }
        let s = async_nats::Subject::from(name);
        if self.subjects.len() < SUBJECTS {
            self.subjects.push(s.clone());
        }
        s
    }

    /// Waits until JetStream has acknowledged every publish before the
    /// ticket. Cancel-safe: acks read are kept for the next call.
    pub async fn settle(&mut self, ticket: Ticket) -> Result<Delivered, RelayError> {
        loop {
            while self.pending.front().is_some_and(|a| *a != Acked::Waiting) {
                if self.pending.pop_front() == Some(Acked::Duplicate) {
                    self.settled.duplicates += 1;
                }
                self.base += 1;
            }
            if self.base >= ticket.upto {
                let mut out = std::mem::take(&mut self.settled);
                out.dead_letters += ticket.dead_letters;
                return Ok(out);
            }
            let ack = tokio::time::timeout(self.timeout, self.acks.next())
                .await
                .map_err(|_| {
                    RelayError::Sink(format!(
                        "JetStream did not acknowledge within {} s ({} publishes waiting)",
                        self.timeout.as_secs(),
                        self.pending.len()
                    ))
                })?
                .ok_or_else(|| RelayError::Sink("the NATS connection closed".into()))?;
            self.record(&ack)?;
        }
    }

    fn record(&mut self, ack: &async_nats::Message) -> Result<(), RelayError> {
        let Some(n) = ack
            .subject
            .as_str()
            .strip_prefix(self.inbox.as_str())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return Ok(());
        };
        if let Some(status) = ack.status.filter(|s| !s.is_success()) {
            return Err(RelayError::Sink(format!(
                "JetStream did not store an event ({status}{}): is the stream there and its leader up?",
                ack.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            )));
        }
        let parsed: PubAck = serde_json::from_slice(&ack.payload).map_err(|e| {
            RelayError::Sink(format!("an unreadable JetStream ack ({e}): {:?}", ack.payload))
        })?;
        if let Some(err) = parsed.error {
            return Err(RelayError::Sink(format!(
                "JetStream refused an event ({}, code {})",
                err.description, err.code
            )));
        }
        // An ack for a publish already settled (answered twice) changes nothing.
        if let Some(slot) = n.checked_sub(self.base).and_then(|i| self.pending.get_mut(i as usize))
        {
            *slot = if parsed.duplicate { Acked::Duplicate } else { Acked::Stored };
        }
        Ok(())
    }

    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let ticket = self.send(events).await?;
        self.settle(ticket).await
    }

    /// Records an event that cannot be delivered, without its payload, on
    /// `deed.<service>.dead_letter`.
    async fn dead_letter(&self, e: &Envelope, error: &str) -> Result<(), RelayError> {
        tracing::error!(event = %e.id, kind = %e.kind, error, "event cannot be delivered; recorded as a dead letter");
        let publish = jetstream::message::PublishMessage::build()
            .payload(super::dead_letter_body(e, error).into())
            .message_id(format!("{}/dead_letter", e.id));
        let ack =
            self.js.send_publish(dead_letter_subject(&self.service), publish).await.map_err(
                |err| RelayError::Sink(format!("recording dead letter {}: {err}", e.id)),
            )?;
        ack.await
            .map_err(|err| RelayError::Sink(format!("recording dead letter {}: {err}", e.id)))?;
        Ok(())
    }
}
