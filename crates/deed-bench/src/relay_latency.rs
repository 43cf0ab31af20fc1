//! Rung 2's latency figure: paced commits carrying their send time, and a
//! JetStream consumer timing when each event reaches it; and the rate
//! synchronous-commit writers reach, which the pace is half of.

use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::bail;
use deed_manifest::Manifest;
use deed_relay::{Metrics, RelayOptions};
use deed_testkit::NatsServer;
use futures_util::StreamExt;

use crate::relay_bench::{SERVICE, Shape};

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Paced single-row commits carrying their send time; a JetStream consumer
/// measures when each event reaches it. The time includes the commit, the
/// relay's read and publish, and delivery to the consumer: an upper bound
/// on commit → ack.
pub(crate) async fn latency(
    url: &str,
    manifest: &Manifest,
    nats: &NatsServer,
    rate: f64,
    shape: &Shape,
) -> anyhow::Result<()> {
    let seconds = shape.latency_seconds;
    let rate = rate.max(1.0);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    let mut opts = RelayOptions::new(manifest.clone(), SERVICE, url, &nats.url());
    opts.shutdown = stop_rx;
    opts.chunk = shape.batch;
    opts.metrics = metrics.clone();
    let relay = crate::relay_drain::relay_as_deed_runs_it(opts);

    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let stream = js.get_stream(format!("DEED_{}", SERVICE.to_uppercase())).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("deed.{SERVICE}.item_changed"),
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let expected = (rate * seconds as f64) as usize;
    let receiver = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(seconds + 30);
        while latencies.len() < expected && Instant::now() < deadline {
            let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_secs(5), messages.next()).await
            else {
                break;
            };
            let now = now_micros();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap_or_default();
            if let Some(sent) = v["payload"]["note"].as_str().and_then(|s| s.parse::<i64>().ok()) {
                latencies.push((now - sent) as f64 / 1000.0);
            }
        }
        latencies
    });

    // Paced writers with synchronous_commit on: an event can only be
    // decoded once its commit record is flushed.
    // One connection manages about 2,000 synchronous commits a second here.
    let writers = ((rate / 1500.0).ceil() as i64).max(4);
    let per_writer = rate / writers as f64;
    let writing = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = deed_pg::connect_plain(url).await?;
        c.batch_execute("SET synchronous_commit = on").await?;
        let total = (per_writer * seconds as f64) as i64;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_writer));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0..total {
                tick.tick().await;
                let id = 1 + ((i * writers + w) % 50_000) as i32;
                let note = now_micros().to_string();
                c.execute(
                    "UPDATE items SET version = version + 1, note = $2 WHERE id = $1",
                    &[&id, &note],
                )
                .await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let achieved =
        (per_writer * seconds as f64).floor() * writers as f64 / writing.elapsed().as_secs_f64();
    let mut latencies = receiver.await?;
    let _ = stop_tx.send(true);
    relay.await??;
    if latencies.is_empty() {
        bail!("no events reached the consumer");
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "latency at {rate:.0} commits/s asked ({achieved:.0} achieved) for {seconds} s: {} events, \
         commit → consumer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let bound = |q: f64| {
        metrics
            .ack_latency
            .quantile_bound(q)
            .map_or("over 10 s".to_string(), |b| format!("≤ {b} ms"))
    };
    println!(
        "  commit → JetStream ack (the relay's own histogram, each event at its batch's oldest commit): p50 {}, p99 {}",
        bound(0.50),
        bound(0.99)
    );
    Ok(())
}

/// Commits per second `writers` connections reach with single-row updates
/// and synchronous_commit on, flat out for `seconds`.
pub(crate) async fn synchronous_writers_max(
    url: &str,
    writers: i64,
    seconds: u64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = deed_pg::connect_plain(url).await?;
        c.batch_execute("SET synchronous_commit = on").await?;
        tasks.push(tokio::spawn(async move {
            let mut n = 0i64;
            while Instant::now() < deadline {
                let id = 1 + ((n * writers + w) % 50_000) as i32;
                c.execute("UPDATE items SET version = version + 1 WHERE id = $1", &[&id]).await?;
                n += 1;
            }
            Ok::<i64, anyhow::Error>(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
