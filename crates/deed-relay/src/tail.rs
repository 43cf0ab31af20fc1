//! `deed tail <service>.<event>`: events as they arrive on the bus.

use std::time::Duration;

use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::Value as Json;

use crate::error::RelayError;
use deed_events::{event_subject, service_subjects, stream_name};

/// `next`'s output, or `None` when `idle` passes first.
async fn within<T>(idle: Option<Duration>, next: impl Future<Output = T>) -> Option<T> {
    match idle {
        Some(d) => tokio::time::timeout(d, next).await.ok(),
        None => Some(next.await),
    }
}

/// Prints events of one type (or, with event `*`, all of a service's)
/// from the start of the stream or only new ones, calling `each` with the
/// envelope; stops after `limit` events or when `idle` passes without one.
pub async fn tail_nats(
    url: &str,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    mut each: impl FnMut(Json),
) -> Result<usize, RelayError> {
    tail_nats_raw(url, service, event, from_start, limit, idle, |raw| each(parse(raw))).await
}

/// An envelope as a value; bytes that are not JSON (never written by deed)
/// are shown as a string rather than dropped.
pub fn parse(raw: &[u8]) -> Json {
    serde_json::from_slice(raw)
        .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(raw).into()))
}

/// [`tail_nats`] with each envelope exactly as the relay wrote it.
pub async fn tail_nats_raw(
    url: &str,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    let auth = deed_bus::NatsAuth::default();
    tail_nats_as(&auth, url, service, event, from_start, limit, idle, each).await
}

/// [`tail_nats_raw`], signing in with `auth`.
#[allow(clippy::too_many_arguments)]
pub async fn tail_nats_as(
    auth: &deed_bus::NatsAuth,
    url: &str,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    let client = auth.connect(url).await?;
    let js = jetstream::new(client);
    let subject =
        if event == "*" { service_subjects(service) } else { event_subject(service, event) };
    let config = consumer::pull::OrderedConfig {
        filter_subject: subject,
        deliver_policy: if from_start {
            consumer::DeliverPolicy::All
        } else {
            consumer::DeliverPolicy::New
        },
        ..Default::default()
    };
    // A cluster electing a leader (a node just lost) answers late: ask
    // again for a while, as the relay and the projector do.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let consumer = loop {
        let stream = match js.get_stream(stream_name(service)).await {
            Ok(stream) => stream,
            Err(e) if transient_stream_error(&e) && std::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "JetStream not answering yet; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => {
                return Err(RelayError::Setup(format!(
                    "no stream for {service} on {} (has its relay run?): {e}",
                    deed_bus::redact_nats_url(url)
                )));
            }
        };
        match stream.create_consumer(config.clone()).await {
            Ok(c) => break c,
            Err(e)
                if matches!(e.kind(), ConsumerErrorKind::TimedOut | ConsumerErrorKind::Request)
                    && std::time::Instant::now() < deadline =>
            {
                tracing::warn!(error = %e, "JetStream not answering yet; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(RelayError::Sink(format!("cannot read the stream: {e}"))),
        }
    };
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| RelayError::Sink(format!("cannot start reading the stream: {e}")))?;
    let mut seen = 0;
    loop {
        if limit.is_some_and(|l| seen >= l) {
            return Ok(seen);
        }
        let Some(next) = within(idle, messages.next()).await else { return Ok(seen) };
        let Some(msg) = next else { return Ok(seen) };
        let msg = msg.map_err(|e| RelayError::Sink(format!("reading the stream: {e}")))?;
        each(&msg.payload);
        seen += 1;
    }
}

/// The same from RabbitMQ: the service's stream queue read by a consumer
/// of its own (from the first event, or only new ones), keeping the
/// events of `event` (`*`: all).
#[allow(clippy::too_many_arguments)]
pub async fn tail_amqp(
    url: &deed_bus::AmqpUrl,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let shown = url.to_string();
    let fail = |what: &str, e: lapin::Error| RelayError::Sink(format!("{what} on {shown}: {e}"));
    let connection = url.connect(&format!("tail {service}")).await?;
    let channel = connection.create_channel().await.map_err(|e| fail("opening a channel", e))?;
    channel
        .basic_qos(500, BasicQosOptions::default())
        .await
        .map_err(|e| fail("setting the prefetch window", e))?;
    let mut args = FieldTable::default();
    let from = if from_start { "first" } else { "next" };
    args.insert("x-stream-offset".into(), AMQPValue::LongString(from.into()));
    let queue = deed_events::amqp_stream(service);
    let mut messages = channel
        .basic_consume(
            queue.as_str().into(),
            "deed-tail".into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await
        .map_err(|e| {
            RelayError::Setup(format!(
                "no stream queue {queue} for {service} on {shown} (has its relay run?): {e}"
            ))
        })?;
    let wanted = event_subject(service, event);
    let mut seen = 0;
    loop {
        if limit.is_some_and(|l| seen >= l) {
            return Ok(seen);
        }
        let Some(next) = within(idle, messages.next()).await else { return Ok(seen) };
        let Some(delivery) = next else { return Ok(seen) };
        let delivery = delivery.map_err(|e| fail("reading the stream", e))?;
        channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await
            .map_err(|e| fail("acknowledging", e))?;
        if event == "*" || delivery.routing_key.as_str() == wanted {
            each(&delivery.data);
            seen += 1;
        }
    }
}

/// The same from a PostgreSQL inbox: events of one type in commit order.
pub async fn tail_inbox(
    url: &str,
    kind: &str,
    limit: Option<usize>,
    mut each: impl FnMut(Json),
) -> Result<usize, RelayError> {
    tail_inbox_raw(url, kind, limit, |raw| each(parse(raw))).await
}

/// An envelope rebuilt from the columns of a row written before the inbox
/// kept the envelope itself.
const OLD_ROW: &str = "'id', event_id, 'type', type, 'contract', contract, 'key', key, 'op', op,
    'position', position, 'lsn', lsn::text,
    'committed_at', to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
    'payload', payload";

/// [`tail_inbox`] with each envelope exactly as the relay wrote it: the
/// same bytes JetStream carries. (Rows written before the inbox kept the
/// envelope are rebuilt from their columns.)
pub async fn tail_inbox_raw(
    url: &str,
    kind: &str,
    limit: Option<usize>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    let client = deed_pg::connect(url).await?;
    let pattern = kind.replace('*', "%");
    let rows = client
        .query(
            "SELECT coalesce(envelope::text, CASE WHEN tombstone
                      THEN json_build_object(VARIABLE, 'tombstone', true)
                      ELSE json_build_object(VARIABLE) END::text)
               FROM deed.inbox WHERE type LIKE $1 ORDER BY position LIMIT $2"
                .replace("VARIABLE", OLD_ROW)
                .as_str(),
            &[&pattern, &(limit.unwrap_or(1_000_000) as i64)],
        )
        .await
        .map_err(|e| deed_pg::PgError::query("reading deed.inbox", e))?;
    for r in &rows {
        let text: &str = r.get(0);
        each(text.as_bytes());
    }
    Ok(rows.len())
}

/// A stream lookup that may work when asked again: a request that got no
/// answer, or a JetStream error other than "no such stream".
fn transient_stream_error(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind as K;
    match e.kind() {
        K::Request => true,
        K::JetStream(j) => j.error_code() != async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND,
        _ => false,
    }
}

/// Kafka: the service's event topics (one, or every one for `*`), every
/// partition, from the beginning (or only what comes next); events in
/// the order they arrive (commit order per key). Returns the number shown.
pub async fn tail_kafka(
    url: &deed_bus::KafkaUrl,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};
    let fail = |what: &str, e: rdkafka::error::KafkaError| {
        RelayError::Sink(format!("{what} on {url}: {e}"))
    };
    let config = url.config(
        &format!("tail {service}"),
        &[("group.id", "deed-tail"), ("enable.auto.commit", "false")],
    );
    // Which topics, and their partitions.
    let wanted: Option<String> = (event != "*").then(|| url.topic(service, event));
    let (probe, u, s) = (config.clone(), url.clone(), service.to_string());
    let want = wanted.clone();
    let topics = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = probe.create()?;
        let meta = c.fetch_metadata(want.as_deref(), Duration::from_secs(30))?;
        let (positions, dead) = (u.positions_topic(&s), u.dead_letter_topic(&s));
        let (head, tail) = u.topic(&s, "\u{0}").split_once('\u{0}').map_or_else(
            || (u.topic(&s, ""), String::new()),
            |(h, t)| (h.to_string(), t.to_string()),
        );
        let out: Vec<(String, Vec<i32>)> = meta
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && t.name() != positions && t.name() != dead)
            .filter(|t| match &want {
                Some(w) => t.name() == w,
                None => t.name().starts_with(&head) && t.name().ends_with(&tail),
            })
            .map(|t| (t.name().to_string(), t.partitions().iter().map(|p| p.id()).collect()))
            .collect();
        Ok::<_, rdkafka::error::KafkaError>(out)
    })
    .await
    .map_err(|e| RelayError::Sink(e.to_string()))?
    .map_err(|e| fail("reading topics", e))?;
    if topics.is_empty() {
        return Err(RelayError::Setup(format!(
            "no topic {} on {url} (has the relay of {service} run?)",
            wanted.unwrap_or_else(|| url.topic(service, "*"))
        )));
    }
    let consumer: StreamConsumer = config.create().map_err(|e| fail("making a consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    let from = if from_start { Offset::Beginning } else { Offset::End };
    for (t, parts) in &topics {
        for p in parts {
            tpl.add_partition_offset(t, *p, from).map_err(|e| fail("assigning", e))?;
        }
    }
    consumer.assign(&tpl).map_err(|e| fail("assigning partitions", e))?;
    let kind = format!("{service}.{event}");
    let mut seen = 0;
    loop {
        if limit.is_some_and(|l| seen >= l) {
            return Ok(seen);
        }
        let Some(next) = within(idle, consumer.recv()).await else { return Ok(seen) };
        let m = next.map_err(|e| fail("reading", e))?;
        let of_kind = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "deed-type"))
            .and_then(|h| h.value)
            .is_some_and(|v| v == kind.as_bytes());
        if event == "*" || of_kind {
            each(m.payload().unwrap_or_default());
            seen += 1;
        }
    }
}
