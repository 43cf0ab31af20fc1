//! How one state event reads one relation's rows: worked out once per
//! Relation message (column positions, the JSON text of each payload
//! member's name, the shared strings), so each row is only written out.

use std::sync::Arc;

use deed_events::{Kind, push_json_str};

use crate::error::RelayError;
use crate::pgoutput::{Column, Value};
use crate::spec::StateEvent;
use crate::value::write_json;

#[derive(Debug)]
pub struct Plan {
    pub name: String,
    pub kind: Kind,
    pub contract: Arc<str>,
    pub skip_unchanged: bool,
    table: String,
    /// (column name as JSON text with its colon, position, type).
    key: Vec<(String, usize, u32)>,
    payload: Vec<(String, usize, u32)>,
    /// Positions of the payload's columns, for the unchanged check.
    pub published: Vec<usize>,
}

impl Plan {
    /// The plan of `ev` for a relation with `columns`; an error names a
    /// column the event needs and the table lacks.
    pub fn new(
        service: &str,
        table: &str,
        ev: &StateEvent,
        columns: &[Column],
    ) -> Result<Plan, String> {
        let find = |name: &str, what: &dyn Fn() -> String| {
            columns
                .iter()
                .position(|c| c.name == name)
                .map(|i| {
                    let mut member = String::with_capacity(name.len() + 3);
                    push_json_str(&mut member, name);
                    member.push(':');
                    (member, i, columns[i].type_oid)
                })
                .ok_or_else(what)
        };
        let key = ev
            .key
            .iter()
            .map(|k| {
                find(k, &|| format!("{table} has no column {k}, the key of event {}", ev.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let payload = ev
            .columns
            .iter()
            .map(|c| {
                find(c, &|| format!("{table} has no column {c}, which {} carries", ev.contract))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Plan {
            name: ev.name.clone(),
            kind: Kind::new(service, &ev.name),
            contract: ev.contract.as_str().into(),
            skip_unchanged: ev.skip_unchanged,
            table: table.to_string(),
            published: payload.iter().map(|(_, i, _)| *i).collect(),
            key,
            payload,
        })
    }

    /// The key object's JSON text, from a row that carries the key.
    pub fn key_of(&self, tuple: &[Value]) -> Result<String, RelayError> {
        let mut out = String::with_capacity(16 * self.key.len() + 2);
        out.push('{');
        for (n, (member, i, oid)) in self.key.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(member);
            if !tuple.get(*i).is_some_and(|v| write_json(*oid, v, &mut out)) {
                return Err(RelayError::Setup(format!(
                    "the old row of {} lacks key column {}: its replica identity must cover the key (deed apply sets it)",
                    self.table,
                    member.trim_end_matches(':').trim_matches('"')
                )));
            }
        }
        out.push('}');
        Ok(out)
    }

    /// The payload object's JSON text: the new row's values, and the old
    /// row's for an out-of-line value the new one did not resend.
    pub fn payload(&self, new: &[Value], old: Option<&[Value]>) -> Result<String, RelayError> {
        let mut out = String::with_capacity(24 * self.payload.len() + 2);
        out.push('{');
        for (n, (member, i, oid)) in self.payload.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(member);
            let written = new.get(*i).is_some_and(|v| write_json(*oid, v, &mut out))
                || old.and_then(|o| o.get(*i)).is_some_and(|v| write_json(*oid, v, &mut out));
            if !written {
                return Err(RelayError::Setup(format!(
                    "{}.{} was not sent (an unchanged out-of-line value) and no old row was logged: set REPLICA IDENTITY FULL (deed apply does)",
                    self.table,
                    member.trim_end_matches(':').trim_matches('"')
                )));
            }
        }
        out.push('}');
        Ok(out)
    }
}
