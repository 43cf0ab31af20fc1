//! Column values, as PostgreSQL prints them, turned into JSON.
//!
//! The relay's session sets `DateStyle = ISO`, `TimeZone = UTC`,
//! `IntervalStyle = iso_8601` and `extra_float_digits = 3`, so the text is
//! the same whatever the server's defaults.

use serde_json::Value as Json;

use crate::pgoutput::Value;

// Type OIDs that map to JSON other than a string.
const BOOL: u32 = 16;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const OID: u32 = 26;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const JSON: u32 = 114;
const JSONB: u32 = 3802;

/// A JSON value for a column value. Integers, booleans and finite floats
/// become JSON numbers and booleans; json and jsonb are embedded as JSON;
/// everything else (numeric, to keep every digit; dates and times in ISO
/// 8601; uuid; bytea as `\x…` hex; arrays in PostgreSQL's array syntax) is a
/// string. `None` for an unchanged out-of-line value that was not sent.
pub fn to_json(type_oid: u32, value: &Value) -> Option<Json> {
    let text = match value {
        Value::Null => return Some(Json::Null),
        Value::Unchanged => return None,
        Value::Text(t) => t,
    };
    let v = match type_oid {
        BOOL => Json::Bool(text == "t"),
        INT2 | INT4 | INT8 | OID => {
            text.parse::<i64>().map(Json::from).unwrap_or_else(|_| Json::String(text.clone()))
        }
        FLOAT4 | FLOAT8 => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => {
                serde_json::Number::from_f64(f).map_or(Json::String(text.clone()), Json::Number)
            }
            _ => Json::String(text.clone()),
        },
        JSON | JSONB => serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone())),
        _ => Json::String(text.clone()),
    };
    Some(v)
}

/// Session settings that make the text above predictable, whichever way
/// the slot is read.
const SETTINGS: &[(&str, &str)] = &[
    ("DateStyle", "ISO"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
];

/// The settings as `SET` statements, for a regular session.
pub fn session_settings_sql() -> String {
    SETTINGS.iter().map(|(k, v)| format!("SET {k} = '{v}';")).collect::<Vec<_>>().join(" ")
}

/// The settings as a startup `options` string (`-c name=value …`), for the
/// replication session, which takes no `SET`.
pub fn startup_options() -> String {
    SETTINGS.iter().map(|(k, v)| format!("-c {k}={v}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn converts_by_type() {
        assert_eq!(
            to_json(INT8, &t("9007199254740993")),
            Some(Json::from(9_007_199_254_740_993i64))
        );
        assert_eq!(to_json(BOOL, &t("f")), Some(Json::Bool(false)));
        assert_eq!(to_json(FLOAT8, &t("1.5")), Some(serde_json::json!(1.5)));
        assert_eq!(to_json(FLOAT8, &t("NaN")), Some(Json::String("NaN".into())));
        assert_eq!(
            to_json(1700, &t("12345678901234567890.0001")),
            Some(Json::String("12345678901234567890.0001".into()))
        );
        assert_eq!(to_json(JSONB, &t(r#"{"a": [1, 2]}"#)), Some(serde_json::json!({"a": [1, 2]})));
        assert_eq!(to_json(25, &Value::Null), Some(Json::Null));
        assert_eq!(to_json(25, &Value::Unchanged), None);
    }
}
