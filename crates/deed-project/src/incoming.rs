//! An event as a source hands it over: its envelope, parsed when it can
//! be, and what is needed to order and record it either way.

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
