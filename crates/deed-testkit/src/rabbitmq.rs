//! The RabbitMQ server the tests use: `DEED_TEST_AMQP_URL`, or the local
//! one at `amqp://guest:guest@127.0.0.1:5672/%2f`. Each test's events go
//! to queues named after its own services, deleted when the test ends.

use std::time::Duration;

/// The broker's URL.
pub fn rabbitmq_url() -> String {
    std::env::var("DEED_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string())
}

/// The stream queues of some services, deleted on drop. Made only once
/// the broker answers: a test never runs, and never skips, without it.
pub struct RabbitStreams {
    url: String,
    queues: Vec<String>,
}

impl RabbitStreams {
    /// Fails the test, saying how to start RabbitMQ, when it is not there.
    pub async fn new(services: &[&str]) -> RabbitStreams {
        let url = rabbitmq_url();
        let parsed = deed_bus::AmqpUrl::parse(&url).expect("DEED_TEST_AMQP_URL parses");
        let reached = tokio::time::timeout(Duration::from_secs(10), parsed.connect("test")).await;
        match reached {
            Ok(Ok(c)) => {
                let _ = c.close(200, "ok".into()).await;
            }
            Ok(Err(e)) => panic!(
                "RabbitMQ is not reachable ({e}): start it with `rabbitmq-server -detached`, or point DEED_TEST_AMQP_URL at one"
            ),
            Err(_) => panic!(
                "RabbitMQ did not answer within 10 s at {parsed}: start it with `rabbitmq-server -detached`, or point DEED_TEST_AMQP_URL at one"
            ),
        }
        let queues = services.iter().map(|s| deed_events::amqp_stream(s)).collect();
        RabbitStreams { url, queues }
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for RabbitStreams {
    fn drop(&mut self) {
        let (url, queues) = (self.url.clone(), self.queues.clone());
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(rt) = rt else { return };
            rt.block_on(async move {
                let Ok(parsed) = deed_bus::AmqpUrl::parse(&url) else { return };
                let Ok(conn) = parsed.connect("test cleanup").await else { return };
                if let Ok(ch) = conn.create_channel().await {
                    for q in queues {
                        let _ = ch
                            .queue_delete(
                                q.as_str().into(),
                                lapin::options::QueueDeleteOptions::default(),
                            )
                            .await;
                    }
                }
                let _ = conn.close(200, "ok".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}
