//! The relay to a real Kafka-protocol broker (tansu, started per test).

use std::collections::BTreeMap;
use std::time::Duration;

use deed_relay::run;
use deed_testkit::KafkaServer;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

mod common;
use common::{SavedSlot, options, owner};

/// One message as read back: partition, offset, key, headers, value.
#[derive(Debug, Clone)]
struct Read {
    partition: i32,
    key: String,
    headers: BTreeMap<String, String>,
    value: Value,
}

/// Every message of `topic`, partition by partition in offset order.
async fn read_topic(url: &str, topic: &str) -> (usize, Vec<Read>) {
    let url = deed_bus::KafkaUrl::parse(url).unwrap();
    let config = url.config("test", &[("group.id", "deed-test"), ("enable.auto.commit", "false")]);
    let (c, t) = (config.clone(), topic.to_string());
    let partitions = tokio::task::spawn_blocking(move || {
        let probe: rdkafka::consumer::BaseConsumer = c.create().unwrap();
        let meta = probe.fetch_metadata(Some(&t), Duration::from_secs(10)).unwrap();
        let topic = meta.topics().iter().find(|x| x.name() == t).expect("the topic exists");
        assert!(topic.error().is_none(), "topic {t}: {:?}", topic.error());
        let ends: Vec<(i32, i64)> = topic
            .partitions()
            .iter()
            .map(|p| {
                (p.id(), probe.fetch_watermarks(&t, p.id(), Duration::from_secs(10)).unwrap().1)
            })
            .collect();
        ends
    })
    .await
    .unwrap();
    let consumer: StreamConsumer = config.create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, _) in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let total: i64 = partitions.iter().map(|(_, end)| end).sum();
    let mut out = Vec::new();
    while (out.len() as i64) < total {
        let m = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .expect("the messages a partition's end promised")
            .unwrap();
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Read {
            partition: m.partition(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            headers,
            value: serde_json::from_slice(m.payload().unwrap_or_default()).unwrap(),
        });
    }
    (partitions.len(), out)
}

/// Events are keyed by their key, so each key's events sit in one
/// partition in commit order; headers name id, type, contract and
/// position; an event too large is a dead letter and the rest go on; a
/// topic that exists with other settings is reported, not changed; and
/// the positions topic records how far the relay got.
#[tokio::test]
async fn kafka_events_are_keyed_into_partitions_in_commit_order_with_dead_letters() {
    let o = owner("relay_kafka", "").await;
    let kafka = KafkaServer::start();
    let c = o.db.client_as(&o.login).await;
    for round in 0..3 {
        c.batch_execute(&format!(
            "INSERT INTO products SELECT g, 'p' || g, {round} FROM generate_series(1, 40) g
               ON CONFLICT (id) DO UPDATE SET price_cents = EXCLUDED.price_cents;"
        ))
        .await
        .unwrap();
    }
    c.batch_execute(
        &"SELECT deed.emit('SERVICE.price_alert', '7', json_build_object('big', repeat('x', 6000))::jsonb);
          SELECT deed.emit('SERVICE.price_alert', '8', '{\"small\": true}');
          DELETE FROM products WHERE id = 3;"
            .replace("SERVICE", &o.service),
    )
    .await
    .unwrap();
    let url = format!("{}?max_message_bytes=4000", kafka.url());
    let mut opts = options(&o, &url);
    opts.stream.partitions = 4;
    let saved = SavedSlot::save(&o).await;
    let report = run(opts).await.unwrap_or_else(|e| panic!("{e}\n{}", kafka.log()));
    assert_eq!((report.events, report.dead_letters), (123, 1), "{report:?}");

    let topic = format!("deed.{}.product_changed", o.service);
    let (partitions, events) = read_topic(&kafka.url(), &topic).await;
    assert_eq!((partitions, events.len()), (4, 121));
    let mut by_key: BTreeMap<String, Vec<&Read>> = BTreeMap::new();
    for e in &events {
        assert_eq!(e.key, e.value["key"].to_string(), "the message key is the event's key");
        assert_eq!(e.headers["deed-id"], e.value["id"].as_str().unwrap());
        assert_eq!(e.headers["deed-type"], format!("{}.product_changed", o.service));
        assert_eq!(e.headers["deed-contract"], format!("{}.products.v1", o.service));
        assert_eq!(e.headers["deed-position"], e.value["position"].as_str().unwrap());
        by_key.entry(e.key.clone()).or_default().push(e);
    }
    assert_eq!(by_key.len(), 40);
    assert!(
        by_key.values().map(|v| v[0].partition).collect::<std::collections::BTreeSet<_>>().len()
            > 1
    );
    for (key, seq) in &by_key {
        assert!(seq.iter().all(|e| e.partition == seq[0].partition), "key {key} in one partition");
        let positions: Vec<&str> =
            seq.iter().map(|e| e.value["position"].as_str().unwrap()).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "key {key} in commit order: {positions:?}"
        );
    }
    let deleted = &by_key["{\"id\":3}"];
    assert_eq!(deleted.last().unwrap().value["op"], "delete");

    let (_, alerts) = read_topic(&kafka.url(), &format!("deed.{}.price_alert", o.service)).await;
    assert_eq!(alerts.len(), 1, "the large alert is not on its topic");
    assert_eq!(alerts[0].value["payload"]["small"], true);
    let (_, dead) = read_topic(&kafka.url(), &format!("deed.{}.dead_letter", o.service)).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].value["error"].as_str().unwrap().contains("max_message_bytes"),
        "{:?}",
        dead[0].value
    );
    assert_eq!(dead[0].key, "\"7\"");

    let (_, records) = read_topic(&kafka.url(), &format!("deed.{}._positions", o.service)).await;
    let last =
        deed_events::Reached::parse(records.last().unwrap().value.to_string().as_bytes()).unwrap();
    let max =
        events.iter().chain(&alerts).map(|e| e.value["position"].as_str().unwrap()).max().unwrap();
    assert_eq!(last.position, max);
    assert_eq!(last.offsets[&topic].values().sum::<i64>(), 121);

    // Delivered again from the saved slot (a crash before the slot was
    // confirmed): the same events with the same ids, after the first.
    saved.rewind().await;
    let mut opts = options(&o, &url);
    opts.stream.partitions = 4;
    run(opts).await.unwrap();
    saved.drop().await;
    let (_, again) = read_topic(&kafka.url(), &topic).await;
    assert_eq!(again.len(), 242);
    let ids = |v: &[Read]| {
        let mut ids: Vec<String> = v.iter().map(|e| e.headers["deed-id"].clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    assert_eq!(ids(&again), ids(&events), "a redelivery repeats the same events");

    // A topic with other settings is reported, not changed.
    let mut opts = options(&o, &url);
    opts.stream.partitions = 6;
    c.batch_execute("UPDATE products SET price_cents = 9 WHERE id = 1").await.unwrap();
    let e = run(opts).await.unwrap_err().to_string();
    assert!(e.contains(&topic) && e.contains("4 partitions, not 6"), "{e}");
}

/// Managed Kafka asks for SASL (over TLS): SCRAM-SHA-512 here, the
/// password from the URL or `DEED_KAFKA_PASSWORD`. The right password
/// delivers; a wrong one, or TLS to a broker that does not speak it, is
/// refused, and the password never appears in what deed says.
#[tokio::test]
async fn kafka_scram_signs_in_and_the_password_is_never_shown() {
    let o = owner("relay_kafka_scram", "").await;
    let mut kafka = KafkaServer::start();
    kafka.secure("deed", "s3cret-pw");
    let c = o.db.client_as(&o.login).await;
    c.batch_execute("INSERT INTO products VALUES (1, 'pen', 100, 'x')").await.unwrap();
    let url = |scheme: &str, password: &str| {
        format!("{scheme}://deed:{password}@127.0.0.1:{}?sasl=scram-sha-512", kafka.port())
    };
    let saved = SavedSlot::save(&o).await;
    for (to, password, why) in [
        (url("kafka", "wrong-pw"), "wrong-pw", "a wrong password"),
        (url("kafkas", "s3cret-pw"), "s3cret-pw", "TLS to a plaintext broker"),
    ] {
        let e = tokio::time::timeout(Duration::from_secs(120), run(options(&o, &to)))
            .await
            .unwrap_or_else(|_| panic!("{why}: the relay neither delivered nor failed"))
            .expect_err(why)
            .to_string();
        assert!(!e.contains(password), "{why}: the password shown: {e}");
        assert!(e.contains("://***@127.0.0.1"), "{why}: {e}");
        saved.rewind().await;
    }
    saved.drop().await;
    let missing = format!("{}&ca=/nonexistent/ca.pem", url("kafkas", "s3cret-pw"));
    let e = run(options(&o, &missing)).await.unwrap_err().to_string();
    assert!(e.contains("/nonexistent/ca.pem") && !e.contains("s3cret-pw"), "{e}");

    let good = url("kafka", "s3cret-pw");
    let report = run(options(&o, &good)).await.unwrap_or_else(|e| panic!("{e}\n{}", kafka.log()));
    assert_eq!(report.events, 1);
    let (_, events) = read_topic(&good, &format!("deed.{}.product_changed", o.service)).await;
    assert_eq!(events.len(), 1);
}

/// Managed Kafka over TLS (MSK, Aiven, Confluent Cloud): the brokers'
/// certificate verified against `ca=`, the client's own certificate shown
/// (`cert=`, `key=`: mutual TLS) and SCRAM on top. The broker here is
/// reached through a TLS front that verifies client certificates (tansu
/// serves no TLS itself). A broker whose certificate chains to another CA,
/// or a client that shows no certificate, is refused, the slot does not
/// move, and the password never appears.
#[tokio::test]
async fn kafka_over_mutual_tls_verifies_both_sides() {
    let o = owner("relay_kafka_tls", "").await;
    let certs = deed_testkit::Certs::make("relay-kafka-tls", "deed");
    let mut kafka = KafkaServer::start_tls(&certs, true);
    kafka.secure("deed", "s3cret-pw");
    let c = o.db.client_as(&o.login).await;
    c.batch_execute("INSERT INTO products VALUES (1, 'pen', 100, 'x')").await.unwrap();
    let url = |ca: &std::path::Path, client: bool| {
        let mut u = format!(
            "kafkas://deed:s3cret-pw@127.0.0.1:{}?sasl=scram-sha-512&ca={}",
            kafka.port(),
            ca.display()
        );
        if client {
            u += &format!(
                "&cert={}&key={}",
                certs.client_cert.display(),
                certs.client_key.display()
            );
        }
        u
    };
    let saved = SavedSlot::save(&o).await;
    // The error says why, from what the client heard before it timed out.
    for (to, why, heard) in [
        (
            url(&certs.other_ca, true),
            "a broker certificate from another CA",
            "certificate verify failed",
        ),
        (url(&certs.ca, false), "no client certificate", "certificate required"),
    ] {
        let e = tokio::time::timeout(Duration::from_secs(120), run(options(&o, &to)))
            .await
            .unwrap_or_else(|_| panic!("{why}: the relay neither delivered nor failed"))
            .expect_err(why)
            .to_string();
        assert!(!e.contains("s3cret-pw"), "{why}: the password shown: {e}");
        assert!(e.contains(heard), "{why}: {e}");
        assert!(e.contains("kafkas://***@127.0.0.1"), "{why}: {e}");
        saved.rewind().await;
    }
    saved.drop().await;
    let e = run(options(
        &o,
        &format!("{}&cert={}", url(&certs.ca, false), certs.client_cert.display()),
    ))
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs its key"), "{e}");

    let good = url(&certs.ca, true);
    let report = run(options(&o, &good)).await.unwrap_or_else(|e| panic!("{e}\n{}", kafka.log()));
    assert_eq!(report.events, 1);
    // A consumer through the same URL reads it over TLS too.
    let (_, events) = read_topic(&good, &format!("deed.{}.product_changed", o.service)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].headers["deed-id"], events[0].value["id"].as_str().unwrap());
}
