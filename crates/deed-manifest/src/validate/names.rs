//! Names in the manifest: identifiers, logins and lists of them, each
//! checked where it is written.

use std::collections::HashSet;
use std::hash::Hash;

use deed_ident::{Ident, IdentError, QualifiedName};

use crate::interpolate::interpolate;
use crate::location::Span;
use crate::raw::S;
use crate::refs::is_simple_name;

use super::*;

impl Validator<'_> {
    /// Interpolates a string value, reporting an unset variable in place.
    pub(crate) fn text(&mut self, value: &S<String>) -> Option<String> {
        match interpolate(value.get_ref(), self.lookup) {
            Ok(text) => Some(text),
            Err(e) => {
                // +1 skips the opening quote of the TOML string.
                let at = value.span().start + 1 + e.offset;
                self.error(at..at + 1, e.message);
                None
            }
        }
    }

    /// A schema-qualified relation name, never in a system schema.
    pub(crate) fn qualified(&mut self, value: &S<String>) -> Option<QualifiedName> {
        let text = self.text(value)?;
        let name = match QualifiedName::parse_sql(&text) {
            Err(IdentError::Parts(..)) if !text.contains('.') => {
                self.error_help(
                    value.span(),
                    format!("{text:?} is not schema-qualified"),
                    format!("write the schema too, e.g. \"public.{text}\""),
                );
                None
            }
            other => self.ident_result(value.span(), other),
        }?;
        if system_schema(name.schema.as_str()) {
            self.error_help(
                value.span(),
                format!("{name} is in {}, a system schema", name.schema),
                "PostgreSQL's own schemas (pg_catalog, pg_toast, pg_temp…, information_schema) and deed's schema belong to no service; deed never changes their owners or grants",
            );
            return None;
        }
        Some(name)
    }

    pub(crate) fn simple_name(
        &mut self,
        value: &S<String>,
        what: &str,
        max: usize,
    ) -> Option<String> {
        let name = value.get_ref();
        if !is_simple_name(name) {
            self.error_help(
                value.span(),
                format!("invalid {what} name {name:?}"),
                format!("{what} names are lower-case words: a letter, then letters, digits or _"),
            );
            return None;
        }
        if name.len() > max {
            self.error(value.span(), format!("{what} name {name:?} is longer than {max} bytes"));
            return None;
        }
        Some(name.clone())
    }

    pub(crate) fn ident(&mut self, value: &S<String>) -> Option<Ident> {
        let text = self.text(value)?;
        self.ident_result(value.span(), Ident::parse_sql(&text))
    }

    /// A login role: never a role the server reserves. A predefined role
    /// (`pg_read_all_data`, `pg_monitor`…) or `PUBLIC` stands for others:
    /// making it a login would hand the service's owner role to every
    /// member (monitoring agents, often) or to everyone.
    pub(crate) fn login(&mut self, value: &S<String>) -> Option<Ident> {
        let login = self.ident(value)?;
        let name = login.as_str();
        let reserved = if name.starts_with("pg_") {
            Some("a role the server predefines (every pg_ name is reserved)")
        } else if RESERVED_ROLES.contains(&name) {
            Some("a name the server reserves")
        } else {
            None
        };
        if let Some(why) = reserved {
            self.error_help(
                value.span(),
                format!("{login} cannot be a login: it is {why}, and every member of it would get the service's owner role"),
                "list the roles the service's application logs in as",
            );
            return None;
        }
        Some(login)
    }

    pub(crate) fn ident_result<T>(&mut self, span: Span, r: Result<T, IdentError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(span, format!("invalid identifier: {e}"));
                None
            }
        }
    }

    /// Checks each entry and drops duplicates within one list.
    pub(crate) fn list<T: Eq + Hash + Clone>(
        &mut self,
        values: &[S<String>],
        what: &str,
        mut check: impl FnMut(&mut Self, &S<String>) -> Option<T>,
    ) -> Vec<(T, Span)> {
        let mut out: Vec<(T, Span)> = Vec::new();
        let mut seen: HashSet<T> = HashSet::new();
        for value in values {
            let Some(item) = check(self, value) else { continue };
            if !seen.insert(item.clone()) {
                self.error(value.span(), format!("{what} {:?} is listed twice", value.get_ref()));
            } else {
                out.push((item, value.span()));
            }
        }
        out
    }

    pub(crate) fn columns(&mut self, cols: &S<Vec<S<String>>>) -> Option<Vec<Ident>> {
        if cols.get_ref().is_empty() {
            self.error(cols.span(), "a contract must list at least one column");
            return None;
        }
        let before = self.problems();
        let mut out: Vec<Ident> = Vec::new();
        for col in cols.get_ref() {
            if col.get_ref().trim() == "*" {
                self.error_help(
                    col.span(),
                    "a contract never publishes `*`",
                    "list the columns explicitly, in the order consumers get them",
                );
                continue;
            }
            let Some(ident) = self.ident(col) else { continue };
            if out.contains(&ident) {
                self.error(col.span(), format!("column {ident} is listed twice"));
            } else {
                out.push(ident);
            }
        }
        (self.problems() == before).then_some(out)
    }
}
