use std::collections::HashMap;

use deed_ident::{Ident, QualifiedName};

use crate::date::Date;
use crate::error::{ManifestError, ManifestErrors};
use crate::interpolate::interpolate;
use crate::location::{Location, SourceFile, Span};
use crate::refs::{ContractKey, ContractRef, EventRef};

/// A validated manifest. Every reference in it resolves.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: SourceFile,
    pub version: u32,
    pub database: DatabaseSection,
    /// Services in manifest order.
    pub services: Vec<Service>,
    /// `[audit] admins`: roles and application names whose statements are
    /// administration (setup, migrations, deed itself), not a service's.
    pub admins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSection {
    /// The URL as written; interpolated only when asked for, so an unset
    /// variable matters only when no `--database-url` replaces it.
    pub(crate) url: Option<(String, Span)>,
    /// Schemas that unqualified names resolve through, in order.
    pub search_path: Vec<Ident>,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub location: Location,
    pub description: Option<String>,
    pub owns: Vec<QualifiedName>,
    pub logins: Vec<Ident>,
    pub applications: Vec<String>,
    pub api_schema: Ident,
    pub contracts: Vec<Contract>,
    pub events: Vec<Event>,
    pub reads: Vec<ContractRef>,
    pub consumes: Vec<EventRef>,
    /// Direct grants this service keeps on other services' relations while
    /// it migrates to their contracts.
    pub exceptions: Vec<Exception>,
    /// The service's own database URL as written (`${VAR}` resolved only
    /// when asked for); `None`: the shared database.
    pub(crate) database: Option<(String, Span)>,
    /// The tables and handlers the service keeps from events it consumes.
    pub projections: Vec<Projection>,
    /// Where each entry of the lists above is written.
    pub locations: ServiceLocations,
}

/// What a consumer keeps from one event it consumes.
#[derive(Debug, Clone)]
pub struct Projection {
    pub name: String,
    pub event: EventRef,
    pub target: ProjectionTarget,
    /// The contract read this projection will replace at cutover.
    pub replaces: Option<ContractRef>,
    pub location: Location,
    /// Where `into` or `sql` is written, for errors found against the
    /// database (a column missing from an existing table).
    pub target_location: Location,
}

#[derive(Debug, Clone)]
pub enum ProjectionTarget {
    /// A table deed keeps equal to the event's contract columns.
    Table(QualifiedName),
    /// A statement run once per event.
    Handler { text: String, handler: deed_sql::Handler },
}

/// Where a service's list entries are written, so a problem found later
/// (a login that does not exist, a relation that is missing) points at
/// the line that names it.
#[derive(Debug, Clone, Default)]
pub struct ServiceLocations {
    pub owns: HashMap<QualifiedName, Location>,
    pub logins: HashMap<Ident, Location>,
    pub reads: HashMap<ContractRef, Location>,
    pub consumes: HashMap<EventRef, Location>,
    /// The `api_schema` key, when the manifest names one.
    pub api_schema: Option<Location>,
}

/// A table privilege, as PostgreSQL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Privilege {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
    References,
    Trigger,
}

impl Privilege {
    pub const ALL: [Privilege; 7] = [
        Privilege::Select,
        Privilege::Insert,
        Privilege::Update,
        Privilege::Delete,
        Privilege::Truncate,
        Privilege::References,
        Privilege::Trigger,
    ];

    pub fn as_sql(self) -> &'static str {
        match self {
            Privilege::Select => "SELECT",
            Privilege::Insert => "INSERT",
            Privilege::Update => "UPDATE",
            Privilege::Delete => "DELETE",
            Privilege::Truncate => "TRUNCATE",
            Privilege::References => "REFERENCES",
            Privilege::Trigger => "TRIGGER",
        }
    }

    pub fn parse(s: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.as_sql().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether the privilege changes rows.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Privilege::Insert | Privilege::Update | Privilege::Delete | Privilege::Truncate
        )
    }
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_sql())
    }
}

impl serde::Serialize for Privilege {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_sql())
    }
}

/// A transitional exception: `service` keeps direct `privileges` on
/// another service's `relation`, for a stated reason, until `expires`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exception {
    pub service: String,
    pub relation: QualifiedName,
    pub privileges: Vec<Privilege>,
    pub reason: String,
    pub expires: Option<Date>,
    #[serde(serialize_with = "location_string")]
    pub location: Location,
}

impl Exception {
    /// In force today: no expiry, or an expiry date not yet passed.
    pub fn is_active(&self, today: Date) -> bool {
        self.expires.is_none_or(|d| today <= d)
    }
}

fn location_string<S: serde::Serializer>(l: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(l)
}

#[derive(Debug, Clone)]
pub struct Contract {
    pub name: String,
    pub version: u32,
    pub from: QualifiedName,
    pub shape: ContractShape,
    pub description: Option<String>,
    /// Columns the owner states are never NULL where the view cannot
    /// prove it (`not_null`): `deed apply` checks them against the data,
    /// and `deed generate` types them as non-optional.
    pub not_null: Vec<Ident>,
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractShape {
    /// Explicit, ordered columns of `from`.
    Columns(Vec<Ident>),
    /// A query the owner writes by hand.
    Query(String),
}

/// A state event (`from` a table, keyed) or a domain event (emitted by the
/// service itself, no `from`).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub from: Option<QualifiedName>,
    pub key: Vec<Ident>,
    pub contract: Option<ContractKey>,
    pub description: Option<String>,
    /// What an UPDATE that changes none of the contract's columns does.
    pub unchanged: Unchanged,
    /// Which changes of the payload's contract its consumers must survive.
    pub compatibility: Compatibility,
    pub location: Location,
}

/// `compatibility` of an event, with the meaning Confluent Schema Registry
/// gives the words, checked against every earlier contract version of the
/// payload still in the manifest (transitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compatibility {
    /// A consumer on the new version reads events of the earlier ones: a
    /// column may go, a column may come only if it may be NULL (the
    /// default).
    #[default]
    Backward,
    /// A consumer on an earlier version reads events of the new one: a
    /// column may come, a column may go only if it may be NULL.
    Forward,
    /// Both.
    Full,
    /// Any change; consumers move with it.
    None,
}

impl Compatibility {
    pub fn parse(text: &str) -> Option<Compatibility> {
        match text {
            "backward" => Some(Compatibility::Backward),
            "forward" => Some(Compatibility::Forward),
            "full" => Some(Compatibility::Full),
            "none" => Some(Compatibility::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::Backward => "backward",
            Compatibility::Forward => "forward",
            Compatibility::Full => "full",
            Compatibility::None => "none",
        }
    }
}

/// `unchanged` of a state event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unchanged {
    /// No event (the default): consumers see only changes of what the
    /// contract publishes.
    #[default]
    Skip,
    /// An event for every UPDATE of the table.
    Emit,
}

/// `<service>_api`, the api schema when the manifest names none.
pub fn default_api_schema(service: &str) -> Ident {
    Ident::new(format!("{service}_api")).expect("service names are short lower-case words")
}

impl Manifest {
    /// The database URL from the manifest, with `${VAR}` resolved.
    pub fn database_url(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ManifestErrors> {
        let Some((raw, span)) = &self.database.url else { return Ok(None) };
        interpolate(raw, lookup).map(Some).map_err(|e| {
            // +1 skips the opening quote of the TOML string.
            let at = span.start + 1 + e.offset;
            ManifestErrors(vec![ManifestError::at(&self.source, at..at + 1, e.message)])
        })
    }

    /// A service's own database URL, `${VAR}` resolved; `None` when it
    /// uses the shared database.
    pub fn service_database_url(
        &self,
        service: &Service,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ManifestErrors> {
        let Some((raw, span)) = &service.database else { return Ok(None) };
        interpolate(raw, lookup).map(Some).map_err(|e| {
            let at = span.start + 1 + e.offset;
            ManifestErrors(vec![ManifestError::at(&self.source, at..at + 1, e.message)])
        })
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service whose `owns` lists the relation, or whose api schema
    /// holds it.
    pub fn owner_of(&self, relation: &QualifiedName) -> Option<&Service> {
        self.services.iter().find(|s| s.owns.contains(relation) || s.api_schema == relation.schema)
    }

    pub fn service_for_login(&self, role: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.logins.iter().any(|l| l.as_str() == role))
    }

    pub fn service_for_application(&self, application: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.applications.iter().any(|a| a == application))
    }

    pub fn contract(&self, r: &ContractRef) -> Option<(&Service, &Contract)> {
        let service = self.service(&r.service)?;
        let contract = service.contract(&r.key())?;
        Some((service, contract))
    }

    /// Every published contract version with its view name.
    pub fn contract_views(&self) -> impl Iterator<Item = (&Service, &Contract, QualifiedName)> {
        self.services
            .iter()
            .flat_map(|s| s.contracts.iter().map(move |c| (s, c, c.view_name(&s.api_schema))))
    }

    /// Every exception of every service.
    pub fn exceptions(&self) -> impl Iterator<Item = &Exception> {
        self.services.iter().flat_map(|s| s.exceptions.iter())
    }

    /// The contract version published as this view, if any.
    pub fn contract_for_view(&self, view: &QualifiedName) -> Option<ContractRef> {
        self.contract_views().find(|(_, _, v)| v == view).map(|(s, c, _)| c.reference(&s.name))
    }
}

impl Service {
    pub fn projection(&self, name: &str) -> Option<&Projection> {
        self.projections.iter().find(|p| p.name == name)
    }

    pub fn contract(&self, key: &ContractKey) -> Option<&Contract> {
        self.contracts.iter().find(|c| c.name == key.contract && c.version == key.version)
    }

    pub fn event(&self, name: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.name == name)
    }

    pub fn owns(&self, relation: &QualifiedName) -> bool {
        self.owns.contains(relation) || self.api_schema == relation.schema
    }

    /// Where `owns` names this relation, or else where the service starts.
    pub fn owns_location(&self, relation: &QualifiedName) -> &Location {
        self.locations.owns.get(relation).unwrap_or(&self.location)
    }

    /// `database` as written (before `${VAR}` is resolved) and the byte
    /// range of its value, quotes included, in the manifest's text.
    pub fn database_written(&self) -> Option<(&str, Span)> {
        self.database.as_ref().map(|(text, span)| (text.as_str(), span.clone()))
    }

    /// Where `logins` names this role, or else where the service starts.
    pub fn login_location(&self, login: &str) -> &Location {
        self.locations
            .logins
            .iter()
            .find(|(l, _)| l.as_str() == login)
            .map_or(&self.location, |(_, at)| at)
    }
}

impl Contract {
    /// `<api_schema>.<name>_v<version>`.
    pub fn view_name(&self, api_schema: &Ident) -> QualifiedName {
        let view = Ident::new(format!("{}_v{}", self.name, self.version))
            .expect("validated to fit in a PostgreSQL name");
        QualifiedName::new(api_schema.clone(), view)
    }

    pub fn key(&self) -> ContractKey {
        ContractKey { contract: self.name.clone(), version: self.version }
    }

    pub fn reference(&self, service: &str) -> ContractRef {
        ContractRef {
            service: service.to_string(),
            contract: self.name.clone(),
            version: self.version,
        }
    }
}
