//! Rust: a crate (`Cargo.toml`, `src/lib.rs` re-exporting `src/models.rs`,
//! which rustfmt skips) with a `sqlx::FromRow`
//! struct per contract view and its `SELECT` (which casts to text what
//! sqlx cannot decode into a Rust type), and serde types of every
//! event: the envelope with its change as an enum on `op` (a delete has
//! a key and no row, a truncate neither), checked for its type and
//! contract by `from_json`.
//!
//! Types are sqlx's: `rust_decimal::Decimal` for numeric, `chrono` for
//! dates and times, `uuid::Uuid`, `serde_json::Value` for json and
//! jsonb, a Rust enum per PostgreSQL enum (`sqlx::Type` and serde, by
//! label). A column that may be NULL is an `Option`.

use std::collections::BTreeMap;

use deed_events::JsonForm;

use super::names::{package_name, pascal, quoted, unique};
use super::{Files, NOTICE};
use crate::model::{Column, EventModel, Model, PgType, Scalar, TypeKind};

pub fn render(model: &Model, service: Option<&str>) -> Files {
    let mut files = Files::new();
    files.insert("Cargo.toml".into(), cargo_toml(&package_name(service)));
    files.insert(
        "src/lib.rs".into(),
        format!(
            "//! deed's contracts and events, typed. {NOTICE}\n\n// Generated code is laid out by deed, not rustfmt.\n#[rustfmt::skip]\nmod models;\n\npub use models::*;\n"
        ),
    );
    files.insert("src/models.rs".into(), lib(model));
    let enums = enums(model);
    files.insert(super::QUERIES.into(), super::queries(model, |col| row_type(&col.ty, &enums).1));
    files
}

fn cargo_toml(name: &str) -> String {
    format!(
        "# {NOTICE}\n[package]\nname = {}\nversion = \"1.0.0\"\nedition = \"2021\"\npublish = false\ndescription = \"Typed models of deed contracts and events\"\n\n[dependencies]\nchrono = {{ version = \"0.4\", default-features = false, features = [\"std\", \"serde\"] }}\nrust_decimal = {{ version = \"1\", features = [\"serde\"] }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\nsqlx = {{ version = \"0.8\", default-features = false, features = [\"postgres\", \"derive\", \"chrono\", \"uuid\", \"rust_decimal\", \"json\"] }}\nuuid = {{ version = \"1\", features = [\"serde\"] }}\n",
        quoted(name)
    )
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "union",
];

/// Field names for these columns: snake_case identifiers, unique, each
/// with the column's own name when it differs.
fn members(columns: &[Column]) -> Vec<(String, Option<String>)> {
    let mut taken: Vec<String> = Vec::new();
    columns
        .iter()
        .map(|c| {
            let mut base: String = c
                .name
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '_' })
                .collect();
            if base.is_empty() || base.starts_with(|ch: char| ch.is_ascii_digit()) || base == "_" {
                base.insert(0, 'c');
            }
            if RUST_KEYWORDS.contains(&base.as_str()) {
                base.push('_');
            }
            let name = unique(base, &mut taken, "_");
            let rename = (name != c.name).then(|| c.name.clone());
            (name, rename)
        })
        .collect()
}

/// The enums of the model by their SQL type name, each with its Rust name.
fn enums(model: &Model) -> BTreeMap<String, (String, Vec<String>)> {
    let mut out = BTreeMap::new();
    let columns = model
        .contracts
        .iter()
        .flat_map(|c| &c.columns)
        .chain(model.events.iter().flat_map(|e| e.key.iter().chain(&e.payload)));
    for c in columns {
        if let TypeKind::Enum(labels) = &c.ty.kind {
            let bare = c.ty.sql.rsplit('.').next().unwrap_or(&c.ty.sql).trim_matches('"');
            out.entry(c.ty.sql.clone())
                .or_insert_with(|| (type_name(pascal(&[bare])), labels.clone()));
        }
    }
    // Two schemas' enums of one name: qualify the later ones.
    let mut seen: Vec<String> = Vec::new();
    for (sql, (name, _)) in out.iter_mut() {
        if seen.contains(name) {
            *name = type_name(pascal(&[sql]));
        }
        seen.push(name.clone());
    }
    out
}

type Enums = BTreeMap<String, (String, Vec<String>)>;

/// Names the crate itself or Rust's prelude take.
const TAKEN_TYPE_NAMES: &[&str] = &[
    "Event",
    "Change",
    "DomainChange",
    "EventType",
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "String",
    "Vec",
    "Box",
    "Serialize",
    "Deserialize",
    "Self",
];

/// `name`, or `name` + `Enum` where the crate or the prelude has it.
fn type_name(name: String) -> String {
    if TAKEN_TYPE_NAMES.contains(&name.as_str()) { format!("{name}Enum") } else { name }
}

/// A PostgreSQL enum as a Rust enum, read by its label whatever schema
/// the type is in (sqlx's derive matches by a name the search path
/// changes), written by serde as its label.
fn enum_type(sql: &str, name: &str, labels: &[String]) -> String {
    let mut variants: Vec<(String, &String)> = Vec::new();
    for label in labels {
        let mut variant = pascal(&[label]);
        if variant == "Self" {
            variant.push('_');
        }
        while variants.iter().any(|(v, _)| *v == variant) {
            variant.push('_');
        }
        variants.push((variant, label));
    }
    let mut out = format!(
        "\n/// The PostgreSQL enum {}.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]\npub enum {name} {{\n",
        doc(sql)
    );
    for (variant, label) in &variants {
        out += &format!("    #[serde(rename = {})]\n    {variant},\n", quoted(label));
    }
    out += "}\n";
    let arms: Vec<String> = variants
        .iter()
        .map(|(v, l)| format!("            {} => Ok({name}::{v}),\n", quoted(l)))
        .collect();
    out += &format!(
        "\nimpl std::str::FromStr for {name} {{\n    type Err = String;\n\n    fn from_str(label: &str) -> Result<Self, String> {{\n        match label {{\n{}            other => Err(format!(\"{{other:?}} is not a label of {}\")),\n        }}\n    }}\n}}\n",
        arms.concat(),
        doc(sql).replace('"', "'").replace('\\', "/").replace('{', "{{").replace('}', "}}")
    );
    out += &format!(
        "\nimpl sqlx::Type<sqlx::Postgres> for {name} {{\n    fn type_info() -> sqlx::postgres::PgTypeInfo {{\n        sqlx::postgres::PgTypeInfo::with_name(\"text\")\n    }}\n\n    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {{\n        matches!(ty.kind(), sqlx::postgres::PgTypeKind::Enum(_))\n            || <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)\n    }}\n}}\n\nimpl<'r> sqlx::Decode<'r, sqlx::Postgres> for {name} {{\n    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {{\n        Ok(<&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?.parse()?)\n    }}\n}}\n"
    );
    out
}

/// The Rust type of a view column, and whether `SELECT` casts it to text.
fn row_type(t: &PgType, enums: &Enums) -> (String, bool) {
    match &t.kind {
        TypeKind::Enum(_) => (enums[&t.sql].0.clone(), false),
        TypeKind::Array(element) => match &element.kind {
            TypeKind::Scalar(s) if !matches!(s, Scalar::Other | Scalar::Interval) => {
                (format!("Vec<Option<{}>>", scalar(*s)), false)
            }
            _ => ("String".into(), true),
        },
        // PgInterval has no serde: read as PostgreSQL prints it.
        TypeKind::Scalar(Scalar::Other | Scalar::Interval) => ("String".into(), true),
        TypeKind::Scalar(s) => (scalar(*s).into(), false),
    }
}

fn scalar(s: Scalar) -> &'static str {
    match s {
        Scalar::Bool => "bool",
        Scalar::Int16 => "i16",
        Scalar::Int32 => "i32",
        Scalar::Int64 => "i64",
        Scalar::Float32 => "f32",
        Scalar::Float64 => "f64",
        Scalar::Numeric => "rust_decimal::Decimal",
        Scalar::Uuid => "uuid::Uuid",
        Scalar::Date => "chrono::NaiveDate",
        Scalar::Time => "chrono::NaiveTime",
        Scalar::Timestamp => "chrono::NaiveDateTime",
        Scalar::Timestamptz => "chrono::DateTime<chrono::Utc>",
        Scalar::Interval => "sqlx::postgres::types::PgInterval",
        Scalar::Bytea => "Vec<u8>",
        Scalar::Json | Scalar::Jsonb => "serde_json::Value",
        Scalar::Text | Scalar::Other => "String",
    }
}

fn lib(model: &Model) -> String {
    let enums = enums(model);
    let mut out = format!(
        "//! The types. {NOTICE}\n#![allow(clippy::all)]\n\nuse serde::{{Deserialize, Serialize}};\n"
    );
    for (sql, (name, labels)) in &enums {
        out += &enum_type(sql, name, labels);
    }
    for c in &model.contracts {
        let name = pascal(&[&c.service, &c.name, &format!("v{}", c.version)]);
        out += &format!(
            "\n/// {}: a row of the view {}.{} (read-only).{}\n#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize, Deserialize)]\npub struct {name} {{\n",
            c.reference(),
            doc(&c.schema),
            doc(&c.view),
            c.description.as_deref().map(|d| format!("\n///\n/// {}", doc(d))).unwrap_or_default()
        );
        for (col, (field, rename)) in c.columns.iter().zip(members(&c.columns)) {
            let (ty, _) = row_type(&col.ty, &enums);
            let ty = if col.not_null { ty } else { format!("Option<{ty}>") };
            out += &format!("    /// {}: {}\n", doc(&col.ty.sql), doc(&col.why));
            if let Some(r) = &rename {
                out +=
                    &format!("    #[sqlx(rename = {0})]\n    #[serde(rename = {0})]\n", quoted(r));
            }
            out += &format!("    pub {field}: {ty},\n");
        }
        out += "}\n";
        out += &format!(
            "\nimpl {name} {{\n    /// The contract version, as the manifest names it.\n    pub const CONTRACT: &'static str = {};\n    /// Every column, in this struct's order, as `sqlx::query_as` reads it.\n    pub const SELECT: &'static str = {};\n}}\n",
            quoted(&c.reference()),
            quoted(&super::select(c, |col| row_type(&col.ty, &enums).1))
        );
    }
    out += EVENTS_RUNTIME;
    for e in &model.events {
        out += &event(e, &enums);
    }
    out
}

/// The Rust type of a column's value in an event.
fn json_type(c: &Column, enums: &Enums) -> String {
    match (c.json, &c.ty.kind) {
        (JsonForm::Boolean, _) => "bool".into(),
        (JsonForm::Integer, _) => "i64".into(),
        (JsonForm::Float, _) => "f64".into(),
        (JsonForm::Json, _) => "serde_json::Value".into(),
        (JsonForm::Timestamp { zoned: true }, _) => "chrono::DateTime<chrono::Utc>".into(),
        (JsonForm::Timestamp { zoned: false }, _) => "chrono::NaiveDateTime".into(),
        (JsonForm::Text, TypeKind::Enum(_)) => enums[&c.ty.sql].0.clone(),
        (
            JsonForm::Text,
            TypeKind::Scalar(s @ (Scalar::Numeric | Scalar::Uuid | Scalar::Date | Scalar::Time)),
        ) => scalar(*s).into(),
        (JsonForm::Text, _) => "String".into(),
    }
}

fn fields(name: &str, summary: &str, columns: &[Column], enums: &Enums) -> String {
    let mut out = format!(
        "\n/// {}\n#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\npub struct {name} {{\n",
        doc(summary)
    );
    for (c, (field, rename)) in columns.iter().zip(members(columns)) {
        out += &format!("    /// {}: {}\n", doc(&c.ty.sql), doc(&c.why));
        let mut attrs = Vec::new();
        if let Some(r) = rename {
            attrs.push(format!("rename = {}", quoted(&r)));
        }
        if c.json == JsonForm::Float {
            attrs.push(format!(
                "deserialize_with = {}",
                quoted(if c.not_null { "float::required" } else { "float::optional" })
            ));
        }
        if !c.not_null {
            attrs.push("default".into());
        }
        if !attrs.is_empty() {
            out += &format!("    #[serde({})]\n", attrs.join(", "));
        }
        let ty = json_type(c, enums);
        let ty = if c.not_null { ty } else { format!("Option<{ty}>") };
        out += &format!("    pub {field}: {ty},\n");
    }
    out + "}\n"
}

fn event(e: &EventModel, enums: &Enums) -> String {
    let name = type_name(pascal(&[&e.service, &e.name]));
    let kind = e.kind();
    let mut out = String::new();
    let change = match &e.contract {
        None => "DomainChange".to_string(),
        Some(contract) => {
            out += &fields(&format!("{name}Key"), &format!("The key of {kind}."), &e.key, enums);
            out += &fields(
                &format!("{name}Row"),
                &format!("The row {kind} carries ({contract})."),
                &e.payload,
                enums,
            );
            format!("Change<{name}Key, {name}Row>")
        }
    };
    out += &format!(
        "\n/// {}\npub type {name} = Event<{change}>;\n\n/// The envelope type of {name}.\npub const {}: EventType = EventType {{ kind: {}, contract: {} }};\n",
        doc(&match &e.description {
            Some(d) => format!("{kind}: {d}"),
            None => kind.clone(),
        }),
        constant(&name),
        quoted(&kind),
        e.contract
            .as_deref()
            .map(|c| format!("Some({})", quoted(c)))
            .unwrap_or_else(|| "None".into())
    );
    out
}

/// `CatalogProductChanged` → `CATALOG_PRODUCT_CHANGED`.
pub fn constant(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

const EVENTS_RUNTIME: &str = r#"
/// deed's envelope around a change: a state event's [`Change`] or a
/// domain event's [`DomainChange`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<C> {
    /// `<service>/<position>`: the same for a redelivered event.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub contract: Option<String>,
    /// The place in the owner's commit order; sorts as text.
    pub position: String,
    /// The commit's LSN, as PostgreSQL prints it.
    pub lsn: String,
    pub committed_at: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    pub change: C,
}

/// What a state event did, by its `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Change<K, R> {
    Insert { key: K, payload: R },
    Update { key: K, payload: R },
    /// A tombstone: the key, no row.
    Delete { key: K },
    /// The whole table was emptied.
    Truncate {},
}

/// A domain event: whatever `deed.emit` was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename = "domain")]
pub struct DomainChange {
    pub key: serde_json::Value,
    pub payload: serde_json::Value,
}

/// An event's `type` and `contract`, which [`Event::from_json`] checks.
pub struct EventType {
    pub kind: &'static str,
    pub contract: Option<&'static str>,
}

impl<C: serde::de::DeserializeOwned> Event<C> {
    /// Reads an event of `expected`: a well-formed event of another type
    /// or contract is an error too.
    pub fn from_json(text: &str, expected: &EventType) -> Result<Self, serde_json::Error> {
        use serde::de::Error;
        let event: Self = serde_json::from_str(text)?;
        if event.kind != expected.kind || event.contract.as_deref() != expected.contract {
            return Err(serde_json::Error::custom(format!(
                "a {} event of {:?}, expected {} of {:?}",
                event.kind, event.contract, expected.kind, expected.contract
            )));
        }
        Ok(event)
    }
}

/// Floats in events: a number, or "NaN", "Infinity" or "-Infinity".
#[allow(dead_code)]
mod float {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    fn read<E: serde::de::Error>(v: Value) -> Result<f64, E> {
        match v {
            Value::Number(n) => Ok(n),
            Value::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => Err(E::custom(format!("not a float: {t:?}"))),
            },
        }
    }

    pub fn required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        read(Value::deserialize(d)?)
    }

    pub fn optional<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Value>::deserialize(d)?.map(read).transpose()
    }
}
"#;

/// Text inside a `///` comment, on one line.
fn doc(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
