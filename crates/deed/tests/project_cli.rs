//! `deed project` as users run it: a separate process killed with SIGKILL
//! every fraction of a second while the owner's writers commit inserts,
//! updates and deletes and a relay fills the consumer's inbox. Afterwards
//! the projection must equal the contract view exactly, and a handler
//! that appends one row per event must have run once per event.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::text;

use deed_testkit::{KafkaServer, RabbitServer, TestDb};

struct Shop {
    owner: TestDb,
    consumer: TestDb,
    dir: tempfile::TempDir,
    catalog: String,
    orders: String,
    login: String,
}

async fn shop(label: &str, rows: i32) -> Shop {
    let owner = TestDb::new(label).await;
    let consumer = TestDb::new(&format!("{label}_orders")).await;
    let catalog = owner.service("catalog");
    let orders = owner.service("orders");
    let login = owner.role("catalog_svc");
    let reader = owner.role("orders_svc");
    owner
        .client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL, note text NOT NULL, updated_at timestamptz DEFAULT now());
             INSERT INTO items SELECT g, 0, 'seed' FROM generate_series(1, {rows}) g;
             CREATE ROLE \"{login}\" LOGIN; CREATE ROLE \"{reader}\" LOGIN;"
        ))
        .await
        .unwrap();
    consumer
        .client()
        .await
        .batch_execute(
            "CREATE TABLE effects (event_id text NOT NULL, op text NOT NULL, version int)",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        format!(
            r#"version = 1
[database]
url = "${{DATABASE_URL}}"
[services.{catalog}]
owns = ["public.items"]
logins = ["{login}"]
[[services.{catalog}.contracts]]
name = "items"
version = 1
from = "public.items"
columns = ["id", "version", "note"]
[[services.{catalog}.events]]
name = "item_changed"
from = "public.items"
key = ["id"]
contract = "items.v1"

[services.{orders}]
logins = ["{reader}"]
reads = ["{catalog}.items.v1"]
consumes = ["{catalog}.item_changed"]
database = "${{ORDERS_DATABASE_URL}}"
[[services.{orders}.projections]]
name = "items"
event = "{catalog}.item_changed"
into = "public.item_copies"
replaces = "{catalog}.items.v1"
[[services.{orders}.projections]]
name = "effects"
event = "{catalog}.item_changed"
sql = "INSERT INTO public.effects (event_id, op, version) VALUES (:id, :op, :payload.version)"
"#
        ),
    )
    .unwrap();
    let s = Shop { owner, consumer, dir, catalog, orders, login };
    let out = s.deed(&["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    s
}

impl Shop {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = support::deed(self.dir.path());
        c.args(args)
            .env("DATABASE_URL", &self.owner.url)
            .env("ORDERS_DATABASE_URL", &self.consumer.url);
        c
    }

    fn deed(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn spawn(&self, args: &[&str], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        self.command(args)
            .args(["--log-format", "json"])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap()
    }

    async fn one(&self, db: &TestDb, sql: &str) -> String {
        db.client().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

/// xorshift: enough randomness for picking keys, operations and sleeps.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Writers inserting, updating and deleting random keys until `target`
/// changes are committed.
async fn write_load(
    s: &Shop,
    writers: usize,
    keys: u64,
    target: u64,
    killed: Arc<AtomicU64>,
) -> u64 {
    let committed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let c = s.owner.client_as(&s.login).await;
        let committed = committed.clone();
        let killed = killed.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 0x1234_5678));
            // At least six kills land while changes are being committed.
            while committed.load(Ordering::Relaxed) < target || killed.load(Ordering::Relaxed) < 6 {
                let id = 1 + rng.below(keys) as i32;
                let sql = match rng.below(10) {
                    0..=1 => format!("DELETE FROM items WHERE id = {id}"),
                    2..=4 => format!(
                        "INSERT INTO items VALUES ({id}, 0, 'new') ON CONFLICT (id) DO UPDATE SET version = items.version + 1, note = 'again'"
                    ),
                    // Not a contract column: the event still carries the row.
                    5 => format!("UPDATE items SET updated_at = now() WHERE id = {id}"),
                    _ => format!("UPDATE items SET version = version + 1, note = 'v' || (version + 1) WHERE id = {id}"),
                };
                let n = c.execute(&sql, &[]).await.unwrap();
                committed.fetch_add(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    committed.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bus {
    Inbox,
    Rabbit,
    Kafka,
}

/// Writers commit while the projector is killed with SIGKILL every
/// fraction of a second and restarted; the events travel through the
/// consumer's inbox, or through a private RabbitMQ node or Kafka broker
/// (tansu, a 4-partition topic), itself killed with SIGKILL and started
/// again once under the relay daemon and the projectors.
/// One crash run at a time in this binary: each starts a broker, writers,
/// a relay and kills on two cores, and `--until-idle` and the readers of
/// the result tell the end of the events by a pause; three at once made a
/// pause out of a busy machine.
static CRASH_RUNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn crash_run(target: u64, bus: Bus) {
    let _one_at_a_time = CRASH_RUNS.lock().await;
    let on_bus = bus != Bus::Inbox;
    let s = shop(&format!("project_crash_{bus:?}").to_lowercase(), 300).await;
    let log = s.dir.path().join("deed.log");
    let mut broker = (bus == Bus::Rabbit).then(RabbitServer::start);
    let mut kafka = (bus == Bus::Kafka).then(KafkaServer::start);
    let consumer_url = match (&broker, &kafka) {
        (Some(b), _) => b.url(),
        (_, Some(k)) => k.url(),
        _ => s.consumer.url.clone(),
    };
    let from: Vec<&str> = if on_bus { vec!["--from", &consumer_url] } else { vec![] };
    let partitions: &[&str] = if bus == Bus::Kafka { &["--partitions", "4"] } else { &[] };
    let mut relay_args = vec!["relay", "--service", &s.catalog, "--to", &consumer_url];
    relay_args.extend(partitions);
    let mut relay = s.spawn(&relay_args, &log);
    let done = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let writing = {
        let done = done.clone();
        let killed = killed.clone();
        let s = &s;
        async move {
            let n = write_load(s, 3, 400, target, killed).await;
            done.store(true, Ordering::Relaxed);
            n
        }
    };
    let killing = async {
        let mut rng = Rng(7);
        let mut kills = 0;
        while !done.load(Ordering::Relaxed) {
            // Small batches and chunks: many transactions to land a kill in.
            let mut args =
                vec!["project", "--service", &s.orders, "--batch", "50", "--chunk", "20"];
            args.extend(&from);
            let mut p = s.spawn(&args, &log);
            tokio::time::sleep(Duration::from_millis(200 + rng.below(800))).await;
            p.kill().unwrap();
            p.wait().unwrap();
            kills += 1;
            killed.store(kills, Ordering::Relaxed);
            if kills == 3 {
                if let Some(b) = &mut broker {
                    b.restart();
                }
                if let Some(k) = &mut kafka {
                    k.restart();
                }
            }
        }
        kills
    };
    let (committed, kills) = tokio::join!(writing, killing);
    relay.kill().unwrap();
    relay.wait().unwrap();
    if let Some(b) = &broker {
        // `--until-idle` stops at the first error: the node's stream back.
        b.ready(&[deed_events::amqp_stream(&s.catalog)]).await;
    }
    relay_args.push("--until-idle");
    let out = s.deed(&relay_args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut args = vec!["project", "--service", &s.orders, "--until-idle"];
    args.extend(&from);
    let out = s.deed(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    if on_bus {
        // What the handler must have seen: every event in the stream, once.
        let mut ids = Vec::new();
        let mut latest = std::collections::BTreeMap::<i64, serde_json::Value>::new();
        let idle = Some(Duration::from_secs(2));
        let each = |raw: &[u8]| {
            let e = deed_relay::tail::parse(raw);
            ids.push(e["id"].as_str().unwrap().to_string());
            // Each key's change with the highest position, in the stream.
            let key = e["key"]["id"].as_i64().unwrap();
            if latest.get(&key).is_none_or(|l| l["position"].as_str() < e["position"].as_str()) {
                latest.insert(key, e);
            }
        };
        let on = deed_bus::Bus::parse(&consumer_url).unwrap();
        let auth = deed_bus::NatsAuth::default();
        deed_relay::tail::tail_bus(&on, &auth, &s.catalog, "item_changed", true, None, idle, each)
            .await
            .unwrap();
        stream_has_the_last_change(&s, &latest).await;
        let consumer = s.consumer.client().await;
        consumer
            .batch_execute("CREATE TABLE deed.inbox_ids (event_id text PRIMARY KEY)")
            .await
            .unwrap();
        consumer
            .execute("INSERT INTO deed.inbox_ids SELECT DISTINCT unnest($1::text[])", &[&ids])
            .await
            .unwrap();
    }

    let q = "SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM (SELECT id, version, note FROM {}) t";
    let source = s.one(&s.owner, &q.replace("{}", &format!("{}_api.items_v1", s.catalog))).await;
    let copy = s.one(&s.consumer, &q.replace("{}", "public.item_copies")).await;
    assert!(
        source == copy,
        "the projection differs from the contract view:\nsource {source}\ncopy   {copy}"
    );

    // The handler ran exactly once for every event it was sent after it
    // started: no event twice, none missing.
    let events = if on_bus { "deed.inbox_ids" } else { "deed.inbox" };
    let report = s
        .one(
            &s.consumer,
            &format!("SELECT json_build_array(
                (SELECT count(*) FROM effects),
                (SELECT count(DISTINCT event_id) FROM effects),
                (SELECT count(*) FROM {events} i WHERE EXISTS (SELECT 1 FROM effects e WHERE e.event_id = i.event_id)),
                (SELECT count(*) FROM {events}),
                (SELECT count(*) FROM deed.dead_letters))::text"),
        )
        .await;
    let v: Vec<i64> = serde_json::from_str(&report).unwrap();
    let (effects, distinct, matched, inbox, dead) = (v[0], v[1], v[2], v[3], v[4]);
    eprintln!(
        "project crash run ({bus:?}): {committed} changes committed, {inbox} events, projector killed {kills} times, {effects} handler effects ({distinct} distinct), {dead} dead letters"
    );
    assert_eq!(effects, distinct, "a handler effect happened twice");
    assert_eq!(effects, inbox, "the handler missed events");
    assert_eq!(matched, inbox);
    assert_eq!(dead, 0);
    assert!(kills >= 3, "the run was too short to kill the projector");

    // The table deed created: orders' login may read it, and nothing more.
    let reader = s.owner.role("orders_svc");
    let c = s.consumer.client_as(&reader).await;
    c.query_one("SELECT count(*) FROM public.item_copies", &[]).await.unwrap();
    let denied =
        c.execute("INSERT INTO public.item_copies VALUES (-1, 0, 'x')", &[]).await.unwrap_err();
    assert_eq!(
        denied.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{denied}"
    );
}

/// The bus holds every key's last change: each key's event with the
/// highest position is the row the contract view shows now (or a delete
/// of a key it no longer has). A failure here is the relay's or the
/// broker's, not the projector's.
async fn stream_has_the_last_change(
    s: &Shop,
    latest: &std::collections::BTreeMap<i64, serde_json::Value>,
) {
    let q = format!(
        "SELECT coalesce(json_object_agg(id, json_build_array(version, note)), '{{}}')::text FROM {}_api.items_v1",
        s.catalog
    );
    let rows: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&s.one(&s.owner, &q).await).unwrap();
    let mut wrong = Vec::new();
    for (key, e) in latest {
        let now = rows.get(&key.to_string());
        let ok = match (e["op"].as_str(), now) {
            (Some("delete"), None) => true,
            (Some("delete"), Some(_)) => false,
            (_, Some(row)) => row[0] == e["payload"]["version"] && row[1] == e["payload"]["note"],
            (_, None) => false,
        };
        if !ok {
            wrong.push(format!(
                "key {key}: view {now:?}, stream's last {} {} v{} at {}",
                e["op"], e["payload"]["note"], e["payload"]["version"], e["position"]
            ));
        }
    }
    // A seeded row no writer touched has no event.
    let missing: Vec<&String> = rows
        .iter()
        .filter(|(k, row)| {
            !latest.contains_key(&k.parse::<i64>().unwrap()) && row[1].as_str() != Some("seed")
        })
        .map(|(k, _)| k)
        .collect();
    assert!(
        wrong.is_empty() && missing.is_empty(),
        "the bus lacks changes: {} keys whose last event is not the row, {} rows with no event\n{}\nno event: {missing:?}",
        wrong.len(),
        missing.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_projector_leaves_the_copy_exact_and_every_effect_once() {
    crash_run(4_000, Bus::Inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_projector_reading_rabbitmq_leaves_the_copy_exact_and_every_effect_once() {
    crash_run(4_000, Bus::Rabbit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_projector_reading_kafka_leaves_the_copy_exact_and_every_effect_once() {
    crash_run(4_000, Bus::Kafka).await;
}

/// The full-size run: `cargo test -p deed --test project_cli -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes minutes; run with --ignored"]
async fn kill_9_of_the_projector_during_20k_changes() {
    crash_run(25_000, Bus::Inbox).await;
}

#[tokio::test]
async fn a_dead_letter_fails_the_run_and_status_until_it_is_retried() {
    let s = shop("project_status", 3).await;
    s.consumer
        .client()
        .await
        .batch_execute(
            "CREATE TABLE item_copies (id int PRIMARY KEY, version int, note text CHECK (note <> 'poison'));",
        )
        .await
        .unwrap();
    let out = s.deed(&["status"]);
    assert_eq!(out.status.code(), Some(1), "a projection not started is a problem: {}", text(&out));
    assert!(text(&out).contains("not started: run `deed project --service"), "{}", text(&out));
    let out = s.deed(&["project", "--service", &s.orders, "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("backfilled 3 rows"), "{}", text(&out));
    s.owner
        .client()
        .await
        .batch_execute("UPDATE items SET note = 'poison' WHERE id = 2")
        .await
        .unwrap();
    let to = s.consumer.url.clone();
    let out = s.deed(&["relay", "--service", &s.catalog, "--to", &to, "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = s.deed(&["project", "--service", &s.orders, "--until-idle", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "dead letters wait: {}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["projections"][0]["dead_letters_waiting"], 1, "{report}");
    let out = s.deed(&["status", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items =
        status["projections"].as_array().unwrap().iter().find(|p| p["name"] == "items").unwrap();
    assert_eq!(
        (items["phase"].as_str(), items["dead_letters"].as_i64()),
        (Some("live"), Some(1)),
        "{items}"
    );
    s.consumer
        .client()
        .await
        .batch_execute("ALTER TABLE item_copies DROP CONSTRAINT item_copies_note_check")
        .await
        .unwrap();
    let out = s.deed(&["project", "--service", &s.orders, "--until-idle", "--retry-dead"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retried 1 dead letter"),
        "{}",
        text(&out)
    );
    let out = s.deed(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Projections (rung 2)"), "{}", text(&out));
}

/// The daemon: Prometheus metrics while it runs, and SIGTERM ends it
/// cleanly with everything it took committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_metrics_and_stops_on_sigterm() {
    use std::io::{Read, Write};
    let s = shop("project_daemon", 50).await;
    let log = s.dir.path().join("daemon.log");
    let port = deed_testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut p = s.spawn(&["project", "--service", &s.orders, "--metrics", &addr], &log);
    let to = s.consumer.url.clone();
    // Changes after the backfill's fence, so they arrive as events.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let live = s
            .consumer
            .client()
            .await
            .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'deed' AND tablename = 'projections'", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
            && s.one(&s.consumer, "SELECT count(*)::text FROM deed.projections WHERE phase = 'live'").await == "2";
        if live {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the projector never went live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.owner
        .client()
        .await
        .batch_execute("UPDATE items SET version = 1, note = 'x' WHERE id <= 10")
        .await
        .unwrap();
    let out = s.deed(&["relay", "--service", &s.catalog, "--to", &to, "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let scrape = || {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").ok()?;
        let mut body = String::new();
        c.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let line = format!(
        "deed_project_events_applied_total{{service=\"{}\",projection=\"items\"}} 10",
        s.orders
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        if let Some(body) = scrape().filter(|b| b.contains(&line)) {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {line} in the metrics: {:?}\n{}",
            scrape(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains("deed_project_backfill_rows_total"), "{body}");
    // Ready while it follows; alive.
    let get = |path: &str| {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200 OK"));
    let ready = get("/readyz");
    assert!(ready.starts_with("HTTP/1.1 200 OK") && ready.contains("ready: working"), "{ready}");
    assert!(
        body.contains(&format!(
            "deed_project_dead_letters_waiting{{service=\"{}\",projection=\"effects\"}} 0",
            s.orders
        )),
        "{body}"
    );
    let status = Command::new("kill").args(["-TERM", &p.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = p.wait().unwrap();
    assert_eq!(code.code(), Some(0), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    let applied: i64 = s
        .consumer
        .client()
        .await
        .query_one("SELECT sum(applied)::bigint FROM deed.projections", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 20, "both projections applied the 10 events before stopping");
}

/// Rung 3 from the command line: compare's exit codes and JSON, a
/// cutover refused until a clean compare, a plan that revokes the read
/// without one is breaking, the cutover and its rollback editing deed.toml.
#[tokio::test]
async fn compare_cutover_and_rollback_from_the_command_line() {
    let s = shop("cli_rung3", 50).await;
    let to = s.consumer.url.clone();
    let out = s.deed(&["relay", "--service", &s.catalog, "--to", &to, "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = s.deed(&["project", "--service", &s.orders, "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let items = format!("{}.items", s.orders);

    let out = s.deed(&["compare", &items, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["equal"].as_bool(), v["source_rows"].as_i64()), (Some(true), Some(50)), "{v}");
    let out = s.deed(&["compare", &format!("{}.nope", s.orders)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = s.deed(&["compare", &format!("{}.effects", s.orders)]);
    assert_eq!(out.status.code(), Some(2), "a handler has no table: {}", text(&out));

    s.consumer
        .client()
        .await
        .batch_execute("UPDATE item_copies SET note = 'x' WHERE id = 7")
        .await
        .unwrap();
    let out = s.deed(&["compare", &items, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["different"], serde_json::json!([{"key": {"id": 7}, "columns": ["note"]}]), "{v}");
    let out = s.deed(&["cutover", &items]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refused") && text(&out).contains("1 different"), "{}", text(&out));

    // Revoking the read by editing deed.toml, with no clean compare: breaking.
    let path = s.dir.path().join("deed.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    let read = format!("reads = [\"{}.items.v1\"]", s.catalog);
    std::fs::write(&path, original.replace(&read, "reads = []")).unwrap();
    let out = s.deed(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("with no clean compare of it"), "{}", text(&out));
    let out = s.deed(&["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    std::fs::write(&path, &original).unwrap();

    let out = s.deed(&["project", "--service", &s.orders, "--backfill", "items", "--until-idle"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = s.deed(&["compare", &items]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // orders still reads the view it is about to lose: refused while the
    // traffic says so.
    s.owner
        .client()
        .await
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .unwrap();
    let reader = s.owner.client_as(&s.owner.role("orders_svc")).await;
    let view = format!("{}_api.items_v1", s.catalog);
    for _ in 0..3 {
        reader
            .query(&format!("SELECT id, note FROM {view} WHERE id = $1"), &[&1i32])
            .await
            .unwrap();
    }
    let out = s.deed(&["cutover", &items, "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("still reads") && text(&out).contains(": 3 calls in the traffic given"),
        "{}",
        text(&out)
    );
    let out = s.deed(&["cutover", &items]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cut = std::fs::read_to_string(&path).unwrap();
    assert_eq!(cut, original.replace(&read, "reads = []"), "only the read leaves deed.toml");
    let denied = reader.query(&format!("SELECT 1 FROM {view}"), &[]).await.unwrap_err();
    assert_eq!(denied.code().map(|c| c.code()), Some("42501"), "{denied}");
    // The database is what the edited deed.toml says: orders reads nothing
    // else of catalog's, so the api schema's USAGE went too.
    assert!(text(&out).contains("REVOKE USAGE ON SCHEMA"), "{}", text(&out));
    no_drift(&s, "after the cutover").await;
    let out = s.deed(&["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let flow = v["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["consumer"] == s.orders.as_str() && f["subject"] == "items")
        .unwrap();
    assert_eq!(
        (flow["rung"].as_u64(), flow["rung_name"].as_str()),
        (Some(3), Some("severed")),
        "{flow}"
    );
    let out = s.deed(&["status", "--format", "html"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<td class=\"r on\">severed</td>"),
        "{}",
        text(&out)
    );
    let out = s.deed(&["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a proven cutover is no breaking change: {}",
        text(&out)
    );
    let out = s.deed(&["cutover", &items]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));

    let out = s.deed(&["cutover", &items, "--rollback"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    reader.query(&format!("SELECT 1 FROM {view}"), &[]).await.unwrap();
    no_drift(&s, "after the rollback").await;
}

/// A consumer fails over like the relay: `deed project --from`, `deed tail
/// --from` and `deed compare --events-from` take the same comma-separated
/// list of a three-node JetStream cluster. The projector runs as a daemon
/// while nodes are killed (SIGKILL) one after another and writes go on;
/// every change arrives, and compare proves the copy equal through the
/// same list with a node down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_fail_over_across_a_nats_cluster() {
    let s = shop("project_cluster", 40).await;
    let mut cluster =
        tokio::task::spawn_blocking(|| deed_testkit::NatsCluster::start(3)).await.unwrap();
    let urls = cluster.urls();
    // A cluster just started, or just lost a node, answers JetStream
    // requests once it has a leader again: the relay is run until then.
    let relay = |s: &Shop| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let out = s.deed(&[
                "relay",
                "--service",
                &s.catalog,
                "--to",
                &urls,
                "--until-idle",
                "--stream-replicas",
                "3",
            ]);
            if out.status.code() == Some(0) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "relay: {}", text(&out));
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    relay(&s);
    let log = s.dir.path().join("cluster.log");
    let mut projector = s.spawn(&["project", "--service", &s.orders, "--from", &urls], &log);
    caught_up(&s, &log, "start").await;
    for round in 0..3 {
        cluster.kill(round);
        // The stream elects another leader among the two left.
        tokio::time::sleep(Duration::from_secs(2)).await;
        s.owner
            .client()
            .await
            .batch_execute(&format!(
                "UPDATE items SET version = version + 1, note = 'round {round}' WHERE id % 3 = {round};
                 INSERT INTO items VALUES ({}, 0, 'new');",
                100 + round
            ))
            .await
            .unwrap();
        relay(&s);
        caught_up(&s, &log, &format!("node {round} down")).await;
        assert!(projector.try_wait().unwrap().is_none(), "the projector died with node {round}");
        let out = s.deed(&["compare", &format!("{}.items", s.orders), "--events-from", &urls]);
        assert_eq!(out.status.code(), Some(0), "compare with node {round} down: {}", text(&out));
        tokio::task::block_in_place(|| cluster.restart(round));
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Tail makes an ephemeral consumer, which nats-server 2.9 may place
        // on a node it has not yet noticed is gone: it reads with every
        // node up, and the first server of its list one that never answers.
        let from = format!("nats://127.0.0.1:1,{urls}");
        let event = format!("{}.item_changed", s.catalog);
        let out = s.deed(&["tail", &event, "--from", &from, "--limit", "1"]);
        assert_eq!(out.status.code(), Some(0), "tail after round {round}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"key\""), "{}", text(&out));
    }
    projector.kill().unwrap();
    projector.wait().unwrap();
    // A list with a bad entry is refused at once, naming it.
    let out = s.deed(&[
        "project",
        "--service",
        &s.orders,
        "--from",
        "nats://a:1,,nats://b:2",
        "--until-idle",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("server 2"), "{}", text(&out));
}

/// Waits until the projection equals the contract view.
async fn caught_up(s: &Shop, log: &Path, what: &str) {
    let q = "SELECT coalesce(json_agg(t ORDER BY id), '[]')::text FROM (SELECT id, version, note FROM {}) t";
    let view = format!("{}_api.items_v1", s.catalog);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let source = s.one(&s.owner, &q.replace("{}", &view)).await;
        let made: bool = s
            .consumer
            .client()
            .await
            .query_one("SELECT to_regclass('public.item_copies') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        if made && s.one(&s.consumer, &q.replace("{}", "public.item_copies")).await == source {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: the projection never caught up\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A projector daemon whose login the consumer's database refuses stops
/// with the server's reason instead of starting over forever: only
/// someone fixing the login helps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_login_is_refused_stops_with_the_reason() {
    let s = shop("project_refused", 5).await;
    let log = s.dir.path().join("refused.log");
    let mut conn = deed_pg::ConnString::parse(&s.consumer.url).unwrap();
    conn.set("user", &s.consumer.role("nobody"));
    let mut p = s
        .command(&["project", "--service", &s.orders, "--log-format", "json"])
        .env("ORDERS_DATABASE_URL", conn.to_conninfo())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = p.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = p.kill();
            panic!("the daemon kept retrying a refused login:\n{}", read(&log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let said = read(&log);
    assert!(!status.success(), "{said}");
    assert!(said.contains("does not exist"), "the server's reason is lost:\n{said}");
    assert!(!said.contains("starting over"), "{said}");
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// `deed drift` finds nothing, but for the one thing PostgreSQL 15 and
/// older keep from an admin that is not a superuser: the relay login with
/// REPLICATION (deed warned, with the statement for an operator to run).
async fn no_drift(s: &Shop, when: &str) {
    let out = s.deed(&["drift"]);
    if out.status.code() == Some(0) {
        return;
    }
    let said = text(&out);
    let major: i32 = s
        .owner
        .client()
        .await
        .query_one("SELECT current_setting('server_version_num')::int / 10000", &[])
        .await
        .unwrap()
        .get(0);
    let admin_up_to_15 =
        deed_testkit::test_admin() != deed_testkit::Admin::Superuser && major <= 15;
    let differences: Vec<&str> = said.lines().filter(|l| l.starts_with("  - ")).collect();
    assert!(
        admin_up_to_15
            && !differences.is_empty()
            && differences
                .iter()
                .all(|l| l.starts_with("  - relay login ") && l.ends_with(" is missing")),
        "drift {when}: {said}"
    );
}

/// `deed status --bus`: each projection's events waiting on JetStream and
/// on Kafka, as the bus counts them: all of them before the first run,
/// none once it has applied them, and exactly the new ones after more
/// changes. A RabbitMQ bus is refused (exit 2): it keeps no such count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_each_projections_events_waiting_on_nats_and_kafka() {
    let s = shop("project_status_bus", 30).await;
    let nats = deed_testkit::NatsServer::start(None);
    let kafka = KafkaServer::start();
    for (bus, relay_extra) in [(nats.url(), vec![]), (kafka.url(), vec!["--partitions", "3"])] {
        let pending = |s: &Shop| -> Vec<Option<u64>> {
            let out = s.deed(&["status", "--bus", &bus, "--format", "json"]);
            assert!(out.status.code().is_some_and(|c| c < 2), "{}", text(&out));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let mut found: Vec<(String, Option<u64>)> = v["projections"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let on = &p["on_bus"];
                    assert!(on["error"].is_null(), "{on}");
                    (p["name"].as_str().unwrap().to_string(), on["pending"].as_u64())
                })
                .collect();
            found.sort();
            found.into_iter().map(|(_, n)| n).collect()
        };
        let mut relay = vec!["relay", "--service", &s.catalog, "--to", &bus, "--until-idle"];
        relay.extend(&relay_extra);
        change_and_relay(&s, "UPDATE items SET version = version + 1 WHERE id <= 12", &relay).await;
        // Before any projector ran: every event of the projection waits.
        assert_eq!(pending(&s), [Some(12), Some(12)], "before the first run on {bus}");
        let out = s.deed(&["project", "--service", &s.orders, "--from", &bus, "--until-idle"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(pending(&s), [Some(0), Some(0)], "after the run on {bus}");
        change_and_relay(&s, "UPDATE items SET version = version + 1 WHERE id > 25", &relay).await;
        assert_eq!(pending(&s), [Some(5), Some(5)], "five changes later on {bus}");
        let out = s.deed(&["project", "--service", &s.orders, "--from", &bus, "--until-idle"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = s.deed(&["status", "--bus", &bus]);
        assert!(text(&out).contains("0 waiting on"), "{}", text(&out));
        // The next bus starts from a clean consumer database.
        s.consumer
            .client()
            .await
            .batch_execute(
                "DROP SCHEMA deed CASCADE; DROP TABLE public.item_copies; TRUNCATE effects",
            )
            .await
            .unwrap();
    }
    let out = s.deed(&["status", "--bus", "amqp://guest:secret@127.0.0.1:5672/%2f"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("RabbitMQ") && !text(&out).contains("secret"), "{}", text(&out));
}

async fn change_and_relay(s: &Shop, sql: &str, relay: &[&str]) {
    s.owner.client().await.batch_execute(sql).await.unwrap();
    let out = s.deed(relay);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
