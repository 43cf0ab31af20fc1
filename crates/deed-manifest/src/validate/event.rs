//! One event a service publishes: its contract, key, operations and
//! compatibility.

use deed_ident::{MAX_IDENT_BYTES, QualifiedName};

use crate::model::{Compatibility, Contract, ContractShape, Event, Unchanged};
use crate::raw::{RawEvent, S};
use crate::refs::ContractKey;

use super::*;

impl Validator<'_> {
    pub(crate) fn event(
        &mut self,
        raw: &S<RawEvent>,
        owns: &[QualifiedName],
        contracts: &[Contract],
    ) -> Option<Event> {
        let e = raw.get_ref();
        let before = self.problems();
        let name = self.simple_name(&e.name, "event", MAX_IDENT_BYTES);
        let from = e.from.as_ref().and_then(|f| {
            let q = self.qualified(f)?;
            if !owns.contains(&q) {
                self.error_help(
                    f.span(),
                    format!("an event can only come from a relation its service owns; {q} is not in owns"),
                    format!("add \"{q}\" to this service's owns"),
                );
            }
            Some(q)
        });
        let mut key = Vec::new();
        if let Some(k) = &e.key {
            if k.get_ref().is_empty() {
                self.error(k.span(), "an event key needs at least one column");
            }
            for col in k.get_ref() {
                if let Some(ident) = self.ident(col) {
                    key.push((ident, col.span()));
                }
            }
        }
        let contract = e.contract.as_ref().and_then(|c| {
            let Some(ck) = ContractKey::parse(c.get_ref()) else {
                self.error_help(
                    c.span(),
                    format!("{:?} is not a contract version of this service", c.get_ref()),
                    "write <contract>.v<version>, e.g. \"products.v1\"",
                );
                return None;
            };
            match contracts.iter().find(|x| x.key() == ck) {
                None => self.error(
                    c.span(),
                    format!("this service defines no contract {ck} for the event's payload"),
                ),
                Some(contract) => {
                    if let ContractShape::Columns(cols) = &contract.shape {
                        for (col, span) in &key {
                            if !cols.contains(col) {
                                self.error_help(
                                    span.clone(),
                                    format!("key column {col} is not in contract {ck}"),
                                    format!(
                                        "every envelope carries its key, so the key is part of what the event publishes: use columns of {ck} ({}), or add {col} to the contract",
                                        cols.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    if from.as_ref().is_some_and(|f| *f != contract.from)
                        || matches!(contract.shape, ContractShape::Query(_))
                    {
                        self.error(
                            c.span(),
                            format!(
                                "a state event's payload contract must list columns of the event's own table; {ck} does not"
                            ),
                        );
                    }
                }
            }
            Some(ck)
        });
        if from.is_some() || e.from.is_some() {
            // A state event: which rows, identified how, carrying what.
            if e.key.is_none() {
                self.error_help(raw.span(), "a state event needs a `key`", "e.g. key = [\"id\"]");
            }
            if e.contract.is_none() {
                self.error_help(
                    raw.span(),
                    "a state event needs a `contract` for its payload",
                    "e.g. contract = \"products.v1\"",
                );
            }
        } else if e.key.is_some() {
            self.error(
                e.key.as_ref().expect("checked").span(),
                "`key` belongs to state events, which also name `from`",
            );
        }
        let unchanged = match &e.unchanged {
            None => Unchanged::Skip,
            Some(u) if e.from.is_none() => {
                self.error(u.span(), "`unchanged` belongs to state events, which also name `from`");
                Unchanged::Skip
            }
            Some(u) => match u.get_ref().as_str() {
                "skip" => Unchanged::Skip,
                "emit" => Unchanged::Emit,
                other => {
                    self.error_help(
                        u.span(),
                        format!("{other:?} is not a choice for `unchanged`"),
                        "\"skip\" (no event when no contract column changed; the default) or \"emit\" (an event for every UPDATE)",
                    );
                    Unchanged::Skip
                }
            },
        };
        let compatibility = match &e.compatibility {
            None => Compatibility::default(),
            Some(c) => Compatibility::parse(c.get_ref()).unwrap_or_else(|| {
                self.error_help(
                    c.span(),
                    format!("{:?} is not a choice for `compatibility`", c.get_ref()),
                    "\"backward\" (the default), \"forward\", \"full\" or \"none\"",
                );
                Compatibility::default()
            }),
        };
        if self.problems() != before {
            return None;
        }
        Some(Event {
            name: name?,
            from,
            key: key.into_iter().map(|(k, _)| k).collect(),
            contract,
            description: e.description.as_ref().and_then(|d| self.text(d)),
            unchanged,
            compatibility,
            location: self.src.locate(raw.span().start),
        })
    }
}
