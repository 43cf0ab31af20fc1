//! pgoutput messages of one slot, turned into envelopes in commit order.

use std::collections::HashMap;
use std::sync::Arc;

use deed_events::Kind;
use serde_json::Value as Json;

use crate::envelope::{Envelope, Op, Position};
use crate::error::RelayError;
use crate::pgoutput::{Message, Value, pg_time_text};
use crate::plan::Plan;
use crate::spec::CaptureSpec;
use crate::unchanged::{Seen, digest, same_values};

/// A relation as the last Relation message described it, with the plans
/// of the state events it feeds.
struct Relation {
    /// Whether any state event captures the table.
    captured: bool,
    /// Replica identity full: every update logs the whole old row
    /// (out-of-line values included), so "unchanged" is always answered
    /// exactly and the relay's memory of payloads is not consulted.
    full: bool,
    plans: Result<Arc<[Plan]>, String>,
}

struct Txn {
    epoch: u32,
    commit_lsn: u64,
    committed_at: Arc<str>,
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
                    committed_at: pg_time_text(commit_ts).into(),
                    index: 0,
                });
            }
            Message::Commit { commit_lsn, end_lsn, commit_ts } => {
                let events = self.txn.take().map_or(0, |t| t.index);
                return Ok(Some(Commit { commit_lsn, end_lsn, commit_ts, events }));
            }
            Message::Relation { id, namespace, name, columns, replica_identity } => {
                let mut relation = self.relation(namespace, name, &columns);
                relation.full = replica_identity == b'f';
                // Payloads published while the table was full went
                // unremembered: what is remembered may be stale now.
                if self.relations.get(&id).is_some_and(|r| r.full) && !relation.full {
                    self.seen.forget_all();
                }
                self.relations.insert(id, relation);
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
                self.domain(content, out)?;
            }
            Message::Message { transactional: true, prefix, content, .. }
                if prefix == self.epoch_prefix =>
            {
                self.begin_epoch(content)?;
            }
            Message::Message { transactional: true, prefix, .. } if prefix == self.moved_prefix => {
                self.moved = true;
            }
            Message::Truncate { relations } => self.truncate(&relations, out)?,
            Message::Message { .. } | Message::Other(_) => {}
        }
        Ok(None)
    }

    fn relation(
        &self,
        namespace: String,
        name: String,
        columns: &[crate::pgoutput::Column],
    ) -> Relation {
        let table = format!("{namespace}.{name}");
        let Some(events) = self.spec.tables.get(&(namespace, name)) else {
            // The publication and the manifest disagree (a partition
            // published under its own name, or an apply not yet run):
            // skipping its changes would lose events, so stop and say why.
            return Relation {
                captured: false,
                full: false,
                plans: Err(format!(
                    "the publication sends changes of {table}, which no state event of {} captures: run `deed apply` so capture matches the manifest",
                    self.spec.service
                )),
            };
        };
        let plans = events
            .iter()
            .map(|ev| Plan::new(&self.spec.service, &table, ev, columns))
            .collect::<Result<Vec<_>, _>>()
            .map(Arc::from);
        Relation { captured: true, full: false, plans }
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
            if !rel.captured {
                continue;
            }
            let plans = rel.plans.clone().map_err(RelayError::Setup)?;
            for plan in plans.iter() {
                let mut e = self.envelope(&plan.kind)?;
                e.op = Op::Truncate;
                e.key = "{}".into();
                e.contract = Some(plan.contract.clone());
                out.push(e);
            }
            self.seen.forget_all();
        }
        Ok(())
    }

    /// The next envelope of the open transaction.
    fn envelope(&mut self, kind: &Kind) -> Result<Envelope, RelayError> {
        let txn = self
            .txn
            .as_mut()
            .ok_or_else(|| RelayError::Setup("a change outside a transaction".into()))?;
        let at = Position { epoch: txn.epoch, commit_lsn: txn.commit_lsn, index: txn.index };
        txn.index += 1;
        Ok(Envelope::of(kind, at, txn.committed_at.clone()))
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
        let plans = rel.plans.clone().map_err(RelayError::Setup)?;
        let full = rel.full;
        for plan in plans.iter() {
            match (&old, &new) {
                (Some(old_row), None) => {
                    let mut e = self.envelope(&plan.kind)?;
                    e.op = Op::Delete;
                    e.key = plan.key_of(old_row)?;
                    e.tombstone = true;
                    e.contract = Some(plan.contract.clone());
                    if plan.skip_unchanged && !full {
                        self.seen.forget(&plan.name, &e.key);
                    }
                    out.push(e);
                }
                (old_row, Some(new_row)) => {
                    let key = plan.key_of(new_row)?;
                    let mut key_changed = false;
                    // A changed key: the old key is gone.
                    if let Some(old_key) = old_row.as_ref().and_then(|o| plan.key_of(o).ok()) {
                        if old_key != key {
                            key_changed = true;
                            if plan.skip_unchanged && !full {
                                self.seen.forget(&plan.name, &old_key);
                            }
                            let mut e = self.envelope(&plan.kind)?;
                            e.op = Op::Delete;
                            e.key = old_key;
                            e.tombstone = true;
                            e.contract = Some(plan.contract.clone());
                            out.push(e);
                        }
                    }
                    // Only a whole logged old row stands for values not
                    // resent: a key-only one has NULLs for every other column.
                    let old_full = old_row.as_deref().filter(|_| old_full);
                    let payload = plan.payload(new_row, old_full)?;
                    let unchanged = plan.skip_unchanged
                        && if full {
                            // Exact, from the logged old row; without one (an
                            // insert), an event.
                            op == Op::Update
                                && !key_changed
                                && old_full
                                    .and_then(|o| same_values(o, new_row, &plan.published))
                                    .unwrap_or(false)
                        } else {
                            self.unchanged_update(plan, op, &key, key_changed, old_full, new_row)
                        };
                    if unchanged {
                        if full {
                            self.unchanged += 1;
                        }
                        continue;
                    }
                    let mut e = self.envelope(&plan.kind)?;
                    e.op = op;
                    e.key = key;
                    e.payload = payload;
                    e.contract = Some(plan.contract.clone());
                    out.push(e);
                }
                (None, None) => {}
            }
        }
        Ok(())
    }

    /// Whether an UPDATE changed none of the event's published columns
    /// (then it has no event); remembers what is published either way.
    fn unchanged_update(
        &mut self,
        plan: &Plan,
        op: Op,
        key: &str,
        key_changed: bool,
        old_full: Option<&[Value]>,
        new: &[Value],
    ) -> bool {
        let published = &plan.published;
        // An unchanged out-of-line value is the old row's (checked above).
        let values = published.iter().map(|&i| match (&new[i], old_full) {
            (Value::Unchanged, Some(old)) => &old[i],
            (v, _) => v,
        });
        let d = digest(values);
        let exact = old_full.and_then(|old| same_values(old, new, published));
        let same = op == Op::Update
            && !key_changed
            && exact.unwrap_or_else(|| self.seen.is_last(&plan.name, key, d));
        self.seen.publish(&plan.name, key, d);
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
        let name = event.split_once('.').map_or(event, |(_, n)| n);
        let kind = Kind::new(&self.spec.service, name);
        let mut e = self.envelope(&kind)?;
        e.op = Op::Domain;
        e.key = msg["key"].to_string();
        e.payload = msg["payload"].to_string();
        out.push(e);
        Ok(())
    }
}
