//! Draining one backlog four ways, side by side in one run: the server's
//! own `pg_recvlogical` reading the same publication with pgoutput into
//! /dev/null (the walsender's decoding, nothing else: the ceiling), `deed
//! relay --until-idle` into a PostgreSQL inbox, into JetStream, into a
//! three-node JetStream cluster on this machine with the stream at three
//! replicas, and into Kafka (a private tansu broker, a 12-partition topic),
//! beside a plain idempotent producer sending as many messages of the
//! same size to the same broker (the broker's own limit here). Each relay
//! reads its own copy of one slot made before the backlog,
//! so all decode exactly the same WAL. The relay's CPU is the process's own
//! (`getrusage`), over the drain: nothing else runs in this process then.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use deed_manifest::{Date, Manifest};
use deed_relay::RelayOptions;
use deed_relay::sink::StreamSettings;
use deed_testkit::{KafkaServer, NatsCluster, NatsServer};

pub struct DrainShape {
    pub events: u64,
    pub clients: usize,
    pub rounds: usize,
}

const SAVED: &str = "deed_bench_saved";
const RECV: &str = "deed_bench_recvlogical";

#[derive(Default, Clone, Copy)]
struct Drained {
    wall: f64,
    cpu: f64,
    user: f64,
    events: u64,
}

/// CPU seconds (user + system) this process has used.
pub fn cpu_seconds() -> f64 {
    let (user, system) = cpu_split();
    user + system
}

/// CPU seconds this process has used: (user, system).
pub fn cpu_split() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    (t(u.ru_utime), t(u.ru_stime))
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    shape: &DrainShape,
    db: &deed_pg::Client,
    url: &str,
    inbox_url: &str,
    manifest: &Manifest,
    service: &str,
    nats: &NatsServer,
    script: &std::path::Path,
) -> anyhow::Result<()> {
    deed_contracts::apply(db, manifest, Date::today(), &[]).await?;
    let slot: String = db
        .query_one(
            "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE 'deed\\_' || $1 || '%' AND database = current_database()",
            &[&service],
        )
        .await?
        .get(0);
    db.execute("SELECT pg_copy_logical_replication_slot($1, $2)", &[&slot, &SAVED]).await?;
    let per_client = shape.events / shape.clients as u64;
    let total = per_client * shape.clients as u64;
    println!(
        "drain: a backlog of {total} single-row UPDATE transactions ({} clients × {per_client}), read five ways from copies of one slot, beside a plain Kafka producer",
        shape.clients
    );
    {
        let (url, script, clients) = (url.to_string(), script.to_path_buf(), shape.clients);
        tokio::task::spawn_blocking(move || {
            crate::pgbench::run(
                &url,
                &script,
                clients,
                crate::pgbench::Until::Transactions(per_client),
            )
            .map(|_| ())
        })
        .await??;
    }
    db.batch_execute("CHECKPOINT").await?;
    let end: String = db.query_one("SELECT pg_current_wal_flush_lsn()::text", &[]).await?.get(0);
    let publication = deed_events::publication_name(service).as_str().to_string();
    let reset = |to: &'static str| {
        let to = if to.is_empty() { slot.clone() } else { to.to_string() };
        async move {
            db.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                &[&to],
            )
            .await?;
            db.execute("SELECT pg_copy_logical_replication_slot($1, $2)", &[&SAVED, &to]).await?;
            db.batch_execute("CHECKPOINT").await?;
            anyhow::Ok(())
        }
    };
    let inbox = deed_pg::connect(inbox_url).await?;
    // A real three-node cluster on this machine, the stream at 3 replicas.
    let cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3)).await?;
    let mut rows: Vec<[Drained; 6]> = Vec::new();
    // Round 0 warms up and is not counted: a new cluster creates (and
    // zero-fills) every WAL segment the inbox's writes fill, where a
    // running server recycles old ones.
    for round in 0..=shape.rounds {
        reset(RECV).await?;
        let recv = {
            let (url, end, publication) = (url.to_string(), end.clone(), publication.clone());
            tokio::task::spawn_blocking(move || recvlogical(&url, &end, &publication)).await??
        };
        reset("").await?;
        inbox.batch_execute("DROP TABLE IF EXISTS deed.inbox").await?;
        let to_inbox = drain(manifest, service, url, inbox_url, StreamSettings::default()).await?;
        reset("").await?;
        delete_stream(nats, service).await?;
        let to_nats = drain(manifest, service, url, &nats.url(), StreamSettings::default()).await?;
        reset("").await?;
        delete_stream_at(&cluster.urls(), service).await?;
        let to_cluster = drain(
            manifest,
            service,
            url,
            &cluster.urls(),
            StreamSettings { replicas: 3, ..Default::default() },
        )
        .await?;
        reset("").await?;
        // A new broker each round: its SQLite log starts empty.
        let kafka = tokio::task::spawn_blocking(KafkaServer::start).await?;
        let to_kafka = drain(
            manifest,
            service,
            url,
            &kafka.url(),
            StreamSettings { partitions: 12, ..Default::default() },
        )
        .await?;
        let plain = plain_producer(&kafka.url(), total, 12).await?;
        drop(kafka);
        for d in [&to_inbox, &to_nats, &to_cluster, &to_kafka] {
            if d.events != total {
                bail!("the relay delivered {} events, expected {total}", d.events);
            }
        }
        if round == 0 {
            continue;
        }
        println!(
            "  round {round}: pg_recvlogical {:.2} s; relay → inbox {:.2} s ({:.2} CPU s); relay → JetStream {:.2} s ({:.2} CPU s); relay → 3-node cluster, R3 {:.2} s ({:.2} CPU s); relay → Kafka {:.2} s ({:.2} CPU s); plain producer → Kafka {:.2} s",
            recv.wall,
            to_inbox.wall,
            to_inbox.cpu,
            to_nats.wall,
            to_nats.cpu,
            to_cluster.wall,
            to_cluster.cpu,
            to_kafka.wall,
            to_kafka.cpu,
            plain.wall
        );
        rows.push([recv, to_inbox, to_nats, to_cluster, to_kafka, plain]);
    }
    let med = |i: usize, f: &dyn Fn(&Drained) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(|r| f(&r[i])).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let base = med(0, &|d| d.wall);
    println!("  medians of {} rounds:", rows.len());
    println!("    pg_recvlogical to /dev/null           {base:>6.2} s");
    for (i, label) in [
        (1, "deed relay → PostgreSQL inbox"),
        (2, "deed relay → JetStream"),
        (3, "deed relay → JetStream, 3 nodes, R3"),
        (4, "deed relay → Kafka (tansu), 12 parts"),
        (5, "plain producer → Kafka, same messages"),
    ] {
        let wall = med(i, &|d| d.wall);
        if i == 5 {
            println!(
                "    {label:<37} {wall:>6.2} s  {:.2}× pg_recvlogical, {:.0} messages/s",
                wall / base,
                total as f64 / wall
            );
            continue;
        }
        let per_event = med(i, &|d| d.cpu / d.events as f64 * 1e6);
        let user = med(i, &|d| d.user / d.events as f64 * 1e6);
        println!(
            "    {label:<37} {wall:>6.2} s  {:.2}× pg_recvlogical, {per_event:.2} µs CPU per event ({user:.2} user), {:.0} events/s",
            wall / base,
            total as f64 / wall
        );
    }
    db.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ($1, $2)", &[&SAVED, &RECV]).await?;
    Ok(())
}

/// `n` messages of an envelope's size (300 bytes, keyed over 100,000
/// keys, with the relay's four headers), from an idempotent `acks=all`
/// producer like the relay's, to a topic of `partitions`: what the broker
/// takes at most on this machine.
async fn plain_producer(url: &str, n: u64, partitions: i32) -> anyhow::Result<Drained> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let url = deed_bus::KafkaUrl::parse(url)?;
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        url.config("bench", &[]).create()?;
    let topic = "deed.bench.plain";
    admin
        .create_topics(
            [&NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    let producer: FutureProducer = url
        .config("bench", &[("enable.idempotence", "true"), ("acks", "all"), ("linger.ms", "5")])
        .create()?;
    let body = vec![b'x'; 300];
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..n {
        let key = (i % 100_000).to_string();
        // The relay's four headers, of the same sizes: a broker may store
        // each header apart (tansu keeps them in rows of their own).
        let position = format!("{:016X}/{:08X}", 0x1_6B37_4800 + i * 200, 1);
        let id = format!("bench/{position}");
        let headers = OwnedHeaders::new()
            .insert(Header { key: "deed-id", value: Some(id.as_bytes()) })
            .insert(Header { key: "deed-type", value: Some("bench.item_changed".as_bytes()) })
            .insert(Header { key: "deed-position", value: Some(position.as_bytes()) })
            .insert(Header { key: "deed-contract", value: Some("items.v1".as_bytes()) });
        let mut record =
            FutureRecord::to(topic).key(key.as_bytes()).payload(&body).headers(headers);
        loop {
            match producer.send_result(record) {
                Ok(d) => break pending.push_back(d),
                Err((_, r)) => {
                    record = r;
                    if let Some(d) = pending.pop_front() {
                        d.await?.map_err(|(e, _)| e)?;
                    }
                }
            }
        }
        // The relay keeps up to four batches of 1,000 in flight.
        if pending.len() >= 4000 {
            pending.pop_front().expect("some").await?.map_err(|(e, _)| e)?;
        }
    }
    for d in pending {
        d.await?.map_err(|(e, _)| e)?;
    }
    Ok(Drained { wall: started.elapsed().as_secs_f64(), events: n, ..Drained::default() })
}

/// `deed relay --until-idle` of `service` to `to`, creating its stream or
/// topics with `stream`'s settings.
async fn drain(
    manifest: &Manifest,
    service: &str,
    url: &str,
    to: &str,
    stream: StreamSettings,
) -> anyhow::Result<Drained> {
    let mut opts = RelayOptions::new(manifest.clone(), service, url, to);
    opts.stream = stream;
    opts.until_idle = true;
    let cpu = cpu_seconds();
    let split = cpu_split();
    let started = Instant::now();
    let report = relay_as_deed_runs_it(opts).await??;
    let after = cpu_split();
    Ok(Drained {
        wall: started.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - cpu,
        user: after.0 - split.0,
        events: report.events,
    })
}

/// Runs a relay the way `deed relay` does: on a thread of its own with a
/// single-threaded runtime.
pub fn relay_as_deed_runs_it(
    opts: RelayOptions,
) -> tokio::task::JoinHandle<Result<deed_relay::RelayReport, deed_relay::RelayError>> {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| deed_relay::RelayError::Setup(format!("a runtime: {e}")))?
            .block_on(deed_relay::run(opts))
    })
}

async fn delete_stream(nats: &NatsServer, service: &str) -> anyhow::Result<()> {
    delete_stream_at(&nats.url(), service).await
}

async fn delete_stream_at(urls: &str, service: &str) -> anyhow::Result<()> {
    let client = deed_bus::NatsAuth::default().connect(urls).await?;
    let js = async_nats::jetstream::new(client);
    let _ = js.delete_stream(deed_events::stream_name(service)).await;
    Ok(())
}

fn recvlogical(url: &str, end: &str, publication: &str) -> anyhow::Result<Drained> {
    let started = Instant::now();
    let out = Command::new(deed_cluster::tool("pg_recvlogical"))
        .args([
            "-d",
            url,
            "--slot",
            RECV,
            "--start",
            "--no-loop",
            "-f",
            "/dev/null",
            "--endpos",
            end,
        ])
        .args(["-o", "proto_version=1", "-o"])
        .arg(format!("publication_names={publication}"))
        .args(["-o", "messages=true"])
        .output()
        .context("running pg_recvlogical")?;
    if !out.status.success() {
        bail!("pg_recvlogical failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Drained { wall: started.elapsed().as_secs_f64(), ..Drained::default() })
}
