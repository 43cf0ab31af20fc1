//! The relay against a real three-node JetStream cluster on loopback, the
//! stream kept at three replicas: the node leading the stream is killed
//! (SIGKILL) while events flow and started again. Nothing is lost, nothing
//! is stored twice (the message id absorbs redeliveries), and the relay
//! finds the other nodes by itself.
//!
//! The short case runs with the suite; the long one (more events, the
//! leader killed again and again) with
//! `cargo test -p deed-relay --test cluster -- --ignored`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deed_manifest::{Date, Manifest};
use deed_relay::{Metrics, RelayOptions};
use deed_testkit::{NatsCluster, TestDb};
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_during_delivery_loses_nothing() {
    leader_kills("cluster_short", 3_000, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with cargo test -p deed-relay --test cluster -- --ignored"]
async fn killing_the_stream_leader_again_and_again_loses_nothing() {
    leader_kills("cluster_long", 60_000, 4).await;
}

async fn leader_kills(label: &str, events: i32, kills: usize) {
    let db = TestDb::new(label).await;
    let service = db.service("ledger");
    let admin = db.client().await;
    admin.batch_execute("CREATE TABLE entries (id int PRIMARY KEY, n int NOT NULL)").await.unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.entries"]
[[services.{service}.contracts]]
name = "entries"
version = 1
from = "public.entries"
columns = ["id", "n"]
[[services.{service}.events]]
name = "entry_changed"
from = "public.entries"
key = ["id"]
contract = "entries.v1"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await.unwrap();

    let mut cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3)).await.unwrap();
    let metrics = Arc::new(Metrics::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut opts = RelayOptions::new(manifest, &service, &db.url, &cluster.urls());
    opts.stream.replicas = 3;
    opts.metrics = metrics.clone();
    opts.shutdown = shutdown;
    let relay = tokio::spawn(deed_relay::run(opts));

    let watcher = deed_bus::NatsAuth::default().connect(&cluster.urls()).await.unwrap();
    let js = async_nats::jetstream::new(watcher);
    let name = deed_events::stream_name(&service);
    let deadline = Instant::now() + Duration::from_secs(60);
    while js.get_stream(&name).await.is_err() {
        assert!(Instant::now() < deadline, "the relay never created {name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Four writers, one row per transaction, paced so the kills land
    // while events flow.
    let per_writer = events / 4;
    let total = per_writer * 4;
    let mut writers = Vec::new();
    for w in 0..4 {
        let c = deed_pg::connect_plain(&db.url).await.unwrap();
        writers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000));
            for i in 0..per_writer {
                if i % 10 == 0 {
                    tick.tick().await;
                }
                c.execute("INSERT INTO entries VALUES ($1, $2)", &[&(i * 4 + w), &i])
                    .await
                    .unwrap();
            }
        }));
    }
    for k in 0..kills {
        let at = total as u64 * (k as u64 + 1) / (kills as u64 + 2);
        wait_for(&metrics, at, Duration::from_secs(120)).await;
        let leader = leader(&js, &name).await;
        let i = cluster.index_of(&leader).expect("the leader is one of the nodes");
        cluster.kill(i);
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster = tokio::task::spawn_blocking(move || {
            cluster.restart(i);
            cluster
        })
        .await
        .unwrap();
    }
    for w in writers {
        w.await.unwrap();
    }
    // Done when the stream holds every event (redeliveries count in the
    // relay's metrics, so those cannot say it).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let held = match js.get_stream(&name).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        if held >= total as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "the stream holds {held} of {total} events");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let report = relay.await.unwrap().unwrap();
    assert!(report.events >= total as u64, "{report:?}");

    // Every key exactly once in the stream.
    let mut stream = js.get_stream(&name).await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut keys = HashSet::new();
    let mut ids = HashSet::new();
    while keys.len() < total as usize {
        let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await
        else {
            break;
        };
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert!(ids.insert(v["id"].as_str().unwrap().to_string()), "stored twice: {v}");
        keys.insert(v["key"]["id"].as_i64().unwrap());
    }
    let missing: Vec<i32> =
        (0..total).filter(|k| !keys.contains(&i64::from(*k))).take(10).collect();
    assert!(
        missing.is_empty(),
        "{} keys never arrived, e.g. {missing:?}",
        total as usize - keys.len()
    );
    assert_eq!(stored, total as u64, "the stream holds each event once");
    eprintln!(
        "{total} events, {kills} leader kill(s): {} redelivered and absorbed, {} relay retries",
        report.duplicates,
        metrics.errors.load(Ordering::Relaxed)
    );
}

async fn wait_for(metrics: &Metrics, events: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while metrics.events.load(Ordering::Relaxed) < events {
        assert!(
            Instant::now() < deadline,
            "the relay delivered {} of {events} events",
            metrics.events.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node leading the stream, asked until the cluster has one.
async fn leader(js: &async_nats::jetstream::Context, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = js.get_stream(name).await {
            if let Ok(info) = s.info().await {
                if let Some(l) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                    return l;
                }
            }
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
