//! Projection handlers: one SQL statement with named parameters taken from
//! an event's envelope (`:payload.email`, `:key.id`, `:op`, ...).
//!
//! PostgreSQL's grammar has no named parameters, so the scanner finds them
//! (never inside a string, a comment or a `::` cast), each distinct name
//! becomes `$n`, and the result must parse as exactly one statement that
//! can run inside the consumer's transaction.

use pg_query::protobuf::{ScanToken, Token};

/// A handler statement ready to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The statement with `$1`, `$2`, ... in place of the names.
    pub sql: String,
    /// The parameter names in `$n` order.
    pub params: Vec<HandlerParam>,
    /// Each use of a name: its byte offset in the original text and its
    /// index in `params`.
    pub uses: Vec<(usize, usize)>,
}

/// Where a parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HandlerParam {
    /// `:key.<column>`: a column of the event key.
    Key(String),
    /// `:payload.<column>`: a column of the payload (null on a delete).
    Payload(String),
    /// `:op`, `:id`, `:type`, `:contract`, `:key`, `:payload`,
    /// `:position`, `:lsn`, `:committed_at`.
    Envelope(&'static str),
}

impl HandlerParam {
    pub fn name(&self) -> String {
        match self {
            HandlerParam::Key(c) => format!("key.{c}"),
            HandlerParam::Payload(c) => format!("payload.{c}"),
            HandlerParam::Envelope(f) => (*f).to_string(),
        }
    }
}

/// The envelope fields a handler can name directly.
/// `:key` and `:payload` alone are the whole JSON value.
pub const ENVELOPE_FIELDS: [&str; 9] =
    ["op", "id", "type", "contract", "key", "payload", "position", "lsn", "committed_at"];

/// A handler that cannot be used, with the byte offset in the original
/// text it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub offset: usize,
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> HandlerError {
    HandlerError { offset, message: message.into() }
}

/// Finds the named parameters of a handler and checks the statement with
/// PostgreSQL's parser.
pub fn parse_handler(text: &str) -> Result<Handler, HandlerError> {
    let tokens = pg_query::scan_tokens(text).map_err(|e| err(0, e.to_string()))?;
    let mut sql = String::with_capacity(text.len());
    let mut params: Vec<HandlerParam> = Vec::new();
    let mut uses: Vec<(usize, usize)> = Vec::new();
    // (offset in `sql`, offset in `text`) at each replacement, to place
    // the parser's errors in the text the user wrote.
    let mut shifts: Vec<(usize, usize)> = vec![(0, 0)];
    let mut copied = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        if t.token == Token::Param as i32 {
            return Err(err(
                t.start as usize,
                "a handler names its parameters (:payload.<column>, :key.<column>, :op, ...), not $n",
            ));
        }
        if t.token != Token::Ascii58 as i32 {
            i += 1;
            continue;
        }
        let (name, end, used) = named_param(text, &tokens[i..])?;
        let param = classify(&name).ok_or_else(|| {
            err(
                t.start as usize,
                format!(
                    ":{name} is not an envelope field: use :key.<column>, :payload.<column>, or one of :{}",
                    ENVELOPE_FIELDS.join(", :")
                ),
            )
        })?;
        let n = match params.iter().position(|p| *p == param) {
            Some(n) => n + 1,
            None => {
                params.push(param);
                params.len()
            }
        };
        uses.push((t.start as usize, n - 1));
        sql.push_str(&text[copied..t.start as usize]);
        sql.push_str(&format!("${n}"));
        copied = end;
        shifts.push((sql.len(), copied));
        i += used;
    }
    sql.push_str(&text[copied..]);
    check_statement(&sql).map_err(|(offset, message)| {
        let &(at, orig) = shifts.iter().rev().find(|(at, _)| *at <= offset).expect("(0, 0)");
        err((orig + offset - at).min(text.len()), message)
    })?;
    Ok(Handler { sql, params, uses })
}

/// `:` directly followed by a word, optionally `.word`: returns the name,
/// the byte offset after it and the tokens it spans.
fn named_param(text: &str, tokens: &[ScanToken]) -> Result<(String, usize, usize), HandlerError> {
    let colon = &tokens[0];
    let word = |t: Option<&ScanToken>, after: i32| {
        t.filter(|t| t.start == after)
            .map(|t| &text[t.start as usize..t.end as usize])
            .filter(|w| is_word(w))
    };
    let Some(first) = word(tokens.get(1), colon.end) else {
        return Err(err(
            colon.start as usize,
            "a lone `:`: handler parameters are written :payload.<column>, :key.<column> or :op (array slices are not supported in handlers)",
        ));
    };
    let mut name = first.to_ascii_lowercase();
    let mut end = tokens[1].end;
    let mut used = 2;
    let dot = tokens.get(2).filter(|t| t.start == end && t.token == Token::Ascii46 as i32);
    if let Some(dot) = dot {
        let Some(second) = word(tokens.get(3), dot.end) else {
            return Err(err(dot.start as usize, format!("a column name must follow :{name}.")));
        };
        name = format!("{name}.{second}");
        end = tokens[3].end;
        used = 4;
    }
    Ok((name, end as usize, used))
}

fn is_word(w: &str) -> bool {
    let mut chars = w.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn classify(name: &str) -> Option<HandlerParam> {
    match name.split_once('.') {
        Some(("key", col)) => Some(HandlerParam::Key(col.to_string())),
        Some(("payload", col)) => Some(HandlerParam::Payload(col.to_string())),
        Some(_) => None,
        None => ENVELOPE_FIELDS.iter().find(|f| **f == name).map(|f| HandlerParam::Envelope(f)),
    }
}

/// One statement that changes or reads data; nothing that would end or
/// escape the consumer's transaction.
fn check_statement(sql: &str) -> Result<(), (usize, String)> {
    use pg_query::NodeEnum as N;
    let parsed = pg_query::parse(sql, 0)
        .map_err(|e| (crate::ffi::error_offset(sql).unwrap_or(0), format!("not valid SQL: {e}")))?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        let at = stmts.get(1).map_or(0, |s| s.stmt_location as usize);
        return Err((at, format!("a handler is exactly one statement, not {}", stmts.len())));
    }
    let node = stmts[0].stmt.as_deref().and_then(|n| n.node.as_ref());
    match node {
        Some(N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_)) => Ok(()),
        Some(N::SelectStmt(_)) => Ok(()),
        _ => Err((
            0,
            "a handler is one INSERT, UPDATE, DELETE, MERGE or SELECT: it runs inside the projection's transaction".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_numbered_parameters() {
        let h = parse_handler(
            "UPDATE public.orders SET customer_email = :payload.email, note = ':key.id' WHERE user_id = :key.id AND :op <> 'delete' AND x = :payload.email::text",
        )
        .unwrap();
        assert_eq!(
            h.sql,
            "UPDATE public.orders SET customer_email = $1, note = ':key.id' WHERE user_id = $2 AND $3 <> 'delete' AND x = $1::text"
        );
        assert_eq!(
            h.params,
            vec![
                HandlerParam::Payload("email".into()),
                HandlerParam::Key("id".into()),
                HandlerParam::Envelope("op")
            ]
        );
    }

    #[test]
    fn bad_parameters_are_located() {
        let text = "UPDATE t SET a = :payload.a WHERE b = :body.b";
        let e = parse_handler(text).unwrap_err();
        assert_eq!(e.offset, text.find(":body").unwrap());
        assert!(e.message.contains(":body.b is not an envelope field"), "{}", e.message);
        let e = parse_handler("UPDATE t SET a = $1").unwrap_err();
        assert_eq!(e.offset, 17);
        let e = parse_handler("UPDATE t SET a = : payload.a").unwrap_err();
        assert_eq!(e.offset, 17);
    }

    #[test]
    fn the_parser_judges_the_statement_and_errors_point_into_the_original() {
        let text = "UPDATE t SET a = :payload.long_column_name WHER b = 1";
        let e = parse_handler(text).unwrap_err();
        assert_eq!(e.offset, text.find("WHER").unwrap(), "{}", e.message);
        let e = parse_handler("UPDATE t SET a = 1; DELETE FROM t").unwrap_err();
        assert!(e.message.contains("exactly one statement"), "{}", e.message);
        let e = parse_handler("COMMIT").unwrap_err();
        assert!(e.message.contains("one INSERT, UPDATE"), "{}", e.message);
    }
}
