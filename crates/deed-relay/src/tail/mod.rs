//! `deed tail <service>.<event>`: events as they arrive on the bus, from
//! NATS JetStream, a RabbitMQ stream, Kafka topics or an inbox.

mod any;
mod kafka;

use std::time::Duration;

use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::Value as Json;

use crate::error::RelayError;
pub use any::tail_bus;
use deed_events::{event_subject, service_subjects, stream_name};
pub use kafka::{service_topics, tail_kafka};

/// `next`'s output, or `None` when `idle` passes first.
pub(crate) async fn within<T>(idle: Option<Duration>, next: impl Future<Output = T>) -> Option<T> {
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
    let (auth, servers) = (deed_bus::NatsAuth::default(), deed_bus::NatsServers::parse(url)?);
    tail_nats_servers(&auth, &servers, service, event, from_start, limit, idle, each).await
}

/// [`tail_nats_raw`] from `servers`, signing in with `auth`.
#[allow(clippy::too_many_arguments)]
pub async fn tail_nats_servers(
    auth: &deed_bus::NatsAuth,
    servers: &deed_bus::NatsServers,
    service: &str,
    event: &str,
    from_start: bool,
    limit: Option<usize>,
    idle: Option<Duration>,
    mut each: impl FnMut(&[u8]),
) -> Result<usize, RelayError> {
    let client = auth.connect_to(servers).await?;
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
                    "no stream for {service} on {servers} (has its relay run?): {e}"
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
