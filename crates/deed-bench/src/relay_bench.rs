//! Rung 2's figures, on a private cluster and a private nats-server:
//!
//! 1. Writer throughput (pgbench, single-row updates) with no capture, with
//!    a trigger-fed outbox table (the common alternative), and with deed's
//!    capture (publication + slot), both with the relay idle and with the
//!    relay delivering to JetStream at the same time.
//! 2. Relay throughput: a backlog of committed single-row transactions
//!    delivered to JetStream, acked, and confirmed on the slot.
//! 3. The relay beside full-speed writers: the slot's lag over the run
//!    (bounded when it stops growing), and how soon after the writers stop
//!    every event is delivered.
//! 4. Latency from commit to a JetStream consumer receiving the event, at
//!    half the writers' maximum rate (or, with `--latency-only RATE`, at
//!    any rate).
//!
//! The drain (`relay_drain`) compares the relay with `pg_recvlogical`.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use deed_manifest::{Date, Manifest};
use deed_pg::{ClusterOptions, EmbeddedCluster};
use deed_relay::{Metrics, RelayOptions};
use deed_testkit::NatsServer;
use futures_util::StreamExt;

pub struct Shape {
    pub seconds: u64,
    pub clients: usize,
    pub rows: i64,
    pub durable: bool,
    pub latency_seconds: u64,
    /// Events the relay hands to the sink at a time.
    pub batch: usize,
    /// Each configuration runs this many times, interleaved; medians are reported.
    pub rounds: usize,
    /// Only the latency figure, at this many commits per second.
    pub latency_only: Option<f64>,
    /// Transactions in the drain comparison's backlog (0: no drain figure).
    pub drain: u64,
    /// Only the drain comparison.
    pub drain_only: bool,
}

const SERVICE: &str = "benchsvc";

const MANIFEST: &str = r#"version = 1
[services.benchsvc]
owns = ["public.items", "public.outbox"]
[[services.benchsvc.contracts]]
name = "items"
version = 1
from = "public.items"
columns = ["id", "version", "note"]
[[services.benchsvc.events]]
name = "item_changed"
from = "public.items"
key = ["id"]
contract = "items.v1"
"#;

const TRIGGER: &str = "
CREATE TABLE outbox (id bigserial PRIMARY KEY, topic text NOT NULL, payload jsonb NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION outbox_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (topic, payload)
  VALUES ('item_changed', jsonb_build_object('id', NEW.id, 'version', NEW.version, 'note', NEW.note));
  RETURN NEW;
END $$;";

pub async fn run(shape: &Shape) -> anyhow::Result<()> {
    let mut settings = vec![("max_wal_size".to_string(), "4GB".to_string())];
    if shape.durable {
        for (k, v) in [("fsync", "on"), ("synchronous_commit", "on"), ("full_page_writes", "on")] {
            settings.push((k.into(), v.into()));
        }
    }
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await??;
    let admin = deed_pg::connect(&cluster.url("postgres")).await?;
    admin.batch_execute("CREATE DATABASE deed_bench_relay").await?;
    let url = cluster.url("deed_bench_relay");
    // The application's side (schema, writers) runs in plain sessions; deed's
    // own (apply, the relay) in its fixed ones.
    let db = deed_pg::connect(&url).await?;
    deed_pg::connect_plain(&url)
        .await?
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL, note text NOT NULL);
         INSERT INTO items SELECT g, 0, 'seed' FROM generate_series(1, {}) g;
         {TRIGGER}",
            shape.rows
        ))
        .await?;
    db.batch_execute("VACUUM ANALYZE public.items").await?;
    let manifest = Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None)?;
    let nats = NatsServer::start(None);
    if let Some(rate) = shape.latency_only {
        deed_contracts::apply(&db, &manifest, Date::today(), &[]).await?;
        // The relay creates the stream; the consumer needs it first.
        deed_relay::Sink::connect(&nats.url(), SERVICE).await?;
        latency(&url, &manifest, &nats, rate, shape).await?;
        drop(db);
        drop(admin);
        tokio::task::spawn_blocking(move || cluster.stop()).await?;
        return Ok(());
    }
    let script = std::env::temp_dir().join(format!("deed-bench-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "\\set id random(1, {})\nUPDATE items SET version = version + 1, note = 'pgbench' WHERE id = :id;\n",
            shape.rows
        ),
    )?;
    let without_events = Manifest::parse(
        Path::new("deed.toml"),
        &MANIFEST[..MANIFEST.find("[[services.benchsvc.events]]").unwrap_or(MANIFEST.len())],
        &|_| None,
    )?;
    if shape.drain > 0 {
        admin.batch_execute("CREATE DATABASE deed_bench_inbox").await?;
        let drain = crate::relay_drain::DrainShape {
            events: shape.drain,
            clients: shape.clients,
            rounds: shape.rounds,
        };
        crate::relay_drain::run(
            &drain,
            &db,
            &url,
            &cluster.url("deed_bench_inbox"),
            &manifest,
            SERVICE,
            &nats,
            &script,
        )
        .await?;
        deed_contracts::apply(&db, &without_events, Date::today(), &[]).await?;
        if shape.drain_only {
            let _ = std::fs::remove_file(&script);
            drop(db);
            drop(admin);
            tokio::task::spawn_blocking(move || cluster.stop()).await?;
            return Ok(());
        }
    }
    println!(
        "writer throughput: pgbench, {} clients, {} s each, single-row UPDATE on {} rows, {}",
        shape.clients,
        shape.seconds,
        shape.rows,
        if shape.durable {
            "fsync and synchronous_commit on"
        } else {
            "fsync and synchronous_commit off"
        }
    );
    let pgbench = |label: &'static str| {
        let url = url.clone();
        let script = script.clone();
        let (clients, seconds) = (shape.clients, shape.seconds);
        async move {
            let (tps, n) =
                tokio::task::spawn_blocking(move || pgbench(&url, &script, clients, seconds))
                    .await??;
            println!("  {label:<44} {tps:>10.0} tps");
            Ok::<(f64, u64), anyhow::Error>((tps, n))
        }
    };
    let mut rounds: Vec<Round> = Vec::new();
    for round in 1..=shape.rounds {
        println!("round {round} of {}", shape.rounds);
        rounds
            .push(one_round(shape, &db, &url, &manifest, &without_events, &nats, &pgbench).await?);
    }
    let med = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let none = med(&|r| r.none);
    println!();
    println!("  medians of {} rounds, relative to no capture:", rounds.len());
    println!("    no capture                                  {none:>8.0} tps");
    for (label, f) in [
        ("trigger-fed outbox", &(|r: &Round| r.trigger) as &dyn Fn(&Round) -> f64),
        ("deed capture, relay not running", &|r: &Round| r.idle),
        ("deed capture, relay delivering", &|r: &Round| r.live),
    ] {
        let tps = med(f);
        let ratios: Vec<String> = rounds.iter().map(|r| format!("{:.2}", f(r) / r.none)).collect();
        println!(
            "    {label:<43} {tps:>8.0} tps  {:.2}×  (per round: {})",
            tps / none,
            ratios.join(", ")
        );
    }
    println!();
    let drain_rate = med(&|r| r.drained as f64 / r.drain_secs);
    println!(
        "relay throughput, backlog to JetStream (median): {drain_rate:.0} events/s  (per round: {})",
        rounds
            .iter()
            .map(|r| format!("{} in {:.2} s", r.drained, r.drain_secs))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let sustained = med(&|r| r.delivered_during as f64 / shape.seconds as f64);
    println!(
        "relay alongside full-speed writers (median): {sustained:.0} events/s delivered  (per round: {})",
        rounds
            .iter()
            .map(|r| format!(
                "{:.0}/s, lag up to {:.2} MB, mean over the last 30 s {:.2} MB then {:.2} MB, caught up {:.2} s after the writers stopped ({} left for a second drain)",
                r.delivered_during as f64 / shape.seconds as f64,
                r.lag.max as f64 / 1048576.0,
                r.lag.earlier / 1048576.0,
                r.lag.later / 1048576.0,
                r.catch_up_secs,
                r.rest,
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    deed_contracts::apply(&db, &manifest, Date::today(), &[]).await?;
    // Latency is measured with durable-style commits (synchronous_commit
    // on: an event can only be decoded once its commit is flushed), at
    // half of what the same writers reach unpaced with capture and the
    // relay running (`--latency-only RATE` measures at any other rate).
    // The rounds left the table bloated and autovacuum busy: start the
    // latency figures from a vacuumed table and a fresh checkpoint, as a
    // server in its ordinary state.
    db.batch_execute("VACUUM ANALYZE public.items").await?;
    db.batch_execute("CHECKPOINT").await?;
    let max = {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut opts = RelayOptions::new(manifest.clone(), SERVICE, &url, &nats.url());
        opts.shutdown = stop_rx;
        let relay = crate::relay_drain::relay_as_deed_runs_it(opts);
        let max = synchronous_writers_max(&url, 8, 10).await?;
        let _ = stop_tx.send(true);
        relay.await??;
        max
    };
    println!(
        "8 writers with synchronous_commit = on, unpaced, capture and relay running: {max:.0} commits/s; at half that:"
    );
    latency(&url, &manifest, &nats, max / 2.0, shape).await?;
    let _ = std::fs::remove_file(&script);
    drop(db);
    drop(admin);
    tokio::task::spawn_blocking(move || cluster.stop()).await?;
    Ok(())
}

/// Transactions per second, and transactions committed.
fn pgbench(url: &str, script: &Path, clients: usize, seconds: u64) -> anyhow::Result<(f64, u64)> {
    let out = Command::new(deed_pg::tool("pgbench"))
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(script)
        .arg(url)
        .output()
        .context("running pgbench (apt-get install postgresql-contrib)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let tps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {text}"))?;
    let n = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("number of transactions actually processed: ")
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .with_context(|| format!("no transaction count in pgbench's output: {text}"))?;
    Ok((tps, n))
}

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
async fn latency(
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
async fn synchronous_writers_max(url: &str, writers: i64, seconds: u64) -> anyhow::Result<f64> {
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

struct Round {
    none: f64,
    trigger: f64,
    idle: f64,
    live: f64,
    drained: u64,
    drain_secs: f64,
    delivered_during: u64,
    lag: Lag,
    rest: u64,
    catch_up_secs: f64,
}

/// The slot's lag while the writers ran: its maximum, and its mean over
/// each half of the last 30 s (bounded when the second half is no higher).
#[derive(Debug, Default, Clone, Copy)]
struct Lag {
    max: i64,
    earlier: f64,
    later: f64,
}

impl Lag {
    fn of(samples: &[(f64, i64)], seconds: f64) -> Lag {
        let window = 30f64.min(seconds);
        let mean = |from: f64, to: f64| {
            let v: Vec<f64> = samples
                .iter()
                .filter(|(t, _)| *t >= from && *t < to)
                .map(|(_, l)| *l as f64)
                .collect();
            if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
        };
        Lag {
            max: samples.iter().map(|(_, l)| *l).max().unwrap_or(0),
            earlier: mean(seconds - window, seconds - window / 2.0),
            later: mean(seconds - window / 2.0, seconds + 1.0),
        }
    }
}

async fn drain(
    manifest: &Manifest,
    url: &str,
    nats: &NatsServer,
    batch: usize,
) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut opts = RelayOptions::new(manifest.clone(), SERVICE, url, &nats.url());
    opts.until_idle = true;
    opts.chunk = batch;
    let report = crate::relay_drain::relay_as_deed_runs_it(opts).await??;
    Ok((report.events, started.elapsed().as_secs_f64()))
}

/// No capture, the trigger outbox, capture with the relay idle (then its
/// backlog drained), capture with the relay delivering; then capture is
/// removed again so the next round starts from the same state.
async fn one_round<F, Fut>(
    shape: &Shape,
    db: &deed_pg::Client,
    url: &str,
    manifest: &Manifest,
    without_events: &Manifest,
    nats: &NatsServer,
    pgbench: &F,
) -> anyhow::Result<Round>
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(f64, u64)>>,
{
    db.batch_execute("CHECKPOINT").await?;
    let (none, _) = pgbench("no capture").await?;
    db.batch_execute(
        "CREATE TRIGGER outbox_item AFTER INSERT OR UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.outbox_item(); CHECKPOINT",
    )
    .await?;
    let (trigger, _) = pgbench("trigger-fed outbox table").await?;
    db.batch_execute(
        "DROP TRIGGER outbox_item ON public.items; TRUNCATE public.outbox; CHECKPOINT",
    )
    .await?;

    deed_contracts::apply(db, manifest, Date::today(), &[]).await?;
    db.batch_execute("CHECKPOINT").await?;
    let (idle, _) = pgbench("deed capture, relay not running").await?;
    let (drained, drain_secs) = drain(manifest, url, nats, shape.batch).await?;

    db.batch_execute("CHECKPOINT").await?;
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut opts = RelayOptions::new(manifest.clone(), SERVICE, url, &nats.url());
    opts.metrics = metrics.clone();
    opts.shutdown = stop_rx;
    opts.chunk = shape.batch;
    let relay = crate::relay_drain::relay_as_deed_runs_it(opts);
    let samples: Arc<std::sync::Mutex<Vec<(f64, i64)>>> = Arc::default();
    let lag_probe = {
        let url = url.to_string();
        let samples = samples.clone();
        tokio::spawn(async move {
            let Ok(c) = deed_pg::connect(&url).await else { return };
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Ok(row) = c
                    .query_one(
                        "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name LIKE 'deed\\_benchsvc%'",
                        &[],
                    )
                    .await
                else {
                    return;
                };
                let at = started.elapsed().as_secs_f64();
                samples.lock().expect("samples").push((at, row.get(0)));
            }
        })
    };
    let before = metrics.events.load(Ordering::Relaxed);
    let (live, committed) = pgbench("deed capture, relay delivering to JetStream").await?;
    let delivered_during = metrics.events.load(Ordering::Relaxed) - before;
    lag_probe.abort();
    // Caught up: every transaction the writers committed is delivered
    // (one event each).
    let stopped = Instant::now();
    while metrics.events.load(Ordering::Relaxed) - before < committed {
        if stopped.elapsed() > Duration::from_secs(300) {
            bail!("the relay did not catch up within 300 s of the writers stopping");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let catch_up_secs = stopped.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    relay.await??;
    let (rest, _) = drain(manifest, url, nats, shape.batch).await?;
    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    deed_contracts::apply(db, without_events, Date::today(), &[]).await?;
    Ok(Round {
        none,
        trigger,
        idle,
        live,
        drained,
        drain_secs,
        delivered_during,
        lag: Lag::of(&samples, shape.seconds as f64),
        rest,
        catch_up_secs,
    })
}
