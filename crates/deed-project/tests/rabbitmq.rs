//! RabbitMQ as a projector's source: the producer's stream queue read from
//! the offset the projection recorded, the projection's own position
//! deciding what applies, so a lost or stale offset costs reading again,
//! never an effect twice.

mod common;

use common::{PRODUCTS, shop};
use deed_testkit::RabbitStreams;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_stream_is_a_source_read_from_the_recorded_offset() {
    let s = shop(
        "project_rabbit",
        "INSERT INTO products VALUES (1, 'a', 1), (2, 'b', 2);",
        "",
        PRODUCTS,
    )
    .await;
    let rabbit = RabbitStreams::new(&[&s.catalog]).await;
    let url = rabbit.url().to_string();
    let relay = |s: &common::Shop| {
        let mut o =
            deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.owner.url, &url);
        o.until_idle = true;
        deed_relay::run(o)
    };
    relay(&s).await.unwrap();
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].backfilled_rows, 2);
    s.write("UPDATE products SET name = 'a2' WHERE id = 1; DELETE FROM products WHERE id = 2; INSERT INTO products VALUES (3, 'c', 3);").await;
    relay(&s).await.unwrap();
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].applied, 3, "{:?}", r.projections[0]);
    s.assert_products_equal().await;

    // The next run starts after the recorded offset: nothing read again.
    let consumer = s.consumer.client().await;
    let offset: Option<i64> = consumer
        .query_one("SELECT source_offset FROM deed.projections WHERE name = 'products'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(offset.is_some(), "the projection records its stream offset");
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(
        (r.projections[0].applied, r.projections[0].skipped),
        (0, 0),
        "{:?}",
        r.projections[0]
    );

    // The offset lost: the stream is read from its start, and the position
    // skips every event already applied.
    consumer.batch_execute("UPDATE deed.projections SET source_offset = NULL").await.unwrap();
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(
        (r.projections[0].applied, r.projections[0].skipped),
        (0, 3),
        "{:?}",
        r.projections[0]
    );
    s.write("UPDATE products SET price_cents = 9 WHERE id = 3").await;
    relay(&s).await.unwrap();
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].applied, 1, "{:?}", r.projections[0]);
    s.assert_products_equal().await;
}
