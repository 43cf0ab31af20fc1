//! How a column's value is written in an event's JSON, decided by the
//! column's type: the one answer the relay writes values by and the
//! typed models `deed generate` writes for consumers are derived from.
//!
//! Integers and booleans are JSON numbers and booleans; floats are
//! numbers, except `NaN` and `±Infinity`, which stay strings; json and
//! jsonb are embedded; timestamps are RFC 3339 strings with microseconds
//! (`Z` for `timestamptz`; `infinity` stays as PostgreSQL prints it);
//! everything else (numeric, to keep every digit; dates, times, uuid,
//! bytea as `\x…`, arrays in PostgreSQL's syntax, enums, domains) is a
//! string, as PostgreSQL prints it.

/// The JSON shape of one column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonForm {
    Boolean,
    Integer,
    /// A number, or one of the strings `NaN`, `Infinity`, `-Infinity`.
    Float,
    /// Any JSON value.
    Json,
    /// An RFC 3339 timestamp string; `zoned`: ends with `Z`.
    Timestamp {
        zoned: bool,
    },
    /// A string, as PostgreSQL prints the value.
    Text,
}

/// Type OIDs that have a JSON form other than a string.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const OID: u32 = 26;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const JSON: u32 = 114;
    pub const JSONB: u32 = 3802;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
}

/// The JSON form of a column of type `type_oid` (the column's own type: a
/// domain over an integer is a string, as pgoutput names the domain).
pub fn json_form(type_oid: u32) -> JsonForm {
    match type_oid {
        oid::BOOL => JsonForm::Boolean,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => JsonForm::Integer,
        oid::FLOAT4 | oid::FLOAT8 => JsonForm::Float,
        oid::JSON | oid::JSONB => JsonForm::Json,
        oid::TIMESTAMP => JsonForm::Timestamp { zoned: false },
        oid::TIMESTAMPTZ => JsonForm::Timestamp { zoned: true },
        _ => JsonForm::Text,
    }
}
