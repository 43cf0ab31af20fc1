use std::fmt;

use serde::{Serialize, Serializer};

use crate::ident::{Ident, IdentError, split_sql};

/// A schema-qualified relation name such as `public.products`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: Ident,
    pub name: Ident,
}

impl QualifiedName {
    pub fn new(schema: Ident, name: Ident) -> Self {
        QualifiedName { schema, name }
    }

    /// Builds a name from catalog text, which needs no case folding.
    pub fn from_catalog(schema: &str, name: &str) -> Result<Self, IdentError> {
        Ok(QualifiedName { schema: Ident::new(schema)?, name: Ident::new(name)? })
    }

    /// Parses `schema.name` in SQL syntax; both parts are required.
    pub fn parse_sql(text: &str) -> Result<Self, IdentError> {
        let mut parts = split_sql(text)?;
        if parts.len() != 2 {
            return Err(IdentError::Parts(text.to_string(), 2));
        }
        let name = parts.pop().expect("two parts");
        let schema = parts.pop().expect("two parts");
        Ok(QualifiedName { schema, name })
    }

    /// Always-quoted form for generated SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", self.schema.quoted(), self.name.quoted())
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

impl fmt::Debug for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QualifiedName({self})")
    }
}

impl Serialize for QualifiedName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let q = QualifiedName::parse_sql("public.Products").unwrap();
        assert_eq!(q.to_string(), "public.products");
        assert_eq!(q.quoted(), "\"public\".\"products\"");
        let q = QualifiedName::parse_sql("\"My Schema\".\"a.b\"").unwrap();
        assert_eq!(q.schema.as_str(), "My Schema");
        assert_eq!(q.name.as_str(), "a.b");
        assert_eq!(q.to_string(), "\"My Schema\".\"a.b\"");
    }

    #[test]
    fn requires_two_parts() {
        assert!(matches!(QualifiedName::parse_sql("products"), Err(IdentError::Parts(_, 2))));
        assert!(QualifiedName::parse_sql("a.b.c").is_err());
        assert!(QualifiedName::parse_sql("a.").is_err());
    }
}
