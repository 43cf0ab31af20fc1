//! Go: a module (`go.mod`, package `deedmodels`) with a struct per
//! contract view, tagged `db` and `json`, and its `Select` query and
//! `Pointers()` so `rows.Scan(r.Pointers()...)` reads a row with pgx
//! (v4 or v5) or `database/sql`; and a struct per event's envelope, key
//! and row with JSON tags and a `ParseX` that checks what `encoding/json`
//! cannot (the type, the operation, NOT NULL columns present), using the
//! standard library only.
//!
//! Types a driver scans into Go's own are Go's (`int64`, `time.Time`,
//! `[]*string` for `text[]`); numeric (every digit kept), uuid, enums,
//! intervals and anything else are read as text, which the `Select`
//! query casts them to. A column that may be NULL is a pointer.

use deed_events::JsonForm;

use super::names::{pascal, quoted, unique};
use super::{Files, NOTICE};
use crate::model::{Column, Model, PgType, Scalar, TypeKind};

pub const PACKAGE: &str = "deedmodels";

pub fn render(model: &Model) -> Files {
    let mut files = Files::new();
    files.insert("go.mod".into(), format!("// {NOTICE}\nmodule {PACKAGE}\n\ngo 1.19\n"));
    files.insert("contracts.go".into(), contracts(model));
    files.insert("events.go".into(), events(model));
    files.insert(super::QUERIES.into(), super::queries(model, |col| row_type(&col.ty).1));
    files
}

/// Go field names for these columns: exported, unique.
fn field_names(columns: &[Column]) -> Vec<String> {
    // `Pointers` is the method of every row struct.
    let mut taken = vec!["Pointers".to_string()];
    columns.iter().map(|c| unique(pascal(&[&c.name]), &mut taken, "")).collect()
}

/// The Go type a row's value is scanned into, and whether the query reads
/// it as text.
fn row_type(t: &PgType) -> (String, bool) {
    match &t.kind {
        TypeKind::Enum(_) => ("string".into(), true),
        TypeKind::Array(element) => match &element.kind {
            TypeKind::Scalar(
                s @ (Scalar::Bool
                | Scalar::Int16
                | Scalar::Int32
                | Scalar::Int64
                | Scalar::Float32
                | Scalar::Float64
                | Scalar::Text),
            ) => (format!("[]*{}", scalar(*s)), false),
            _ => ("string".into(), true),
        },
        TypeKind::Scalar(s) => match s {
            Scalar::Date | Scalar::Timestamp | Scalar::Timestamptz => ("time.Time".into(), false),
            Scalar::Bytea => ("[]byte".into(), false),
            Scalar::Json | Scalar::Jsonb => ("[]byte".into(), true),
            Scalar::Numeric | Scalar::Uuid | Scalar::Time | Scalar::Interval | Scalar::Other => {
                ("string".into(), true)
            }
            s => (scalar(*s).into(), false),
        },
    }
}

fn scalar(s: Scalar) -> &'static str {
    match s {
        Scalar::Bool => "bool",
        Scalar::Int16 => "int16",
        Scalar::Int32 => "int32",
        Scalar::Int64 => "int64",
        Scalar::Float32 => "float32",
        Scalar::Float64 => "float64",
        _ => "string",
    }
}

fn contracts(model: &Model) -> String {
    let mut body = String::new();
    let mut uses_time = false;
    for c in &model.contracts {
        let name = pascal(&[&c.service, &c.name, &format!("v{}", c.version)]);
        let fields = field_names(&c.columns);
        body += &format!(
            "\n// {name} is a row of {}: the view {}.{} (read-only).\n",
            c.reference(),
            c.schema,
            c.view
        );
        if let Some(d) = &c.description {
            body += &format!("// {}\n", line(d));
        }
        body += &format!("type {name} struct {{\n");
        for (col, field) in c.columns.iter().zip(&fields) {
            let (ty, _) = row_type(&col.ty);
            uses_time |= ty.contains("time.");
            let ty = if col.not_null { ty } else { format!("*{ty}") };
            body += &format!(
                "\t// {}: {}\n\t{field} {ty} {}\n",
                line(&col.ty.sql),
                line(&col.why),
                go_string(&format!("db:{} json:{}", quoted(&col.name), quoted(&col.name)))
            );
        }
        body += "}\n";
        let sql = super::select(c, |col| row_type(&col.ty).1);
        body += &format!(
            "\n// {name}Select reads every column of {} in {name}'s order, as {name}.Pointers scans them.\nconst {name}Select = {}\n",
            c.reference(),
            go_string(&sql)
        );
        body += &format!(
            "\n// Pointers are the scan targets of a row read by {name}Select.\nfunc (r *{name}) Pointers() []any {{\n\treturn []any{{{}}}\n}}\n",
            fields.iter().map(|f| format!("&r.{f}")).collect::<Vec<_>>().join(", ")
        );
    }
    let imports = if uses_time { "\nimport \"time\"\n" } else { "" };
    format!(
        "// {NOTICE}\n\n// Package {PACKAGE} holds deed's contracts and events, typed.\npackage {PACKAGE}\n{imports}{body}"
    )
}

/// The Go type of a column's value in an event.
fn json_type(c: &Column) -> String {
    let ty = match c.json {
        JsonForm::Boolean => "bool",
        JsonForm::Integer => "int64",
        JsonForm::Float => "Float",
        JsonForm::Json => "json.RawMessage",
        JsonForm::Timestamp { .. } | JsonForm::Text => "string",
    };
    if c.not_null || c.json == JsonForm::Json { ty.into() } else { format!("*{ty}") }
}

fn fields_struct(name: &str, summary: &str, columns: &[Column]) -> String {
    let mut out = format!("\n// {name}: {}\ntype {name} struct {{\n", line(summary));
    for (c, field) in columns.iter().zip(field_names(columns)) {
        let omit = if c.not_null { "" } else { ",omitempty" };
        out += &format!(
            "\t// {}: {}\n\t{field} {} {}\n",
            line(&c.ty.sql),
            line(&c.why),
            json_type(c),
            go_string(&format!("json:{}", quoted(&format!("{}{omit}", c.name))))
        );
    }
    out += "}\n";
    let required: Vec<String> =
        columns.iter().filter(|c| c.not_null).map(|c| quoted(&c.name)).collect();
    out += &format!("\nvar {name}Required = []string{{{}}}\n", required.join(", "));
    out
}

fn events(model: &Model) -> String {
    let mut out =
        format!("// {NOTICE}\n\npackage {PACKAGE}\n\nimport \"encoding/json\"\n{}", EVENTS_RUNTIME);
    for e in &model.events {
        let name = pascal(&[&e.service, &e.name]);
        let kind = e.kind();
        let (key, payload, contract, check) = match &e.contract {
            None => (
                "json.RawMessage".to_string(),
                "json.RawMessage".to_string(),
                "nil".to_string(),
                "nil, nil".to_string(),
            ),
            Some(contract) => {
                out +=
                    &fields_struct(&format!("{name}Key"), &format!("the key of {kind}."), &e.key);
                out += &fields_struct(
                    &format!("{name}Row"),
                    &format!("the row {kind} carries ({contract})."),
                    &e.payload,
                );
                (
                    format!("{name}Key"),
                    format!("*{name}Row"),
                    quoted(contract),
                    format!("{name}KeyRequired, {name}RowRequired"),
                )
            }
        };
        let contract_ptr =
            if contract == "nil" { "nil".to_string() } else { format!("ptr({contract})") };
        out += &format!(
            "\n// {name} is a {kind} event{}.\ntype {name} struct {{\n\tEnvelope\n\tKey     {key:<width$} `json:\"key\"`\n\tPayload {payload:<width$} `json:\"payload\"`\n}}\n",
            e.description.as_deref().map(|d| format!(": {}", line(d))).unwrap_or_default(),
            width = key.len().max(payload.len())
        );
        out += &format!(
            "\n// Parse{name} reads a {kind} event and checks what encoding/json does not: its type, contract and operation, and that NOT NULL columns are present.\nfunc Parse{name}(data []byte) ({name}, error) {{\n\tvar e {name}\n\tif err := json.Unmarshal(data, &e); err != nil {{\n\t\treturn e, err\n\t}}\n\treturn e, check(data, &e.Envelope, {}, {contract_ptr}, {check})\n}}\n",
            quoted(&kind)
        );
    }
    out
}

const EVENTS_RUNTIME: &str = r#"
import (
	"errors"
	"fmt"
	"math"
)

// Envelope is what every deed event carries besides its key and payload.
type Envelope struct {
	// ID is <service>/<position>: the same for a redelivered event.
	ID       string  `json:"id"`
	Type     string  `json:"type"`
	Contract *string `json:"contract"`
	// Op is insert, update, delete or truncate (domain for a domain event).
	Op string `json:"op"`
	// Position is the place in the owner's commit order; it sorts as text.
	Position    string `json:"position"`
	LSN         string `json:"lsn"`
	CommittedAt string `json:"committed_at"`
	Tombstone   bool   `json:"tombstone,omitempty"`
}

// Float is a float column's value: a JSON number, or "NaN", "Infinity" or "-Infinity".
type Float float64

// UnmarshalJSON reads a number or one of the three strings.
func (f *Float) UnmarshalJSON(data []byte) error {
	var n float64
	if err := json.Unmarshal(data, &n); err == nil {
		*f = Float(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("a float is a number or a string: %s", data)
	}
	switch s {
	case "NaN":
		*f = Float(math.NaN())
	case "Infinity":
		*f = Float(math.Inf(1))
	case "-Infinity":
		*f = Float(math.Inf(-1))
	default:
		return fmt.Errorf("not a float: %q", s)
	}
	return nil
}

// ErrInvalid is wrapped by every error a ParseX returns for a well-formed event that is not what its type says.
var ErrInvalid = errors.New("not a valid event")

func ptr(s string) *string { return &s }

func present(raw json.RawMessage, required []string, at string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fmt.Errorf("%w: %s: expected an object", ErrInvalid, at)
	}
	for _, name := range required {
		if v, ok := fields[name]; !ok || string(v) == "null" {
			return fmt.Errorf("%w: %s.%s: the column is NOT NULL", ErrInvalid, at, name)
		}
	}
	return nil
}

func check(data []byte, e *Envelope, kind string, contract *string, key, row []string) error {
	if e.Type != kind {
		return fmt.Errorf("%w: type %q, expected %q", ErrInvalid, e.Type, kind)
	}
	if (contract == nil) != (e.Contract == nil) || (contract != nil && *contract != *e.Contract) {
		return fmt.Errorf("%w: contract %v, expected %v", ErrInvalid, e.Contract, contract)
	}
	var parts struct {
		Key     json.RawMessage `json:"key"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &parts); err != nil {
		return err
	}
	if contract == nil {
		if e.Op != "domain" {
			return fmt.Errorf("%w: op %q, expected domain", ErrInvalid, e.Op)
		}
		return nil
	}
	switch e.Op {
	case "insert", "update":
		if err := present(parts.Key, key, "key"); err != nil {
			return err
		}
		return present(parts.Payload, row, "payload")
	case "delete":
		if !e.Tombstone || string(parts.Payload) != "null" {
			return fmt.Errorf("%w: a delete carries no payload and is a tombstone", ErrInvalid)
		}
		return present(parts.Key, key, "key")
	case "truncate":
		if string(parts.Payload) != "null" {
			return fmt.Errorf("%w: a truncate carries no payload", ErrInvalid)
		}
		return nil
	}
	return fmt.Errorf("%w: op %q", ErrInvalid, e.Op)
}
"#;

/// A Go string literal: a raw one when it can be.
fn go_string(text: &str) -> String {
    if text.contains('`') { quoted(text) } else { format!("`{text}`") }
}

/// One line of a `//` comment.
fn line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
