//! RabbitMQ as a projector's source: the producer's stream queue read from
//! the offset the projection recorded, the projection's own position
//! deciding what applies, so a lost or stale offset costs reading again,
//! never an effect twice. A stream keeps an event the relay sent again
//! beside its first copy; the copy changes nothing.

mod common;

use common::{PRODUCTS, shop};
use deed_testkit::RabbitStreams;

/// A shop with two products, its events going to the local RabbitMQ.
async fn two_products(label: &str) -> (common::Shop, RabbitStreams, String) {
    let s =
        shop(label, "INSERT INTO products VALUES (1, 'a', 1), (2, 'b', 2);", "", PRODUCTS).await;
    let rabbit = RabbitStreams::new(&[&s.catalog]).await;
    let url = rabbit.url().to_string();
    (s, rabbit, url)
}

/// `deed relay --until-idle` of the shop's catalog to `url`.
async fn relay(s: &common::Shop, url: &str) {
    let mut o = deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.owner.url, url);
    o.until_idle = true;
    deed_relay::run(o).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_stream_is_a_source_read_from_the_recorded_offset() {
    let (s, _rabbit, url) = two_products("project_rabbit").await;
    relay(&s, &url).await;
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].backfilled_rows, 2);
    s.write("UPDATE products SET name = 'a2' WHERE id = 1; DELETE FROM products WHERE id = 2; INSERT INTO products VALUES (3, 'c', 3);").await;
    relay(&s, &url).await;
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
    relay(&s, &url).await;
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(r.projections[0].applied, 1, "{:?}", r.projections[0]);
    s.assert_products_equal().await;
}

/// A backlog of many batches is applied whole: a projection's turn (twenty
/// batches in a row) ends before reading a batch, never after one it then
/// drops. And a copy of an event sent again after later ones (what a
/// relay does after losing its broker's acknowledgements: it sends again
/// from its slot's confirmed position) changes nothing, though it arrives
/// in the same batch as the event that followed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_backlog_and_an_event_sent_again_are_applied_exactly() {
    let (s, _rabbit, url) = two_products("project_rabbit_backlog").await;
    relay(&s, &url).await;
    s.project(|o| o.from = Some(url.clone())).await;
    for i in 0..60 {
        s.write(&format!("UPDATE products SET price_cents = {i} WHERE id = {}", 1 + i % 2)).await;
    }
    relay(&s, &url).await;
    let r = s
        .project(|o| {
            o.from = Some(url.clone());
            o.batch = 2;
        })
        .await;
    assert_eq!(r.projections[0].applied, 60, "30 batches, each applied: {:?}", r.projections[0]);
    s.assert_products_equal().await;

    s.write("UPDATE products SET name = 'x1' WHERE id = 1").await;
    s.write("UPDATE products SET name = 'x2' WHERE id = 1").await;
    relay(&s, &url).await;
    let again = send_again(&url, &s.catalog, "x1").await;
    assert_eq!(again, 1);
    let r = s.project(|o| o.from = Some(url.clone())).await;
    assert_eq!(
        (r.projections[0].applied, r.projections[0].skipped),
        (2, 1),
        "{:?}",
        r.projections[0]
    );
    s.assert_products_equal().await;
}

/// Publishes again, at the end of the stream, the events whose payload's
/// name is `name`, as the relay publishes them.
async fn send_again(url: &str, service: &str, name: &str) -> usize {
    let parsed = deed_bus::AmqpUrl::parse(url).unwrap();
    let mut copies = Vec::new();
    deed_relay::tail::tail_amqp(
        &parsed,
        service,
        "product_changed",
        true,
        None,
        Some(std::time::Duration::from_secs(1)),
        |raw| {
            let e = deed_relay::tail::parse(raw);
            if e["payload"]["name"] == name {
                copies.push((raw.to_vec(), e["type"].as_str().unwrap().to_string()));
            }
        },
    )
    .await
    .unwrap();
    let conn = parsed.connect("test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.unwrap();
    let subject = deed_events::event_subject(service, "product_changed");
    for (raw, kind) in &copies {
        let mut headers = lapin::types::FieldTable::default();
        headers.insert(
            "deed-type".into(),
            lapin::types::AMQPValue::LongString(kind.as_bytes().to_vec().into()),
        );
        let props = lapin::BasicProperties::default().with_delivery_mode(2).with_headers(headers);
        ch.basic_publish(
            deed_events::AMQP_EXCHANGE.into(),
            subject.as_str().into(),
            lapin::options::BasicPublishOptions::default(),
            raw,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    conn.close(200, "ok".into()).await.unwrap();
    copies.len()
}
