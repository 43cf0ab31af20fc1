//! Applying state events to a table: a batch collapses to the last event
//! of each key (the effects commit together, so the states between are
//! never seen) and becomes one upsert and one delete.

use std::collections::HashMap;

use deed_events::Received;
use serde_json::Value as Json;
use tokio_postgres::Transaction;

use crate::spec::TableSpec;

#[derive(Debug, Clone)]
pub struct TableStatements {
    pub upsert: String,
    pub delete: String,
    /// Every row: the source table was truncated.
    pub clear: String,
}

impl TableStatements {
    pub fn new(t: &TableSpec) -> TableStatements {
        let table = t.table.quoted();
        let cols: Vec<String> = t.columns.iter().map(|c| c.quoted()).collect();
        let key: Vec<String> = t.key.iter().map(|k| k.quoted()).collect();
        let rest: Vec<&String> = cols.iter().filter(|c| !key.contains(c)).collect();
        let conflict = if rest.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let set: Vec<String> = rest.iter().map(|c| format!("{c} = EXCLUDED.{c}")).collect();
            let old: Vec<String> = rest.iter().map(|c| format!("t.{c}")).collect();
            let new: Vec<String> = rest.iter().map(|c| format!("EXCLUDED.{c}")).collect();
            // An unchanged row is not rewritten: no dead tuple, no WAL.
            format!(
                "DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
                set.join(", "),
                old.join(", "),
                new.join(", ")
            )
        };
        let upsert = format!(
            "INSERT INTO {table} AS t ({c}) SELECT {c} FROM pg_catalog.jsonb_populate_recordset(NULL::{table}, $1::text::jsonb) ON CONFLICT ({k}) {conflict}",
            c = cols.join(", "),
            k = key.join(", "),
        );
        let tk: Vec<String> = key.iter().map(|k| format!("t.{k}")).collect();
        let dk: Vec<String> = key.iter().map(|k| format!("d.{k}")).collect();
        let delete = format!(
            "DELETE FROM {table} AS t USING pg_catalog.jsonb_populate_recordset(NULL::{table}, $1::text::jsonb) AS d WHERE ({}) = ({})",
            tk.join(", "),
            dk.join(", ")
        );
        // DELETE, not TRUNCATE: readers of the copy keep their snapshot and
        // no lock stops them.
        let clear = format!("DELETE FROM {table}");
        TableStatements { upsert, delete, clear }
    }

    /// Applies events in order, keeping only each key's last. A truncate
    /// empties the table: what came before it in the batch is moot.
    pub async fn apply(
        &self,
        tx: &Transaction<'_>,
        events: &[&Received],
    ) -> Result<(), tokio_postgres::Error> {
        let events = match events.iter().rposition(|e| e.is_truncate()) {
            Some(t) => {
                tx.execute(&self.clear, &[]).await?;
                &events[t + 1..]
            }
            None => events,
        };
        let mut last: HashMap<String, usize> = HashMap::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            last.insert(e.key_text(), i);
        }
        let mut order: Vec<usize> = last.into_values().collect();
        order.sort_unstable();
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for i in order {
            let e = events[i];
            if e.is_delete() {
                deletes.push(&e.key);
            } else {
                // The payload is the contract's columns, key included.
                upserts.push(&e.payload);
            }
        }
        if !upserts.is_empty() {
            tx.execute(&self.upsert, &[&json_array(upserts.into_iter())]).await?;
        }
        if !deletes.is_empty() {
            tx.execute(&self.delete, &[&json_array(deletes.into_iter())]).await?;
        }
        Ok(())
    }

    /// Rows already in contract form (a backfill chunk), as a JSON array.
    pub async fn upsert_rows(
        &self,
        tx: &Transaction<'_>,
        rows_json: &str,
    ) -> Result<u64, tokio_postgres::Error> {
        tx.execute(&self.upsert, &[&rows_json]).await
    }
}

fn json_array<'a>(items: impl Iterator<Item = &'a Json>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item.to_string());
    }
    out.push(']');
    out
}
