//! Handler parameters are sent in PostgreSQL's text format, whatever type
//! the server inferred for them: the server parses `42`, `t` or an ISO
//! timestamp exactly as it would a literal, so an event's JSON values need
//! no per-type encoding here.

use bytes::BytesMut;
use postgres_types::{Format, IsNull, Kind, ToSql, Type, to_sql_checked};
use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub struct TextParam(pub Option<Json>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None | Some(Json::Null) => Ok(IsNull::Yes),
            Some(v) => {
                out.extend_from_slice(text(v, ty).as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A JSON value in the text form of `ty`.
fn text(v: &Json, ty: &Type) -> String {
    match (v, ty.kind()) {
        (Json::String(s), _) => s.clone(),
        (Json::Array(items), Kind::Array(_)) => array_literal(items),
        (other, _) => other.to_string(),
    }
}

/// `{"a","b"}`: every element quoted, so commas and braces inside stay data.
fn array_literal(items: &[Json]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            Json::Null => "NULL".to_string(),
            Json::Array(inner) => array_literal(inner),
            Json::String(s) => quote(s),
            other => quote(&other.to_string()),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_become_array_literals() {
        let v = serde_json::json!(["a,b", "c\"d", null, 3]);
        assert_eq!(text(&v, &Type::TEXT_ARRAY), r#"{"a,b","c\"d",NULL,"3"}"#);
        assert_eq!(text(&v, &Type::JSONB), r#"["a,b","c\"d",null,3]"#);
        let n: Json = serde_json::from_str("1.50").unwrap();
        assert_eq!(text(&n, &Type::NUMERIC), "1.50", "numbers keep their digits");
    }
}
