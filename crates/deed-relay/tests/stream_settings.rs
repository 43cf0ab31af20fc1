//! The JetStream stream is created with the settings asked for; a stream
//! that exists with others is reported, never changed.

use std::time::Duration;

use async_nats::jetstream::stream::RetentionPolicy;
use deed_relay::sink::StreamSettings;
use deed_relay::{RelayError, Sink};
use deed_testkit::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_created_as_asked_and_never_silently_changed() {
    let nats = NatsServer::start(None);
    let asked = StreamSettings {
        retention: RetentionPolicy::Interest,
        max_age: Duration::from_secs(3600),
        ..StreamSettings::default()
    };
    Sink::connect_with(&nats.url(), "settings", &asked).await.unwrap_or_else(|e| panic!("{e}"));
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream("DEED_SETTINGS").await.unwrap();
    let config = stream.info().await.unwrap().config.clone();
    assert_eq!(config.retention, RetentionPolicy::Interest);
    assert_eq!(config.max_age, Duration::from_secs(3600));
    // Again with the same settings: fine.
    Sink::connect_with(&nats.url(), "settings", &asked).await.unwrap_or_else(|e| panic!("{e}"));
    // With the defaults: reported, and the stream is as it was.
    let e = match Sink::connect(&nats.url(), "settings").await {
        Err(e) => e,
        Ok(_) => panic!("a stream with other settings was accepted"),
    };
    assert!(matches!(e, RelayError::Setup(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("retention interest, not limits")
            && text.contains("max age 60 min, not unlimited"),
        "{text}"
    );
    let after = stream.info().await.unwrap().config.clone();
    assert_eq!(after.retention, RetentionPolicy::Interest);
    // Three replicas on one server: refused by JetStream, and said.
    let three = StreamSettings { replicas: 3, ..StreamSettings::default() };
    assert!(Sink::connect_with(&nats.url(), "three", &three).await.is_err());
}

/// RabbitMQ: the service's stream queue keeps events for
/// `--stream-max-age` (`x-max-age`); declared again with the same age it
/// is fine, with another it is refused by the broker and reported as a
/// setting to fix (exit 2), and the queue stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_stream_keeps_events_as_long_as_asked() {
    let service = format!("settings{}", std::process::id());
    let rabbit = deed_testkit::RabbitStreams::new(&[&service]).await;
    let hour = StreamSettings { max_age: Duration::from_secs(3600), ..StreamSettings::default() };
    for _ in 0..2 {
        Sink::connect_with(rabbit.url(), &service, &hour).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let two = StreamSettings { max_age: Duration::from_secs(7200), ..StreamSettings::default() };
    let e = match Sink::connect_with(rabbit.url(), &service, &two).await {
        Err(e) => e,
        Ok(_) => panic!("a stream queue with another x-max-age was accepted"),
    };
    assert!(matches!(e, RelayError::Setup(_)), "{e}");
    assert!(e.to_string().contains("x-max-age"), "{e}");
    // The queue is as it was: the first age still declares it.
    Sink::connect_with(rabbit.url(), &service, &hour).await.unwrap_or_else(|e| panic!("{e}"));
}
