//! AsyncAPI 3.0: one document per producing service
//! (`catalog.asyncapi.json`), a channel per event at the address every
//! bus deed relays to uses by default (the NATS subject, the RabbitMQ
//! routing key on the `deed` topic exchange, the Kafka topic:
//! `deed.<service>.<event>`), the service's `send` operation on it, and
//! the event's message with its envelope's JSON Schema inlined (the
//! draft-07 subset AsyncAPI's default schema format takes, `$ref`s to the
//! key and row resolved), so the document stands alone.

use std::collections::BTreeMap;

use deed_events::{AMQP_EXCHANGE, event_subject};
use serde_json::{Value, json};

use super::{Files, NOTICE, jsonschema};
use crate::model::{EventModel, Model};

pub fn render(model: &Model) -> Files {
    let mut producers: BTreeMap<&str, Vec<&EventModel>> = BTreeMap::new();
    for e in &model.events {
        producers.entry(e.service.as_str()).or_default().push(e);
    }
    producers
        .into_iter()
        .map(|(service, events)| {
            let text =
                serde_json::to_string_pretty(&document(service, &events)).expect("JSON serialises");
            (format!("{service}.asyncapi.json"), text + "\n")
        })
        .collect()
}

/// The AsyncAPI document of `service`'s events.
pub fn document(service: &str, events: &[&EventModel]) -> Value {
    let (mut channels, mut operations, mut messages) =
        (serde_json::Map::new(), serde_json::Map::new(), serde_json::Map::new());
    for e in events {
        let id = format!("{}_{}", e.service, e.name);
        let address = event_subject(&e.service, &e.name);
        let mut message = json!({
            "name": e.kind(),
            "title": e.kind(),
            "contentType": "application/json",
            "payload": jsonschema::standalone(e),
        });
        if let Some(d) = &e.description {
            message["summary"] = json!(d);
        }
        messages.insert(id.clone(), message);
        channels.insert(
            id.clone(),
            json!({
                "address": address,
                "title": e.kind(),
                "description": format!(
                    "{}: the NATS subject, the routing key on RabbitMQ's `{AMQP_EXCHANGE}` topic exchange, and the Kafka topic (the relay's default `topic=deed.{{service}}.{{event}}`).",
                    e.kind()
                ),
                "messages": {e.name.as_str(): {"$ref": format!("#/components/messages/{id}")}},
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {"name": AMQP_EXCHANGE, "type": "topic", "durable": true, "autoDelete": false},
                        "bindingVersion": "0.3.0"
                    },
                    "kafka": {"topic": address, "bindingVersion": "0.5.0"}
                }
            }),
        );
        operations.insert(
            format!("send_{id}"),
            json!({
                "action": "send",
                "title": format!("{service} publishes {}", e.kind()),
                "channel": {"$ref": format!("#/channels/{id}")},
                "messages": [{"$ref": format!("#/channels/{id}/messages/{}", e.name)}],
            }),
        );
    }
    json!({
        "asyncapi": "3.0.0",
        "id": format!("urn:deed:service:{service}"),
        "info": {
            "title": format!("{service}'s events"),
            "version": "1.0.0",
            "description": format!("The events {service} publishes through `deed relay`, each in deed's envelope. {NOTICE}"),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    })
}
