//! An event as a source hands it over: its envelope, parsed when it can
//! be, and what is needed to order and record it either way; and which
//! events of a batch are new to a projection.

use deed_events::Received;

#[derive(Debug, Clone)]
pub struct Incoming {
    pub id: String,
    pub position: String,
    /// The envelope as delivered.
    pub raw: String,
    pub event: Result<Received, String>,
}

impl Incoming {
    pub fn parse(raw: String, fallback_id: String, fallback_position: String) -> Incoming {
        let event = Received::parse(raw.as_bytes());
        let (id, position) = match &event {
            Ok(e) => (e.id.clone(), e.position.clone()),
            Err(_) => (fallback_id, fallback_position),
        };
        Incoming { id, position, raw, event }
    }

    /// The key events are ordered by; an unreadable event is its own key.
    pub fn key_text(&self) -> String {
        match &self.event {
            Ok(e) => e.key_text(),
            Err(_) => format!("unreadable event {}", self.id),
        }
    }

    /// The envelope as JSON for the dead-letter table: itself when it is
    /// JSON, else the text as a JSON string.
    pub fn raw_json(&self) -> String {
        match serde_json::from_str::<serde_json::Value>(&self.raw) {
            Ok(_) => self.raw.clone(),
            Err(_) => serde_json::Value::String(self.raw.clone()).to_string(),
        }
    }
}

/// The events of `batch` a projection at `position` has not applied: each
/// must be past the projection's position and past every event kept
/// before it. A source hands events over in commit order, except that a
/// bus may hold an event twice: a relay that lost its broker's
/// acknowledgements sends again from its slot's last confirmed position,
/// after the copies already stored (a RabbitMQ stream keeps both). The
/// copy comes after a later position, so it is dropped here even when
/// both copies arrive in one batch. An unreadable event has no position
/// of its own and is always kept (it becomes a dead letter).
pub fn unapplied<'a>(position: &str, batch: &'a [Incoming]) -> Vec<&'a Incoming> {
    let mut high = position;
    let mut out = Vec::with_capacity(batch.len());
    for e in batch {
        if e.event.is_err() {
            out.push(e);
        } else if e.position.as_str() > high {
            high = e.position.as_str();
            out.push(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: &str) -> Incoming {
        let raw = format!(
            r#"{{"id":"catalog/{position}","type":"catalog.item_changed","contract":null,"key":{{"id":1}},"op":"update","position":"{position}","lsn":"0/1","committed_at":"2026-12-01T00:00:00Z","payload":{{"id":1}}}}"#
        );
        Incoming::parse(raw, String::new(), String::new())
    }

    fn positions(events: &[&Incoming]) -> Vec<String> {
        events.iter().map(|e| e.position.clone()).collect()
    }

    #[test]
    fn a_copy_sent_again_in_the_same_batch_is_dropped() {
        // Stored before the broker restarted (b and c unacknowledged),
        // then sent again from b, then new events.
        let batch: Vec<Incoming> = ["0a", "0b", "0c", "0b", "0c", "0d"].map(event).into();
        assert_eq!(positions(&unapplied("", &batch)), ["0a", "0b", "0c", "0d"]);
        assert_eq!(positions(&unapplied("0b", &batch)), ["0c", "0d"]);
        assert!(unapplied("0d", &batch).is_empty());
    }

    #[test]
    fn an_unreadable_event_is_kept_where_it_is() {
        let bad = Incoming::parse("not json".into(), "amqp:q:7".into(), String::new());
        assert!(bad.event.is_err());
        let batch = vec![event("0a"), bad, event("0a"), event("0b")];
        let kept = unapplied("", &batch);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[1].id, "amqp:q:7");
        assert_eq!(kept[2].position, "0b");
    }
}
