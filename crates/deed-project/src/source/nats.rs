//! Reading JetStream: a durable pull consumer per projection on the
//! producer's stream, filtered to the event's subject. Messages are
//! acknowledged (all up to the last, `AckPolicy::All`) only after the
//! projection's transaction commits; a crash in between redelivers them,
//! and the projection's position skips what was already applied.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures_util::StreamExt;

use crate::error::ProjectError;
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

pub struct NatsSource {
    js: jetstream::Context,
    url: String,
    consumers: HashMap<String, consumer::PullConsumer>,
    /// The last message of each projection's last fetch, acknowledged
    /// once its effects commit.
    unacked: HashMap<String, Message>,
    /// Projections whose stream was missing (warned about once).
    missing: HashSet<String>,
}

/// `url` is already shown without credentials.
fn err(url: &str, what: &str, e: impl std::fmt::Display) -> ProjectError {
    ProjectError::Source(format!("{what} on {url}: {e}"))
}

impl NatsSource {
    /// Connects to one of `servers` (the client moves to another when one
    /// goes away), signed in with `auth`.
    pub async fn connect(
        servers: &deed_bus::NatsServers,
        auth: &deed_bus::NatsAuth,
    ) -> Result<NatsSource, ProjectError> {
        let url = servers.to_string();
        let client =
            auth.connect_to(servers).await.map_err(|e| ProjectError::Source(e.to_string()))?;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_secs(10));
        Ok(NatsSource {
            js,
            url,
            consumers: HashMap::new(),
            unacked: HashMap::new(),
            missing: HashSet::new(),
        })
    }

    /// The projection's durable consumer, made if missing; `None` while
    /// its producer's stream does not exist (no relay has delivered there
    /// yet): nothing to read.
    async fn consumer(
        &mut self,
        spec: &ProjectionSpec,
    ) -> Result<Option<&mut consumer::PullConsumer>, ProjectError> {
        if !self.consumers.contains_key(&spec.name) {
            let stream_name = deed_events::stream_name(&spec.producer);
            let Some(stream) = self.stream(&stream_name).await? else {
                if self.missing.insert(spec.name.clone()) {
                    tracing::warn!(stream = stream_name, producer = %spec.producer, "no stream yet: nothing to project until `deed relay --service {}` delivers to this server", spec.producer);
                }
                return Ok(None);
            };
            let name = deed_events::consumer_name(&spec.service, &spec.name);
            let c = stream
                .get_or_create_consumer(
                    &name,
                    consumer::pull::Config {
                        durable_name: Some(name.clone()),
                        filter_subject: deed_events::event_subject(
                            &spec.producer,
                            spec.event_name(),
                        ),
                        ack_policy: consumer::AckPolicy::All,
                        deliver_policy: consumer::DeliverPolicy::All,
                        ack_wait: Duration::from_secs(60),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| err(&self.url, &format!("cannot create consumer {name}"), e))?;
            self.consumers.insert(spec.name.clone(), c);
        }
        Ok(self.consumers.get_mut(&spec.name))
    }

    /// A stream, or `None` when the server has none of that name.
    async fn stream(&self, name: &str) -> Result<Option<jetstream::stream::Stream>, ProjectError> {
        match self.js.get_stream(name).await {
            Ok(s) => Ok(Some(s)),
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(err(&self.url, &format!("reading stream {name}"), e)),
            },
        }
    }

    pub async fn fetch(
        &mut self,
        spec: &ProjectionSpec,
        limit: usize,
    ) -> Result<Vec<Incoming>, ProjectError> {
        let url = self.url.clone();
        let Some(consumer) = self.consumer(spec).await? else {
            // As long as a fetch from an idle stream waits.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(Vec::new());
        };
        let mut batch = consumer
            .fetch()
            .max_messages(limit)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .map_err(|e| err(&url, "cannot fetch", e))?;
        let mut out = Vec::new();
        let mut last = None;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| err(&url, "cannot fetch", e))?;
            let seq = m.info().map(|i| i.stream_sequence).unwrap_or_default();
            let raw = String::from_utf8_lossy(&m.payload).into_owned();
            // An unreadable message keeps its place by stream sequence.
            out.push(Incoming::parse(
                raw,
                format!("nats:{}:{seq}", deed_events::stream_name(&spec.producer)),
                String::new(),
            ));
            last = Some(m);
        }
        if let Some(m) = last {
            self.unacked.insert(spec.name.clone(), m);
        }
        Ok(out)
    }

    /// Messages of the projection's consumer not yet acknowledged:
    /// delivered or not. 0 means the projection has applied everything the
    /// stream holds for it.
    pub async fn unapplied(&mut self, spec: &ProjectionSpec) -> Result<u64, ProjectError> {
        let url = self.url.clone();
        let Some(consumer) = self.consumer(spec).await? else { return Ok(0) };
        let info = consumer.info().await.map_err(|e| err(&url, "cannot read the consumer", e))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }

    /// Messages of the projection's durable consumer not yet acknowledged
    /// (delivered or not), read without creating anything. Before the
    /// projection's first run (no consumer yet) every message of its
    /// subject waits. `None` while the stream does not exist.
    pub async fn pending(&self, spec: &ProjectionSpec) -> Result<Option<u64>, ProjectError> {
        use async_nats::jetstream::context::ConsumerInfoErrorKind;
        let stream_name = deed_events::stream_name(&spec.producer);
        let Some(stream) = self.stream(&stream_name).await? else { return Ok(None) };
        let name = deed_events::consumer_name(&spec.service, &spec.name);
        match stream.consumer_info(&name).await {
            Ok(info) => Ok(Some(info.num_pending + info.num_ack_pending as u64)),
            Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => {
                let subject = deed_events::event_subject(&spec.producer, spec.event_name());
                let mut counts = stream.info_with_subjects(&subject).await.map_err(|e| {
                    err(&self.url, &format!("counting {subject} in {stream_name}"), e)
                })?;
                let mut total = 0u64;
                while let Some(c) = counts.next().await {
                    let (_, n) = c.map_err(|e| {
                        err(&self.url, &format!("counting {subject} in {stream_name}"), e)
                    })?;
                    total += n as u64;
                }
                Ok(Some(total))
            }
            Err(e) => Err(err(&self.url, &format!("reading consumer {name}"), e)),
        }
    }

    pub async fn ack(&mut self, spec: &ProjectionSpec) -> Result<(), ProjectError> {
        if let Some(m) = self.unacked.remove(&spec.name) {
            m.ack_with(AckKind::Ack).await.map_err(|e| err(&self.url, "cannot acknowledge", e))?;
        }
        Ok(())
    }
}
