//! `deed doctor --bus`: each kind of bus asked for real (a private
//! nats-server and Kafka broker, the local RabbitMQ, a database for the
//! inbox): reached or not, credentials refused, and a service's stream,
//! queue or topics found once they exist.

use deed_bus::{Bus, NatsAuth};
use deed_doctor::{Level, Reach, bus_checks, observe_bus};
use deed_testkit::{KafkaServer, NatsServer, RabbitStreams, TestDb};

fn levels(b: &deed_doctor::BusObserved) -> Vec<Level> {
    bus_checks(b).iter().map(|c| c.level).collect()
}

async fn observe(url: &str, service: &str) -> deed_doctor::BusObserved {
    let bus = Bus::parse(url).unwrap();
    observe_bus(&bus, &NatsAuth::default(), &[service.to_string()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_missing_stream_then_found_and_a_server_not_there() {
    let nats = NatsServer::start(None);
    let service = format!("doctor_{}", std::process::id());
    let seen = observe(&nats.url(), &service).await;
    assert!(matches!(seen.reach, Reach::Yes), "{seen:?}");
    assert_eq!(levels(&seen), [Level::Ok, Level::Warn], "{seen:?}");
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: deed_events::stream_name(&service),
        subjects: vec![deed_events::service_subjects(&service)],
        ..Default::default()
    })
    .await
    .unwrap();
    let seen = observe(&nats.url(), &service).await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Ok], "{seen:?}");

    let port = deed_testkit::free_port();
    let seen = observe(&format!("nats://127.0.0.1:{port}"), &service).await;
    assert!(matches!(seen.reach, Reach::No(_)), "{seen:?}");
    assert_eq!(levels(&seen), [Level::Fail], "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_queue_missing_then_found() {
    let service = format!("doctor_{}", std::process::id());
    let rabbit = RabbitStreams::new(&[&service]).await;
    let seen = observe(rabbit.url(), &service).await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Warn], "{seen:?}");
    let url = deed_bus::AmqpUrl::parse(rabbit.url()).unwrap();
    let conn = url.connect("test").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = lapin::types::FieldTable::default();
    args.insert("x-queue-type".into(), lapin::types::AMQPValue::LongString("stream".into()));
    let durable = lapin::options::QueueDeclareOptions { durable: true, ..Default::default() };
    ch.queue_declare(deed_events::amqp_stream(&service).as_str().into(), durable, args)
        .await
        .unwrap();
    let seen = observe(rabbit.url(), &service).await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Ok], "{seen:?}");

    let refused =
        observe(&rabbit.url().replace("guest:guest@", "guest:not-the-password@"), &service).await;
    assert_eq!(levels(&refused), [Level::Fail], "{refused:?}");
    let shown = format!("{:?}", bus_checks(&refused));
    assert!(!shown.contains("not-the-password"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sign_in_refused_then_topics_missing_then_found() {
    let mut kafka = KafkaServer::start();
    kafka.secure("deed", "s3cret-pw");
    let url = |pw: &str| format!("kafka://deed:{pw}@127.0.0.1:{}?sasl=scram-sha-512", kafka.port());
    let refused = observe(&url("wrong-pw"), "catalog").await;
    assert_eq!(levels(&refused), [Level::Fail], "{refused:?}");
    assert!(!format!("{:?}", bus_checks(&refused)).contains("wrong-pw"));

    let seen = observe(&url("s3cret-pw"), "catalog").await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Warn], "{seen:?}");
    let parsed = deed_bus::KafkaUrl::parse(&url("s3cret-pw")).unwrap();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        parsed.config("test", &[]).create().unwrap();
    let topic = parsed.topic("catalog", "product_changed");
    let new = rdkafka::admin::NewTopic::new(&topic, 1, rdkafka::admin::TopicReplication::Fixed(1));
    admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new()).await.unwrap();
    let seen = observe(&url("s3cret-pw"), "catalog").await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Ok], "{seen:?}");
}

#[tokio::test]
async fn an_inbox_without_events_and_an_endpoint_not_asked() {
    let db = TestDb::new("doctor_bus").await;
    let seen = observe(&db.url, "catalog").await;
    assert_eq!(levels(&seen), [Level::Ok, Level::Warn], "{seen:?}");
    let seen = observe("https://hooks.example/deed", "catalog").await;
    assert!(matches!(seen.reach, Reach::NotProbed(_)), "{seen:?}");
    assert_eq!(levels(&seen), [Level::Ok], "{seen:?}");
}
