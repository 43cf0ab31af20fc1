//! A bus, as `deed doctor --bus URL` sees it: whether it answers, whether
//! it lets deed in (the URL's or the environment's credentials), and
//! whether each capturing service's events are kept there yet (its
//! JetStream stream, RabbitMQ stream queue, Kafka topics or inbox rows).
//!
//! Observe ([`observe_bus`], one connection per bus, each step bounded in
//! time) → judge ([`bus_checks`], pure).

use std::time::Duration;

use deed_bus::{Bus, NatsAuth};
use serde::Serialize;

use crate::judge::{Check, Level};

/// How long one question to a bus may take.
const PATIENCE: Duration = Duration::from_secs(10);

/// What was seen of one bus.
#[derive(Debug, Clone, Serialize)]
pub struct BusObserved {
    /// `inbox`, `nats`, `rabbitmq`, `kafka` or `webhook`.
    pub kind: &'static str,
    /// The URL without its password.
    pub shown: String,
    pub reach: Reach,
    pub services: Vec<ServiceOnBus>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum Reach {
    /// Connected and signed in.
    Yes,
    /// Not reached, or refused: the client's error.
    No(String),
    /// Not something deed asks before using it (an HTTP endpoint).
    NotProbed(String),
}

/// A capturing service's events on the bus.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOnBus {
    pub service: String,
    /// The stream, queue or topic they are kept in.
    pub place: String,
    /// Whether it holds any; an error when the bus would not say.
    pub found: Result<bool, String>,
}

/// Asks `url` (parsed already) about each of `services`.
pub async fn observe_bus(bus: &Bus, auth: &NatsAuth, services: &[String]) -> BusObserved {
    let mut out = BusObserved {
        kind: bus.kind(),
        shown: bus.to_string(),
        reach: Reach::Yes,
        services: Vec::new(),
    };
    let late = || "no answer within 10 s".to_string();
    let found = |service: &str, place: String, found: Result<bool, String>| ServiceOnBus {
        service: service.to_string(),
        place,
        found,
    };
    match bus {
        Bus::Webhook(_) => {
            out.reach = Reach::NotProbed(
                "deed only posts to an endpoint; `deed relay` reports a refusal or a timeout as it delivers".into(),
            );
        }
        Bus::Inbox(url) => {
            let client = match tokio::time::timeout(PATIENCE, deed_pg::connect(url)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return with_reach(out, e.to_string()),
                Err(_) => return with_reach(out, late()),
            };
            for s in services {
                // No inbox yet is no event yet: the first relay run creates it.
                let seen =
                    deed_state::inbox::has_events_of(&client, s).await.map_err(|e| e.to_string());
                out.services.push(found(s, "deed.inbox".into(), seen));
            }
        }
        Bus::Nats(servers) => {
            let client = match tokio::time::timeout(PATIENCE, auth.connect_to(servers)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return with_reach(out, e.to_string()),
                Err(_) => return with_reach(out, late()),
            };
            let js = async_nats::jetstream::new(client);
            for s in services {
                let name = deed_events::stream_name(s);
                let seen = match tokio::time::timeout(PATIENCE, js.get_stream(&name)).await {
                    Ok(Ok(_)) => Ok(true),
                    Ok(Err(e)) => match e.kind() {
                        async_nats::jetstream::context::GetStreamErrorKind::JetStream(j)
                            if j.error_code()
                                == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND =>
                        {
                            Ok(false)
                        }
                        _ => Err(e.to_string()),
                    },
                    Err(_) => Err(late()),
                };
                out.services.push(found(s, format!("stream {name}"), seen));
            }
        }
        Bus::Amqp(url) => {
            let conn = match tokio::time::timeout(PATIENCE, url.connect("doctor")).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return with_reach(out, e.to_string()),
                Err(_) => return with_reach(out, late()),
            };
            for s in services {
                let queue = deed_events::amqp_stream(s);
                out.services.push(found(
                    s,
                    format!("queue {queue}"),
                    deed_bus::amqp_queue_exists(&conn, &queue).await.map_err(|e| e.to_string()),
                ));
            }
            let _ = conn.close(200, "done".into()).await;
        }
        Bus::Kafka(url) => {
            // Asking for the cluster's topics proves the sign-in too.
            let config = url.config("doctor", &[]);
            let asked = tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let c: BaseConsumer = config.create()?;
                c.fetch_metadata(None, PATIENCE).map(|_| ())
            })
            .await;
            match asked {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return with_reach(out, e.to_string()),
                Err(e) => return with_reach(out, e.to_string()),
            }
            for s in services {
                let seen = match deed_relay::tail::service_topics(url, s, None).await {
                    Ok(_) => Ok(true),
                    Err(deed_relay::RelayError::Setup(_)) => Ok(false),
                    Err(e) => Err(e.to_string()),
                };
                out.services.push(found(s, format!("topics {}", url.topic(s, "*")), seen));
            }
        }
    }
    out
}

fn with_reach(mut out: BusObserved, why: String) -> BusObserved {
    out.reach = Reach::No(why);
    out
}

/// The checks of one bus (rung 2): reached and signed in, then each
/// service's events there (missing is a warning: no relay has run yet).
pub fn bus_checks(b: &BusObserved) -> Vec<Check> {
    let mut out = Vec::new();
    let name = "bus reachable, credentials accepted";
    match &b.reach {
        Reach::Yes => out.push(Check {
            rung: 2,
            name,
            level: Level::Ok,
            detail: format!("{} ({}) answered and let deed in", b.shown, b.kind),
            fix: None,
        }),
        Reach::No(why) => out.push(Check {
            rung: 2,
            name,
            level: Level::Fail,
            detail: format!("{} ({}): {why}", b.shown, b.kind),
            fix: Some(
                "check the address and that the broker runs; credentials come from the URL or DEED_NATS_*/DEED_AMQP_PASSWORD/DEED_KAFKA_PASSWORD".into(),
            ),
        }),
        Reach::NotProbed(why) => out.push(Check {
            rung: 2,
            name,
            level: Level::Ok,
            detail: format!("{} ({}): not asked; {why}", b.shown, b.kind),
            fix: None,
        }),
    }
    for s in &b.services {
        let (level, detail, fix) = match &s.found {
            Ok(true) => (Level::Ok, format!("{}'s events are in {}", s.service, s.place), None),
            Ok(false) => (
                Level::Warn,
                format!("{} holds none of {}'s events yet", s.place, s.service),
                Some(format!("run `deed relay --service {} --to {}`", s.service, b.shown)),
            ),
            Err(why) => (
                Level::Fail,
                format!(
                    "{}: cannot tell whether {} holds {}'s events: {why}",
                    b.shown, s.place, s.service
                ),
                Some("give deed's user the right to read it (or declare it, on RabbitMQ)".into()),
            ),
        };
        out.push(Check { rung: 2, name: "service's events on the bus", level, detail, fix });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(reach: Reach, found: Vec<Result<bool, String>>) -> BusObserved {
        BusObserved {
            kind: "kafka",
            shown: "kafka://b1:9092".into(),
            reach,
            services: found
                .into_iter()
                .enumerate()
                .map(|(i, f)| ServiceOnBus {
                    service: format!("s{i}"),
                    place: format!("topics deed.s{i}.*"),
                    found: f,
                })
                .collect(),
        }
    }

    #[test]
    fn a_bus_is_judged_by_reach_then_by_each_service() {
        let b = observed(
            Reach::Yes,
            vec![Ok(true), Ok(false), Err("TOPIC_AUTHORIZATION_FAILED".into())],
        );
        let levels: Vec<Level> = bus_checks(&b).iter().map(|c| c.level).collect();
        assert_eq!(levels, [Level::Ok, Level::Ok, Level::Warn, Level::Fail]);
        let checks = bus_checks(&b);
        assert_eq!(
            checks[2].fix.as_deref(),
            Some("run `deed relay --service s1 --to kafka://b1:9092`")
        );
        let refused = observed(Reach::No("SASL authentication failed".into()), vec![]);
        let c = &bus_checks(&refused)[0];
        assert_eq!(c.level, Level::Fail);
        assert!(c.detail.contains("SASL authentication failed"), "{}", c.detail);
    }
}
