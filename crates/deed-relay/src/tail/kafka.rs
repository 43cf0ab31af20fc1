//! Reading a service's Kafka topics.

use std::time::Duration;

use super::within;
use crate::error::RelayError;

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
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};
    let fail = |what: &str, e: rdkafka::error::KafkaError| {
        RelayError::Sink(format!("{what} on {url}: {e}"))
    };
    let config = url.config(
        &format!("tail {service}"),
        &[("group.id", "deed-tail"), ("enable.auto.commit", "false")],
    );
    let topics = service_topics(url, service, (event != "*").then_some(event)).await?;
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

/// A service's event topics on the broker (the one of `event`, or every
/// one), each with its partitions; not its positions or dead-letter
/// topics. A service none of whose topics exist is a setup error.
pub async fn service_topics(
    url: &deed_bus::KafkaUrl,
    service: &str,
    event: Option<&str>,
) -> Result<Vec<(String, Vec<i32>)>, RelayError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let fail = |what: &str, e: rdkafka::error::KafkaError| {
        RelayError::Sink(format!("{what} on {url}: {e}"))
    };
    let probe = url.config(&format!("tail {service}"), &[]);
    let wanted: Option<String> = event.map(|e| url.topic(service, e));
    let (u, s, want) = (url.clone(), service.to_string(), wanted.clone());
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
    Ok(topics)
}
