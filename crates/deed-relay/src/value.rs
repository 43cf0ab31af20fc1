//! Column values, as PostgreSQL prints them, turned into JSON.
//!
//! deed's sessions set `DateStyle = ISO`, `TimeZone = UTC`, `IntervalStyle
//! = iso_8601` and `extra_float_digits = 3` (`deed_pg::session`), so the
//! text is the same whatever the server's defaults.

use serde_json::Value as Json;

use deed_events::{JsonForm, json_form, push_json_str};

use crate::pgoutput::Value;

/// Appends a column value as JSON to `out`; `false` (and nothing written)
/// for an unchanged out-of-line value that was not sent. Integers,
/// booleans and finite floats become JSON numbers and booleans; json and
/// jsonb are embedded as JSON; timestamps in the envelope's one form, RFC
/// 3339 with microseconds (`2026-11-21T23:22:21.053574Z`; without the `Z`
/// for `timestamp`); everything else (numeric, to keep every digit; dates
/// in ISO 8601; uuid; bytea as `\x…` hex; arrays in PostgreSQL's array
/// syntax) is a string.
pub fn write_json(type_oid: u32, value: &Value, out: &mut String) -> bool {
    let text = match value {
        Value::Null => {
            out.push_str("null");
            return true;
        }
        Value::Unchanged => return false,
        Value::Text(t) => *t,
    };
    match json_form(type_oid) {
        JsonForm::Boolean => out.push_str(if text == "t" { "true" } else { "false" }),
        // PostgreSQL prints integers as JSON writes them.
        JsonForm::Integer if is_integer(text) => out.push_str(text),
        JsonForm::Float => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => match serde_json::Number::from_f64(f) {
                Some(n) => out.push_str(&n.to_string()),
                None => push_json_str(out, text),
            },
            _ => push_json_str(out, text),
        },
        JsonForm::Json => match serde_json::from_str::<Json>(text) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(_) => push_json_str(out, text),
        },
        JsonForm::Timestamp { zoned } => match rfc3339(text, zoned) {
            Some(t) => push_json_str(out, &t),
            None => push_json_str(out, text),
        },
        _ => push_json_str(out, text),
    }
    true
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `2026-11-21 23:22:21.05+00` (ISO DateStyle, UTC) as
/// `2026-11-21T23:22:21.050000Z`. `infinity`, BC dates and anything
/// unexpected are left as PostgreSQL printed them.
fn rfc3339(text: &str, zoned: bool) -> Option<String> {
    let (date, rest) = text.split_once(' ')?;
    if !date.starts_with(|c: char| c.is_ascii_digit()) || rest.contains(' ') {
        return None;
    }
    let time = if zoned { rest.strip_suffix("+00")? } else { rest };
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    if hms.len() != 8 || fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{date}T{hms}.{fraction:0<6}{}", if zoned { "Z" } else { "" }))
}

/// A column value as a JSON value, to check [`write_json`] by value.
#[cfg(test)]
fn to_json(type_oid: u32, value: &Value) -> Option<Json> {
    let mut out = String::new();
    write_json(type_oid, value, &mut out)
        .then(|| serde_json::from_str(&out).expect("write_json writes JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deed_events::oid::*;

    fn t(s: &str) -> Value<'_> {
        Value::Text(s)
    }

    #[test]
    fn timestamps_take_the_envelope_form() {
        let ts = |oid, s: &str| to_json(oid, &Value::Text(s)).unwrap();
        assert_eq!(ts(TIMESTAMPTZ, "2026-11-21 23:22:21.053574+00"), "2026-11-21T23:22:21.053574Z");
        assert_eq!(ts(TIMESTAMPTZ, "2026-11-21 23:22:21.05+00"), "2026-11-21T23:22:21.050000Z");
        assert_eq!(ts(TIMESTAMPTZ, "2026-11-21 23:22:21+00"), "2026-11-21T23:22:21.000000Z");
        assert_eq!(ts(TIMESTAMP, "2026-11-21 23:22:21.5"), "2026-11-21T23:22:21.500000");
        assert_eq!(ts(TIMESTAMPTZ, "infinity"), "infinity");
        assert_eq!(ts(TIMESTAMPTZ, "0044-03-15 12:00:00+00 BC"), "0044-03-15 12:00:00+00 BC");
        assert_eq!(ts(TIMESTAMPTZ, "2026-11-21 23:22:21+05:30"), "2026-11-21 23:22:21+05:30");
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

#[cfg(test)]
mod exact {
    use super::*;
    use deed_events::oid::JSONB;

    #[test]
    fn json_numbers_keep_every_digit() {
        let v = to_json(JSONB, &Value::Text(r#"{"n": 123456789012345678901234567890, "d": 0.1000000000000000055511151231257827}"#)).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"n":123456789012345678901234567890,"d":0.1000000000000000055511151231257827}"#
        );
    }
}
