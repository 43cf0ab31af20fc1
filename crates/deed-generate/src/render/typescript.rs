//! TypeScript: an npm package (`package.json`, `tsconfig.json`, sources
//! under `src/`) with the row type of every contract view, as
//! node-postgres returns it, and every event's envelope as a
//! discriminated union on `op`, with a runtime validator per event
//! (`parseX` throws a `DeedValidationError` naming the path; `isX` is a
//! type guard), written in plain TypeScript so the package needs nothing
//! at run time.
//!
//! View rows follow node-postgres's default parsers: `int8` and `numeric`
//! are strings (every digit kept), dates and timestamps `Date`s, json
//! and jsonb parsed, enums their labels. Event values follow the event's
//! JSON ([`deed_events::JsonForm`]). A column that may be NULL is
//! `T | null`; in an event it may also be absent (a version without it).

use deed_events::JsonForm;

use super::names::{package_name, pascal, quoted};
use super::{Files, NOTICE};
use crate::model::{Column, ContractModel, Model, PgType, Scalar, TypeKind};

pub fn render(model: &Model, service: Option<&str>) -> Files {
    let mut files = Files::new();
    files.insert("package.json".into(), package_json(&package_name(service)));
    files.insert("tsconfig.json".into(), TSCONFIG.replace("{NOTICE}", NOTICE));
    files.insert("src/validate.ts".into(), format!("// {NOTICE}\n{VALIDATE}"));
    files.insert("src/contracts.ts".into(), contracts(model));
    files.insert(super::QUERIES.into(), super::queries(model, |_| false));
    files.insert("src/events.ts".into(), events(model));
    files.insert(
        "src/index.ts".into(),
        format!(
            "// {NOTICE}\nexport * from \"./contracts.js\";\nexport * from \"./events.js\";\nexport {{ DeedValidationError }} from \"./validate.js\";\nexport type {{ Envelope }} from \"./validate.js\";\n"
        ),
    );
    files
}

fn package_json(name: &str) -> String {
    let value = serde_json::json!({
        "name": name,
        "version": "1.0.0",
        "description": format!("Typed models of deed contracts and events. {NOTICE}"),
        "type": "module",
        "main": "dist/index.js",
        "types": "dist/index.d.ts",
        "exports": {".": {"types": "./dist/index.d.ts", "default": "./dist/index.js"}},
        "files": ["dist", "src"],
        "scripts": {"build": "tsc -p .", "prepare": "tsc -p ."},
        "devDependencies": {"typescript": ">=5.0"}
    });
    serde_json::to_string_pretty(&value).expect("JSON values serialise") + "\n"
}

const TSCONFIG: &str = r#"{
  "//": "{NOTICE}",
  "compilerOptions": {
    "target": "ES2020",
    "module": "ES2020",
    "moduleResolution": "node",
    "lib": ["ES2020"],
    "types": [],
    "strict": true,
    "exactOptionalPropertyTypes": false,
    "declaration": true,
    "outDir": "dist",
    "rootDir": "src"
  },
  "include": ["src"]
}
"#;

const VALIDATE: &str = include_str!("typescript_validate.ts");

/// A property name: bare when it is a plain identifier, else quoted.
fn property(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain { name.to_string() } else { quoted(name) }
}

fn labels(labels: &[String]) -> String {
    if labels.is_empty() {
        // An enum without labels has no value.
        return "never".into();
    }
    labels.iter().map(|l| quoted(l)).collect::<Vec<_>>().join(" | ")
}

/// The type node-postgres gives a value of `t` with its default parsers.
fn row_type(t: &PgType) -> String {
    match &t.kind {
        TypeKind::Enum(l) => labels(l),
        // node-postgres parses arrays of the types it knows; an array of
        // enums or of other types arrives as PostgreSQL's text.
        TypeKind::Array(element) => match &element.kind {
            // node-postgres parses numeric[] into floats (digits past a
            // double's are lost) and int8[] into strings.
            TypeKind::Scalar(Scalar::Numeric) => "(number | null)[]".into(),
            TypeKind::Scalar(s) if !matches!(s, Scalar::Other | Scalar::Interval) => {
                format!("({} | null)[]", row_type(element))
            }
            _ => "string".into(),
        },
        TypeKind::Scalar(s) => match s {
            Scalar::Bool => "boolean",
            Scalar::Int16 | Scalar::Int32 | Scalar::Float32 | Scalar::Float64 => "number",
            Scalar::Date | Scalar::Timestamp | Scalar::Timestamptz => "Date",
            Scalar::Bytea => "Uint8Array",
            Scalar::Json | Scalar::Jsonb => "unknown",
            Scalar::Interval => "object",
            Scalar::Int64
            | Scalar::Numeric
            | Scalar::Text
            | Scalar::Uuid
            | Scalar::Time
            | Scalar::Other => "string",
        }
        .into(),
    }
}

fn contract_name(c: &ContractModel) -> String {
    pascal(&[&c.service, &c.name, &format!("v{}", c.version)])
}

fn contracts(model: &Model) -> String {
    let mut out = format!(
        "// {NOTICE}\n// Rows of deed's contract views, as node-postgres returns them. Read-only.\n"
    );
    for c in &model.contracts {
        let name = contract_name(c);
        let columns: Vec<String> = c.columns.iter().map(|col| quoted(&col.name)).collect();
        out += &format!(
            "\n/** {}: the view {}.{} (read-only).{} */\nexport interface {name} {{\n",
            c.reference(),
            c.schema,
            c.view,
            c.description.as_deref().map(|d| format!(" {}", comment(d))).unwrap_or_default()
        );
        for col in &c.columns {
            let ty = row_type(&col.ty);
            let ty = if col.not_null { ty } else { format!("{ty} | null") };
            out += &format!(
                "  /** {}: {} */\n  readonly {}: {ty};\n",
                comment(&col.ty.sql),
                comment(&col.why),
                property(&col.name)
            );
        }
        out += "}\n";
        out += &format!(
            "\n/** Where {name} rows are read from, their columns in order, and the query that reads them all. */\nexport const {name} = {{\n  contract: {},\n  view: {},\n  columns: [{}],\n  select: {},\n}} as const;\n",
            quoted(&c.reference()),
            quoted(&c.view_sql()),
            columns.join(", "),
            quoted(&super::select(c, |_| false))
        );
    }
    out
}

/// The TypeScript type of a column's value in an event.
fn json_type(c: &Column) -> String {
    match c.json {
        JsonForm::Boolean => "boolean".into(),
        JsonForm::Integer => "number".into(),
        JsonForm::Float => "number | \"NaN\" | \"Infinity\" | \"-Infinity\"".into(),
        JsonForm::Json => "unknown".into(),
        JsonForm::Timestamp { .. } => "string".into(),
        JsonForm::Text => match &c.ty.kind {
            TypeKind::Enum(l) => labels(l),
            _ => "string".into(),
        },
    }
}

/// The runtime check of a column's value in an event.
fn json_check(c: &Column) -> String {
    match c.json {
        JsonForm::Boolean => "v.boolean".to_string(),
        JsonForm::Integer => "v.integer".into(),
        JsonForm::Float => "v.float".into(),
        JsonForm::Json => "v.any".into(),
        JsonForm::Timestamp { zoned } => format!("v.timestamp({zoned})"),
        JsonForm::Text => match &c.ty.kind {
            TypeKind::Enum(l) => {
                format!("v.oneOf([{}])", l.iter().map(|l| quoted(l)).collect::<Vec<_>>().join(", "))
            }
            TypeKind::Scalar(Scalar::Numeric) => "v.numeric".into(),
            TypeKind::Scalar(Scalar::Uuid) => "v.uuid".into(),
            _ => "v.string".into(),
        },
    }
}

fn fields(name: &str, summary: &str, columns: &[Column]) -> String {
    let mut out = format!("\n/** {} */\nexport interface {name} {{\n", comment(summary));
    for c in columns {
        let (opt, ty) =
            if c.not_null { ("", json_type(c)) } else { ("?", format!("{} | null", json_type(c))) };
        out += &format!(
            "  /** {}: {} */\n  readonly {}{opt}: {ty};\n",
            comment(&c.ty.sql),
            comment(&c.why),
            property(&c.name)
        );
    }
    out += "}\n";
    let checks: Vec<String> = columns
        .iter()
        .map(|c| format!("  [{}, {}, {}],\n", quoted(&c.name), json_check(c), c.not_null))
        .collect();
    out += &format!("const check{name}: v.Check = v.fields([\n{}]);\n", checks.concat());
    out
}

fn events(model: &Model) -> String {
    let mut out = format!(
        "// {NOTICE}\n// deed's events: envelopes, keys and payloads, with runtime validators.\nimport * as v from \"./validate.js\";\nimport type {{ Envelope }} from \"./validate.js\";\n"
    );
    for e in &model.events {
        let name = pascal(&[&e.service, &e.name]);
        let kind = e.kind();
        let summary = match &e.description {
            Some(d) => format!("{kind}: {}", comment(d)),
            None => kind.clone(),
        };
        let (ty, check) = match &e.contract {
            None => (
                format!(" Envelope<{}, null, \"domain\", unknown, unknown>", quoted(&kind)),
                format!("v.domainEnvelope({})", quoted(&kind)),
            ),
            Some(contract) => {
                out += &fields(&format!("{name}Key"), &format!("The key of {kind}."), &e.key);
                out += &fields(
                    &format!("{name}Row"),
                    &format!("The row {kind} carries ({contract})."),
                    &e.payload,
                );
                let (t, c) = (quoted(&kind), quoted(contract));
                (
                    format!(
                        "\n  | Envelope<{t}, {c}, \"insert\" | \"update\", {name}Key, {name}Row>\n  | (Envelope<{t}, {c}, \"delete\", {name}Key, null> & {{ readonly tombstone: true }})\n  | Envelope<{t}, {c}, \"truncate\", Record<string, never>, null>"
                    ),
                    format!("v.stateEnvelope({t}, {c}, check{name}Key, check{name}Row)"),
                )
            }
        };
        out += &format!(
            "\n/** {summary} */\nexport type {name} ={ty};\n\nconst check{name}: v.Check = {check};\n\n/** Checks that `value` is a {kind} event; throws a DeedValidationError naming what is wrong. */\nexport function parse{name}(value: unknown): {name} {{\n  check{name}(value, \"$\");\n  return value as {name};\n}}\n\n/** Whether `value` is a {kind} event. */\nexport function is{name}(value: unknown): value is {name} {{\n  return v.passes(check{name}, value);\n}}\n"
        );
    }
    out
}

/// Text inside a `/** */` comment: nothing can end it.
fn comment(text: &str) -> String {
    text.replace("*/", "* /").replace('\n', " ")
}
