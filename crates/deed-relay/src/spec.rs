//! What one service captures, from the manifest.

use std::collections::{BTreeSet, HashMap};

use deed_manifest::{ContractShape, Manifest};

use crate::error::RelayError;

/// A state event: changes of one table, carrying one contract's columns.
#[derive(Debug, Clone)]
pub struct StateEvent {
    pub name: String,
    pub contract: String,
    pub key: Vec<String>,
    pub columns: Vec<String>,
    /// No event for an UPDATE that changes none of `columns`.
    pub skip_unchanged: bool,
}

#[derive(Debug, Clone)]
pub struct CaptureSpec {
    pub service: String,
    /// Set by `Source::connect`: the slot's name depends on the database.
    pub slot: String,
    pub publication: String,
    /// The prefix of its domain events' logical messages.
    pub prefix: String,
    /// (schema, table) → the state events it feeds.
    pub tables: HashMap<(String, String), Vec<StateEvent>>,
    pub domain: BTreeSet<String>,
    /// Capture epochs in this database (from `deed.capture_epochs`, set by
    /// `Source::connect`): (first LSN, epoch), ascending. Empty: epoch 0.
    pub epochs: Vec<(u64, u32)>,
}

impl CaptureSpec {
    /// The epoch of a transaction committed at `lsn` in this database.
    pub fn epoch_at(&self, lsn: u64) -> u32 {
        epoch_at(&self.epochs, lsn)
    }
}

pub(crate) fn epoch_at(epochs: &[(u64, u32)], lsn: u64) -> u32 {
    epochs.iter().rev().find(|(since, _)| *since <= lsn).map_or(0, |(_, e)| *e)
}

impl CaptureSpec {
    pub fn from_manifest(m: &Manifest, service: &str) -> Result<CaptureSpec, RelayError> {
        let s = m
            .service(service)
            .ok_or_else(|| RelayError::Setup(format!("the manifest has no service {service:?}")))?;
        if s.events.is_empty() {
            return Err(RelayError::Setup(format!(
                "service {service} declares no events: add [[services.{service}.events]] to the manifest"
            )));
        }
        let mut tables: HashMap<(String, String), Vec<StateEvent>> = HashMap::new();
        let mut domain = BTreeSet::new();
        for e in &s.events {
            let Some(from) = &e.from else {
                domain.insert(e.name.clone());
                continue;
            };
            let contract = e.contract.as_ref().and_then(|k| s.contract(k));
            // The payload is the contract's columns read from the changed
            // row; a query-defined contract has no such mapping.
            let columns = match contract.map(|c| &c.shape) {
                Some(ContractShape::Columns(cols)) => {
                    cols.iter().map(|c| c.as_str().to_string()).collect()
                }
                _ => {
                    return Err(RelayError::Setup(format!(
                        "state event {service}.{} needs `contract` naming a version defined by `columns` \
                         (a `query` contract cannot be read from the changed row)",
                        e.name
                    )));
                }
            };
            tables
                .entry((from.schema.as_str().to_string(), from.name.as_str().to_string()))
                .or_default()
                .push(StateEvent {
                    name: e.name.clone(),
                    contract: contract
                        .map(|c| c.reference(&s.name).to_string())
                        .unwrap_or_default(),
                    key: e.key.iter().map(|k| k.as_str().to_string()).collect(),
                    columns,
                    skip_unchanged: e.unchanged == deed_manifest::Unchanged::Skip,
                });
        }
        Ok(CaptureSpec {
            service: service.to_string(),
            // Found in the database when the relay connects.
            slot: String::new(),
            publication: deed_events::publication_name(service).as_str().to_string(),
            prefix: deed_events::message_prefix(service),
            tables,
            domain,
            epochs: Vec::new(),
        })
    }
}
