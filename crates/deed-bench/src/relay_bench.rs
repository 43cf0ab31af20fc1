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
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_manifest::{Date, Manifest};
use deed_relay::{Metrics, RelayOptions};
use deed_testkit::NatsServer;

use crate::pgbench::{self, Ran, Script, Until};
use crate::stats::median;

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

pub(crate) const SERVICE: &str = "benchsvc";

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

/// The cluster, database, manifests, broker and writers' script every
/// experiment shares.
struct Bench {
    cluster: EmbeddedCluster,
    admin: deed_pg::Client,
    db: deed_pg::Client,
    url: String,
    manifest: Manifest,
    /// The manifest without its event: capture set up, then removed.
    without_events: Manifest,
    nats: NatsServer,
    script: Script,
}

pub async fn run(shape: &Shape) -> anyhow::Result<()> {
    let bench = Bench::start(shape).await?;
    if let Some(rate) = shape.latency_only {
        deed_contracts::apply(&bench.db, &bench.manifest, Date::today(), &[]).await?;
        // The relay creates the stream; the consumer needs it first.
        deed_relay::Sink::connect(&bench.nats.url(), SERVICE).await?;
        crate::relay_latency::latency(&bench.url, &bench.manifest, &bench.nats, rate, shape)
            .await?;
        return bench.stop().await;
    }
    if shape.drain > 0 {
        bench.drain_comparison(shape).await?;
        if shape.drain_only {
            return bench.stop().await;
        }
    }
    writer_header(shape);
    let mut rounds: Vec<Round> = Vec::new();
    for round in 1..=shape.rounds {
        println!("round {round} of {}", shape.rounds);
        rounds.push(bench.one_round(shape).await?);
    }
    report(&rounds, shape);
    bench.latency_at_half(shape).await?;
    bench.stop().await
}

impl Bench {
    async fn start(shape: &Shape) -> anyhow::Result<Bench> {
        let mut settings = vec![("max_wal_size".to_string(), "4GB".to_string())];
        if shape.durable {
            for (k, v) in
                [("fsync", "on"), ("synchronous_commit", "on"), ("full_page_writes", "on")]
            {
                settings.push((k.into(), v.into()));
            }
        }
        let cluster = tokio::task::spawn_blocking(move || {
            EmbeddedCluster::start(&ClusterOptions { settings })
        })
        .await??;
        let admin = deed_pg::connect(&cluster.url("postgres")).await?;
        admin.batch_execute("CREATE DATABASE deed_bench_relay").await?;
        let url = cluster.url("deed_bench_relay");
        // The application's side (schema, writers) runs in plain sessions;
        // deed's own (apply, the relay) in its fixed ones.
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
        let without_events = Manifest::parse(
            Path::new("deed.toml"),
            &MANIFEST[..MANIFEST.find("[[services.benchsvc.events]]").unwrap_or(MANIFEST.len())],
            &|_| None,
        )?;
        let script = Script::new(
            "relay",
            &format!(
                "\\set id random(1, {})\nUPDATE items SET version = version + 1, note = 'pgbench' WHERE id = :id;\n",
                shape.rows
            ),
        )?;
        let nats = NatsServer::start(None);
        Ok(Bench { cluster, admin, db, url, manifest, without_events, nats, script })
    }

    async fn stop(self) -> anyhow::Result<()> {
        let Bench { cluster, admin, db, .. } = self;
        drop((db, admin));
        tokio::task::spawn_blocking(move || cluster.stop()).await?;
        Ok(())
    }

    /// The relay beside `pg_recvlogical` and the other readers
    /// (`relay_drain`), then capture removed again.
    async fn drain_comparison(&self, shape: &Shape) -> anyhow::Result<()> {
        self.admin.batch_execute("CREATE DATABASE deed_bench_inbox").await?;
        let drain = crate::relay_drain::DrainShape {
            events: shape.drain,
            clients: shape.clients,
            rounds: shape.rounds,
        };
        crate::relay_drain::run(
            &drain,
            &self.db,
            &self.url,
            &self.cluster.url("deed_bench_inbox"),
            &self.manifest,
            SERVICE,
            &self.nats,
            self.script.path(),
        )
        .await?;
        deed_contracts::apply(&self.db, &self.without_events, Date::today(), &[]).await?;
        Ok(())
    }

    /// The writers at full speed for `shape.seconds`, reported under `label`.
    async fn writers(&self, label: &str, shape: &Shape) -> anyhow::Result<Ran> {
        let (url, script) = (self.url.clone(), self.script.path().to_path_buf());
        let (clients, seconds) = (shape.clients, shape.seconds);
        let ran = tokio::task::spawn_blocking(move || {
            pgbench::run(&url, &script, clients, Until::Seconds(seconds))
        })
        .await??;
        println!("  {label:<44} {:>10.0} tps", ran.tps);
        Ok(ran)
    }

    /// Latency is measured with durable-style commits (synchronous_commit
    /// on: an event can only be decoded once its commit is flushed), at
    /// half of what the same writers reach unpaced with capture and the
    /// relay running (`--latency-only RATE` measures at any other rate).
    async fn latency_at_half(&self, shape: &Shape) -> anyhow::Result<()> {
        deed_contracts::apply(&self.db, &self.manifest, Date::today(), &[]).await?;
        // The rounds left the table bloated and autovacuum busy: start the
        // latency figures from a vacuumed table and a fresh checkpoint, as
        // a server in its ordinary state.
        self.db.batch_execute("VACUUM ANALYZE public.items").await?;
        self.db.batch_execute("CHECKPOINT").await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut opts =
            RelayOptions::new(self.manifest.clone(), SERVICE, &self.url, &self.nats.url());
        opts.shutdown = stop_rx;
        let relay = crate::relay_drain::relay_as_deed_runs_it(opts);
        let max = crate::relay_latency::synchronous_writers_max(&self.url, 8, 10).await?;
        let _ = stop_tx.send(true);
        relay.await??;
        println!(
            "8 writers with synchronous_commit = on, unpaced, capture and relay running: {max:.0} commits/s; at half that:"
        );
        crate::relay_latency::latency(&self.url, &self.manifest, &self.nats, max / 2.0, shape).await
    }
}

fn writer_header(shape: &Shape) {
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
}

/// The rounds' medians: writer throughput relative to no capture, the
/// relay's drain rate, and the relay beside full-speed writers.
fn report(rounds: &[Round], shape: &Shape) {
    let med = |f: &dyn Fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
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

impl Bench {
    /// No capture, the trigger outbox, capture with the relay idle (then its
    /// backlog drained), capture with the relay delivering; then capture is
    /// removed again so the next round starts from the same state.
    async fn one_round(&self, shape: &Shape) -> anyhow::Result<Round> {
        let Bench { db, url, manifest, without_events, nats, .. } = self;
        let (db, url) = (db, url.as_str());
        db.batch_execute("CHECKPOINT").await?;
        let none = self.writers("no capture", shape).await?.tps;
        db.batch_execute(
        "CREATE TRIGGER outbox_item AFTER INSERT OR UPDATE ON public.items FOR EACH ROW EXECUTE FUNCTION public.outbox_item(); CHECKPOINT",
    )
    .await?;
        let trigger = self.writers("trigger-fed outbox table", shape).await?.tps;
        db.batch_execute(
            "DROP TRIGGER outbox_item ON public.items; TRUNCATE public.outbox; CHECKPOINT",
        )
        .await?;

        deed_contracts::apply(db, manifest, Date::today(), &[]).await?;
        db.batch_execute("CHECKPOINT").await?;
        let idle = self.writers("deed capture, relay not running", shape).await?.tps;
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
        let Ran { tps: live, transactions: committed } =
            self.writers("deed capture, relay delivering to JetStream", shape).await?;
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
}
