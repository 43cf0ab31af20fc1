//! What is generated from: the contract versions and events chosen, each
//! column with its PostgreSQL type, its JSON form in events, and whether
//! it can be NULL (and why).

use deed_events::JsonForm;

/// Everything one `deed generate` writes models of, in a fixed order
/// (service, then name, then version), so the output is the same for the
/// same catalog and manifest.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub contracts: Vec<ContractModel>,
    pub events: Vec<EventModel>,
}

/// One contract version, as its view is in the database.
#[derive(Debug, Clone)]
pub struct ContractModel {
    pub service: String,
    pub name: String,
    pub version: u32,
    /// The view: schema and name.
    pub schema: String,
    pub view: String,
    pub description: Option<String>,
    pub columns: Vec<Column>,
    /// The columns that identify a row (the base table's primary key when
    /// the view keeps all of it), for ORMs that need one; empty when none
    /// is known.
    pub identity: Vec<String>,
}

impl ContractModel {
    /// `catalog.products.v1`.
    pub fn reference(&self) -> String {
        format!("{}.{}.v{}", self.service, self.name, self.version)
    }

    /// The view's name as SQL: `"catalog_api"."products_v1"`.
    pub fn view_sql(&self) -> String {
        deed_ident::QualifiedName::from_catalog(&self.schema, &self.view)
            .expect("names read from the catalog are valid identifiers")
            .quoted()
    }
}

/// One event's envelope, key and payload.
#[derive(Debug, Clone)]
pub struct EventModel {
    pub service: String,
    pub name: String,
    pub description: Option<String>,
    /// State events: the contract version the payload carries
    /// (`catalog.products.v1`) and its columns; domain events: none, and
    /// the key and payload are whatever `deed.emit` was given.
    pub contract: Option<String>,
    pub key: Vec<Column>,
    pub payload: Vec<Column>,
}

impl EventModel {
    /// `catalog.product_changed`, the envelope's `type`.
    pub fn kind(&self) -> String {
        format!("{}.{}", self.service, self.name)
    }

    pub fn is_domain(&self) -> bool {
        self.contract.is_none()
    }
}

/// One column of a view (or of an event's key or payload).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: PgType,
    /// How the relay writes its values in an event (by the column's own
    /// type: a domain over an integer is a string there).
    pub json: JsonForm,
    pub not_null: bool,
    /// Why it is, or may be, NULL: for a reader of the generated code.
    pub why: String,
}

/// A column's type, domains resolved to their base type.
#[derive(Debug, Clone, PartialEq)]
pub struct PgType {
    /// As PostgreSQL writes it (`numeric(10,2)`, `public.mood`).
    pub sql: String,
    pub kind: TypeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    Scalar(Scalar),
    /// An enum type's labels, in their order.
    Enum(Vec<String>),
    Array(Box<PgType>),
}

/// The base types generated code distinguishes; others are `Other` and
/// read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Numeric,
    Text,
    Uuid,
    Date,
    Time,
    Timestamp,
    Timestamptz,
    Interval,
    Bytea,
    Json,
    Jsonb,
    Other,
}

impl Scalar {
    /// The base type by its name in `pg_catalog`.
    pub fn from_catalog(name: &str) -> Scalar {
        match name {
            "bool" => Scalar::Bool,
            "int2" => Scalar::Int16,
            "int4" | "oid" => Scalar::Int32,
            "int8" => Scalar::Int64,
            "float4" => Scalar::Float32,
            "float8" => Scalar::Float64,
            "numeric" => Scalar::Numeric,
            "text" | "varchar" | "bpchar" | "name" | "citext" => Scalar::Text,
            "uuid" => Scalar::Uuid,
            "date" => Scalar::Date,
            "time" => Scalar::Time,
            "timestamp" => Scalar::Timestamp,
            "timestamptz" => Scalar::Timestamptz,
            "interval" => Scalar::Interval,
            "bytea" => Scalar::Bytea,
            "json" => Scalar::Json,
            "jsonb" => Scalar::Jsonb,
            _ => Scalar::Other,
        }
    }
}
