use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use deed_events::{dead_letter_subject, service_subjects, stream_name};
use serde_json::json;

use super::Delivered;
use crate::envelope::Envelope;
use crate::error::RelayError;

/// A JetStream stream per owner service, `DEED_<SERVICE>`, holding
/// `deed.<service>.>`. Each event is published with its id as
/// `Nats-Msg-Id`, so the stream drops a redelivered event within its
/// duplicate window; the slot is confirmed only after every ack.
pub struct NatsSink {
    js: jetstream::Context,
    service: String,
}

use super::settings::StreamSettings;

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
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| {
                RelayError::Sink(format!("cannot connect to {}: {e}", deed_pg::redact_url(url)))
            })?;
        let mut js = jetstream::new(client);
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
        Ok(NatsSink { js, service: service.to_string() })
    }

    pub async fn deliver(&mut self, events: &[Envelope]) -> Result<Delivered, RelayError> {
        let mut delivered = Delivered::default();
        let mut acks = Vec::with_capacity(events.len());
        // Publishes are pipelined; the server stores them in the order sent.
        for e in events {
            let publish = jetstream::message::PublishMessage::build()
                .payload(e.to_json().into())
                .message_id(&e.id);
            match self.js.send_publish(e.subject(), publish).await {
                Ok(ack) => acks.push(ack),
                Err(err) if err.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    self.dead_letter(e, &err.to_string()).await?;
                    delivered.dead_letters += 1;
                }
                Err(err) => return Err(RelayError::Sink(format!("publishing {}: {err}", e.id))),
            }
        }
        for ack in acks {
            let ack = ack
                .await
                .map_err(|e| RelayError::Sink(format!("JetStream did not acknowledge: {e}")))?;
            if ack.duplicate {
                delivered.duplicates += 1;
            }
        }
        Ok(delivered)
    }

    /// Records an event that cannot be delivered, without its payload, on
    /// `deed.<service>.dead_letter`.
    async fn dead_letter(&self, e: &Envelope, error: &str) -> Result<(), RelayError> {
        tracing::error!(event = %e.id, kind = %e.kind, error, "event cannot be delivered; recorded as a dead letter");
        let body = json!({
            "id": e.id, "type": e.kind, "key": e.key, "op": e.op, "position": e.position,
            "lsn": e.lsn, "committed_at": e.committed_at, "error": error, "payload_bytes": e.to_json().len(),
        });
        let publish = jetstream::message::PublishMessage::build()
            .payload(serde_json::to_vec(&body).expect("json").into())
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
