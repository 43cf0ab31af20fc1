//! The SQL that gives the target the service's tables: what it has in the
//! shared database (read by [`crate::inspect`]) minus what the target
//! already has (read by [`crate::target`]), as statements in order.
//!
//! Two parts: before the copy, the tables with their primary keys and
//! checks (replication needs the key); after it, the other indexes and
//! constraints, built once over the copied rows rather than row by row.
//! Until the cutover the service's owner role may read its tables on the
//! target but not write them: only replication writes there.

use std::collections::BTreeSet;

use deed_contracts::owner_role;
use deed_ident::{Ident, quote_literal};

use crate::inspect::{Column, Inspected, Sequence, Table};
use crate::target::TargetLive;

/// Statements for the target, each part applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub before_copy: Vec<String>,
    pub after_copy: Vec<String>,
}

/// The privileges the side that is not live loses on the tables, and on
/// their sequences.
pub const TABLE_WRITES: &str = "INSERT, UPDATE, DELETE, TRUNCATE";
pub const SEQUENCE_WRITES: &str = "USAGE, UPDATE";

pub fn script(service: &str, found: &Inspected, live: &TargetLive) -> Script {
    let owner = owner_role(service);
    let mut before = Vec::new();
    let schemas: BTreeSet<&Ident> = found
        .tables
        .iter()
        .map(|t| &t.name.schema)
        .chain(found.sequences.iter().map(|s| &s.name.schema))
        .chain(found.enums.iter().map(|e| &e.name.schema))
        .collect();
    for s in schemas {
        if !live.schemas.contains(s.as_str()) {
            before.push(format!("CREATE SCHEMA {}", s.quoted()));
        }
        before.push(format!("GRANT USAGE ON SCHEMA {} TO {}", s.quoted(), owner.quoted()));
    }
    for e in found.enums.iter().filter(|e| !live.types.contains(&e.name.to_string())) {
        let labels: Vec<String> = e.labels.iter().map(|l| quote_literal(l)).collect();
        before.push(format!("CREATE TYPE {} AS ENUM ({})", e.name.quoted(), labels.join(", ")));
    }
    for s in found.sequences.iter().filter(|s| s.identity_of.is_none()) {
        if !live.sequences.contains(&s.name.to_string()) {
            before.push(format!("CREATE SEQUENCE {} {}", s.name.quoted(), s.options));
            before.push(format!("ALTER SEQUENCE {} OWNER TO {}", s.name.quoted(), owner.quoted()));
        }
    }
    let mut after = Vec::new();
    for t in &found.tables {
        let exists = live.tables.contains_key(&t.name.to_string());
        if !exists {
            before.push(create_table(t, &found.sequences));
            before.push(format!("ALTER TABLE {} OWNER TO {}", t.name.quoted(), owner.quoted()));
            if t.replica_full {
                before.push(format!("ALTER TABLE {} REPLICA IDENTITY FULL", t.name.quoted()));
            }
        }
        before.push(format!(
            "REVOKE {TABLE_WRITES} ON {} FROM {}",
            t.name.quoted(),
            owner.quoted()
        ));
        let have = live.tables.get(&t.name.to_string());
        for c in &t.constraints {
            if have.is_some_and(|h| h.constraints.contains(c.name.as_str())) {
                continue;
            }
            after.push(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                t.name.quoted(),
                c.name.quoted(),
                c.definition
            ));
        }
        for (name, def) in &t.indexes {
            if have.is_some_and(|h| h.indexes.contains(name.as_str())) {
                continue;
            }
            after.push(def.clone());
        }
    }
    for s in &found.sequences {
        if let (None, Some((table, column))) = (&s.identity_of, &s.owned_by) {
            if !live.sequences.contains(&s.name.to_string()) {
                before.push(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    s.name.quoted(),
                    table.quoted(),
                    column.quoted()
                ));
            }
        }
    }
    for s in found.sequences.iter().filter(|s| s.identity_of.is_none()) {
        before.push(format!(
            "REVOKE {SEQUENCE_WRITES} ON SEQUENCE {} FROM {}",
            s.name.quoted(),
            owner.quoted()
        ));
    }
    Script { before_copy: before, after_copy: after }
}

fn create_table(t: &Table, sequences: &[Sequence]) -> String {
    let mut parts: Vec<String> = t.columns.iter().map(|c| column(t, c, sequences)).collect();
    for c in &t.checks {
        parts.push(format!("CONSTRAINT {} {}", c.name.quoted(), c.definition));
    }
    if let Some(k) = &t.key_constraint {
        parts.push(format!("CONSTRAINT {} {}", k.name.quoted(), k.definition));
    }
    format!("CREATE TABLE {} (\n    {}\n)", t.name.quoted(), parts.join(",\n    "))
}

fn column(t: &Table, c: &Column, sequences: &[Sequence]) -> String {
    let mut out = format!("{} {}", c.name.quoted(), c.sql_type);
    if let Some(coll) = &c.collation {
        out.push_str(&format!(" COLLATE {coll}"));
    }
    if let Some(expr) = &c.generated {
        out.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
    }
    if let Some(kind) = c.identity {
        let how = if kind == 'a' { "ALWAYS" } else { "BY DEFAULT" };
        out.push_str(&format!(" GENERATED {how} AS IDENTITY"));
        let seq = sequences.iter().find(|s| {
            s.identity_of.as_ref().is_some_and(|(tb, col)| *tb == t.name && *col == c.name)
        });
        if let Some(s) = seq {
            // The column's type is the sequence's; `AS` is not an identity option.
            let options = s.options.split_once(" INCREMENT BY ").map(|(_, rest)| rest);
            if let Some(rest) = options {
                out.push_str(&format!(" (INCREMENT BY {rest})"));
            }
        }
    }
    if let Some(d) = &c.default {
        out.push_str(&format!(" DEFAULT {d}"));
    }
    if c.not_null {
        out.push_str(" NOT NULL");
    }
    out
}
