//! Reading RabbitMQ: each projection consumes its producer's stream queue
//! (`deed.<producer>`) on a channel of its own, from an offset.
//!
//! The projection's position in the consumer's database stays the truth.
//! Beside it deed keeps the stream offset of the last event handed over
//! (`deed.projections.source_offset`), written after the projection's
//! transaction commits: only a starting hint. A projector killed between
//! the two starts from an earlier offset, and the events it sees again are
//! skipped by position, as redelivered events are. Without a hint (a new
//! or redefined projection) it reads the stream from the first event.
//!
//! A stream hands every consumer every event, so several projections, a
//! `deed tail` and a standby projector never take events from each other;
//! acknowledgements only open the prefetch window. A fetch ends with
//! `limit` events of the projection's type, or when no message has come
//! for a moment: that is how an `--until-idle` run knows it is done.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use deed_pg::Client;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer};

use crate::error::{ProjectError, query};
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

/// How long a fetch waits for its first message, and for each next one;
/// a consumer just opened waits longer for its first (the broker attaches
/// it to the stream's leader first, slower on a busy machine): an
/// `--until-idle` run must not take a late start for the end.
const FIRST: Duration = Duration::from_millis(500);
const OPENED: Duration = Duration::from_secs(2);
const NEXT: Duration = Duration::from_millis(50);

pub struct AmqpSource {
    connection: Connection,
    /// Shown without the password.
    url: String,
    /// The consumer's database, where the offset hints are kept.
    target: Client,
    readers: HashMap<String, Reader>,
    /// Projections whose stream queue was missing (warned about once).
    missing: HashSet<String>,
}

struct Reader {
    channel: Channel,
    consumer: Consumer,
    /// The offset of the last message fetched, not yet recorded.
    offset: Option<i64>,
    /// Nothing fetched yet.
    fresh: bool,
}

fn err(url: &str, what: &str, e: impl std::fmt::Display) -> ProjectError {
    ProjectError::Source(format!("{what} on {url}: {e}"))
}

impl AmqpSource {
    pub async fn connect(
        url: &deed_bus::AmqpUrl,
        target: &str,
    ) -> Result<AmqpSource, ProjectError> {
        let connection =
            url.connect("project").await.map_err(|e| ProjectError::Source(e.to_string()))?;
        let target = deed_pg::connect(target).await?;
        Ok(AmqpSource {
            connection,
            url: url.to_string(),
            target,
            readers: HashMap::new(),
            missing: HashSet::new(),
        })
    }

    /// The projection's reader; `None` while its producer's stream queue
    /// does not exist (no relay has delivered there yet): nothing to read.
    async fn reader(
        &mut self,
        spec: &ProjectionSpec,
        limit: usize,
    ) -> Result<Option<&mut Reader>, ProjectError> {
        if !self.readers.contains_key(&spec.name) {
            let queue = deed_events::amqp_stream(&spec.producer);
            let there = deed_bus::amqp_queue_exists(&self.connection, &queue)
                .await
                .map_err(|e| err(&self.url, &format!("looking for stream queue {queue}"), e))?;
            if !there {
                if self.missing.insert(spec.name.clone()) {
                    tracing::warn!(queue, producer = %spec.producer, "no stream queue yet: nothing to project until `deed relay --service {}` delivers to this broker", spec.producer);
                }
                return Ok(None);
            }
            let reader = open(&self.connection, &self.url, &self.target, spec, limit, "").await?;
            self.readers.insert(spec.name.clone(), reader);
        }
        Ok(self.readers.get_mut(&spec.name))
    }

    /// Up to `limit` events of the projection's type, in stream order.
    pub async fn fetch(
        &mut self,
        spec: &ProjectionSpec,
        limit: usize,
    ) -> Result<Vec<Incoming>, ProjectError> {
        let url = self.url.clone();
        let Some(reader) = self.reader(spec, limit).await? else {
            // As long as a fetch from an idle stream waits.
            tokio::time::sleep(FIRST).await;
            return Ok(Vec::new());
        };
        let queue = deed_events::amqp_stream(&spec.producer);
        let mut out = Vec::new();
        let mut wait = if reader.fresh { OPENED } else { FIRST };
        reader.fresh = false;
        let mut last_tag = None;
        let mut unacked = 0usize;
        while out.len() < limit {
            let Some(delivery) = next(&mut reader.consumer, wait, &url).await? else { break };
            wait = NEXT;
            let offset = match header(&delivery, "x-stream-offset") {
                Some(AMQPValue::LongLongInt(o)) => Some(*o),
                _ => None,
            };
            if text_header(&delivery, "deed-type").as_deref() == Some(spec.event.as_str()) {
                let raw = String::from_utf8_lossy(&delivery.data).into_owned();
                let at = offset.map(|o| o.to_string()).unwrap_or_default();
                // An unreadable message keeps its place by stream offset.
                out.push(Incoming::parse(raw, format!("amqp:{queue}:{at}"), String::new()));
            }
            reader.offset = offset.or(reader.offset);
            last_tag = Some(delivery.delivery_tag);
            unacked += 1;
            // Acknowledging only opens the window: a stream keeps its
            // messages, and the projection's position decides.
            if unacked * 2 >= limit {
                ack(&reader.channel, last_tag.take(), &url).await?;
                unacked = 0;
            }
        }
        ack(&reader.channel, last_tag, &url).await?;
        Ok(out)
    }

    /// Records how far the projection's stream was read, once its effects
    /// committed: where the next run starts.
    pub async fn committed(&mut self, spec: &ProjectionSpec) -> Result<(), ProjectError> {
        let Some(offset) = self.readers.get_mut(&spec.name).and_then(|r| r.offset.take()) else {
            return Ok(());
        };
        self.target
            .execute(
                "UPDATE deed.projections SET source_offset = $3 WHERE service = $1 AND name = $2",
                &[&spec.service, &spec.name, &offset],
            )
            .await
            .map_err(query("recording the projection's stream offset"))?;
        Ok(())
    }
}

/// A consumer of the projection's stream from just after its hint (or
/// from the first event).
async fn open(
    connection: &Connection,
    url: &str,
    target: &Client,
    spec: &ProjectionSpec,
    limit: usize,
    suffix: &str,
) -> Result<Reader, ProjectError> {
    let hint: Option<i64> = target
        .query_opt(
            "SELECT source_offset FROM deed.projections WHERE service = $1 AND name = $2",
            &[&spec.service, &spec.name],
        )
        .await
        .map_err(query("reading the projection's stream offset"))?
        .and_then(|r| r.get(0));
    let channel =
        connection.create_channel().await.map_err(|e| err(url, "opening a channel", e))?;
    // A stream consumer must have a prefetch window.
    let window = limit.clamp(1, u16::MAX as usize) as u16;
    channel
        .basic_qos(window, BasicQosOptions::default())
        .await
        .map_err(|e| err(url, "setting the prefetch window", e))?;
    let mut args = FieldTable::default();
    let from = match hint {
        Some(o) => AMQPValue::LongLongInt(o + 1),
        None => AMQPValue::LongString("first".into()),
    };
    args.insert("x-stream-offset".into(), from);
    let queue = deed_events::amqp_stream(&spec.producer);
    let tag = format!("{}{suffix}", deed_events::consumer_name(&spec.service, &spec.name));
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            args,
        )
        .await
        .map_err(|e| {
            err(
                url,
                &format!(
                    "cannot consume stream queue {queue} (has `deed relay --service {} --to amqp://…` run?)",
                    spec.producer
                ),
                e,
            )
        })?;
    Ok(Reader { channel, consumer, offset: None, fresh: true })
}

/// Whether an event of the projection after `position` and up to `fence`
/// is still in the stream past what the projector has committed (its
/// hint): read by a consumer of its own until the stream is idle. For
/// `deed compare --events-from amqp://…`.
pub async fn waiting(
    url: &deed_bus::AmqpUrl,
    target: &Client,
    spec: &ProjectionSpec,
    position: &str,
    fence: &str,
) -> Result<bool, ProjectError> {
    let shown = url.to_string();
    let connection =
        url.connect("compare").await.map_err(|e| ProjectError::Source(e.to_string()))?;
    let mut reader = open(&connection, &shown, target, spec, 500, "-compare").await?;
    let mut wait = OPENED;
    let mut seen = 0usize;
    let found = loop {
        let Some(delivery) = next(&mut reader.consumer, wait, &shown).await? else {
            break false;
        };
        wait = NEXT;
        if text_header(&delivery, "deed-type").as_deref() == Some(spec.event.as_str())
            && text_header(&delivery, "deed-position")
                .is_some_and(|p| p.as_str() > position && p.as_str() <= fence)
        {
            break true;
        }
        seen += 1;
        if seen % 250 == 0 {
            ack(&reader.channel, Some(delivery.delivery_tag), &shown).await?;
        }
    };
    let _ = connection.close(200, "done".into()).await;
    Ok(found)
}

/// The next message within `wait`, or `None` when none came.
async fn next(
    consumer: &mut Consumer,
    wait: Duration,
    url: &str,
) -> Result<Option<Delivery>, ProjectError> {
    let Ok(next) = tokio::time::timeout(wait, consumer.next()).await else { return Ok(None) };
    let delivery = next
        .ok_or_else(|| err(url, "reading", "the broker ended the consumer"))?
        .map_err(|e| err(url, "reading", e))?;
    Ok(Some(delivery))
}

fn header<'a>(delivery: &'a Delivery, name: &str) -> Option<&'a AMQPValue> {
    delivery.properties.headers().as_ref().and_then(|h| h.inner().get(name))
}

/// A header the relay writes as text (`deed-type`, `deed-position`).
fn text_header(delivery: &Delivery, name: &str) -> Option<String> {
    match header(delivery, name) {
        Some(AMQPValue::LongString(s)) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        _ => None,
    }
}

async fn ack(channel: &Channel, tag: Option<u64>, url: &str) -> Result<(), ProjectError> {
    if let Some(tag) = tag {
        channel
            .basic_ack(tag, BasicAckOptions { multiple: true })
            .await
            .map_err(|e| err(url, "acknowledging", e))?;
    }
    Ok(())
}
