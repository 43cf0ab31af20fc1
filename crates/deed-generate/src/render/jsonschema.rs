//! JSON Schema (2020-12) of each event: its envelope, key and payload,
//! one file per event named after it (`catalog.product_changed.schema.json`).
//!
//! A column's schema follows how the relay writes it
//! ([`deed_events::JsonForm`]): integers and booleans as JSON, floats as
//! numbers or `NaN`/`Infinity`/`-Infinity`, json and jsonb as any JSON,
//! timestamps as RFC 3339 strings, everything else as PostgreSQL prints
//! it (numeric as a string of digits, enums as one of their labels). A
//! column that may be NULL accepts `null`. Each carries its PostgreSQL
//! type in `x-postgres-type` and why it is or is not nullable in
//! `description`.

use deed_events::JsonForm;
use serde_json::{Value, json};

use super::{Files, NOTICE};
use crate::model::{Column, EventModel, Model, Scalar, TypeKind};

pub fn render(model: &Model) -> Files {
    let mut files = Files::new();
    for e in &model.events {
        let text = serde_json::to_string_pretty(&event(e)).expect("JSON values serialise");
        files.insert(format!("{}.schema.json", e.kind()), text + "\n");
    }
    files
}

/// The schema of one event's envelope.
pub fn event(e: &EventModel) -> Value {
    let kind = e.kind();
    let mut description = format!("{kind}. {NOTICE}");
    if let Some(d) = &e.description {
        description = format!("{d}\n\n{description}");
    }
    let mut properties = serde_json::Map::new();
    properties.insert("id".into(), json!({"type": "string", "description": "<service>/<position>: the same for a redelivered event"}));
    properties.insert("type".into(), json!({"const": kind}));
    properties.insert(
        "contract".into(),
        match &e.contract {
            Some(c) => json!({"const": c}),
            None => json!({"type": "null"}),
        },
    );
    let ops: &[&str] =
        if e.is_domain() { &["domain"] } else { &["insert", "update", "delete", "truncate"] };
    let empty = json!({"type": "object", "maxProperties": 0});
    properties.insert(
        "key".into(),
        if e.is_domain() { json!({}) } else { json!({"anyOf": [{"$ref": "#/$defs/key"}, empty]}) },
    );
    properties.insert("op".into(), json!({"enum": ops}));
    properties.insert("position".into(), json!({"type": "string", "description": "the place in the owner's commit order; sorts as text"}));
    properties.insert(
        "lsn".into(),
        json!({"type": "string", "description": "the commit's LSN, as PostgreSQL prints it"}),
    );
    properties.insert("committed_at".into(), json!({"type": "string", "format": "date-time"}));
    properties.insert(
        "payload".into(),
        if e.is_domain() {
            json!({})
        } else {
            json!({"anyOf": [{"$ref": "#/$defs/row"}, {"type": "null"}]})
        },
    );
    properties.insert("tombstone".into(), json!({"const": true}));
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": format!("urn:deed:event:{kind}"),
        "title": kind,
        "description": description,
        "type": "object",
        "required": ["id", "type", "contract", "key", "op", "position", "lsn", "committed_at", "payload"],
        "additionalProperties": false,
        "properties": Value::Object(properties),
    });
    if !e.is_domain() {
        // Inserts and updates carry the row; a delete carries its key and
        // no row; a TRUNCATE neither.
        schema["allOf"] = json!([
            {
                "if": {"properties": {"op": {"enum": ["insert", "update"]}}},
                "then": {"properties": {"key": {"$ref": "#/$defs/key"}, "payload": {"$ref": "#/$defs/row"}}}
            },
            {
                "if": {"properties": {"op": {"const": "delete"}}},
                "then": {"properties": {"key": {"$ref": "#/$defs/key"}, "payload": {"type": "null"}}, "required": ["tombstone"]}
            },
            {
                "if": {"properties": {"op": {"const": "truncate"}}},
                "then": {"properties": {"key": {"type": "object", "maxProperties": 0}, "payload": {"type": "null"}}}
            }
        ]);
        schema["$defs"] = json!({"key": object(&e.key), "row": object(&e.payload)});
    }
    schema
}

/// An object of these columns: the NOT NULL ones required, others
/// optional (absent from an event of a version without them), and columns
/// of later versions allowed, so an event's `compatibility` rule is what
/// decides which versions a consumer reads.
fn object(columns: &[Column]) -> Value {
    let mut properties = serde_json::Map::new();
    for c in columns {
        properties.insert(c.name.clone(), column(c));
    }
    json!({
        "type": "object",
        "required": columns.iter().filter(|c| c.not_null).map(|c| c.name.as_str()).collect::<Vec<_>>(),
        "properties": Value::Object(properties),
    })
}

/// One column's values.
pub fn column(c: &Column) -> Value {
    let mut base = match c.json {
        JsonForm::Boolean => json!({"type": "boolean"}),
        JsonForm::Integer => json!({"type": "integer"}),
        JsonForm::Float => {
            json!({"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]})
        }
        JsonForm::Json => json!({}),
        JsonForm::Timestamp { zoned: true } => json!({"type": "string", "format": "date-time"}),
        JsonForm::Timestamp { zoned: false } => json!({"type": "string"}),
        JsonForm::Text => text(&c.ty.kind),
    };
    let mut out = if c.not_null { base } else { json!({"anyOf": [base.take(), {"type": "null"}]}) };
    out["x-postgres-type"] = json!(c.ty.sql);
    out["description"] = json!(c.why);
    out
}

fn text(kind: &TypeKind) -> Value {
    match kind {
        TypeKind::Enum(labels) => json!({"type": "string", "enum": labels}),
        TypeKind::Scalar(Scalar::Numeric) => json!({
            "type": "string",
            "pattern": "^(-?[0-9]+(\\.[0-9]+)?|NaN|-?Infinity)$"
        }),
        TypeKind::Scalar(Scalar::Uuid) => json!({"type": "string", "format": "uuid"}),
        _ => json!({"type": "string"}),
    }
}

/// One event's schema standing alone inside another document (AsyncAPI's
/// messages): the key and row inlined where they are referenced, no
/// `$schema`, `$id` or `$defs`, so it is the draft-07 subset every
/// validator and AsyncAPI's default schema format read alike.
pub fn standalone(e: &EventModel) -> Value {
    let mut schema = event(e);
    let defs = schema.as_object_mut().and_then(|o| o.remove("$defs")).unwrap_or(Value::Null);
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
        o.remove("$id");
    }
    inline(&mut schema, &defs);
    schema
}

fn inline(value: &mut Value, defs: &Value) {
    match value {
        Value::Object(o) => {
            let target =
                o.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/"));
            if let Some(name) = target {
                *value = defs[name].clone();
                return;
            }
            o.values_mut().for_each(|v| inline(v, defs));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| inline(v, defs)),
        _ => {}
    }
}
