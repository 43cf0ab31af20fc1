//! Python: an installable package (`pyproject.toml`) with SQLAlchemy 2.0
//! mapped classes over the contract views, read-only, and Pydantic 2
//! models of the events' envelopes, keys and payloads, so every
//! application that reads a contract or consumes an event `pip install`s
//! the same models.
//!
//! View models map PostgreSQL types as psycopg returns them (numeric as
//! `Decimal`, timestamptz as an aware `datetime`, enums as their label,
//! arrays as lists); event models follow the event's JSON
//! ([`deed_events::JsonForm`]). A column that may be NULL is `Optional`.
//! SQLAlchemy needs a primary key: the base table's, when the view keeps
//! all of it, else every column. A flush that would write a contract row
//! raises: contracts are read, never written.

use std::collections::BTreeSet;

use deed_events::JsonForm;

use super::names::{package_name, pascal, python_member, quoted};
use super::{Files, NOTICE};
use crate::model::{Column, ContractModel, EventModel, Model, PgType, Scalar, TypeKind};

/// The distribution (`deed-models`) and import (`deed_models`) names.
pub struct PythonPackage {
    pub distribution: String,
    pub module: String,
    pub version: String,
}

impl PythonPackage {
    /// `deed-models`, or `deed-models-<service>` for one service's models.
    pub fn named(service: Option<&str>) -> PythonPackage {
        let distribution = package_name(service);
        PythonPackage {
            module: distribution.replace('-', "_"),
            distribution,
            version: "1.0.0".into(),
        }
    }
}

pub fn render(model: &Model, package: &PythonPackage) -> Files {
    let mut files = Files::new();
    let m = &package.module;
    files.insert("pyproject.toml".into(), pyproject(package));
    files.insert(format!("{m}/py.typed"), String::new());
    files.insert(format!("{m}/contracts.py"), contracts(model));
    files.insert(format!("{m}/events.py"), events(model));
    files.insert(format!("{m}/__init__.py"), init(model));
    files.insert(super::QUERIES.into(), super::queries(model, |_| false));
    files
}

fn pyproject(p: &PythonPackage) -> String {
    format!(
        "# {NOTICE}\n\
         [build-system]\n\
         requires = [\"setuptools>=61\"]\n\
         build-backend = \"setuptools.build_meta\"\n\
         \n\
         [project]\n\
         name = {}\n\
         version = {}\n\
         description = \"Typed models of deed contracts and events\"\n\
         requires-python = \">=3.9\"\n\
         dependencies = [\"sqlalchemy>=2.0,<3\", \"pydantic>=2.0,<3\"]\n\
         \n\
         [tool.setuptools]\n\
         packages = [{}]\n\
         \n\
         [tool.setuptools.package-data]\n\
         {} = [\"py.typed\"]\n",
        quoted(&p.distribution),
        quoted(&p.version),
        quoted(&p.module),
        p.module
    )
}

fn init(model: &Model) -> String {
    let mut out = format!("\"\"\"deed's contracts and events, typed. {NOTICE}\"\"\"\n\n");
    let contracts: Vec<String> = model.contracts.iter().map(contract_class).collect();
    let events: Vec<String> = model.events.iter().map(event_class).collect();
    if !contracts.is_empty() {
        out += &format!("from .contracts import Base, {}\n", contracts.join(", "));
    }
    if !events.is_empty() {
        out += &format!("from .events import {}\n", events.join(", "));
    }
    let mut all: Vec<String> = contracts.into_iter().chain(events).collect();
    if !model.contracts.is_empty() {
        all.insert(0, "Base".into());
    }
    out += &format!(
        "\n__all__ = [{}]\n",
        all.iter().map(|n| quoted(n)).collect::<Vec<_>>().join(", ")
    );
    out
}

fn contract_class(c: &ContractModel) -> String {
    pascal(&[&c.service, &c.name, &format!("v{}", c.version)])
}

fn event_class(e: &EventModel) -> String {
    pascal(&[&e.service, &e.name])
}

/// The SQLAlchemy type expression and Python type of a view column.
fn sql_type(t: &PgType, imports: &mut BTreeSet<&'static str>) -> (String, String) {
    let mut use_ = |name: &'static str| {
        imports.insert(name);
    };
    match &t.kind {
        TypeKind::Enum(labels) => {
            use_("ENUM");
            let name = t.sql.rsplit('.').next().unwrap_or(&t.sql).trim_matches('"');
            let labels: Vec<String> = labels.iter().map(|l| quoted(l)).collect();
            (
                format!("ENUM({}, name={}, create_type=False)", labels.join(", "), quoted(name)),
                "str".into(),
            )
        }
        TypeKind::Array(element) => {
            use_("ARRAY");
            let (inner, py) = sql_type(element, imports);
            (format!("ARRAY({inner})"), format!("list[Optional[{py}]]"))
        }
        TypeKind::Scalar(s) => {
            let (sa, py): (&'static str, &str) = match s {
                Scalar::Bool => ("Boolean", "bool"),
                Scalar::Int16 => ("SmallInteger", "int"),
                Scalar::Int32 => ("Integer", "int"),
                Scalar::Int64 => ("BigInteger", "int"),
                Scalar::Float32 | Scalar::Float64 => ("Float", "float"),
                Scalar::Numeric => ("Numeric", "decimal.Decimal"),
                Scalar::Uuid => ("Uuid", "uuid.UUID"),
                Scalar::Date => ("Date", "datetime.date"),
                Scalar::Time => ("Time", "datetime.time"),
                Scalar::Timestamp => ("DateTime", "datetime.datetime"),
                Scalar::Timestamptz => ("DateTime", "datetime.datetime"),
                Scalar::Interval => ("Interval", "datetime.timedelta"),
                Scalar::Bytea => ("LargeBinary", "bytes"),
                Scalar::Json => ("JSON", "Any"),
                Scalar::Jsonb => ("JSONB", "Any"),
                Scalar::Text | Scalar::Other => ("Text", "str"),
            };
            use_(sa);
            let expr = if *s == Scalar::Timestamptz {
                "DateTime(timezone=True)".to_string()
            } else if sa == "Numeric" {
                "Numeric(asdecimal=True)".to_string()
            } else {
                sa.to_string()
            };
            (expr, py.into())
        }
    }
}

fn contracts(model: &Model) -> String {
    let mut imports = BTreeSet::new();
    let mut body = String::new();
    for c in &model.contracts {
        let class = contract_class(c);
        body += &format!(
            "\n\nclass {class}(ReadOnly, Base):\n    \"\"\"{}: the view {}.{} (read-only).{}\"\"\"\n\n",
            c.reference(),
            c.schema,
            c.view,
            c.description.as_deref().map(|d| format!("\n\n    {}", doc(d))).unwrap_or_default()
        );
        body += &format!("    __tablename__ = {}\n", quoted(&c.view));
        body += &format!(
            "    __table_args__ = {{\"schema\": {}, \"info\": {{\"deed_contract\": {}}}}}\n\n",
            quoted(&c.schema),
            quoted(&c.reference())
        );
        let mut taken = Vec::new();
        for col in &c.columns {
            let (sa, py) = sql_type(&col.ty, &mut imports);
            let member = python_member(&col.name, &mut taken);
            let key = c.identity.is_empty() || c.identity.contains(&col.name);
            let ty = if col.not_null { py } else { format!("Optional[{py}]") };
            body += &format!(
                "    {member}: Mapped[{ty}] = mapped_column({}, {sa}{})\n    \"\"\"{}: {}\"\"\"\n",
                quoted(&col.name),
                if key { ", primary_key=True" } else { "" },
                doc(&col.ty.sql),
                doc(&col.why)
            );
        }
    }
    let (core, dialect): (Vec<&str>, Vec<&str>) =
        imports.into_iter().partition(|i| !matches!(*i, "ARRAY" | "ENUM" | "JSON" | "JSONB"));
    let mut out = format!("\"\"\"Read-only models of deed's contract views. {NOTICE}\"\"\"\n\n");
    out += "from __future__ import annotations\n\nimport datetime  # noqa: F401\nimport decimal  # noqa: F401\nimport uuid  # noqa: F401\nfrom typing import Any, Optional  # noqa: F401\n\n";
    let mut core: Vec<&str> = core;
    core.push("event");
    core.sort_unstable();
    out += &format!("from sqlalchemy import {}\n", core.join(", "));
    if !dialect.is_empty() {
        out += &format!("from sqlalchemy.dialects.postgresql import {}\n", dialect.join(", "));
    }
    out += "from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column\n";
    out += "\n\nclass Base(DeclarativeBase):\n    \"\"\"The base of every contract model.\"\"\"\n";
    out += "\n\nclass ReadOnly:\n    \"\"\"A row of a contract view: deed's contracts are read, never written.\"\"\"\n";
    out += "\n\n@event.listens_for(Session, \"before_flush\")\ndef _refuse_writes(session: Session, flush_context: Any, instances: Any) -> None:\n    for obj in (*session.new, *session.dirty, *session.deleted):\n        if isinstance(obj, ReadOnly):\n            raise TypeError(f\"{type(obj).__name__} is a deed contract view: read-only\")\n";
    out += &body;
    out
}

/// The Python type of a column's value in an event.
fn json_type(c: &Column) -> String {
    let py = match c.json {
        JsonForm::Boolean => "bool".to_string(),
        JsonForm::Integer => "int".into(),
        JsonForm::Float => "float".into(),
        JsonForm::Json => "Any".into(),
        JsonForm::Timestamp { zoned: true } => "AwareDatetime".into(),
        JsonForm::Timestamp { zoned: false } => "NaiveDatetime".into(),
        JsonForm::Text => match &c.ty.kind {
            TypeKind::Enum(labels) => format!(
                "Literal[{}]",
                labels.iter().map(|l| quoted(l)).collect::<Vec<_>>().join(", ")
            ),
            TypeKind::Scalar(Scalar::Numeric) => "decimal.Decimal".into(),
            TypeKind::Scalar(Scalar::Uuid) => "uuid.UUID".into(),
            TypeKind::Scalar(Scalar::Date) => "datetime.date".into(),
            TypeKind::Scalar(Scalar::Time) => "datetime.time".into(),
            _ => "str".into(),
        },
    };
    if c.not_null { py } else { format!("Optional[{py}]") }
}

/// A Pydantic model of these columns (others an event brings are ignored).
fn fields_class(name: &str, summary: &str, columns: &[Column]) -> String {
    let mut out = format!("\n\nclass {name}(_Frozen):\n    \"\"\"{}\"\"\"\n", doc(summary));
    let mut taken = Vec::new();
    if columns.is_empty() {
        out += "\n    pass\n";
    }
    for c in columns {
        let member = python_member(&c.name, &mut taken);
        // A column that may be NULL may also be missing: an event of a
        // version without it (compatibility = "backward").
        let alias = match (member == c.name, c.not_null) {
            (true, true) => String::new(),
            (true, false) => " = None".to_string(),
            (false, true) => format!(" = Field(alias={})", quoted(&c.name)),
            (false, false) => format!(" = Field(None, alias={})", quoted(&c.name)),
        };
        out += &format!(
            "\n    {member}: {}{alias}\n    \"\"\"{}: {}\"\"\"\n",
            json_type(c),
            doc(&c.ty.sql),
            doc(&c.why)
        );
    }
    out
}

fn events(model: &Model) -> String {
    let mut out = format!("\"\"\"deed's events: envelopes, keys and payloads. {NOTICE}\"\"\"\n\n");
    out += "from __future__ import annotations\n\nimport datetime  # noqa: F401\nimport decimal  # noqa: F401\nimport uuid  # noqa: F401\nfrom typing import Any, Literal, Optional, Union  # noqa: F401\n\n";
    out += "from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NaiveDatetime  # noqa: F401\n";
    out += "\n\nclass _Frozen(BaseModel):\n    model_config = ConfigDict(extra=\"ignore\", frozen=True, populate_by_name=True)\n";
    out += "\n\nclass EmptyKey(BaseModel):\n    \"\"\"The key of a TRUNCATE event: the whole table was emptied.\"\"\"\n\n    model_config = ConfigDict(extra=\"forbid\", frozen=True)\n";
    for e in &model.events {
        let class = event_class(e);
        let kind = e.kind();
        let (key, payload, contract, op) = if e.is_domain() {
            (
                "Any".to_string(),
                "Any".to_string(),
                "None".to_string(),
                "Literal[\"domain\"]".to_string(),
            )
        } else {
            out += &fields_class(&format!("{class}Key"), &format!("The key of {kind}."), &e.key);
            out += &fields_class(
                &format!("{class}Row"),
                &format!("The row {kind} carries ({}).", e.contract.as_deref().unwrap_or("")),
                &e.payload,
            );
            (
                format!("Union[{class}Key, EmptyKey]"),
                format!("Optional[{class}Row]"),
                format!("Literal[{}]", quoted(e.contract.as_deref().unwrap_or(""))),
                "Literal[\"insert\", \"update\", \"delete\", \"truncate\"]".to_string(),
            )
        };
        let summary = match &e.description {
            Some(d) => format!("{kind}: {}", doc(d)),
            None => kind.clone(),
        };
        out += &format!("\n\nclass {class}(_Frozen):\n    \"\"\"{summary}\"\"\"\n\n");
        out += "    id: str\n";
        out += &format!("    type: Literal[{}]\n", quoted(&kind));
        out += &format!("    contract: {contract}\n");
        out += &format!("    key: {key}\n");
        out += &format!("    op: {op}\n");
        out += "    position: str\n    lsn: str\n    committed_at: AwareDatetime\n";
        out += &format!("    payload: {payload}\n");
        out += "    tombstone: bool = False\n";
    }
    out
}

/// Text inside a docstring: no quote can end it, no backslash escapes.
fn doc(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "'")
}
