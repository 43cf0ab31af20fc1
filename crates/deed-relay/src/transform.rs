//! pgoutput messages of one slot, turned into envelopes in commit order.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::envelope::{Envelope, Op, Position};
use crate::error::RelayError;
use crate::pgoutput::{Column, Message, Value, pg_time_text};
use crate::spec::{CaptureSpec, StateEvent};
use crate::unchanged::{Seen, digest, same_values};
use crate::value::to_json;

struct Relation {
    key: (String, String),
    columns: Vec<Column>,
}

struct Txn {
    epoch: u32,
    commit_lsn: u64,
    committed_at: String,
    index: u32,
}

/// The end of a transaction: once its events are delivered, the slot may
/// be advanced to `end_lsn`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Commit {
    pub commit_lsn: u64,
    pub end_lsn: u64,
    /// Microseconds since 2000-01-01, for lag.
    pub commit_ts: i64,
    /// Events the transaction produced (none for a transaction that
    /// touched no captured table).
    pub events: u32,
}

pub struct Transformer<'s> {
    spec: &'s CaptureSpec,
    relations: HashMap<u32, Relation>,
    txn: Option<Txn>,
    seen: Seen,
    /// UPDATEs that changed no published column, so produced no event.
    pub unchanged: u64,
    /// Epochs known so far: the spec's, and those begun while reading.
    epochs: Vec<(u64, u32)>,
    /// `deed split` moved the service's writes away from this database in
    /// the transaction just read: nothing more of it will come from here.
    pub moved: bool,
    moved_prefix: String,
    epoch_prefix: String,
}

impl<'s> Transformer<'s> {
    pub fn new(spec: &'s CaptureSpec) -> Self {
        Transformer {
            spec,
            relations: HashMap::new(),
            txn: None,
            seen: Seen::default(),
            unchanged: 0,
            epochs: spec.epochs.clone(),
            moved: false,
            moved_prefix: deed_events::moved_prefix(&spec.service),
            epoch_prefix: deed_events::epoch_prefix(&spec.service),
        }
    }

    /// Feeds one message; events go to `out`, and a commit is returned.
    pub fn feed(
        &mut self,
        msg: Message,
        out: &mut Vec<Envelope>,
    ) -> Result<Option<Commit>, RelayError> {
        match msg {
            Message::Begin { final_lsn, commit_ts, .. } => {
                self.txn = Some(Txn {
                    epoch: crate::spec::epoch_at(&self.epochs, final_lsn),
                    commit_lsn: final_lsn,
                    committed_at: pg_time_text(commit_ts),
                    index: 0,
                });
            }
            Message::Commit { commit_lsn, end_lsn, commit_ts } => {
                let events = self.txn.take().map_or(0, |t| t.index);
                return Ok(Some(Commit { commit_lsn, end_lsn, commit_ts, events }));
            }
            Message::Relation { id, namespace, name, columns, .. } => {
                self.relations.insert(id, Relation { key: (namespace, name), columns });
            }
            Message::Insert { relation, new } => {
                self.row(relation, Op::Insert, None, false, Some(new), out)?
            }
            Message::Update { relation, old, old_full, new } => {
                self.row(relation, Op::Update, old, old_full, Some(new), out)?
            }
            Message::Delete { relation, old } => {
                self.row(relation, Op::Delete, Some(old), false, None, out)?
            }
            Message::Message { transactional: true, prefix, content, .. }
                if prefix == self.spec.prefix =>
            {
                self.domain(&content, out)?;
            }
            Message::Message { transactional: true, prefix, content, .. }
                if prefix == self.epoch_prefix =>
            {
                self.begin_epoch(&content)?;
            }
            Message::Message { transactional: true, prefix, .. } if prefix == self.moved_prefix => {
                self.moved = true;
            }
            Message::Truncate { relations } => self.truncate(&relations, out)?,
            Message::Message { .. } | Message::Other(_) => {}
        }
        Ok(None)
    }

    pub fn set_epochs(&mut self, epochs: Vec<(u64, u32)>) {
        self.epochs = epochs;
    }

    pub fn epochs(&self) -> &[(u64, u32)] {
        &self.epochs
    }

    /// A new epoch starts with the transaction that announces it.
    fn begin_epoch(&mut self, content: &[u8]) -> Result<(), RelayError> {
        let epoch: u32 = std::str::from_utf8(content)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| RelayError::Setup("a capture epoch message without a number".into()))?;
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| RelayError::Setup("an epoch message outside a transaction".into()))?;
        txn.epoch = epoch;
        if self.epochs.last().is_none_or(|(_, e)| *e < epoch) {
            self.epochs.push((txn.commit_lsn, epoch));
        }
        Ok(())
    }

    fn next(&mut self) -> Result<(Position, String), RelayError> {
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| RelayError::Setup("a change outside a transaction".into()))?;
        let at = Position { epoch: txn.epoch, commit_lsn: txn.commit_lsn, index: txn.index };
        txn.index += 1;
        Ok((at, txn.committed_at.clone()))
    }

    /// One event per truncated table and state event it feeds.
    fn truncate(&mut self, relations: &[u32], out: &mut Vec<Envelope>) -> Result<(), RelayError> {
        for relation in relations {
            let rel = self.relations.get(relation).ok_or_else(|| {
                RelayError::Setup(format!(
                    "a TRUNCATE of relation {relation} before its description"
                ))
            })?;
            // A table captured by no state event (another table TRUNCATE
            // named in the same statement) has no event.
            let Some(events) = self.spec.tables.get(&rel.key).cloned() else { continue };
            for ev in events {
                let (at, ts) = self.next()?;
                let mut e = Envelope::new(&self.spec.service, &ev.name, at, ts);
                e.op = Op::Truncate;
                e.key = Json::Object(Map::new());
                e.contract = Some(ev.contract.clone());
                out.push(e);
            }
            self.seen.forget_all();
        }
        Ok(())
    }

    fn row(
        &mut self,
        relation: u32,
        op: Op,
        old: Option<Vec<Value>>,
        old_full: bool,
        new: Option<Vec<Value>>,
        out: &mut Vec<Envelope>,
    ) -> Result<(), RelayError> {
        let rel = self.relations.get(&relation).ok_or_else(|| {
            RelayError::Setup(format!("a change of relation {relation} before its description"))
        })?;
        // The publication and the manifest disagree (a partition published
        // under its own name, or an apply not yet run): skipping the change
        // would lose an event, so stop and say why.
        let Some(events) = self.spec.tables.get(&rel.key) else {
            return Err(RelayError::Setup(format!(
                "the publication sends changes of {}.{}, which no state event of {} captures: run `deed apply` so capture matches the manifest",
                rel.key.0, rel.key.1, self.spec.service
            )));
        };
        let columns = rel.columns.clone();
        let table = format!("{}.{}", rel.key.0, rel.key.1);
        let events: Vec<StateEvent> = events.clone();
        for ev in &events {
            let key_of = |tuple: &[Value]| -> Result<Json, RelayError> {
                let mut key = Map::new();
                for k in &ev.key {
                    let i = columns.iter().position(|c| &c.name == k).ok_or_else(|| {
                        RelayError::Setup(format!(
                            "{table} has no column {k}, the key of event {}",
                            ev.name
                        ))
                    })?;
                    let v = tuple.get(i).and_then(|v| to_json(columns[i].type_oid, v)).ok_or_else(|| {
                        RelayError::Setup(format!(
                            "the old row of {table} lacks key column {k}: its replica identity must cover the key (deed apply sets it)"
                        ))
                    })?;
                    key.insert(k.clone(), v);
                }
                Ok(Json::Object(key))
            };
            match (&old, &new) {
                (Some(old_row), None) => {
                    let (at, ts) = self.next()?;
                    let mut e = Envelope::new(&self.spec.service, &ev.name, at, ts);
                    e.op = Op::Delete;
                    e.key = key_of(old_row)?;
                    e.tombstone = true;
                    e.contract = Some(ev.contract.clone());
                    if ev.skip_unchanged {
                        self.seen.forget(&ev.name, &e.key.to_string());
                    }
                    out.push(e);
                }
                (old_row, Some(new_row)) => {
                    let key = key_of(new_row)?;
                    let mut key_changed = false;
                    // A changed key: the old key is gone.
                    if let Some(old_row) = old_row {
                        let old_key = key_of(old_row).ok();
                        if old_key.as_ref().is_some_and(|k| *k != key) {
                            key_changed = true;
                            if ev.skip_unchanged {
                                self.seen.forget(
                                    &ev.name,
                                    &old_key.as_ref().expect("checked").to_string(),
                                );
                            }
                            let (at, ts) = self.next()?;
                            let mut e = Envelope::new(&self.spec.service, &ev.name, at, ts);
                            e.op = Op::Delete;
                            e.key = old_key.expect("checked");
                            e.tombstone = true;
                            e.contract = Some(ev.contract.clone());
                            out.push(e);
                        }
                    }
                    let mut payload = Map::new();
                    let mut published: Vec<usize> = Vec::with_capacity(ev.columns.len());
                    for c in &ev.columns {
                        let i = columns.iter().position(|x| &x.name == c).ok_or_else(|| {
                            RelayError::Setup(format!(
                                "{table} has no column {c}, which {} carries",
                                ev.contract
                            ))
                        })?;
                        let value = to_json(columns[i].type_oid, &new_row[i])
                            .or_else(|| old_row.as_ref().and_then(|o| o.get(i)).and_then(|v| to_json(columns[i].type_oid, v)))
                            .ok_or_else(|| {
                                RelayError::Setup(format!(
                                    "{table}.{c} was not sent (an unchanged out-of-line value) and no old row was logged: set REPLICA IDENTITY FULL (deed apply does)"
                                ))
                            })?;
                        payload.insert(c.clone(), value);
                        published.push(i);
                    }
                    if ev.skip_unchanged
                        && self.unchanged_update(
                            ev,
                            op,
                            &key,
                            key_changed,
                            old_row.as_deref().filter(|_| old_full),
                            new_row,
                            &published,
                        )
                    {
                        continue;
                    }
                    let (at, ts) = self.next()?;
                    let mut e = Envelope::new(&self.spec.service, &ev.name, at, ts);
                    e.op = op;
                    e.key = key;
                    e.payload = Json::Object(payload);
                    e.contract = Some(ev.contract.clone());
                    out.push(e);
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    /// Whether an UPDATE changed none of the event's published columns
    /// (then it has no event); remembers what is published either way.
    #[allow(clippy::too_many_arguments)]
    fn unchanged_update(
        &mut self,
        ev: &StateEvent,
        op: Op,
        key: &Json,
        key_changed: bool,
        old_full: Option<&[Value]>,
        new: &[Value],
        published: &[usize],
    ) -> bool {
        // An unchanged out-of-line value is the old row's (checked above).
        let values = published.iter().map(|&i| match (&new[i], old_full) {
            (Value::Unchanged, Some(old)) => &old[i],
            (v, _) => v,
        });
        let d = digest(values);
        let key = key.to_string();
        let exact = old_full.and_then(|old| same_values(old, new, published));
        let same = op == Op::Update
            && !key_changed
            && exact.unwrap_or_else(|| self.seen.is_last(&ev.name, &key, d));
        self.seen.publish(&ev.name, &key, d);
        if same {
            self.unchanged += 1;
        }
        same
    }

    /// A `deed.emit` message: `{"event": "<service>.<name>", "key", "payload"}`.
    fn domain(&mut self, content: &[u8], out: &mut Vec<Envelope>) -> Result<(), RelayError> {
        let msg: Json = serde_json::from_slice(content)
            .map_err(|e| RelayError::Setup(format!("a deed.emit message is not JSON: {e}")))?;
        let event = msg["event"].as_str().unwrap_or_default();
        let name = event.split_once('.').map_or(event, |(_, n)| n).to_string();
        let (at, ts) = self.next()?;
        let mut e = Envelope::new(&self.spec.service, &name, at, ts);
        e.op = Op::Domain;
        e.key = msg["key"].clone();
        e.payload = msg["payload"].clone();
        out.push(e);
        Ok(())
    }
}
