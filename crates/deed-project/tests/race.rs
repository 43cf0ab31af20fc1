//! The backfill while the owner keeps writing, and the JetStream source.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{PRODUCTS, shop};
use deed_testkit::NatsServer;

/// Inserts, updates and deletes on random keys until told to stop.
fn writer(url: String, keys: i32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let c = deed_pg::connect_plain(&url).await.unwrap();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            c.batch_execute(&format!(
                "UPDATE products SET price_cents = price_cents + 1 WHERE id = (random() * {keys})::int;
                 DELETE FROM products WHERE id = (random() * {keys})::int;
                 INSERT INTO products (id, name, price_cents) VALUES ((random() * {keys})::int, 'w', 1) ON CONFLICT (id) DO UPDATE SET name = 'upserted';"
            ))
            .await
            .unwrap();
            n += 3;
        }
        n
    })
}

#[tokio::test]
async fn a_backfill_racing_writes_ends_with_no_gap_and_no_duplicate() {
    let s = shop(
        "project_race",
        "INSERT INTO products SELECT g, 'p' || g, g FROM generate_series(1, 20000) g;",
        "",
        PRODUCTS,
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(s.owner.url.clone(), 20000, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Small chunks: the copy spans many snapshots while rows change.
    let r = s.project(|o| o.chunk = 100).await;
    assert!(r.projections[0].backfilled_rows > 19000, "{:?}", r.projections[0]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let writes = w.await.unwrap();
    assert!(writes > 100, "the writer ran during the backfill: {writes} statements");
    s.relay().await;
    let r = s.project(|_| {}).await;
    assert!(
        r.projections[0].applied > 0,
        "events after the fence are applied: {:?}",
        r.projections[0]
    );
    s.assert_products_equal().await;
}

#[tokio::test]
async fn jetstream_is_a_source_with_a_durable_consumer_per_projection() {
    let nats = NatsServer::start(None);
    let s =
        shop("project_nats", "INSERT INTO products VALUES (1, 'a', 1), (2, 'b', 2);", "", PRODUCTS)
            .await;
    let relay = |s: &common::Shop| {
        let mut o = deed_relay::RelayOptions::new(
            s.manifest.clone(),
            &s.catalog,
            &s.owner.url,
            &nats.url(),
        );
        o.until_idle = true;
        deed_relay::run(o)
    };
    relay(&s).await.unwrap();
    let r = s.project(|o| o.from = Some(nats.url())).await;
    assert_eq!(r.projections[0].backfilled_rows, 2);
    s.write("UPDATE products SET name = 'a2' WHERE id = 1; DELETE FROM products WHERE id = 2; INSERT INTO products VALUES (3, 'c', 3);").await;
    relay(&s).await.unwrap();
    let r = s.project(|o| o.from = Some(nats.url())).await;
    assert_eq!(r.projections[0].applied, 3, "{:?}", r.projections[0]);
    s.assert_products_equal().await;

    // The consumer forgets what it acknowledged: every event comes again,
    // and none has a second effect.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stream = js.get_stream(deed_events::stream_name(&s.catalog)).await.unwrap();
    stream.delete_consumer(&deed_events::consumer_name(&s.orders, "products")).await.unwrap();
    let r = s.project(|o| o.from = Some(nats.url())).await;
    assert_eq!(
        (r.projections[0].applied, r.projections[0].skipped),
        (0, 3),
        "{:?}",
        r.projections[0]
    );
    s.assert_products_equal().await;
}
