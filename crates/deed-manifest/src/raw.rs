//! The manifest exactly as written, with spans, before any checking.
//! `deny_unknown_fields` everywhere: a misspelt key must never be ignored.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub version: Option<S<i64>>,
    #[serde(default)]
    pub database: Option<RawDatabase>,
    #[serde(default)]
    pub services: IndexMap<S<String>, RawService>,
    pub audit: Option<RawAudit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    /// Roles and application names of administrators and migration tools.
    #[serde(default)]
    pub admins: Vec<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub url: Option<S<String>>,
    pub search_path: Option<Vec<S<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub description: Option<S<String>>,
    #[serde(default)]
    pub owns: Vec<S<String>>,
    #[serde(default)]
    pub logins: Vec<S<String>>,
    #[serde(default)]
    pub applications: Vec<S<String>>,
    pub api_schema: Option<S<String>>,
    #[serde(default)]
    pub contracts: Vec<S<RawContract>>,
    #[serde(default)]
    pub events: Vec<S<RawEvent>>,
    #[serde(default)]
    pub reads: Vec<S<String>>,
    #[serde(default)]
    pub consumes: Vec<S<String>>,
    #[serde(default)]
    pub exceptions: Vec<S<RawException>>,
    pub database: Option<S<String>>,
    #[serde(default)]
    pub projections: Vec<S<RawProjection>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProjection {
    pub name: S<String>,
    pub event: S<String>,
    pub into: Option<S<String>>,
    pub sql: Option<S<String>>,
    pub replaces: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContract {
    pub name: S<String>,
    pub version: S<i64>,
    pub from: S<String>,
    pub columns: Option<S<Vec<S<String>>>>,
    pub query: Option<S<String>>,
    pub description: Option<S<String>>,
    pub not_null: Option<S<Vec<S<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub name: S<String>,
    pub from: Option<S<String>>,
    pub key: Option<S<Vec<S<String>>>>,
    pub contract: Option<S<String>>,
    pub description: Option<S<String>>,
    pub unchanged: Option<S<String>>,
    pub compatibility: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawException {
    pub relation: S<String>,
    pub privileges: Option<S<Vec<S<String>>>>,
    pub reason: Option<S<String>>,
    pub expires: Option<S<toml::value::Datetime>>,
}
