use std::fmt;

use serde::{Serialize, Serializer};

/// PostgreSQL keeps `NAMEDATALEN - 1` bytes of a name and silently truncates
/// the rest; two long names could then collide, so longer names are refused.
pub const MAX_IDENT_BYTES: usize = 63;

/// Why a piece of text is not a usable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("an identifier cannot be empty")]
    Empty,
    #[error("identifier {0:?} contains a NUL character, which PostgreSQL cannot store")]
    Nul(String),
    #[error(
        "identifier {0:?} is {1} bytes long; PostgreSQL truncates names to {MAX_IDENT_BYTES} bytes"
    )]
    TooLong(String, usize),
    #[error(
        "{0:?} is not a plain SQL identifier (letters, digits, _ and $, not starting with a digit); write it double-quoted, e.g. '\"{1}\"', if that is its real name"
    )]
    NotBare(String, String),
    #[error("unterminated double quote in {0:?}")]
    Unterminated(String),
    #[error("unexpected text {1:?} after the quoted identifier in {0:?}")]
    TrailingText(String, String),
    #[error("{0:?} must have exactly {1} dot-separated part(s)")]
    Parts(String, usize),
}

/// One PostgreSQL identifier, holding the name exactly as the catalog stores
/// it (already case-folded when it was written bare).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(String);

impl Ident {
    /// Wraps a name taken verbatim from the catalog or the parser.
    pub fn new(name: impl Into<String>) -> Result<Self, IdentError> {
        let name = name.into();
        check_storable(&name)?;
        Ok(Ident(name))
    }

    /// Parses one identifier written with SQL syntax: `orders` (folded to
    /// lower case) or `"Order Items"` (verbatim, `""` for a quote).
    pub fn parse_sql(text: &str) -> Result<Self, IdentError> {
        let mut parts = split_sql(text)?;
        if parts.len() != 1 {
            return Err(IdentError::Parts(text.to_string(), 1));
        }
        Ok(parts.remove(0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier as it must appear in generated SQL: always quoted, so
    /// keywords, upper case and hostile text are all inert.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    /// Whether the name can be shown bare without changing its meaning.
    pub fn is_bare(&self) -> bool {
        is_bare_word(&self.0)
    }
}

impl fmt::Display for Ident {
    /// Human form: bare when that reads back to the same name, quoted
    /// otherwise. A name with control characters (a newline, an escape
    /// sequence) is written with PostgreSQL's Unicode escapes, `U&"a\000ab"`,
    /// which still reads back to the same name but cannot break a line or
    /// drive a terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_bare() {
            f.write_str(&self.0)
        } else if self.0.chars().any(char::is_control) {
            f.write_str(&unicode_escaped(&self.0))
        } else {
            f.write_str(&self.quoted())
        }
    }
}

/// `U&"…"` with `\XXXX` for control characters (all below U+FFFF) and
/// `\\` for a backslash.
fn unicode_escaped(name: &str) -> String {
    let mut out = String::from("U&\"");
    for c in name.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Debug for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ident({})", self)
    }
}

impl Serialize for Ident {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Any name as a quoted SQL identifier, `""` for a quote: for names read
/// from a server (a database, a role) that deed only hands back to it.
/// Names deed keeps are [`Ident`]s; this is what [`Ident::quoted`] writes.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A string literal for generated SQL, e.g. a COMMENT body. Standard
/// conforming strings are assumed, which every supported server uses.
pub fn quote_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn check_storable(name: &str) -> Result<(), IdentError> {
    if name.is_empty() {
        return Err(IdentError::Empty);
    }
    if name.contains('\0') {
        return Err(IdentError::Nul(name.to_string()));
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(IdentError::TooLong(name.to_string(), name.len()));
    }
    Ok(())
}

fn is_bare_word(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

/// Splits dotted SQL name syntax into identifiers, honouring double quotes.
pub(crate) fn split_sql(text: &str) -> Result<Vec<Ident>, IdentError> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let (ident, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(IdentError::Unterminated(text.to_string())),
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            name.push('"');
                            chars.next();
                        } else {
                            break i + 1;
                        }
                    }
                    Some((_, c)) => name.push(c),
                }
            };
            check_storable(&name)?;
            (Ident(name), &quoted[end..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let word = &rest[..end];
            let folded = word.to_ascii_lowercase();
            if !is_bare_word(&folded) {
                if word.is_empty() {
                    return Err(IdentError::Empty);
                }
                return Err(IdentError::NotBare(word.to_string(), word.replace('"', "\"\"")));
            }
            check_storable(&folded)?;
            (Ident(folded), &rest[end..])
        };
        out.push(ident);
        if after.is_empty() {
            return Ok(out);
        }
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return Err(IdentError::TrailingText(text.to_string(), after.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        let id = Ident::new("a\nb\u{1b}[31m\\\"").unwrap();
        assert_eq!(id.to_string(), r#"U&"a\000Ab\001B[31m\\""""#);
        assert!(!id.to_string().chars().any(char::is_control));
        assert_eq!(Ident::new("Order Items").unwrap().to_string(), "\"Order Items\"");
    }

    #[test]
    fn bare_words_fold_to_lower_case() {
        assert_eq!(Ident::parse_sql("Orders").unwrap().as_str(), "orders");
        assert_eq!(Ident::parse_sql("order_items2").unwrap().as_str(), "order_items2");
    }

    #[test]
    fn quoted_words_are_verbatim() {
        let id = Ident::parse_sql(r#""Order ""Items""""#).unwrap();
        assert_eq!(id.as_str(), r#"Order "Items""#);
        assert_eq!(id.quoted(), r#""Order ""Items""""#);
        assert_eq!(id.to_string(), r#""Order ""Items""""#);
    }

    #[test]
    fn hostile_bare_text_is_rejected() {
        let err = Ident::parse_sql("products; DROP TABLE users").unwrap_err();
        assert!(matches!(err, IdentError::NotBare(..)), "{err}");
        assert!(Ident::parse_sql("1abc").is_err());
        assert!(Ident::parse_sql("").is_err());
        assert!(Ident::parse_sql("\"a\"b").is_err());
        assert!(Ident::parse_sql("\"abc").is_err());
    }

    #[test]
    fn hostile_quoted_text_is_quoted_inertly() {
        let id = Ident::parse_sql(r#""x""; DROP TABLE users; --""#).unwrap();
        assert_eq!(id.as_str(), r#"x"; DROP TABLE users; --"#);
        assert_eq!(id.quoted(), r#""x""; DROP TABLE users; --""#);
    }

    #[test]
    fn storage_limits() {
        assert!(Ident::new("a".repeat(63)).is_ok());
        assert!(matches!(Ident::new("a".repeat(64)), Err(IdentError::TooLong(_, 64))));
        assert!(matches!(Ident::new("a\0b"), Err(IdentError::Nul(_))));
        // Multi-byte characters count in bytes, as PostgreSQL counts them.
        assert!(Ident::new("é".repeat(32)).is_err());
    }

    #[test]
    fn literals_double_their_quotes() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
