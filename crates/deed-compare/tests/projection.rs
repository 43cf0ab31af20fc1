//! `deed compare` and `deed cutover` on a real projection: a producer in
//! the shared database, a consumer with its own, the relay and the
//! projector between them.

#[path = "../../deed-project/tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{PRODUCTS, Shop, shop};
use deed_compare::cutover::{self, Conditions};
use deed_compare::{CompareOptions, CompareReport};
use serde_json::json;

async fn compare(shop: &Shop, opts: &CompareOptions) -> CompareReport {
    let target =
        deed_compare::target(&shop.manifest, &format!("{}.products", shop.orders)).unwrap();
    let source = shop.owner.deed_client().await;
    let consumer = shop.consumer.deed_client().await;
    deed_compare::compare(target, &source, &consumer, opts).await.unwrap_or_else(|e| panic!("{e}"))
}

fn quick() -> CompareOptions {
    CompareOptions { wait: Duration::from_secs(20), ..CompareOptions::default() }
}

const ROWS: &str =
    "INSERT INTO products SELECT g, 'p' || g, g * 10 FROM generate_series(1, 3000) g;";

async fn projected(label: &str) -> Shop {
    let shop = shop(label, ROWS, "", PRODUCTS).await;
    shop.write(
        "UPDATE products SET price_cents = 1 WHERE id <= 10; DELETE FROM products WHERE id = 3000;",
    )
    .await;
    shop.relay().await;
    shop.project(|_| {}).await;
    shop
}

fn conditions() -> Conditions {
    Conditions { max_age_seconds: 3600.0, max_lag_seconds: 60.0, traffic: None }
}

async fn refusals(shop: &Shop, c: &Conditions) -> Vec<String> {
    let reference = format!("{}.products", shop.orders);
    let spec = deed_compare::target(&shop.manifest, &reference).unwrap().spec;
    let cut = cutover::resolve(&shop.manifest, &reference).unwrap();
    cutover::check(&shop.consumer.deed_client().await, &spec, &cut, c).await.unwrap()
}

#[tokio::test]
async fn a_projection_compares_clean_then_each_planted_difference_is_found() {
    let shop = projected("cmp_proj").await;
    let r = compare(&shop, &quick()).await;
    assert!(r.equal, "{}", r.table());
    assert_eq!((r.source_rows, r.target_rows), (2999, 2999));
    assert_eq!(r.source, format!("{}_api.products_v1", shop.catalog));

    let copy = shop.consumer.client().await;
    copy.batch_execute(
        "UPDATE product_copies SET name = 'wrong' WHERE id = 5;
         DELETE FROM product_copies WHERE id = 6;
         INSERT INTO product_copies (id, name, price_cents) VALUES (9999, 'ghost', 1);",
    )
    .await
    .unwrap();
    let r = compare(&shop, &quick()).await;
    assert!(!r.equal);
    assert_eq!(r.missing, vec![json!({"id": 6})]);
    assert_eq!(r.extra, vec![json!({"id": 9999})]);
    assert_eq!(r.different.len(), 1);
    assert_eq!(
        (r.different[0].key.clone(), r.different[0].columns.clone()),
        (json!({"id": 5}), vec!["name".to_string()])
    );
    assert!(r.in_flight.is_empty());
    let names = |t: String| t.replace(&shop.catalog, "catalog").replace(&shop.orders, "orders");
    insta::with_settings!({filters => vec![
        (r"in \d+\.\d+ s \(\d+ key ranges, \d+ rows read", "in [time] ([ranges] key ranges, [rows] rows read"),
        (r"[0-9A-F]+/[0-9A-F]+", "[lsn]"),
        (r#""(seconds|ranges|rows_read)": [0-9.e-]+"#, r#""$1": [n]"#),
    ]}, {
        insta::assert_snapshot!("compare_table", names(r.table()));
        insta::assert_snapshot!("compare_json", names(r.json()));
        insta::assert_snapshot!("compare_markdown", names(r.markdown()));
    });

    // The last verdict is what cutover judges by: differences refuse it.
    let no = refusals(&shop, &conditions()).await;
    assert!(
        no.iter().any(|r| r.contains("found 1 missing, 1 extra and 1 different rows")),
        "{no:?}"
    );
}

#[tokio::test]
async fn cutover_is_refused_until_proven_then_revokes_the_read_and_rolls_back() {
    let shop = projected("cmp_cut").await;
    let reference = format!("{}.products", shop.orders);
    // Nothing recorded yet.
    let no = refusals(&shop, &conditions()).await;
    assert!(no.iter().any(|r| r.contains("no compare of") && r.contains("is recorded")), "{no:?}");
    assert!(compare(&shop, &quick()).await.equal);
    assert!(refusals(&shop, &conditions()).await.is_empty());
    // Too old.
    let strict = Conditions { max_age_seconds: 0.0, ..conditions() };
    assert!(refusals(&shop, &strict).await.iter().any(|r| r.contains("over --max-age")));
    // Still read in traffic.
    let traffic = Conditions { traffic: Some((412, "pg_stat_statements".into())), ..conditions() };
    let no = refusals(&shop, &traffic).await;
    assert!(no.iter().any(|r| r.contains("still reads") && r.contains("412 calls")), "{no:?}");
    // A dead letter waiting.
    shop.consumer
        .client()
        .await
        .batch_execute(&format!(
            "INSERT INTO deed.dead_letters (service, projection, event_id, key, position, envelope, error)
             VALUES ('{}', 'products', 'x', '1', '0', '{{}}', 'boom')",
            shop.orders
        ))
        .await
        .unwrap();
    assert!(refusals(&shop, &conditions()).await.iter().any(|r| r.contains("dead letter")));
    shop.consumer.client().await.batch_execute("DELETE FROM deed.dead_letters").await.unwrap();
    // A changed definition (restarted projection) needs a new compare.
    shop.consumer
        .client()
        .await
        .batch_execute("UPDATE deed.projections SET defined_at = clock_timestamp()")
        .await
        .unwrap();
    assert!(
        refusals(&shop, &conditions())
            .await
            .iter()
            .any(|r| r.contains("changed after its last compare"))
    );
    assert!(compare(&shop, &quick()).await.equal);
    assert!(refusals(&shop, &conditions()).await.is_empty());

    // The cutover: the read leaves the manifest and the database together.
    let orders = shop.owner.client_as(&shop.orders_login).await;
    let view = format!("{}_api.products_v1", shop.catalog);
    orders.query(&format!("SELECT count(*) FROM {view}"), &[]).await.unwrap();
    let c = cutover::resolve(&shop.manifest, &reference).unwrap();
    assert!(c.reading);
    let after = cutover::edited(&shop.manifest, &c, false, &|_| None).unwrap().manifest;
    assert!(!after.service(&shop.orders).unwrap().reads.contains(&c.replaces));
    let mut owner = shop.owner.deed_client().await;
    let statements = cutover::statements(&c, &after, false).unwrap();
    // orders still reads users_v1 there: the schema's USAGE stays.
    assert_eq!(statements.len(), 1, "{statements:?}");
    cutover::execute(&mut owner, &statements, || Ok(()), || Ok(())).await.unwrap();
    let denied = orders.query(&format!("SELECT count(*) FROM {view}"), &[]).await.unwrap_err();
    assert_eq!(denied.as_db_error().unwrap().code().code(), "42501", "{denied}");
    // orders still reads its other contract.
    orders
        .query(&format!("SELECT count(*) FROM {}_api.users_v1", shop.catalog), &[])
        .await
        .unwrap();
    // A manifest that cannot be written changes nothing in the database.
    let restored_manifest = {
        let r = cutover::resolve(&after, &reference).unwrap();
        cutover::edited(&after, &r, true, &|_| None).unwrap().manifest
    };
    let back = cutover::statements(&c, &restored_manifest, true).unwrap();
    let failed =
        cutover::execute(&mut owner, &back, || Err(std::io::Error::other("disk full")), || Ok(()))
            .await;
    assert!(failed.is_err());
    assert!(orders.query(&format!("SELECT count(*) FROM {view}"), &[]).await.is_err());
    // The rollback grants it back.
    let rolled = cutover::resolve(&after, &reference).unwrap();
    assert!(!rolled.reading);
    let restored = cutover::edited(&after, &rolled, true, &|_| None).unwrap();
    assert!(restored.manifest.service(&shop.orders).unwrap().reads.contains(&c.replaces));
    cutover::execute(&mut owner, &back, || Ok(()), || Ok(())).await.unwrap();
    orders.query(&format!("SELECT count(*) FROM {view}"), &[]).await.unwrap();
}

#[tokio::test]
async fn compare_beside_concurrent_writes_reports_no_false_difference() {
    let shop = projected("cmp_busy").await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut relay = deed_relay::RelayOptions::new(
        shop.manifest.clone(),
        &shop.catalog,
        &shop.owner.url,
        &shop.consumer.url,
    );
    relay.shutdown = rx.clone();
    let relay = tokio::spawn(deed_relay::run(relay));
    let mut project = shop.options();
    project.until_idle = false;
    project.shutdown = rx.clone();
    let project = tokio::spawn(deed_project::run(project));
    // Two writers: upserts and deletes over the whole table, each its own commit.
    let mut writers = Vec::new();
    for w in 0..2u64 {
        let client = shop.owner.client().await;
        let rx = rx.clone();
        writers.push(tokio::spawn(async move {
            let mut commits = 0u64;
            let mut n = w;
            while !*rx.borrow() {
                let id = (n * 7919) % 3000 + 1;
                client
                    .batch_execute(&format!(
                        "INSERT INTO products VALUES ({id}, 'w{n}', {n}) ON CONFLICT (id) DO UPDATE SET name = excluded.name, price_cents = excluded.price_cents"
                    ))
                    .await
                    .unwrap();
                commits += 1;
                if n % 5 == 0 {
                    client.batch_execute(&format!("DELETE FROM products WHERE id = {}", (n * 31) % 3000 + 1)).await.unwrap();
                    commits += 1;
                }
                n += 2;
            }
            commits
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(compare(&shop, &quick()).await);
    }
    stop.send(true).unwrap();
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    relay.await.unwrap().unwrap();
    project.await.unwrap().unwrap();
    let seconds = started.elapsed().as_secs_f64() + 0.5;
    eprintln!(
        "{writes} commits in {seconds:.1} s beside three compares ({:.0}/s)",
        writes as f64 / seconds
    );
    assert!(writes > 500, "the writer kept writing: {writes}");
    for r in &reports {
        assert!(
            r.missing.is_empty() && r.extra.is_empty() && r.different.is_empty(),
            "{}",
            r.table()
        );
    }
    // Quiet again: once delivered and applied, it equals the source exactly.
    shop.relay().await;
    shop.project(|_| {}).await;
    let r = compare(&shop, &quick()).await;
    assert!(r.equal && r.in_flight.is_empty(), "{}", r.table());
}

/// A projection fed from JetStream: compare waits until its consumer has
/// acknowledged everything before the fence, and says so when it cannot.
#[tokio::test]
async fn compare_waits_for_a_jetstream_projection_to_catch_up() {
    let nats = deed_testkit::NatsServer::start(None);
    let shop = shop("cmp_nats", ROWS, "", PRODUCTS).await;
    let relay = |s: &Shop| {
        let mut o = deed_relay::RelayOptions::new(
            s.manifest.clone(),
            &s.catalog,
            &s.owner.url,
            &nats.url(),
        );
        o.until_idle = true;
        deed_relay::run(o)
    };
    relay(&shop).await.unwrap();
    shop.project(|o| o.from = Some(nats.url())).await;
    let opts = CompareOptions { nats: Some(nats.url()), ..quick() };
    assert!(compare(&shop, &opts).await.equal);

    // A change in the stream the projector has not applied: no verdict.
    shop.write("UPDATE products SET name = 'late' WHERE id = 3").await;
    relay(&shop).await.unwrap();
    let target =
        deed_compare::target(&shop.manifest, &format!("{}.products", shop.orders)).unwrap();
    let short = CompareOptions { wait: Duration::from_secs(2), ..opts.clone() };
    let err = deed_compare::compare(
        target,
        &shop.owner.deed_client().await,
        &shop.consumer.deed_client().await,
        &short,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("has not applied the owner's changes up to the fence"), "{err}");
    shop.project(|o| o.from = Some(nats.url())).await;
    let r = compare(&shop, &opts).await;
    assert!(r.equal, "{}", r.table());
}

/// The same from RabbitMQ and from Kafka: compare waits until nothing of
/// the projection's before the fence is left on the bus past what the
/// projector committed, and says so when it cannot.
#[tokio::test]
async fn compare_waits_for_a_rabbitmq_projection_to_catch_up() {
    let shop = shop("cmp_rabbit", ROWS, "", PRODUCTS).await;
    let rabbit = deed_testkit::RabbitStreams::new(&[&shop.catalog]).await;
    waits_for_the_projector(&shop, rabbit.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_waits_for_a_kafka_projection_to_catch_up() {
    let shop = shop("cmp_kafka", ROWS, "", PRODUCTS).await;
    let kafka = deed_testkit::KafkaServer::start();
    waits_for_the_projector(&shop, &kafka.url()).await;
}

async fn waits_for_the_projector(shop: &Shop, url: &str) {
    let url = url.to_string();
    let relay = |s: &Shop| {
        let mut o =
            deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.owner.url, &url);
        o.until_idle = true;
        deed_relay::run(o)
    };
    relay(shop).await.unwrap();
    shop.project(|o| o.from = Some(url.clone())).await;
    let opts = CompareOptions { nats: Some(url.clone()), ..quick() };
    assert!(compare(shop, &opts).await.equal);

    // A change on the bus the projector has not applied: no verdict.
    shop.write("UPDATE products SET name = 'late' WHERE id = 3").await;
    relay(shop).await.unwrap();
    let target =
        deed_compare::target(&shop.manifest, &format!("{}.products", shop.orders)).unwrap();
    let short = CompareOptions { wait: Duration::from_secs(4), ..opts.clone() };
    let err = deed_compare::compare(
        target,
        &shop.owner.deed_client().await,
        &shop.consumer.deed_client().await,
        &short,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("has not applied the owner's changes up to the fence"), "{err}");
    shop.project(|o| o.from = Some(url.clone())).await;
    let r = compare(shop, &opts).await;
    assert!(r.equal, "{}", r.table());
}
