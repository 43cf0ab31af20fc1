//! Where the demo's rung 2 sends events (`deed demo --bus`): the
//! consumers' inbox (the default), NATS JetStream, a RabbitMQ stream or
//! Kafka topics. The same relay, the same envelope and the same kill and
//! redelivery run on each; only where the events are kept differs.
//!
//! Event ids are unique per source database, and a fresh cluster reuses
//! WAL positions: the demo's events must not meet another run's on a
//! broker. So the demo refuses a broker that already holds its services'
//! stream, queue or topics, and removes them when it is done.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use deed_bus::{Bus, NatsAuth};

use crate::error::DemoError;

/// The services whose events the demo relays.
const SERVICES: [&str; 3] = ["catalog", "orders", "users"];

/// `--bus`: a name (with the broker this machine kind runs locally) or a
/// bus URL. `inbox` (or nothing) is the consumers' inbox.
pub fn bus_url(choice: &str) -> Result<Option<String>, DemoError> {
    let url = match choice {
        "inbox" => return Ok(None),
        "nats" => "nats://127.0.0.1:4222",
        "rabbitmq" => "amqp://guest:guest@127.0.0.1:5672/%2f",
        "kafka" => "kafka://127.0.0.1:9092",
        url if url.contains("://") => url,
        other => {
            return Err(DemoError::Setup(format!(
                "--bus {other:?}: give nats, rabbitmq, kafka or inbox, or a bus URL (nats://…, amqp://…, kafka://…)"
            )));
        }
    };
    Ok(Some(url.to_string()))
}

pub(crate) struct DemoBus {
    /// As given, credentials included: only ever passed on, never shown.
    pub url: String,
    pub bus: Bus,
}

impl DemoBus {
    /// The bus at `url`, or the inbox at `inbox` when there is none.
    pub fn new(url: Option<&str>, inbox: &str) -> Result<DemoBus, DemoError> {
        let url = url.unwrap_or(inbox).to_string();
        let bus = Bus::parse(&url).map_err(|e| DemoError::Setup(format!("--bus {e}")))?;
        if let Bus::Webhook(w) = &bus {
            return Err(DemoError::Setup(format!("--bus {}", w.not_a_source())));
        }
        Ok(DemoBus { url, bus })
    }

    pub fn is_inbox(&self) -> bool {
        matches!(self.bus, Bus::Inbox(_))
    }

    /// The URL as the narration shows it, without its password.
    pub fn shown(&self) -> String {
        self.bus.to_string()
    }

    /// Whether the bus keeps an event sent twice twice (a RabbitMQ stream,
    /// a Kafka topic); JetStream and the inbox drop the second by its id.
    pub fn keeps_copies(&self) -> bool {
        matches!(self.bus, Bus::Amqp(_) | Bus::Kafka(_))
    }

    /// Where the events are kept, for the narration.
    pub fn place(&self) -> &'static str {
        match self.bus {
            Bus::Inbox(_) => "the consumers' inbox",
            Bus::Nats(_) => "JetStream",
            Bus::Amqp(_) => "RabbitMQ's stream queues",
            Bus::Kafka(_) => "Kafka's topics",
            Bus::Webhook(_) => "the endpoint",
        }
    }

    /// What the demo makes on the broker, for the narration.
    pub fn made(&self) -> String {
        let names: Vec<String> = match &self.bus {
            Bus::Nats(_) => SERVICES.iter().map(|s| deed_events::stream_name(s)).collect(),
            Bus::Amqp(_) => SERVICES.iter().map(|s| deed_events::amqp_stream(s)).collect(),
            Bus::Kafka(url) => {
                vec![
                    url.topic("catalog", "product_changed"),
                    url.topic("orders", "order_confirmed"),
                    url.topic("users", "user_changed"),
                ]
            }
            Bus::Inbox(_) | Bus::Webhook(_) => Vec::new(),
        };
        names.join(" and ")
    }

    /// How long a reader waits for an event before taking the bus for
    /// quiet: a new Kafka consumer takes a moment to be assigned its
    /// partitions and fetch, a RabbitMQ one to attach to the stream.
    pub fn quiet(&self) -> Duration {
        match self.bus {
            Bus::Kafka(_) => Duration::from_secs(3),
            Bus::Amqp(_) => Duration::from_secs(2),
            _ => Duration::from_secs(1),
        }
    }

    /// A service's events of one type (`*`: all), from the start, until
    /// `limit` or a quiet `idle`.
    pub async fn read(
        &self,
        service: &str,
        event: &str,
        limit: Option<usize>,
        idle: Duration,
        each: impl FnMut(&[u8]),
    ) -> Result<usize, DemoError> {
        let auth = NatsAuth::default();
        deed_relay::tail::tail_bus(&self.bus, &auth, service, event, true, limit, Some(idle), each)
            .await
            .map_err(|e| DemoError::Setup(format!("reading events from {}: {e}", self.shown())))
    }

    /// Distinct event ids per type of `service`'s events on the bus.
    pub async fn distinct_by_type(
        &self,
        service: &str,
    ) -> Result<BTreeMap<String, usize>, DemoError> {
        let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        self.read(service, "*", None, self.quiet(), |raw| {
            let v = deed_relay::tail::parse(raw);
            let kind = v["type"].as_str().unwrap_or_default().to_string();
            let id = v["id"].as_str().unwrap_or_default().to_string();
            ids.entry(kind).or_default().insert(id);
        })
        .await?;
        Ok(ids.into_iter().map(|(k, v)| (k, v.len())).collect())
    }

    /// The source `deed project --from` reads: `None` for the inbox.
    pub fn source(&self) -> Option<String> {
        (!self.is_inbox()).then(|| self.url.clone())
    }

    /// ` --from URL` as the narration shows it, or nothing for the inbox.
    pub fn source_flag(&self) -> String {
        if self.is_inbox() { String::new() } else { format!(" --from {}", self.shown()) }
    }

    /// Refuses a broker that already holds what the demo would make.
    pub async fn refuse_existing(&self) -> Result<(), DemoError> {
        let found = self.existing().await?;
        if found.is_empty() {
            return Ok(());
        }
        Err(DemoError::Setup(format!(
            "{} already has {}; the demo leaves what it did not make alone: use another broker, or delete them",
            self.shown(),
            found.join(", ")
        )))
    }

    /// What the demo would make that is there already, as `deed doctor
    /// --bus` sees it.
    async fn existing(&self) -> Result<Vec<String>, DemoError> {
        if self.is_inbox() {
            return Ok(Vec::new());
        }
        let services = SERVICES.map(String::from);
        let seen = deed_doctor::observe_bus(&self.bus, &NatsAuth::default(), &services).await;
        if let deed_doctor::Reach::No(why) = seen.reach {
            return Err(DemoError::Setup(format!(
                "cannot reach {}: {why} (is the broker running?)",
                self.shown()
            )));
        }
        let mut found = Vec::new();
        for s in seen.services {
            match s.found {
                Ok(true) => found.push(s.place),
                Ok(false) => {}
                Err(why) => return Err(DemoError::Setup(format!("{}: {why}", self.shown()))),
            }
        }
        Ok(found)
    }

    /// Removes what the demo made on the broker.
    pub async fn remove(&self) {
        match &self.bus {
            Bus::Inbox(_) | Bus::Webhook(_) => {}
            Bus::Nats(servers) => {
                if let Ok(client) = NatsAuth::default().connect_to(servers).await {
                    let js = async_nats::jetstream::new(client);
                    for s in SERVICES {
                        let _ = js.delete_stream(deed_events::stream_name(s)).await;
                    }
                }
            }
            Bus::Amqp(url) => {
                if let Ok(conn) = url.connect("demo").await {
                    if let Ok(ch) = conn.create_channel().await {
                        for s in SERVICES {
                            let queue = deed_events::amqp_stream(s);
                            let _ =
                                ch.queue_delete(queue.as_str().into(), Default::default()).await;
                        }
                    }
                    let _ = conn.close(200, "done".into()).await;
                }
            }
            Bus::Kafka(url) => remove_topics(url).await,
        }
    }
}

/// Deletes the services' event, positions and dead-letter topics.
async fn remove_topics(url: &deed_bus::KafkaUrl) {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let mut names = Vec::new();
    for s in SERVICES {
        if let Ok(topics) = deed_relay::tail::service_topics(url, s, None).await {
            names.extend(topics.into_iter().map(|(t, _)| t));
        }
        names.push(url.positions_topic(s));
        names.push(url.dead_letter_topic(s));
    }
    let Ok(admin) = url.config("demo", &[]).create::<AdminClient<DefaultClientContext>>() else {
        return;
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    // A topic that was never made is reported per topic, and left so.
    let _ = admin.delete_topics(&names, &options).await;
}
