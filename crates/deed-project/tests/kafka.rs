//! Kafka as a projector's source: seed 003's system. Users' email changes
//! go to a 12-partition topic keyed by user id; the orders service keeps
//! its denormalized copy with a handler. The projector reads every
//! partition and applies events in commit order, each once; the group's
//! offsets are only where it starts reading.

mod common;

use common::shop;
use deed_testkit::KafkaServer;

const SEED_003: &str = r#"
[[services.{orders}.projections]]
name = "customer_emails"
event = "{catalog}.user_changed"
sql = """
WITH touched AS (
  UPDATE public.orders SET customer_email = :payload.email
   WHERE user_id = :key.id AND :op <> 'delete' RETURNING 1)
INSERT INTO public.applied (position, user_id) VALUES (:position, :key.id)"""
"#;

fn relay(s: &common::Shop, url: &str, partitions: usize) -> impl Future<Output = ()> {
    let mut o = deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.owner.url, url);
    o.until_idle = true;
    o.stream.partitions = partitions;
    async move { deed_relay::run(o).await.map(|_| ()).unwrap_or_else(|e| panic!("relay: {e}")) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_on_kafka_twelve_partitions_applied_in_commit_order_once() {
    let s = shop(
        "project_kafka",
        "INSERT INTO users SELECT g, 'u' || g || '@old.example' FROM generate_series(1, 60) g;",
        "CREATE TABLE orders (id serial PRIMARY KEY, user_id bigint NOT NULL, customer_email text);
         INSERT INTO orders (user_id, customer_email) SELECT g % 60 + 1, 'u' || (g % 60 + 1) || '@old.example' FROM generate_series(0, 179) g;
         CREATE TABLE applied (seq bigserial PRIMARY KEY, position text NOT NULL, user_id bigint NOT NULL);",
        SEED_003,
    )
    .await;
    let kafka = KafkaServer::start();
    let url = kafka.url();
    // Many changes across keys, several per key, in many transactions.
    for round in 1..=5 {
        s.write(&format!(
            "UPDATE users SET email = 'u' || id || '@r{round}.example' WHERE id % {round} = 0;"
        ))
        .await;
    }
    relay(&s, &url, 12).await;
    // Three events a batch: far more batches than one projection's turn
    // (twenty in a row), and each one read must be applied.
    let r = s
        .project(|o| {
            o.from = Some(url.clone());
            o.batch = 3;
        })
        .await;
    let first = r.projections[0].applied;
    assert_eq!(first, 60 + 30 + 20 + 15 + 12, "{:?}", r.projections[0]);
    check(&s).await;

    // Interleaved: more changes, a relay run, a projector run, again.
    for round in 6..=8 {
        s.write(&format!(
            "UPDATE users SET email = 'u' || id || '@r{round}.example' WHERE id % 7 = {round} % 7;"
        ))
        .await;
        s.write("INSERT INTO users SELECT 1000 + g, 'new' || g || '@x' FROM generate_series(1, 3) g ON CONFLICT DO NOTHING;").await;
        relay(&s, &url, 12).await;
        let r = s.project(|o| o.from = Some(url.clone())).await;
        assert!(r.projections[0].applied > 0, "{:?}", r.projections[0]);
        check(&s).await;
    }

    // The group's offsets stale (rewound to the start of every
    // partition): everything is read again, and the position skips it.
    let before: i64 = count(&s, "SELECT count(*) FROM applied").await;
    rewind_group(
        &url,
        &format!("deed_{}_customer_emails", s.orders),
        &format!("deed.{}.user_changed", s.catalog),
    );
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].applied, 0, "{:?}", r.projections[0]);
    assert!(r.projections[0].skipped >= first, "{:?}", r.projections[0]);
    assert_eq!(count(&s, "SELECT count(*) FROM applied").await, before);
}

/// Commits offset 0 of every partition for the group.
fn rewind_group(url: &str, group: &str, topic: &str) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let url = deed_bus::KafkaUrl::parse(url).unwrap();
    let c: BaseConsumer = url.config("test", &[("group.id", group)]).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..12 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(0)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

async fn count(s: &common::Shop, sql: &str) -> i64 {
    s.consumer_value(&format!("SELECT to_json(({sql}))::text")).await.as_i64().unwrap()
}

/// Every order has its user's last email, and the handler saw each event
/// once, in commit order.
async fn check(s: &common::Shop) {
    let owner = s.owner.client().await;
    let emails: Vec<(i64, String)> = owner
        .query("SELECT id, email FROM users ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let consumer = s.consumer.client().await;
    for (id, email) in emails.iter().filter(|(id, _)| *id <= 60) {
        let stale: i64 = consumer
            .query_one(
                "SELECT count(*) FROM orders WHERE user_id = $1 AND customer_email IS DISTINCT FROM $2",
                &[id, email],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(stale, 0, "user {id}'s orders carry {email}");
    }
    let positions: Vec<String> = consumer
        .query("SELECT position FROM applied ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "applied in commit order, each once: {:?}",
        positions.windows(2).find(|w| w[0] >= w[1])
    );
}
