//! `deed relay` as users run it: a separate process, killed with SIGKILL
//! while writers commit, with the broker restarted under it, with a
//! standby taking over, and with rows no broker accepts. Every test checks
//! what arrived against what the owner database committed.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::text;

use deed_testkit::{KafkaServer, NatsServer, RabbitServer, TestDb, free_port};
use serde_json::Value;

struct Owner {
    db: TestDb,
    dir: tempfile::TempDir,
    service: String,
    login: String,
}

/// An owner with one table, `items`, whose every row carries a version
/// that each committed change raises by one: the versions a key's events
/// carry must then be exactly 0, 1, 2, … in that order.
async fn owner(label: &str) -> Owner {
    let db = TestDb::new(label).await;
    let service = db.service("inventory");
    let login = db.role("inventory_svc");
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL, note text NOT NULL, body text);
             CREATE ROLE \"{login}\" LOGIN;"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        format!(
            r#"version = 1
[database]
url = "${{DATABASE_URL}}"
[services.{service}]
owns = ["public.items"]
logins = ["{login}"]
[[services.{service}.contracts]]
name = "items"
version = 1
from = "public.items"
columns = ["id", "version", "note", "body"]
[[services.{service}.events]]
name = "item_changed"
from = "public.items"
key = ["id"]
contract = "items.v1"
"#
        ),
    )
    .unwrap();
    let out = support::run(dir.path(), &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    Owner { db, dir, service, login }
}

/// A long-running relay whose log goes to `log`.
fn spawn_relay(o: &Owner, to: &str, log: &Path, extra: &[&str]) -> Child {
    spawn_relay_from(o, &o.db.url, to, log, extra)
}

/// Like [`spawn_relay`], connecting to the database through `url`.
fn spawn_relay_from(o: &Owner, url: &str, to: &str, log: &Path, extra: &[&str]) -> Child {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    support::deed(o.dir.path())
        .args(["relay", "--service", &o.service, "--to", to, "--log-format", "json"])
        .args(extra)
        .env("DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap()
}

fn until_idle(o: &Owner, to: &str) {
    until_idle_with(o, to, &[]);
}

fn until_idle_with(o: &Owner, to: &str, extra: &[&str]) {
    let mut args = vec!["relay", "--service", &o.service, "--to", to, "--until-idle"];
    args.extend_from_slice(extra);
    let out = support::run(o.dir.path(), &o.db.url, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// xorshift: enough randomness for picking keys and sleeps.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Writers committing transactions of one to three keys (locked in key
/// order, so they never deadlock) until `target` changes are committed.
/// One transaction in ten writes a poisoned note and rolls back.
async fn write_load(o: &Owner, writers: usize, keys: i32, target: u64) -> u64 {
    let committed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = o.db.client_as(&o.login).await;
        let committed = committed.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1234_5678));
            while committed.load(Ordering::Relaxed) < target {
                let n = 1 + rng.below(3) as usize;
                let mut ids: Vec<i32> = (0..n).map(|_| rng.below(keys as u64) as i32).collect();
                ids.sort_unstable();
                ids.dedup();
                let rollback = rng.below(10) == 0;
                let note = if rollback { "rolled back" } else { "ok" };
                c.batch_execute("BEGIN").await.unwrap();
                for id in &ids {
                    c.execute(
                        "INSERT INTO items VALUES ($1, 0, $2) ON CONFLICT (id)
                         DO UPDATE SET version = items.version + 1, note = $2",
                        &[id, &note],
                    )
                    .await
                    .unwrap();
                }
                if rollback {
                    c.batch_execute("ROLLBACK").await.unwrap();
                } else {
                    c.batch_execute("COMMIT").await.unwrap();
                    committed.fetch_add(ids.len() as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    committed.load(Ordering::Relaxed)
}

/// What the owner committed: each key's last version.
async fn final_versions(o: &Owner) -> BTreeMap<i64, i64> {
    let rows =
        o.db.client().await.query("SELECT id::int8, version::int8 FROM items", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Checks delivered envelopes (in stream order, duplicates included)
/// against the committed versions; returns the number of duplicates.
fn verify(delivered: &[Value], expected: &BTreeMap<i64, i64>) -> usize {
    let mut first: HashMap<String, &Value> = HashMap::new();
    let mut per_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut duplicates = 0;
    for e in delivered {
        let id = e["id"].as_str().expect("an event id").to_string();
        assert_ne!(e["payload"]["note"], "rolled back", "a rolled-back change was delivered: {e}");
        if let Some(seen) = first.get(&id) {
            assert_eq!(*seen, e, "two different events share the id {id}");
            duplicates += 1;
            continue;
        }
        first.insert(id, e);
        let key = e["key"]["id"].as_i64().expect("key.id");
        per_key.entry(key).or_default().push(e["payload"]["version"].as_i64().expect("version"));
    }
    let want: usize = expected.values().map(|v| *v as usize + 1).sum();
    for (key, last) in expected {
        let got = per_key.get(key).cloned().unwrap_or_default();
        let full: Vec<i64> = (0..=*last).collect();
        assert_eq!(got, full, "key {key}: versions delivered (in order) vs committed");
    }
    assert_eq!(first.len(), want, "distinct events delivered vs changes committed");
    assert_eq!(per_key.len(), expected.len(), "keys with events vs keys committed");
    duplicates
}

async fn stream_contents(nats: &NatsServer, service: &str) -> Vec<Value> {
    let mut all = Vec::new();
    deed_relay::tail::tail_nats(
        &nats.url(),
        service,
        "item_changed",
        true,
        None,
        Some(Duration::from_secs(2)),
        |v| all.push(v),
    )
    .await
    .unwrap();
    all
}

async fn rabbit_contents(url: &str, service: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let url = deed_bus::AmqpUrl::parse(url).unwrap();
    let idle = Some(Duration::from_secs(2));
    deed_relay::tail::tail_amqp(&url, service, "item_changed", true, None, idle, |raw| {
        all.push(deed_relay::tail::parse(raw))
    })
    .await
    .unwrap();
    all
}

async fn kafka_contents(url: &str, service: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let url = deed_bus::KafkaUrl::parse(url).unwrap();
    let idle = Some(Duration::from_secs(3));
    deed_relay::tail::tail_kafka(&url, service, "item_changed", true, None, idle, |raw| {
        all.push(deed_relay::tail::parse(raw))
    })
    .await
    .unwrap();
    all
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bus {
    Nats,
    Rabbit,
    Kafka,
}

/// Writers commit while the relay is killed with SIGKILL every fraction of
/// a second and restarted, and the broker is killed (SIGKILL) and
/// restarted once: a private nats-server, RabbitMQ node or Kafka broker
/// (tansu, with a 4-partition topic).
/// One crash run at a time in this binary: each starts a broker, writers,
/// a relay and kills on two cores, and `--until-idle` and the readers of
/// the result tell the end of the events by a pause; three at once made a
/// pause out of a busy machine.
static CRASH_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_run(target: u64, bus: Bus) {
    let _one_at_a_time = CRASH_RUNS.lock().await;
    let rabbit = bus == Bus::Rabbit;
    let o = owner("relay_crash").await;
    let mut nats = NatsServer::start(None);
    let mut broker = rabbit.then(RabbitServer::start);
    let mut kafka = (bus == Bus::Kafka).then(KafkaServer::start);
    let to = match (&broker, &kafka) {
        (Some(b), _) => b.url(),
        (_, Some(k)) => k.url(),
        _ => nats.url(),
    };
    let extra: &[&str] = if bus == Bus::Kafka { &["--partitions", "4"] } else { &[] };
    let log = o.dir.path().join("relay.log");
    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let done = done.clone();
        let o = &o;
        async move {
            let n = write_load(o, 4, 500, target).await;
            done.store(true, Ordering::Relaxed);
            n
        }
    };
    let killing = async {
        let mut rng = Rng(42);
        let mut kills = 0;
        let mut broker_restarted = false;
        while !done.load(Ordering::Relaxed) {
            let mut relay = spawn_relay(&o, &to, &log, extra);
            tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
            relay.kill().unwrap();
            relay.wait().unwrap();
            kills += 1;
            if kills == 4 && !broker_restarted {
                match (&mut broker, &mut kafka) {
                    (Some(b), _) => b.restart(),
                    (_, Some(k)) => k.restart(),
                    _ => nats.restart(),
                }
                broker_restarted = true;
            }
        }
        (kills, broker_restarted)
    };
    let (committed, (kills, broker_restarted)) = tokio::join!(writing, killing);
    if let Some(b) = &broker {
        // `--until-idle` stops at the first error: the node's stream back.
        b.ready(&[deed_events::amqp_stream(&o.service)]).await;
    }
    until_idle_with(&o, &to, extra);
    let delivered = match bus {
        Bus::Rabbit => rabbit_contents(&to, &o.service).await,
        Bus::Kafka => kafka_contents(&to, &o.service).await,
        Bus::Nats => stream_contents(&nats, &o.service).await,
    };
    let duplicates = verify(&delivered, &final_versions(&o).await);
    eprintln!(
        "crash run ({bus:?}): {committed} changes committed, {} messages in the stream, {duplicates} duplicates, relay killed {kills} times, broker restarted: {broker_restarted}",
        delivered.len()
    );
    assert!(kills >= 3, "the run was too short to kill the relay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_loses_nothing_and_keeps_key_order() {
    crash_run(15_000, Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_to_rabbitmq_loses_nothing_and_keeps_key_order() {
    crash_run(15_000, Bus::Rabbit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_to_kafka_loses_nothing_and_keeps_key_order() {
    crash_run(15_000, Bus::Kafka).await;
}

/// The full-size run: `cargo test -p deed --test relay_cli -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with --ignored"]
async fn kill_9_during_200k_changes_loses_nothing() {
    crash_run(200_000, Bus::Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_commits_later_with_a_lower_key_is_not_skipped() {
    let o = owner("relay_order").await;
    let consumer = TestDb::new("relay_order_inbox").await;
    let a = o.db.client_as(&o.login).await;
    let b = o.db.client_as(&o.login).await;
    // A takes the lower key first but commits last: polling by a sequence
    // would have moved past it.
    a.batch_execute("BEGIN; INSERT INTO items VALUES (1, 0, 'a')").await.unwrap();
    b.batch_execute("BEGIN; INSERT INTO items VALUES (2, 0, 'b'); COMMIT").await.unwrap();
    until_idle(&o, &consumer.url);
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("UPDATE items SET version = 1, note = 'b2' WHERE id = 2").await.unwrap();
    until_idle(&o, &consumer.url);
    let rows = consumer
        .client()
        .await
        .query("SELECT payload->>'note' FROM deed.inbox ORDER BY position", &[])
        .await
        .unwrap();
    let notes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(notes, ["b", "a", "b2"], "commit order");
}

async fn inbox_count(consumer: &TestDb) -> i64 {
    consumer
        .client()
        .await
        .query_one("SELECT count(*) FROM deed.inbox", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0)
}

fn metrics_text(port: u16) -> String {
    http_get(port, "GET", "/metrics")
}

/// The whole answer (status line, headers, body) to `METHOD PATH`.
fn http_get(port: u16, method: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("{method} {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_relay_takes_over_when_the_active_one_dies() {
    let o = owner("relay_failover").await;
    let consumer = TestDb::new("relay_failover_inbox").await;
    let log = o.dir.path().join("relay.log");
    let w = o.db.client_as(&o.login).await;
    w.batch_execute("INSERT INTO items SELECT g, 0, 'first' FROM generate_series(1, 100) g")
        .await
        .unwrap();
    let port_a = free_port();
    let mut a =
        spawn_relay(&o, &consumer.url, &log, &["--metrics", &format!("127.0.0.1:{port_a}")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox_count(&consumer).await < 100 {
        assert!(Instant::now() < deadline, "the first relay delivered nothing: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let port_b = free_port();
    let mut b =
        spawn_relay(&o, &consumer.url, &log, &["--metrics", &format!("127.0.0.1:{port_b}")]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ma = metrics_text(port_a);
    let mb = metrics_text(port_b);
    assert!(
        ma.contains(&format!("deed_relay_leader{{service=\"{}\",sink=\"inbox\"}} 1", o.service)),
        "{ma}"
    );
    assert!(
        mb.contains(&format!("deed_relay_leader{{service=\"{}\",sink=\"inbox\"}} 0", o.service)),
        "{mb}"
    );
    assert!(
        ma.contains(&format!(
            "deed_relay_events_total{{service=\"{}\",sink=\"inbox\"}} 100",
            o.service
        )),
        "{ma}"
    );
    // Health and readiness: both alive; the active one works, the other
    // stands by, and both are ready. Unknown paths and methods are refused.
    for port in [port_a, port_b] {
        assert!(http_get(port, "GET", "/healthz").starts_with("HTTP/1.1 200 OK"));
    }
    let ready = http_get(port_a, "GET", "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200 OK") && ready.contains("ready: working"), "{ready}");
    let ready = http_get(port_b, "GET", "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200 OK") && ready.contains("standing by"), "{ready}");
    assert!(http_get(port_a, "GET", "/nope").starts_with("HTTP/1.1 404"));
    assert!(http_get(port_a, "POST", "/metrics").starts_with("HTTP/1.1 405"));
    assert!(ma.contains("# TYPE deed_relay_commit_to_ack_seconds histogram"), "{ma}");
    assert!(ma.contains("le=\"+Inf\""), "{ma}");

    a.kill().unwrap();
    a.wait().unwrap();
    let killed = Instant::now();
    w.batch_execute("INSERT INTO items SELECT g, 0, 'second' FROM generate_series(101, 150) g")
        .await
        .unwrap();
    while inbox_count(&consumer).await < 150 {
        assert!(killed.elapsed() < Duration::from_secs(20), "no takeover: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the standby delivered new rows {:?} after the active relay was killed",
        killed.elapsed()
    );
    assert!(read(&log).contains("took over delivery"), "{}", read(&log));

    // SIGTERM: the relay finishes and exits cleanly.
    let status = Command::new("kill").args(["-TERM", &b.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = b.try_wait().unwrap() {
            assert!(s.success(), "relay exit after SIGTERM: {s:?}\n{}", read(&log));
            break;
        }
        assert!(Instant::now() < deadline, "relay ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(inbox_count(&consumer).await, 150);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_a_stopped_relay_and_fails_past_the_wal_limit() {
    let o = owner("relay_status").await;
    let w = o.db.client_as(&o.login).await;
    w.batch_execute("INSERT INTO items SELECT g, 0, 'x' FROM generate_series(1, 2000) g")
        .await
        .unwrap();
    let d = o.dir.path();
    let out = support::run(d, &o.db.url, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("relay NOT RUNNING"), "{}", text(&out));
    assert!(text(&out).contains("no relay is delivering"), "{}", text(&out));
    let out = support::run(d, &o.db.url, &["status", "--max-retained-wal", "1kB"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("PROBLEM: the slot keeps"), "{}", text(&out));
    let out = support::run(d, &o.db.url, &["status", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let capture = &v["capture"][0];
    assert_eq!(capture["relay_running"], false, "{v}");
    assert!(capture["lag_bytes"].as_i64().unwrap() > 0, "{v}");
    let out = support::run(d, &o.db.url, &["status", "--max-retained-wal", "lots"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Services on both sides of `deed` in name order (deed's own schema must
/// come first whatever they are called), and `deed status` telling the
/// truth about a broken flow: a relay that keeps failing, a missing
/// publication, and no lag left over once everything is delivered.
#[tokio::test]
async fn capture_orders_by_dependency_and_status_tells_a_broken_flow() {
    let db = TestDb::new("relay_order").await;
    let early = db.early_service("billing");
    let late = db.service("shipping");
    assert!(early.as_str() < "deed" && late.as_str() > "deed");
    let (bl, sl) = (db.role("billing_svc"), db.role("shipping_svc"));
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE invoices (id int PRIMARY KEY, total int NOT NULL);
             CREATE TABLE parcels (id int PRIMARY KEY);
             CREATE TABLE scratch (id int, pad text);
             CREATE ROLE \"{bl}\" LOGIN; CREATE ROLE \"{sl}\" LOGIN;"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("deed.toml"),
        format!(
            r#"version = 1
[database]
url = "${{DATABASE_URL}}"
[services.{early}]
owns = ["public.invoices"]
logins = ["{bl}"]
[[services.{early}.contracts]]
name = "invoices"
version = 1
from = "public.invoices"
columns = ["id", "total"]
[[services.{early}.events]]
name = "invoice_changed"
from = "public.invoices"
key = ["id"]
contract = "invoices.v1"
[[services.{early}.events]]
name = "invoice_issued"
[services.{late}]
owns = ["public.parcels"]
logins = ["{sl}"]
[[services.{late}.events]]
name = "parcel_sent"
"#
        ),
    )
    .unwrap();
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let b = db.client_as(&bl).await;
    b.batch_execute(&format!(
        "BEGIN; INSERT INTO invoices VALUES (1, 100);
         SELECT deed.emit('{early}.invoice_issued', '1', '{{\"total\": 100}}'); COMMIT;"
    ))
    .await
    .unwrap();
    db.client_as(&sl)
        .await
        .batch_execute(&format!("SELECT deed.emit('{late}.parcel_sent', '7', '{{}}')"))
        .await
        .unwrap();

    // Delivered, then plenty of WAL no event needs: none of it is lag.
    let inbox = TestDb::new("relay_order_inbox").await;
    for s in [&early, &late] {
        let out = support::run(
            d,
            &db.url,
            &["relay", "--service", s, "--to", &inbox.url, "--until-idle"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    admin
        .batch_execute(
            "INSERT INTO scratch SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g",
        )
        .await
        .unwrap();
    let written: String =
        admin.query_one("SELECT pg_current_wal_insert_lsn()::text", &[]).await.unwrap().get(0);
    let out = support::run(
        d,
        &db.url,
        &["relay", "--service", &early, "--to", &inbox.url, "--until-idle"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let caught_up: bool = admin
        .query_one(
            "SELECT bool_and(confirmed_flush_lsn >= $1::text::pg_lsn) FROM pg_replication_slots
              WHERE database = current_database() AND slot_name LIKE 'deed_a%'",
            &[&written],
        )
        .await
        .unwrap()
        .get(0);
    assert!(caught_up, "after a full delivery the slot must be past WAL no event needed");
    let count: i64 = inbox
        .client()
        .await
        .query_one("SELECT count(*) FROM deed.inbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 3);

    // A relay that keeps failing (its sink is unreachable) is a problem.
    let log = d.join("relay.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut relay = support::deed(d)
        .args(["relay", "--service", &early, "--to", "nats://127.0.0.1:1"])
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let failing = loop {
        let out = support::run(d, &db.url, &["status"]);
        if text(&out).contains("has been failing since") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    relay.kill().unwrap();
    relay.wait().unwrap();
    assert_eq!(failing.status.code(), Some(1), "{}", text(&failing));
    assert!(text(&failing).contains("relay FAILING"), "{}", text(&failing));

    // A missing publication: drift and status both say so.
    admin.batch_execute(&format!("DROP PUBLICATION \"deed_{early}\"")).await.unwrap();
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("deed_{early}")), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        // The killed relay's session may linger a moment.
        let out = support::run(d, &db.url, &["status"]);
        if !text(&out).contains("FAILING") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("publication deed_{early} is missing")), "{}", text(&out));
    assert!(!text(&out).contains("FAILING"), "a stopped relay is not failing: {}", text(&out));
}

/// The relay's log says what the relay does: no server notices (the
/// inbox's `IF NOT EXISTS` on a second run) and no dependency's source
/// paths.
#[tokio::test]
async fn relay_logs_carry_no_dependency_noise() {
    let o = owner("relay_quiet").await;
    let w = o.db.client_as(&o.login).await;
    w.batch_execute("INSERT INTO items VALUES (1, 0, 'x')").await.unwrap();
    let inbox = TestDb::new("relay_quiet_inbox").await;
    for _ in 0..2 {
        let out = support::run(
            o.dir.path(),
            &o.db.url,
            &[
                "relay",
                "--service",
                &o.service,
                "--to",
                &inbox.url,
                "--until-idle",
                "--log-format",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let log = String::from_utf8_lossy(&out.stderr);
        for noise in ["NOTICE", "already exists", ".cargo/registry", "tokio_postgres"] {
            assert!(!log.contains(noise), "{noise} in the relay's log:\n{log}");
        }
    }
}

/// Forwards every connection on `listener` to `to`, until dropped.
async fn forward(listener: tokio::net::TcpListener, to: std::net::SocketAddr) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// A relay daemon started while its database does not answer (systemd or
/// Kubernetes starting it first) waits and retries with backoff, one log
/// line per attempt, and delivers once the database is there; a bounded
/// run (`--until-idle`) fails at once, exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_before_its_database_waits_for_it() {
    let o = owner("relay_db_later").await;
    let consumer = TestDb::new("relay_db_later_inbox").await;
    o.db.client_as(&o.login)
        .await
        .batch_execute("INSERT INTO items SELECT g, 0, 'x' FROM generate_series(1, 20) g")
        .await
        .unwrap();
    // The database behind a port nothing listens on yet.
    let real = deed_pg::endpoint(&o.db.url).unwrap();
    let real: std::net::SocketAddr = format!("{}:{}", real.host, real.port).parse().unwrap();
    let port = free_port();
    let mut conn = deed_pg::ConnString::parse(&o.db.url).unwrap();
    conn.set("host", "127.0.0.1");
    conn.set("port", &port.to_string());
    let later = conn.to_conninfo();

    let out = support::run(
        o.dir.path(),
        &later,
        &["relay", "--service", &o.service, "--to", &consumer.url, "--until-idle"],
    );
    assert_eq!(out.status.code(), Some(2), "a bounded run fails at once: {}", text(&out));

    let log = o.dir.path().join("later.log");
    let metrics = free_port();
    let mut relay = spawn_relay_from(
        &o,
        &later,
        &consumer.url,
        &log,
        &["--metrics", &format!("127.0.0.1:{metrics}")],
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(relay.try_wait().unwrap().is_none(), "the daemon gave up: {}", read(&log));
    // Alive, not ready, and saying why.
    assert!(http_get(metrics, "GET", "/healthz").starts_with("HTTP/1.1 200 OK"));
    let ready = http_get(metrics, "GET", "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 503") && ready.contains("cannot reach the database yet"),
        "{ready}"
    );
    let waiting = read(&log);
    let attempts = waiting.matches("cannot reach the database yet").count();
    assert!((2..=12).contains(&attempts), "{attempts} attempts in 3 s (backoff):\n{waiting}");
    assert!(waiting.lines().all(|l| l.len() < 1000), "a log line too long:\n{waiting}");

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let proxy = tokio::spawn(forward(listener, real));
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox_count(&consumer).await < 20 {
        assert!(
            Instant::now() < deadline,
            "nothing delivered once the database came: {}",
            read(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = http_get(metrics, "GET", "/readyz");
    assert!(ready.starts_with("HTTP/1.1 200 OK"), "ready once delivering: {ready}");
    let status = Command::new("kill").args(["-TERM", &relay.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(relay.wait().unwrap().success(), "{}", read(&log));
    proxy.abort();
}

/// A refused login is not retried like an unreachable database: the
/// daemon stops, with the server's reason, for someone to grant or fix it
/// (a retry loop would hide it behind "relay interrupted" forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_login_is_refused_stops_with_the_reason() {
    let o = owner("relay_refused").await;
    let consumer = TestDb::new("relay_refused_inbox").await;
    o.db.client_as(&o.login)
        .await
        .batch_execute("INSERT INTO items SELECT g, 0, 'x' FROM generate_series(1, 10) g")
        .await
        .unwrap();
    // The relay signs in as the login deed apply made for it.
    let relay_login = format!("deed_{}_relay", o.service);
    let mut conn = deed_pg::ConnString::parse(&o.db.url).unwrap();
    conn.set("user", &relay_login);
    let as_relay = conn.to_conninfo();
    let log = o.dir.path().join("refused.log");
    let mut relay = spawn_relay_from(&o, &as_relay, &consumer.url, &log, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while inbox_count(&consumer).await < 10 {
        assert!(Instant::now() < deadline, "nothing delivered: {}", read(&log));
        assert!(relay.try_wait().unwrap().is_none(), "the relay stopped: {}", read(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // An operator takes the login away; its sessions end, so it must sign
    // in again.
    let superuser = o.db.superuser_client().await;
    superuser
        .batch_execute(&format!(
            "ALTER ROLE \"{relay_login}\" NOLOGIN;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{relay_login}'"
        ))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = relay.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = relay.kill();
            panic!("the daemon kept retrying a refused login:\n{}", read(&log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let said = read(&log);
    assert!(!status.success(), "{said}");
    assert!(said.contains("is not permitted to log in"), "the server's reason is lost:\n{said}");
    assert!(said.matches("relay interrupted; retrying").count() <= 1, "{said}");
}

/// What a flaky endpoint took: each stored request's events, in order.
#[derive(Default)]
struct Endpoint {
    stored: Vec<Value>,
    requests: u64,
    bad_signatures: u64,
    answers: BTreeMap<&'static str, u64>,
}

/// An HTTP endpoint that answers 500, 429, too late (after storing), slowly
/// or at once, at random; refuses (422) any batch holding key 999; checks
/// every request's signature with `secret`.
async fn flaky_endpoint(secret: &'static str) -> (u16, Arc<std::sync::Mutex<Endpoint>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(std::sync::Mutex::new(Endpoint::default()));
    let shared = seen.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            n += 1;
            let seen = shared.clone();
            tokio::spawn(async move {
                let mut rng = Rng(0xDEED ^ (n * 7919));
                let mut buf = Vec::new();
                loop {
                    // One request: head, then Content-Length bytes.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 8192];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name))
                            })
                            .map(|(_, v)| v.trim().to_string())
                    };
                    let len: usize =
                        header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 65536];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    let body = String::from_utf8(buf[head_end..head_end + len].to_vec()).unwrap();
                    buf.drain(..head_end + len);
                    let signed = header("deed-signature").unwrap_or_default();
                    let t =
                        signed.split(',').next().and_then(|p| p.strip_prefix("t=")).unwrap_or("0");
                    let good = deed_relay::sink::webhook::signature(
                        secret.as_bytes(),
                        &body,
                        t.parse().unwrap_or(0),
                    ) == signed;
                    let events: Vec<Value> = serde_json::from_str(&body).unwrap();
                    let poison = events.iter().any(|e| e["key"]["id"] == 999);
                    let roll = rng.below(100);
                    let (status, store, delay) = if !good {
                        ("401 Unauthorized", false, 0)
                    } else if poison {
                        ("422 Unprocessable Entity", false, 0)
                    } else if roll < 25 {
                        ("500 Internal Server Error", false, 0)
                    } else if roll < 35 {
                        ("429 Too Many Requests", false, 0)
                    } else if roll < 45 {
                        // Stored, but the answer comes after deed gave up.
                        ("200 OK", true, 1500)
                    } else if roll < 60 {
                        ("200 OK", true, 100)
                    } else {
                        ("200 OK", true, 0)
                    };
                    {
                        let mut s = seen.lock().unwrap();
                        s.requests += 1;
                        s.bad_signatures += u64::from(!good);
                        *s.answers
                            .entry(if delay >= 1500 { "too late" } else { status })
                            .or_default() += 1;
                        if store {
                            s.stored.extend(events);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let extra = if status.starts_with("429") { "Retry-After: 0\r\n" } else { "" };
                    let reply = format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 2\r\n\r\nno");
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// A webhook that fails, answers late and refuses at random, while the
/// relay is killed with SIGKILL now and then: every event arrives, in
/// each key's order, signed; the one the endpoint refuses is set aside in
/// the dead-letter file and the rest go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_webhook_gets_every_event_in_order_and_refused_ones_are_set_aside() {
    let o = owner("relay_webhook").await;
    let (port, seen) = flaky_endpoint("whsec-test").await;
    let to = format!("http://127.0.0.1:{port}/hook?token=t0ken");
    let dead = o.dir.path().join("dead.jsonl");
    let log = o.dir.path().join("relay.log");
    let flags = [
        "--batch",
        "40",
        "--webhook-timeout",
        "400ms",
        "--webhook-dead-letters",
        dead.to_str().unwrap(),
    ];
    let spawn = || {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        support::deed(o.dir.path())
            .args(["relay", "--service", &o.service, "--to", &to, "--log-format", "json"])
            .args(flags)
            .env("DATABASE_URL", &o.db.url)
            .env("DEED_WEBHOOK_SECRET", "whsec-test")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap()
    };
    let w = o.db.client_as(&o.login).await;
    w.batch_execute("INSERT INTO items VALUES (999, 0, 'the endpoint refuses this one')")
        .await
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writing = {
        let done = done.clone();
        let o = &o;
        async move {
            let n = write_load(o, 2, 200, 3_000).await;
            done.store(true, Ordering::Relaxed);
            n
        }
    };
    let killing = async {
        let mut rng = Rng(99);
        let mut kills = 0;
        while kills < 3 || !done.load(Ordering::Relaxed) {
            let mut relay = spawn();
            tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
            relay.kill().unwrap();
            relay.wait().unwrap();
            kills += 1;
        }
        kills
    };
    let (committed, kills) = tokio::join!(writing, killing);
    let out = support::deed(o.dir.path())
        .args(["relay", "--service", &o.service, "--to", &to, "--until-idle"])
        .args(flags)
        .env("DATABASE_URL", &o.db.url)
        .env("DEED_WEBHOOK_SECRET", "whsec-test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("t0ken"), "the URL's token was shown: {}", text(&out));

    let mut expected = final_versions(&o).await;
    expected.remove(&999);
    let s = seen.lock().unwrap();
    let duplicates = verify(&s.stored, &expected);
    assert_eq!(s.bad_signatures, 0, "a request with a wrong signature");
    let dead_letters: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!dead_letters.is_empty(), "the refused event was not set aside");
    assert!(
        dead_letters
            .iter()
            .all(|d| d["key"]["id"] == 999 && d["error"].as_str().unwrap().contains("422")),
        "{dead_letters:?}"
    );
    eprintln!(
        "webhook run: {committed} changes committed, {} requests ({:?}), {} events stored, {duplicates} duplicates, {} dead letters, relay killed {kills} times",
        s.requests,
        s.answers,
        s.stored.len(),
        dead_letters.len()
    );
    for answer in ["500 Internal Server Error", "429 Too Many Requests", "too late"] {
        assert!(
            s.answers.contains_key(answer),
            "the endpoint never answered {answer}: {:?}",
            s.answers
        );
    }
}
