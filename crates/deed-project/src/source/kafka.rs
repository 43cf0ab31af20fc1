//! Reading Kafka: each projection reads every partition of its event's
//! topic, and the producer's positions topic, with a consumer of its own,
//! and hands events over in commit order ([`Merge`]).
//!
//! The projection's position in the consumer's database stays the truth.
//! The offsets it has handed over up to are committed to the consumer
//! group `deed_<service>_<projection>` after its transaction commits: only
//! a starting hint (and what Kafka's tools show as the group's lag). A
//! projector killed in between starts from earlier offsets, and the
//! events it reads again are skipped by position.
//!
//! deed assigns the partitions itself; it never joins a group's
//! rebalancing. A projection's effects commit in one order, so one
//! process applies all of its partitions: a second `deed project` of the
//! same service is refused when it would advance the same projection (a
//! standby that takes over when the first stops), it does not split the
//! partitions with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::TopicPartitionList;

use super::merge::{Held, Merge};
use crate::error::ProjectError;
use crate::incoming::Incoming;
use crate::spec::ProjectionSpec;

/// How long a fetch waits for its first message, a consumer just opened
/// for its first, and each next one.
const FIRST: Duration = Duration::from_millis(500);
const OPENED: Duration = Duration::from_secs(2);
const NEXT: Duration = Duration::from_millis(50);
/// Messages held per partition before reading it pauses.
const HOLD: usize = 10_000;
/// Metadata, offsets and watermarks.
const ASK: Duration = Duration::from_secs(30);

pub struct KafkaSource {
    url: deed_bus::KafkaUrl,
    readers: HashMap<String, Reader>,
}

struct Reader {
    consumer: StreamConsumer,
    topic: String,
    positions: String,
    merge: Merge<Incoming>,
    /// Each partition's end when the reader opened.
    ends: BTreeMap<i32, i64>,
    /// The topic holds this event type only.
    per_event: bool,
    paused: BTreeSet<i32>,
    fresh: bool,
}

fn err(url: &deed_bus::KafkaUrl, what: &str, e: impl std::fmt::Display) -> ProjectError {
    ProjectError::Source(format!("{what} on {url}: {e}"))
}

/// Where a reader starts, found with blocking calls.
struct Plan {
    /// Partition → first offset to read.
    start: BTreeMap<i32, i64>,
    /// Partition → end offset when the reader opened.
    known: BTreeMap<i32, i64>,
    /// The positions topic's offset of its last record, if any.
    last_record: Option<i64>,
}

impl KafkaSource {
    pub async fn connect(url: &deed_bus::KafkaUrl) -> Result<KafkaSource, ProjectError> {
        url.check_files().map_err(|e| ProjectError::Setup(e.to_string()))?;
        Ok(KafkaSource { url: url.clone(), readers: HashMap::new() })
    }

    /// Up to `limit` events of the projection's type, in commit order.
    pub async fn fetch(
        &mut self,
        spec: &ProjectionSpec,
        limit: usize,
    ) -> Result<Vec<Incoming>, ProjectError> {
        if !self.readers.contains_key(&spec.name) {
            match open(&self.url, spec, "").await? {
                Some(r) => {
                    self.readers.insert(spec.name.clone(), r);
                }
                // No topic yet: the relay has sent no such event.
                None => return Ok(Vec::new()),
            }
        }
        let url = &self.url;
        let reader = self.readers.get_mut(&spec.name).expect("inserted above");
        let mut out = Vec::new();
        reader.release(spec, limit, &mut out);
        let mut wait = if reader.fresh { OPENED } else { FIRST };
        reader.fresh = false;
        while out.len() < limit {
            let Ok(message) = tokio::time::timeout(wait, reader.consumer.recv()).await else {
                break;
            };
            let message = message.map_err(|e| err(url, "reading", e))?;
            wait = NEXT;
            take(&mut reader.merge, &reader.topic, &reader.positions, &message);
            drop(message);
            reader.release(spec, limit, &mut out);
            reader.pace(url)?;
        }
        Ok(out)
    }

    /// Commits the offsets handed over as the group's starting hint, once
    /// the projection's effects committed.
    pub async fn committed(&mut self, spec: &ProjectionSpec) -> Result<(), ProjectError> {
        let Some(reader) = self.readers.get(&spec.name) else { return Ok(()) };
        let mut tpl = TopicPartitionList::new();
        for (p, o) in reader.merge.resume_offsets() {
            tpl.add_partition_offset(&reader.topic, p, Offset::Offset(o))
                .map_err(|e| err(&self.url, "recording offsets", e))?;
        }
        reader
            .consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| err(&self.url, "committing the group's offsets", e))
    }
}

impl Reader {
    /// Hands over what the merge lets go, up to `limit` of the projection's type.
    fn release(&mut self, spec: &ProjectionSpec, limit: usize, out: &mut Vec<Incoming>) {
        while out.len() < limit {
            let Some(h) = self.merge.pop() else { break };
            // An unreadable message is the projection's if its topic is
            // the event's own; in a topic shared by several types it
            // cannot be told apart, and is left to their readers.
            let mine = match &h.item.event {
                Ok(ev) => ev.kind == spec.event,
                Err(_) => self.per_event,
            };
            if mine {
                out.push(h.item);
            }
        }
    }

    /// Pauses a partition holding many messages, resumes it once it holds few.
    fn pace(&mut self, url: &deed_bus::KafkaUrl) -> Result<(), ProjectError> {
        for p in self.merge.partitions() {
            let held = self.merge.held(p);
            let (pause, resume) = (
                held >= HOLD && !self.paused.contains(&p),
                held < HOLD / 2 && self.paused.contains(&p),
            );
            if pause || resume {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition(&self.topic, p);
                if pause {
                    self.consumer.pause(&tpl).map_err(|e| err(url, "pausing a partition", e))?;
                    self.paused.insert(p);
                } else {
                    self.consumer.resume(&tpl).map_err(|e| err(url, "resuming a partition", e))?;
                    self.paused.remove(&p);
                }
            }
        }
        Ok(())
    }
}

/// A message read: a record of the producer's relay, or an event.
fn take(merge: &mut Merge<Incoming>, topic: &str, positions: &str, m: &BorrowedMessage<'_>) {
    let raw = m.payload().unwrap_or_default();
    if m.topic() == positions {
        if let Some(r) = deed_events::Reached::parse(raw) {
            merge.reached(&r.position, r.offsets.get(topic));
        }
        return;
    }
    let at = header(m, "deed-position").unwrap_or_default();
    let item = Incoming::parse(
        String::from_utf8_lossy(raw).into_owned(),
        format!("kafka:{}:{}:{}", m.topic(), m.partition(), m.offset()),
        at,
    );
    let position = item.position.clone();
    merge.push(m.partition(), Held { offset: m.offset(), position, item });
}

fn header(m: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    let headers = m.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A reader of the projection's topic from the group's hint (or the
/// beginning), and of the positions topic from its last record; `None`
/// while the topic does not exist.
async fn open(
    url: &deed_bus::KafkaUrl,
    spec: &ProjectionSpec,
    suffix: &str,
) -> Result<Option<Reader>, ProjectError> {
    let topic = url.topic(&spec.producer, spec.event_name());
    let positions = url.positions_topic(&spec.producer);
    let group = format!("{}{suffix}", deed_events::consumer_name(&spec.service, &spec.name));
    let config = url.config(
        &format!("project {}", spec.name),
        &[
            ("group.id", &group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("allow.auto.create.topics", "false"),
            ("queued.max.messages.kbytes", "16384"),
        ],
    );
    let (t, p, c) = (topic.clone(), positions.clone(), config.clone());
    let plan = tokio::task::spawn_blocking(move || plan(&c, &t, &p))
        .await
        .map_err(|e| ProjectError::Source(e.to_string()))?
        .map_err(|e| err(url, &format!("reading topic {topic}"), e))?;
    let Some(plan) = plan else { return Ok(None) };
    let consumer: StreamConsumer = config.create().map_err(|e| err(url, "making a consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &plan.start {
        tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
            .map_err(|e| err(url, "assigning", e))?;
    }
    let from = plan.last_record.map_or(Offset::Beginning, Offset::Offset);
    tpl.add_partition_offset(&positions, 0, from).map_err(|e| err(url, "assigning", e))?;
    consumer.assign(&tpl).map_err(|e| err(url, "assigning partitions", e))?;
    Ok(Some(Reader {
        consumer,
        merge: Merge::new(&plan.start, &plan.known),
        ends: plan.known,
        per_event: url.topic_per_event(),
        topic,
        positions,
        paused: BTreeSet::new(),
        fresh: true,
    }))
}

/// The partitions, the group's offsets, and the end of each partition:
/// read after the positions topic's end, so every event at or before its
/// last record is below them.
fn plan(
    config: &rdkafka::ClientConfig,
    topic: &str,
    positions: &str,
) -> Result<Option<Plan>, rdkafka::error::KafkaError> {
    let c: BaseConsumer = config.create()?;
    let meta = c.fetch_metadata(Some(topic), ASK)?;
    let Some(t) = meta.topics().iter().find(|t| t.name() == topic && t.error().is_none()) else {
        return Ok(None);
    };
    let partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if partitions.is_empty() {
        return Ok(None);
    }
    let last_record = match c.fetch_watermarks(positions, 0, ASK) {
        Ok((low, high)) if high > low => Some(high - 1),
        _ => None,
    };
    let mut asked = TopicPartitionList::new();
    for p in &partitions {
        asked.add_partition(topic, *p);
    }
    let committed = c.committed_offsets(asked, ASK)?;
    let mut start = BTreeMap::new();
    let mut known = BTreeMap::new();
    for p in partitions {
        let (low, high) = c.fetch_watermarks(topic, p, ASK)?;
        let hint = match committed.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o.clamp(low, high),
            _ => low,
        };
        start.insert(p, hint);
        known.insert(p, high);
    }
    Ok(Some(Plan { start, known, last_record }))
}

/// Messages in the projection's topic past its consumer group's committed
/// offsets (its whole topic before the first commit): the group lag
/// Kafka's own tools show. The group is committed after the projection's
/// transaction, so this can overstate what waits, never hide it; with a
/// topic per service it counts the other event types' messages too.
/// `None` while the topic does not exist.
pub async fn pending(
    url: &deed_bus::KafkaUrl,
    spec: &ProjectionSpec,
) -> Result<Option<u64>, ProjectError> {
    let topic = url.topic(&spec.producer, spec.event_name());
    let positions = url.positions_topic(&spec.producer);
    let group = deed_events::consumer_name(&spec.service, &spec.name);
    let config = url.config(&format!("status {}", spec.name), &[("group.id", &group)]);
    let t = topic.clone();
    let plan = tokio::task::spawn_blocking(move || plan(&config, &t, &positions))
        .await
        .map_err(|e| ProjectError::Source(e.to_string()))?
        .map_err(|e| err(url, &format!("reading topic {topic}"), e))?;
    Ok(plan.map(|plan| {
        plan.known
            .iter()
            .map(|(p, end)| (end - plan.start.get(p).copied().unwrap_or(*end)).max(0) as u64)
            .sum()
    }))
}

/// Whether an event of the projection after `position` and up to `fence`
/// is still in its topic past the group's hint: read up to each
/// partition's end. For `deed compare --events-from kafka://…`.
pub async fn waiting(
    url: &deed_bus::KafkaUrl,
    spec: &ProjectionSpec,
    position: &str,
    fence: &str,
) -> Result<bool, ProjectError> {
    let Some(reader) = open(url, spec, "").await? else { return Ok(false) };
    let start = reader.merge.resume_offsets();
    let mut left: BTreeMap<i32, i64> = reader
        .ends
        .iter()
        .filter(|(p, end)| start.get(p).is_some_and(|s| s < end))
        .map(|(p, e)| (*p, *e))
        .collect();
    let mut wait = OPENED;
    while !left.is_empty() {
        let Ok(message) = tokio::time::timeout(wait, reader.consumer.recv()).await else {
            break;
        };
        let message = message.map_err(|e| err(url, "reading", e))?;
        wait = NEXT;
        if message.topic() != reader.topic {
            continue;
        }
        if left.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
            left.remove(&message.partition());
        }
        let mine = header(&message, "deed-type").as_deref() == Some(spec.event.as_str());
        if mine
            && header(&message, "deed-position")
                .is_some_and(|p| p.as_str() > position && p.as_str() <= fence)
        {
            return Ok(true);
        }
    }
    Ok(false)
}
