//! The relay against a real PostgreSQL, a real nats-server, RabbitMQ and
//! a Kafka-protocol broker.

use std::path::Path;
use std::time::Duration;

use deed_manifest::{Date, Manifest};
use deed_relay::{RelayOptions, run};
use deed_testkit::{KafkaServer, NatsServer, RabbitStreams, TestDb};
use serde_json::{Value, json};

mod common;
use common::{SavedSlot, options, owner};

async fn inbox(consumer: &TestDb) -> Vec<Value> {
    let rows = consumer
        .client()
        .await
        .query(
            "SELECT json_build_object('type', type, 'op', op, 'key', key, 'payload', payload, 'tombstone', tombstone, 'id', event_id)::text
               FROM deed.inbox ORDER BY position",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| serde_json::from_str(r.get::<_, &str>(0)).unwrap()).collect()
}

#[tokio::test]
async fn state_and_domain_events_reach_a_postgres_inbox_in_commit_order() {
    let o = owner("relay_pg", "").await;
    let c = o.db.client_as(&o.login).await;
    c.batch_execute(
        "INSERT INTO products VALUES (1, 'pen', 100, 'x');
         BEGIN;
         UPDATE products SET price_cents = 120 WHERE id = 1;
         SELECT deed.emit('SERVICE.price_alert', '1', '{\"old\": 100, \"new\": 120}');
         COMMIT;
         BEGIN; UPDATE products SET price_cents = 999 WHERE id = 1; ROLLBACK;
         BEGIN; SELECT deed.emit('SERVICE.price_alert', '1', '{}'); ROLLBACK;
         DELETE FROM products WHERE id = 1;"
            .replace("SERVICE", &o.service)
            .as_str(),
    )
    .await
    .unwrap();
    let consumer = TestDb::new("relay_pg_consumer").await;
    let report = run(options(&o, &consumer.url)).await.unwrap();
    assert_eq!(report.events, 4);
    // Transactions are counted, not batches: as many as distinct commits
    // among the events (the rolled-back ones sent nothing).
    let commits: std::collections::BTreeSet<String> = consumer
        .client()
        .await
        .query("SELECT split_part(event_id, '/', 2) FROM deed.inbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(report.transactions, commits.len() as u64);
    assert!(commits.len() >= 2);
    let got = inbox(&consumer).await;
    let s = &o.service;
    assert_eq!(
        got.iter()
            .map(|v| (
                v["type"].as_str().unwrap().to_string(),
                v["op"].as_str().unwrap().to_string()
            ))
            .collect::<Vec<_>>(),
        [
            (format!("{s}.product_changed"), "insert".to_string()),
            (format!("{s}.product_changed"), "update".to_string()),
            (format!("{s}.price_alert"), "domain".to_string()),
            (format!("{s}.product_changed"), "delete".to_string()),
        ]
    );
    // Exactly the contract's columns: the secret never leaves.
    assert_eq!(got[1]["payload"], json!({"id": 1, "name": "pen", "price_cents": 120}));
    assert_eq!(got[2]["payload"], json!({"old": 100, "new": 120}));
    assert_eq!(got[3]["key"], json!({"id": 1}));
    assert_eq!(got[3]["tombstone"], json!(true));
    assert_eq!(got[3]["payload"], Value::Null);

    // Nothing new: a second run delivers nothing; ids never change.
    let again = run(options(&o, &consumer.url)).await.unwrap();
    assert_eq!(again.events, 0);
}

#[tokio::test]
async fn the_rust_helper_emits_inside_the_callers_transaction() {
    let o = owner("relay_helper", "").await;
    let mut c = o.db.client_as(&o.login).await;
    let event = format!("{}.price_alert", o.service);
    let t = c.transaction().await.unwrap();
    deed_relay::emit(&t, &event, "7", &json!({"rolled": "back"})).await.unwrap();
    t.rollback().await.unwrap();
    let t = c.transaction().await.unwrap();
    t.execute("INSERT INTO products VALUES (7, 'ink', 300)", &[]).await.unwrap();
    deed_relay::emit(&t, &event, "7", &json!({"new": 300})).await.unwrap();
    t.commit().await.unwrap();
    let consumer = TestDb::new("relay_helper_inbox").await;
    assert_eq!(run(options(&o, &consumer.url)).await.unwrap().events, 2);
    let got = inbox(&consumer).await;
    assert_eq!(got[1]["op"], "domain");
    assert_eq!(got[1]["payload"], json!({"new": 300}));
    assert_eq!(got[1]["key"], json!("7"));
}

#[tokio::test]
async fn only_the_owner_may_emit_its_domain_events() {
    let o = owner("relay_emit", "").await;
    let stranger = o.db.role("stranger");
    o.db.client().await.batch_execute(&format!("CREATE ROLE \"{stranger}\" LOGIN")).await.unwrap();
    let c = o.db.client_as(&stranger).await;
    let err = c
        .query("SELECT deed.emit($1, '1', '{}')", &[&format!("{}.price_alert", o.service)])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{err:?}"
    );
    let owner = o.db.client_as(&o.login).await;
    let err = owner
        .query("SELECT deed.emit($1, '1', '{}')", &[&format!("{}.not_declared", o.service)])
        .await
        .unwrap_err();
    assert!(err.as_db_error().unwrap().message().contains("is not a domain event"), "{err:?}");
}

#[tokio::test]
async fn events_reach_jetstream_with_their_ids_and_duplicates_are_dropped() {
    let o = owner("relay_nats", "").await;
    let nats = NatsServer::start(None);
    let c = o.db.client_as(&o.login).await;
    for i in 0..50 {
        c.execute("INSERT INTO products VALUES ($1, 'p', $1)", &[&i]).await.unwrap();
    }
    let report = run(options(&o, &nats.url())).await.unwrap();
    assert_eq!((report.events, report.duplicates), (50, 0));
    let mut seen = Vec::new();
    let n = deed_relay::tail::tail_nats(
        &nats.url(),
        &o.service,
        "product_changed",
        true,
        None,
        Some(Duration::from_millis(500)),
        |v| seen.push(v),
    )
    .await
    .unwrap();
    assert_eq!(n, 50);
    let keys: Vec<i64> = seen.iter().map(|v| v["key"]["id"].as_i64().unwrap()).collect();
    assert_eq!(keys, (0..50).collect::<Vec<_>>());
    // Redeliver by rewinding the slot's view: publish the same events again.
    let spec = deed_relay::CaptureSpec::from_manifest(&o.manifest, &o.service).unwrap();
    let mut sink = deed_relay::Sink::connect(&nats.url(), &o.service).await.unwrap();
    let mut events = Vec::new();
    for v in &seen {
        let mut e = deed_relay::Envelope::new(
            &spec.service,
            "product_changed",
            deed_relay::Position { epoch: 0, commit_lsn: 0, index: 0 },
            String::new(),
        );
        e.id = v["id"].as_str().unwrap().to_string();
        events.push(e);
    }
    let d = sink.deliver(&events).await.unwrap();
    assert_eq!(d.duplicates, 50, "the stream must drop redelivered ids");
}

/// A table of awkward values, all in the contract.
async fn hostile_owner(label: &str) -> (TestDb, Manifest, String, String) {
    let db = TestDb::new(label).await;
    let service = db.service("lab");
    let login = db.role("lab_svc");
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE TABLE things (id int PRIMARY KEY, big text, label text, n numeric, f float8,
                ts timestamptz, d date, j jsonb, arr int[], b bytea, u uuid, flag bool, iv interval);
             CREATE ROLE \"{login}\" LOGIN;"
        ))
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.things"]
logins = ["{login}"]
[[services.{service}.contracts]]
name = "things"
version = 1
from = "public.things"
columns = ["id", "big", "label", "n", "f", "ts", "d", "j", "arr", "b", "u", "flag", "iv"]
[[services.{service}.events]]
name = "thing_changed"
from = "public.things"
key = ["id"]
contract = "things.v1"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&db.client().await, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (db, manifest, service, login)
}

const MEGABYTE_OF_HEX: &str =
    "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 31250) g)";

/// Writes awkward values: an insert of every type, an insert of NULLs
/// and non-ASCII text, and an update that leaves a TOASTed megabyte as is.
async fn write_awkward(db: &TestDb, login: &str) {
    let c = db.client_as(login).await;
    c.batch_execute(&format!(
        "INSERT INTO things VALUES (1, {MEGABYTE_OF_HEX}, 'a', 1.10, 'NaN', '2026-01-02 03:04:05.123456+02',
            '2026-02-28', '{{\"deep\": [1, {{\"x\": null}}]}}', '{{1,NULL,3}}', '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
            true, '1 day 2 hours');
         INSERT INTO things (id, label) VALUES (2, E'h\u{e9}llo \u{2713} \u{1D11E} \"q\" \\n back\\\\slash');
         UPDATE things SET label = 'changed' WHERE id = 1;"
    ))
    .await
    .unwrap();
}

/// Checks the three events `write_awkward` produces, as delivered.
async fn check_awkward(db: &TestDb, got: &[Value]) {
    let big: String = db
        .client()
        .await
        .query_one("SELECT big FROM things WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(big.len(), 1_000_000);
    let update = &got[2]["payload"];
    assert_eq!(update["label"], "changed");
    assert_eq!(update["big"].as_str().map(str::len), Some(1_000_000), "the unchanged TOAST value");
    assert_eq!(update["big"].as_str(), Some(big.as_str()));
    assert_eq!(update["n"], "1.10", "numeric keeps its digits");
    assert_eq!(update["f"], "NaN");
    assert_eq!(update["ts"], "2026-01-02T01:04:05.123456Z");
    assert_eq!(update["d"], "2026-02-28");
    assert_eq!(update["j"], json!({"deep": [1, {"x": null}]}));
    assert_eq!(update["arr"], "{1,NULL,3}");
    assert_eq!(update["b"], "\\x00ff");
    assert_eq!(update["u"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(update["flag"], true);
    assert_eq!(update["iv"], "P1DT2H");
    let nulls = &got[1]["payload"];
    assert_eq!(nulls["label"], "h\u{e9}llo \u{2713} \u{1D11E} \"q\" \n back\\slash");
    for col in ["big", "n", "f", "ts", "d", "j", "arr", "b", "u", "flag", "iv"] {
        assert_eq!(nulls[col], Value::Null, "{col}");
    }
}

#[tokio::test]
async fn awkward_values_arrive_exactly_including_an_unchanged_toasted_megabyte() {
    let (db, manifest, service, login) = hostile_owner("relay_hostile").await;
    write_awkward(&db, &login).await;
    let consumer = TestDb::new("relay_hostile_inbox").await;
    let mut opts = RelayOptions::new(manifest, &service, &db.url, &consumer.url);
    opts.until_idle = true;
    assert_eq!(run(opts).await.unwrap().events, 3);
    check_awkward(&db, &inbox(&consumer).await).await;
}

/// The daemon reads a replication stream, whose session is not the one
/// `--until-idle` configures: values must still be rendered the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streaming_daemon_renders_awkward_values_the_same_way() {
    let (db, manifest, service, login) = hostile_owner("relay_hostile_stream").await;
    db.client()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET TimeZone = 'America/New_York';
             ALTER DATABASE \"{}\" SET IntervalStyle = 'postgres';
             ALTER DATABASE \"{}\" SET extra_float_digits = 0",
            db.name, db.name, db.name
        ))
        .await
        .unwrap();
    write_awkward(&db, &login).await;
    let consumer = TestDb::new("relay_hostile_stream_inbox").await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut opts = RelayOptions::new(manifest, &service, &db.url, &consumer.url);
    opts.shutdown = shutdown;
    let daemon = tokio::spawn(run(opts));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let ready: bool = consumer
            .client()
            .await
            .query_one("SELECT to_regclass('deed.inbox') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        if ready {
            let events = inbox(&consumer).await;
            if events.len() == 3 {
                break events;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the daemon delivered nothing in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
    check_awkward(&db, &got).await;
}

#[tokio::test]
async fn an_event_too_large_for_the_broker_becomes_a_dead_letter_and_the_rest_flow() {
    let (db, manifest, service, login) = hostile_owner("relay_poison").await;
    let nats = NatsServer::start(Some("max_payload: 65536"));
    let c = db.client_as(&login).await;
    c.batch_execute(&format!(
        "INSERT INTO things (id, label) VALUES (1, 'before');
         INSERT INTO things (id, big) VALUES (2, {MEGABYTE_OF_HEX});
         INSERT INTO things (id, label) VALUES (3, 'after');"
    ))
    .await
    .unwrap();
    let mut opts = RelayOptions::new(manifest.clone(), &service, &db.url, &nats.url());
    opts.until_idle = true;
    let report = run(opts).await.unwrap();
    assert_eq!((report.events, report.dead_letters), (3, 1));
    let mut events = Vec::new();
    let idle = Some(Duration::from_millis(500));
    deed_relay::tail::tail_nats(&nats.url(), &service, "thing_changed", true, None, idle, |v| {
        events.push(v)
    })
    .await
    .unwrap();
    let keys: Vec<i64> = events.iter().map(|v| v["key"]["id"].as_i64().unwrap()).collect();
    assert_eq!(keys, [1, 3]);
    let mut dead = Vec::new();
    deed_relay::tail::tail_nats(&nats.url(), &service, "dead_letter", true, None, idle, |v| {
        dead.push(v)
    })
    .await
    .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["key"], json!({"id": 2}));
    assert!(dead[0]["error"].as_str().unwrap().contains("payload"), "{dead:?}");
    assert!(dead[0]["payload_bytes"].as_u64().unwrap() > 1_000_000);
    // Nothing is left behind on the slot.
    let mut opts = RelayOptions::new(manifest, &service, &db.url, &nats.url());
    opts.until_idle = true;
    assert_eq!(run(opts).await.unwrap().events, 0);
}

/// A partitioned table is captured as one table: every insert, update and
/// delete arrives under the root's name, a row moving between partitions
/// arrives as its delete and its insert, and the owner's own writes work
/// whatever the key (replica identity is set on every partition).
#[tokio::test]
async fn partitioned_tables_are_captured_whole() {
    let db = TestDb::new("relay_partitions").await;
    let service = db.service("ledger");
    let login = db.role("ledger_svc");
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE entries (id int, region text, amount int) PARTITION BY LIST (region);
             CREATE TABLE entries_eu PARTITION OF entries FOR VALUES IN ('eu');
             CREATE TABLE entries_us PARTITION OF entries FOR VALUES IN ('us');
             CREATE ROLE \"{login}\" LOGIN;"
        ))
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.entries"]
logins = ["{login}"]
[[services.{service}.contracts]]
name = "entries"
version = 1
from = "public.entries"
columns = ["id", "region", "amount"]
[[services.{service}.events]]
name = "entry_changed"
from = "public.entries"
key = ["id"]
contract = "entries.v1"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&admin, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = db.client_as(&login).await;
    c.batch_execute(
        "INSERT INTO entries VALUES (1, 'eu', 10), (2, 'us', 20);
         UPDATE entries SET amount = 11 WHERE id = 1;
         UPDATE entries SET region = 'us' WHERE id = 1;
         DELETE FROM entries WHERE id = 2;",
    )
    .await
    .expect("the owner's updates and deletes work on every partition");
    let consumer = TestDb::new("relay_partitions_consumer").await;
    let mut opts = RelayOptions::new(manifest.clone(), &service, &db.url, &consumer.url);
    opts.until_idle = true;
    let report = run(opts).await.unwrap();
    let got = inbox(&consumer).await;
    let seen: Vec<(String, Value, Value)> = got
        .iter()
        .map(|v| (v["op"].as_str().unwrap().to_string(), v["key"].clone(), v["payload"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("insert".into(), json!({"id": 1}), json!({"id": 1, "region": "eu", "amount": 10})),
            ("insert".into(), json!({"id": 2}), json!({"id": 2, "region": "us", "amount": 20})),
            ("update".into(), json!({"id": 1}), json!({"id": 1, "region": "eu", "amount": 11})),
            ("delete".into(), json!({"id": 1}), Value::Null),
            ("insert".into(), json!({"id": 1}), json!({"id": 1, "region": "us", "amount": 11})),
            ("delete".into(), json!({"id": 2}), Value::Null),
        ]
    );
    assert_eq!(report.events, 6);
    assert!(got.iter().all(|v| v["type"] == json!(format!("{service}.entry_changed"))));
}

/// One envelope, byte for byte, whichever sink carries it: the same
/// events (the slot is copied, so both relays read the same changes) are
/// delivered to JetStream and to an inbox, and read back raw.
#[tokio::test]
async fn every_sink_carries_the_same_envelope_bytes() {
    let o = owner("relay_same", "").await;
    let nats = NatsServer::start(None);
    let rabbit = RabbitStreams::new(&[&o.service]).await;
    let kafka = KafkaServer::start();
    let c = o.db.client_as(&o.login).await;
    c.batch_execute(
        "INSERT INTO products VALUES (1, 'pen', 100, 'x'), (2, 'ink \u{e9}\"', NULL, 'y');
         UPDATE products SET price_cents = 120 WHERE id = 1;
         SELECT deed.emit('SERVICE.price_alert', '1', '{\"n\": 123456789012345678901234567890, \"d\": 1.50}');
         DELETE FROM products WHERE id = 2;"
            .replace("SERVICE", &o.service)
            .as_str(),
    )
    .await
    .unwrap();
    let saved = SavedSlot::save(&o).await;
    // Each sink from the same slot position: the slot rewound to the copy.
    let consumer = TestDb::new("relay_same_inbox").await;
    assert_eq!(run(options(&o, &consumer.url)).await.unwrap().events, 5);
    saved.rewind().await;
    assert_eq!(run(options(&o, &nats.url())).await.unwrap().events, 5);
    saved.rewind().await;
    assert_eq!(run(options(&o, rabbit.url())).await.unwrap().events, 5);
    saved.rewind().await;
    assert_eq!(run(options(&o, &kafka.url())).await.unwrap().events, 5);
    saved.drop().await;

    let mut from_inbox = Vec::new();
    deed_relay::tail::tail_inbox_raw(&consumer.url, &format!("{}.*", o.service), None, |raw| {
        from_inbox.push(String::from_utf8(raw.to_vec()).unwrap())
    })
    .await
    .unwrap();
    let mut from_nats = Vec::new();
    let idle = Some(Duration::from_millis(500));
    deed_relay::tail::tail_nats_raw(&nats.url(), &o.service, "*", true, None, idle, |raw| {
        from_nats.push(String::from_utf8(raw.to_vec()).unwrap())
    })
    .await
    .unwrap();
    let mut from_rabbit = Vec::new();
    let url = deed_bus::AmqpUrl::parse(rabbit.url()).unwrap();
    deed_relay::tail::tail_amqp(&url, &o.service, "*", true, None, idle, |raw| {
        from_rabbit.push(String::from_utf8(raw.to_vec()).unwrap())
    })
    .await
    .unwrap();
    let mut from_kafka = Vec::new();
    let url = deed_bus::KafkaUrl::parse(&kafka.url()).unwrap();
    deed_relay::tail::tail_kafka(
        &url,
        &o.service,
        "*",
        true,
        None,
        Some(Duration::from_secs(3)),
        |raw| from_kafka.push(String::from_utf8(raw.to_vec()).unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(from_inbox.len(), 5);
    assert_eq!(from_inbox, from_nats, "the inbox and JetStream must carry identical envelopes");
    assert_eq!(from_inbox, from_rabbit, "the inbox and RabbitMQ must carry identical envelopes");
    // Kafka keeps order per key (a topic per event type, partitions by
    // key), not across topics: the same envelopes, in any order.
    let (mut a, mut b) = (from_inbox.clone(), from_kafka.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the inbox and Kafka must carry identical envelopes");
    // And the documented shape: UTC with a Z, a tombstone only on deletes,
    // numbers with every digit.
    let all = from_nats.join("\n");
    assert!(all.contains("123456789012345678901234567890") && all.contains("1.50"), "{all}");
    for e in &from_nats {
        let v: Value = serde_json::from_str(e).unwrap();
        let at = v["committed_at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == "2026-11-21T16:15:49.146123Z".len(), "{at}");
        assert_eq!(v.get("tombstone").is_some(), v["op"] == "delete", "{e}");
    }
}

/// Updates that change no published column make no event: compared
/// exactly when the table logs old rows, remembered by the relay when it
/// does not; `unchanged = "emit"` keeps every update.
#[tokio::test]
async fn updates_that_change_no_published_column_are_not_events() {
    let db = TestDb::new("relay_unchanged").await;
    let consumer = TestDb::new("relay_unchanged_inbox").await;
    let service = db.service("stats");
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE counters (id int PRIMARY KEY, value int NOT NULL, hits int NOT NULL DEFAULT 0);
             CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL, hits int NOT NULL DEFAULT 0);",
        )
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.counters", "public.notes"]
[[services.{service}.contracts]]
name = "counters"
version = 1
from = "public.counters"
columns = ["id", "value"]
[[services.{service}.contracts]]
name = "notes"
version = 1
from = "public.notes"
columns = ["id", "body"]
[[services.{service}.events]]
name = "counter_changed"
from = "public.counters"
key = ["id"]
contract = "counters.v1"
[[services.{service}.events]]
name = "counter_touched"
from = "public.counters"
key = ["id"]
contract = "counters.v1"
unchanged = "emit"
[[services.{service}.events]]
name = "note_changed"
from = "public.notes"
key = ["id"]
contract = "notes.v1"
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    deed_contracts::apply(&db.deed_client().await, &manifest, Date::today(), &[]).await.unwrap();
    let identity: String = db
        .client()
        .await
        .query_one("SELECT string_agg(relname || '=' || relreplident::text, ',' ORDER BY relname) FROM pg_class WHERE relname IN ('counters', 'notes')", &[])
        .await
        .unwrap()
        .get(0);
    // notes.body can be stored out of line, so notes logs its old rows.
    assert_eq!(identity, "counters=d,notes=f");
    db.client()
        .await
        .batch_execute(
            "INSERT INTO counters VALUES (1, 10); INSERT INTO notes VALUES (1, 'a');
             UPDATE counters SET hits = hits + 1 WHERE id = 1; UPDATE notes SET hits = hits + 1 WHERE id = 1;
             UPDATE counters SET value = 11 WHERE id = 1; UPDATE notes SET body = 'b' WHERE id = 1;
             UPDATE counters SET value = 11, hits = 5 WHERE id = 1; UPDATE notes SET body = 'b', hits = 5 WHERE id = 1;",
        )
        .await
        .unwrap();
    let mut opts = RelayOptions::new(manifest.clone(), &service, &db.url, &consumer.url);
    opts.until_idle = true;
    run(opts).await.unwrap();
    let kinds = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap().split('.').nth(1).unwrap(),
                    e["op"].as_str().unwrap()
                )
            })
            .collect()
    };
    let got = inbox(&consumer).await;
    assert_eq!(
        kinds(&got),
        [
            "counter_changed insert",
            "counter_touched insert",
            "note_changed insert",
            "counter_touched update",
            "counter_changed update",
            "counter_touched update",
            "note_changed update",
            "counter_touched update",
        ],
        "{got:#?}"
    );
    // A new relay has no memory of counters' last payload: its first
    // no-op update is published (harmless: the same state again); notes
    // compares old rows and never is.
    db.client()
        .await
        .batch_execute("UPDATE counters SET hits = 9 WHERE id = 1; UPDATE notes SET hits = 9 WHERE id = 1; UPDATE counters SET hits = 10 WHERE id = 1;")
        .await
        .unwrap();
    let mut opts = RelayOptions::new(manifest, &service, &db.url, &consumer.url);
    opts.until_idle = true;
    run(opts).await.unwrap();
    let got = inbox(&consumer).await;
    assert_eq!(
        kinds(&got[8..]),
        ["counter_changed update", "counter_touched update", "counter_touched update"],
        "{got:#?}"
    );
}

/// Writes to tables the relay does not capture produce no events, but
/// their WAL must not stay behind the slot: with no transaction open, the
/// daemon confirms the positions the server's keepalives report, and a
/// bounded run confirms up to where it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_of_tables_not_captured_is_released() {
    let o = owner("relay_release", "CREATE TABLE noise (id int, pad text);").await;
    let admin = o.db.client().await;
    let consumer = TestDb::new("relay_release_inbox").await;
    let lag = || async {
        let c = o.db.client().await;
        let v: i64 = c
            .query_one(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8 FROM pg_replication_slots
                  WHERE database = current_database() AND slot_name LIKE 'deed\\_%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        v
    };
    let noise = "INSERT INTO noise SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g";
    admin.batch_execute(noise).await.unwrap();
    assert!(lag().await > 5_000_000, "the noise wrote WAL the slot holds");
    assert_eq!(run(options(&o, &consumer.url)).await.unwrap().events, 0);
    assert!(
        lag().await < 1_000_000,
        "a bounded run confirms through where it started: {}",
        lag().await
    );

    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut opts = RelayOptions::new(o.manifest.clone(), &o.service, &o.db.url, &consumer.url);
    opts.shutdown = shutdown;
    let daemon = tokio::spawn(run(opts));
    admin.batch_execute(noise).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lag().await > 1_000_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon left {} bytes behind",
            lag().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.send(true).unwrap();
    daemon.await.unwrap().unwrap();
}

/// RabbitMQ: persistent messages carrying the event's id, type, contract
/// and position, routed by subject; a delivery repeated after a crash (the
/// slot rewound) arrives again with the same ids and bytes, for the
/// consumer's position to skip.
#[tokio::test]
async fn rabbitmq_messages_carry_the_event_and_a_redelivery_repeats_it_exactly() {
    use futures_util::StreamExt;
    use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
    use lapin::types::{AMQPValue, FieldTable};

    let o = owner("relay_rabbit", "").await;
    let rabbit = RabbitStreams::new(&[&o.service]).await;
    let c = o.db.client_as(&o.login).await;
    c.batch_execute(
        "INSERT INTO products VALUES (1, 'a', 1, 's'), (2, 'b', 2, 's'), (3, 'c', 3, 's')",
    )
    .await
    .unwrap();
    let saved = SavedSlot::save(&o).await;
    assert_eq!(run(options(&o, rabbit.url())).await.unwrap().events, 3);
    // The relay dies before confirming: the slot is where it was.
    saved.rewind().await;
    saved.drop().await;
    assert_eq!(run(options(&o, rabbit.url())).await.unwrap().events, 3);

    let url = deed_bus::AmqpUrl::parse(rabbit.url()).unwrap();
    let conn = url.connect("test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), AMQPValue::LongString("first".into()));
    let queue = deed_events::amqp_stream(&o.service);
    let mut consumer = ch
        .basic_consume(queue.as_str().into(), "test".into(), BasicConsumeOptions::default(), args)
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 6 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("six messages in the stream")
            .unwrap()
            .unwrap();
        ch.basic_ack(d.delivery_tag, BasicAckOptions::default()).await.unwrap();
        got.push(d);
    }
    let header = |d: &lapin::message::Delivery, name: &str| -> String {
        match d.properties.headers().as_ref().and_then(|h| h.inner().get(name).cloned()) {
            Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            other => panic!("header {name}: {other:?}"),
        }
    };
    for (i, d) in got.iter().enumerate() {
        let e: Value = serde_json::from_slice(&d.data).unwrap();
        let id = d.properties.message_id().as_ref().map(|m| m.to_string());
        assert_eq!(id.as_deref(), e["id"].as_str(), "message_id is the event's id");
        assert_eq!(*d.properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(header(d, "deed-type"), format!("{}.product_changed", o.service));
        assert_eq!(header(d, "deed-contract"), e["contract"].as_str().unwrap());
        assert_eq!(header(d, "deed-position"), e["position"].as_str().unwrap());
        assert_eq!(d.routing_key.as_str(), format!("deed.{}.product_changed", o.service));
        // The redelivery: the same three, byte for byte, in the same order.
        if i >= 3 {
            assert_eq!(d.data, got[i - 3].data);
        }
    }
    let _ = conn.close(200, "ok".into()).await;
}
