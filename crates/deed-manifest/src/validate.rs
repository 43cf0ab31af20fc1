//! Turns the raw TOML into a [`Manifest`], collecting every problem.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::io::Read;
use std::path::Path;

use deed_ident::{Ident, IdentError, MAX_IDENT_BYTES, QualifiedName};

use crate::MANIFEST_VERSION;
use crate::date::Date;
use crate::error::{ManifestError, ManifestErrors};
use crate::interpolate::interpolate;
use crate::location::{Location, SourceFile, Span};
use crate::model::{
    Compatibility, Contract, ContractShape, DatabaseSection, Event, Exception, Manifest, Privilege,
    Projection, Service, ServiceLocations, Unchanged, default_api_schema,
};
use crate::projection::ProjectionSpans;
use crate::raw::{RawContract, RawDatabase, RawEvent, RawException, RawManifest, RawService, S};
use crate::refs::{ContractKey, ContractRef, EventRef, is_simple_name};

/// The largest manifest deed reads. One with 10,000 services, each with
/// tables, logins, a contract, an event and an exception, is about 5 MiB;
/// anything far beyond is not a manifest.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The most problems one manifest reports in full.
const MAX_ERRORS: usize = 100;

/// Service names become parts of role names (`deed_<service>_owner`), so
/// they stay well inside PostgreSQL's 63-byte limit.
const MAX_SERVICE_NAME: usize = 40;

/// Schemas a service may never claim as its api schema.
const RESERVED_SCHEMAS: &[&str] = &["public", "information_schema", "deed"];

/// Role names the server reserves besides every `pg_` name: `GRANT … TO
/// public` (quoted or not) grants to everyone.
const RESERVED_ROLES: &[&str] = &["public", "none"];

/// PostgreSQL's own schemas (`pg_catalog`, `pg_toast`, `pg_temp_*`, and
/// every `pg_` name, which the server reserves), `information_schema`, and
/// deed's own: no key may name a relation in one, or the schema itself.
fn system_schema(schema: &str) -> bool {
    schema.starts_with("pg_") || schema == "information_schema" || schema == "deed"
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Manifest {
    /// Reads and validates a manifest file, with `${VAR}` taken from the
    /// process environment.
    pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
        let at_start = Location { file: path.to_path_buf(), line: 1, column: 1 };
        let unreadable = |e: std::io::Error| {
            let mut err = ManifestError::whole_file(
                at_start.clone(),
                format!("cannot read the manifest: {e}"),
            );
            err.help = Some("write one by hand, or propose one with `deed init`".into());
            ManifestErrors(vec![err])
        };
        // Read at most one byte past the limit: a device or a runaway file
        // (`--manifest /dev/zero`) is refused, not read until memory ends.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            let mut err = ManifestError::whole_file(
                at_start,
                format!("the manifest is larger than {} MiB", MAX_MANIFEST_BYTES >> 20),
            );
            err.help =
                Some("is this the right file? deed.toml describes services, not data".into());
            return Err(ManifestErrors(vec![err]));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // What `deed init > deed.toml` leaves behind when init fails.
            let mut err = ManifestError::whole_file(at_start, "the manifest is empty");
            err.help = Some(
                "propose one with `deed init --write` (it replaces an empty file), or remove it"
                    .into(),
            );
            return Err(ManifestErrors(vec![err]));
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let good = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..good]).into_owned();
                let mut err = ManifestError::whole_file(
                    SourceFile::new(path, prefix).locate(good),
                    "the manifest is not valid UTF-8",
                );
                err.help = Some("save deed.toml as UTF-8".into());
                return Err(ManifestErrors(vec![err]));
            }
        };
        Manifest::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates manifest text. `lookup` resolves `${VAR}`.
    pub fn parse(path: &Path, text: &str, lookup: Lookup) -> Result<Manifest, ManifestErrors> {
        let src = SourceFile::new(path, text);
        let raw: RawManifest = deserialize(&src, text)?;
        let mut v = Validator {
            src: &src,
            lookup,
            errors: Vec::new(),
            more: 0,
            spans: Vec::new(),
            projection_spans: Vec::new(),
        };
        let manifest = v.manifest(raw);
        if v.errors.is_empty() {
            Ok(manifest)
        } else {
            v.errors.sort_by(|a, b| a.location.cmp(&b.location));
            if v.more > 0 {
                let mut last = ManifestError::whole_file(
                    src.locate(text.len()),
                    format!("and {} more problems not shown", v.more),
                );
                last.help = Some("fix the ones above first".into());
                v.errors.push(last);
            }
            Err(ManifestErrors(v.errors))
        }
    }
}

/// Where each validated item of one service was written, for the checks
/// that compare services with each other.
#[derive(Default)]
struct ServiceSpans {
    owns: Vec<(QualifiedName, Span)>,
    logins: Vec<(Ident, Span)>,
    applications: Vec<(String, Span)>,
    api_schema: Span,
    reads: Vec<(ContractRef, Span)>,
    consumes: Vec<(EventRef, Span)>,
    /// Contract versions and events as declared, even those rejected for
    /// another reason, so one mistake does not cascade into "unknown
    /// reference" errors elsewhere.
    declared_contracts: Vec<ContractKey>,
    declared_events: Vec<String>,
    exceptions: Vec<(QualifiedName, Span)>,
}

pub(crate) struct Validator<'a> {
    pub(crate) src: &'a SourceFile,
    lookup: Lookup<'a>,
    pub(crate) errors: Vec<ManifestError>,
    /// Problems past [`MAX_ERRORS`], counted but not kept: a manifest with
    /// a million bad entries is reported in a page, not a gigabyte.
    more: usize,
    spans: Vec<ServiceSpans>,
    projection_spans: Vec<Vec<ProjectionSpans>>,
}

fn public() -> Ident {
    Ident::new("public").expect("valid")
}

impl Validator<'_> {
    /// Problems found so far, kept or not.
    pub(crate) fn problems(&self) -> usize {
        self.errors.len() + self.more
    }

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(|src| ManifestError::at(src, span, message));
    }

    /// Keeps a problem, or only counts it past [`MAX_ERRORS`] (without
    /// quoting its line at all).
    fn push(&mut self, error: impl FnOnce(&SourceFile) -> ManifestError) {
        if self.errors.len() >= MAX_ERRORS {
            self.more += 1;
        } else {
            self.errors.push(error(self.src));
        }
    }

    pub(crate) fn error_help(
        &mut self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(|src| ManifestError::at(src, span, message).help(help));
    }

    fn manifest(&mut self, raw: RawManifest) -> Manifest {
        match &raw.version {
            None => self.error_help(
                0..0,
                "missing the manifest format version",
                format!("add `version = {MANIFEST_VERSION}` at the top"),
            ),
            Some(v) if *v.get_ref() != MANIFEST_VERSION => self.error_help(
                v.span(),
                format!("unsupported manifest version {}", v.get_ref()),
                format!("this deed reads version = {MANIFEST_VERSION}"),
            ),
            Some(_) => {}
        }
        let database = self.database(raw.database);
        let admins: Vec<String> = match &raw.audit {
            Some(a) => self
                .list(&a.admins, "admin", |v, s| {
                    let text = v.text(s)?;
                    if text.is_empty() {
                        v.error(s.span(), "an admin role or application name cannot be empty");
                        return None;
                    }
                    Some(text)
                })
                .into_iter()
                .map(|(a, _)| a)
                .collect(),
            None => Vec::new(),
        };
        let admin_spans: Vec<(String, Span)> = raw
            .audit
            .as_ref()
            .map(|a| a.admins.iter().map(|s| (s.get_ref().clone(), s.span())).collect())
            .unwrap_or_default();
        let services: Vec<Service> =
            raw.services.into_iter().map(|(name, s)| self.service(name, s)).collect();
        let manifest =
            Manifest { source: self.src.clone(), version: 1, database, services, admins };
        for (admin, span) in admin_spans {
            if let Some(s) = manifest.service_for_login(&admin) {
                self.error_help(
                    span,
                    format!("{admin} is a login of service {}, so it cannot be an admin too", s.name),
                    "admins are the roles of people and migration tools, whose statements are no service's",
                );
            }
        }
        self.cross_checks(&manifest);
        let projection_spans = std::mem::take(&mut self.projection_spans);
        self.projection_checks(&manifest, &projection_spans);
        manifest
    }

    fn database(&mut self, raw: Option<RawDatabase>) -> DatabaseSection {
        let Some(raw) = raw else {
            return DatabaseSection { url: None, search_path: vec![public()] };
        };
        let search_path = match raw.search_path {
            None => vec![public()],
            Some(list) => list
                .iter()
                .filter_map(|s| {
                    let schema = self.ident(s)?;
                    if system_schema(schema.as_str()) {
                        self.error_help(
                            s.span(),
                            format!("{schema} cannot be in the search path"),
                            "pg_catalog is always searched first, and the other system schemas (and deed's own) hold nothing a service's SQL names; list the schemas of your tables",
                        );
                        return None;
                    }
                    Some(schema)
                })
                .collect(),
        };
        let url = raw.url.map(|u| {
            let span = u.span();
            (u.into_inner(), span)
        });
        DatabaseSection { url, search_path }
    }

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

    fn ident(&mut self, value: &S<String>) -> Option<Ident> {
        let text = self.text(value)?;
        self.ident_result(value.span(), Ident::parse_sql(&text))
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

    /// A login role: never a role the server reserves. A predefined role
    /// (`pg_read_all_data`, `pg_monitor`…) or `PUBLIC` stands for others:
    /// making it a login would hand the service's owner role to every
    /// member (monitoring agents, often) or to everyone.
    fn login(&mut self, value: &S<String>) -> Option<Ident> {
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

    fn ident_result<T>(&mut self, span: Span, r: Result<T, IdentError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(span, format!("invalid identifier: {e}"));
                None
            }
        }
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

    /// Checks each entry and drops duplicates within one list.
    fn list<T: Eq + Hash + Clone>(
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

    fn service(&mut self, name: S<String>, raw: RawService) -> Service {
        let location = self.src.locate(name.span().start);
        let service_name = self
            .simple_name(&name, "service", MAX_SERVICE_NAME)
            .unwrap_or_else(|| name.get_ref().clone());
        let mut spans = ServiceSpans {
            owns: self.list(&raw.owns, "relation", |v, s| v.qualified(s)),
            logins: self.list(&raw.logins, "login", |v, s| v.login(s)),
            applications: self.list(&raw.applications, "application", |v, s| {
                let text = v.text(s)?;
                if text.is_empty() {
                    v.error(s.span(), "an application name cannot be empty");
                    return None;
                }
                Some(text)
            }),
            api_schema: name.span(),
            declared_contracts: Vec::new(),
            declared_events: Vec::new(),
            exceptions: Vec::new(),
            reads: self.list(&raw.reads, "contract reference", |v, s| {
                let r = ContractRef::parse(s.get_ref());
                if r.is_none() {
                    v.error_help(
                        s.span(),
                        format!("{:?} is not a contract reference", s.get_ref()),
                        "write <service>.<contract>.v<version>, e.g. \"catalog.products.v1\"",
                    );
                }
                r
            }),
            consumes: self.list(&raw.consumes, "event reference", |v, s| {
                let r = EventRef::parse(s.get_ref());
                if r.is_none() {
                    v.error_help(
                        s.span(),
                        format!("{:?} is not an event reference", s.get_ref()),
                        "write <service>.<event>, e.g. \"catalog.product_changed\"",
                    );
                }
                r
            }),
        };
        spans.declared_contracts = raw
            .contracts
            .iter()
            .filter_map(|c| {
                let c = c.get_ref();
                let version = u32::try_from(*c.version.get_ref()).ok()?;
                Some(ContractKey { contract: c.name.get_ref().clone(), version })
            })
            .collect();
        spans.declared_events =
            raw.events.iter().map(|e| e.get_ref().name.get_ref().clone()).collect();
        let api_schema = match &raw.api_schema {
            Some(s) => {
                spans.api_schema = s.span();
                match self.ident(s) {
                    Some(i)
                        if RESERVED_SCHEMAS.contains(&i.as_str()) || system_schema(i.as_str()) =>
                    {
                        self.error_help(
                            s.span(),
                            format!("{i} cannot be an api schema"),
                            "an api schema holds only one service's contract views; name a new schema",
                        );
                        default_api_schema(&service_name)
                    }
                    Some(i) => i,
                    None => default_api_schema(&service_name),
                }
            }
            None => default_api_schema(&service_name),
        };
        let owns: Vec<QualifiedName> = spans.owns.iter().map(|(q, _)| q.clone()).collect();
        let mut contracts: Vec<Contract> = Vec::new();
        for c in &raw.contracts {
            let Some(contract) = self.contract(c, &owns, &api_schema) else { continue };
            if contracts.iter().any(|o| o.key() == contract.key()) {
                self.error(c.span(), format!("contract {} is defined twice", contract.key()));
            } else {
                contracts.push(contract);
            }
        }
        let mut events: Vec<Event> = Vec::new();
        for e in &raw.events {
            let Some(event) = self.event(e, &owns, &contracts) else { continue };
            if events.iter().any(|o| o.name == event.name) {
                self.error(
                    e.get_ref().name.span(),
                    format!("event {} is defined twice", event.name),
                );
            } else {
                events.push(event);
            }
        }
        let mut exceptions: Vec<Exception> = Vec::new();
        for raw_exception in &raw.exceptions {
            let Some(e) = self.exception(raw_exception, &service_name) else { continue };
            if exceptions.iter().any(|o| o.relation == e.relation) {
                self.error(
                    raw_exception.get_ref().relation.span(),
                    format!(
                        "a second exception for {}; list all its privileges in one",
                        e.relation
                    ),
                );
                continue;
            }
            spans.exceptions.push((e.relation.clone(), raw_exception.get_ref().relation.span()));
            exceptions.push(e);
        }
        let mut projections = Vec::new();
        let mut projection_spans = Vec::new();
        for raw_projection in &raw.projections {
            let Some((p, sp)) = self.projection(raw_projection) else { continue };
            if projections.iter().any(|o: &Projection| o.name == p.name) {
                self.error(
                    raw_projection.get_ref().name.span(),
                    format!("projection {} is defined twice", p.name),
                );
                continue;
            }
            projections.push(p);
            projection_spans.push(sp);
        }
        self.projection_spans.push(projection_spans);
        let database = raw.database.as_ref().map(|d| (d.get_ref().clone(), d.span()));
        let at = |span: &Span| self.src.locate(span.start);
        let locations = ServiceLocations {
            owns: spans.owns.iter().map(|(q, sp)| (q.clone(), at(sp))).collect(),
            logins: spans.logins.iter().map(|(l, sp)| (l.clone(), at(sp))).collect(),
            reads: spans.reads.iter().map(|(r, sp)| (r.clone(), at(sp))).collect(),
            consumes: spans.consumes.iter().map(|(r, sp)| (r.clone(), at(sp))).collect(),
            api_schema: raw.api_schema.as_ref().map(|s| at(&s.span())),
        };
        let service = Service {
            locations,
            name: service_name,
            location,
            description: raw.description.as_ref().and_then(|d| self.text(d)),
            owns,
            logins: spans.logins.iter().map(|(l, _)| l.clone()).collect(),
            applications: spans.applications.iter().map(|(a, _)| a.clone()).collect(),
            api_schema,
            contracts,
            events,
            reads: spans.reads.iter().map(|(r, _)| r.clone()).collect(),
            consumes: spans.consumes.iter().map(|(r, _)| r.clone()).collect(),
            exceptions,
            database,
            projections,
        };
        self.spans.push(spans);
        service
    }

    fn contract(
        &mut self,
        raw: &S<RawContract>,
        owns: &[QualifiedName],
        api_schema: &Ident,
    ) -> Option<Contract> {
        let c = raw.get_ref();
        let name = self.simple_name(&c.name, "contract", MAX_IDENT_BYTES);
        let version = match u32::try_from(*c.version.get_ref()) {
            Ok(v) if v >= 1 => Some(v),
            _ => {
                self.error(c.version.span(), "a contract version is a whole number from 1 up");
                None
            }
        };
        let from = self.qualified(&c.from);
        if let Some(from) = &from {
            if !owns.contains(from) {
                self.error_help(
                    c.from.span(),
                    format!("a contract can only publish a relation its service owns; {from} is not in owns"),
                    format!("add \"{from}\" to this service's owns"),
                );
            }
        }
        let shape = match (&c.columns, &c.query) {
            (Some(_), Some(q)) => {
                self.error(q.span(), "give either `columns` or `query`, not both");
                None
            }
            (None, None) => {
                self.error_help(
                    raw.span(),
                    "a contract needs `columns` (explicit and ordered) or a `query`",
                    "e.g. columns = [\"id\", \"name\"]",
                );
                None
            }
            (Some(cols), None) => self.columns(cols).map(ContractShape::Columns),
            (None, Some(q)) => match self.text(q) {
                Some(text) if text.trim().is_empty() => {
                    self.error(q.span(), "the contract query is empty");
                    None
                }
                Some(text) => Some(ContractShape::Query(text)),
                None => None,
            },
        };
        let not_null = self.not_null(c.not_null.as_ref(), shape.as_ref());
        let (name, version, from, shape, not_null) = (name?, version?, from?, shape?, not_null?);
        let view = format!("{name}_v{version}");
        if view.len() > MAX_IDENT_BYTES {
            self.error(
                c.name.span(),
                format!("the view name {api_schema}.{view} would exceed {MAX_IDENT_BYTES} bytes"),
            );
            return None;
        }
        Some(Contract {
            name,
            version,
            from,
            shape,
            description: c.description.as_ref().and_then(|d| self.text(d)),
            not_null,
            location: self.src.locate(raw.span().start),
        })
    }

    /// `not_null`: identifiers, each once, and of the listed columns when
    /// the contract lists them (a query's columns are checked at apply).
    fn not_null(
        &mut self,
        raw: Option<&S<Vec<S<String>>>>,
        shape: Option<&ContractShape>,
    ) -> Option<Vec<Ident>> {
        let Some(raw) = raw else { return Some(Vec::new()) };
        let before = self.problems();
        let mut out: Vec<Ident> = Vec::new();
        for col in raw.get_ref() {
            let Some(ident) = self.ident(col) else { continue };
            if out.contains(&ident) {
                self.error(col.span(), format!("column {ident} is listed twice in not_null"));
                continue;
            }
            if let Some(ContractShape::Columns(cols)) = shape {
                if !cols.contains(&ident) {
                    self.error_help(
                        col.span(),
                        format!(
                            "not_null names {ident}, which is not one of the contract's columns"
                        ),
                        format!(
                            "the columns are {}",
                            cols.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                    continue;
                }
            }
            out.push(ident);
        }
        (self.problems() == before).then_some(out)
    }

    fn exception(&mut self, raw: &S<RawException>, service: &str) -> Option<Exception> {
        let e = raw.get_ref();
        let before = self.problems();
        let relation = self.qualified(&e.relation);
        let mut privileges = Vec::new();
        match &e.privileges {
            None => privileges.push(Privilege::Select),
            Some(list) if list.get_ref().is_empty() => {
                self.error(list.span(), "list at least one privilege, e.g. [\"SELECT\"]");
            }
            Some(list) => {
                for p in list.get_ref() {
                    match Privilege::parse(p.get_ref()) {
                        Some(x) if !privileges.contains(&x) => privileges.push(x),
                        Some(_) => self.error(p.span(), format!("{} is listed twice", p.get_ref())),
                        None => self.error_help(
                            p.span(),
                            format!("{:?} is not a table privilege", p.get_ref()),
                            "use SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER",
                        ),
                    }
                }
            }
        }
        let reason = match &e.reason {
            Some(r) => match self.text(r) {
                Some(t) if t.trim().is_empty() => {
                    self.error(r.span(), "the reason cannot be empty");
                    None
                }
                other => other,
            },
            None => {
                self.error_help(
                    raw.span(),
                    "an exception needs a `reason`",
                    "say why the direct grant must stay for now, e.g. reason = \"reads orders until the v2 cutover (TICKET-42)\"",
                );
                None
            }
        };
        let expires = e.expires.as_ref().and_then(|d| match (d.get_ref().date, d.get_ref().time) {
            (Some(date), None) => Some(Date {
                year: i32::from(date.year),
                month: u32::from(date.month),
                day: u32::from(date.day),
            }),
            _ => {
                self.error_help(
                    d.span(),
                    "`expires` is a date",
                    "write it as a TOML date, e.g. expires = 2027-01-31",
                );
                None
            }
        });
        if self.problems() != before {
            return None;
        }
        Some(Exception {
            service: service.to_string(),
            relation: relation?,
            privileges,
            reason: reason?,
            expires,
            location: self.src.locate(raw.span().start),
        })
    }

    fn columns(&mut self, cols: &S<Vec<S<String>>>) -> Option<Vec<Ident>> {
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

    fn event(
        &mut self,
        raw: &S<RawEvent>,
        owns: &[QualifiedName],
        contracts: &[Contract],
    ) -> Option<Event> {
        let e = raw.get_ref();
        let before = self.problems();
        let name = self.simple_name(&e.name, "event", MAX_IDENT_BYTES);
        let from = e.from.as_ref().and_then(|f| {
            let q = self.qualified(f)?;
            if !owns.contains(&q) {
                self.error_help(
                    f.span(),
                    format!("an event can only come from a relation its service owns; {q} is not in owns"),
                    format!("add \"{q}\" to this service's owns"),
                );
            }
            Some(q)
        });
        let mut key = Vec::new();
        if let Some(k) = &e.key {
            if k.get_ref().is_empty() {
                self.error(k.span(), "an event key needs at least one column");
            }
            for col in k.get_ref() {
                if let Some(ident) = self.ident(col) {
                    key.push((ident, col.span()));
                }
            }
        }
        let contract = e.contract.as_ref().and_then(|c| {
            let Some(ck) = ContractKey::parse(c.get_ref()) else {
                self.error_help(
                    c.span(),
                    format!("{:?} is not a contract version of this service", c.get_ref()),
                    "write <contract>.v<version>, e.g. \"products.v1\"",
                );
                return None;
            };
            match contracts.iter().find(|x| x.key() == ck) {
                None => self.error(
                    c.span(),
                    format!("this service defines no contract {ck} for the event's payload"),
                ),
                Some(contract) => {
                    if let ContractShape::Columns(cols) = &contract.shape {
                        for (col, span) in &key {
                            if !cols.contains(col) {
                                self.error_help(
                                    span.clone(),
                                    format!("key column {col} is not in contract {ck}"),
                                    format!(
                                        "every envelope carries its key, so the key is part of what the event publishes: use columns of {ck} ({}), or add {col} to the contract",
                                        cols.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    if from.as_ref().is_some_and(|f| *f != contract.from)
                        || matches!(contract.shape, ContractShape::Query(_))
                    {
                        self.error(
                            c.span(),
                            format!(
                                "a state event's payload contract must list columns of the event's own table; {ck} does not"
                            ),
                        );
                    }
                }
            }
            Some(ck)
        });
        if from.is_some() || e.from.is_some() {
            // A state event: which rows, identified how, carrying what.
            if e.key.is_none() {
                self.error_help(raw.span(), "a state event needs a `key`", "e.g. key = [\"id\"]");
            }
            if e.contract.is_none() {
                self.error_help(
                    raw.span(),
                    "a state event needs a `contract` for its payload",
                    "e.g. contract = \"products.v1\"",
                );
            }
        } else if e.key.is_some() {
            self.error(
                e.key.as_ref().expect("checked").span(),
                "`key` belongs to state events, which also name `from`",
            );
        }
        let unchanged = match &e.unchanged {
            None => Unchanged::Skip,
            Some(u) if e.from.is_none() => {
                self.error(u.span(), "`unchanged` belongs to state events, which also name `from`");
                Unchanged::Skip
            }
            Some(u) => match u.get_ref().as_str() {
                "skip" => Unchanged::Skip,
                "emit" => Unchanged::Emit,
                other => {
                    self.error_help(
                        u.span(),
                        format!("{other:?} is not a choice for `unchanged`"),
                        "\"skip\" (no event when no contract column changed; the default) or \"emit\" (an event for every UPDATE)",
                    );
                    Unchanged::Skip
                }
            },
        };
        let compatibility = match &e.compatibility {
            None => Compatibility::default(),
            Some(c) => Compatibility::parse(c.get_ref()).unwrap_or_else(|| {
                self.error_help(
                    c.span(),
                    format!("{:?} is not a choice for `compatibility`", c.get_ref()),
                    "\"backward\" (the default), \"forward\", \"full\" or \"none\"",
                );
                Compatibility::default()
            }),
        };
        if self.problems() != before {
            return None;
        }
        Some(Event {
            name: name?,
            from,
            key: key.into_iter().map(|(k, _)| k).collect(),
            contract,
            description: e.description.as_ref().and_then(|d| self.text(d)),
            unchanged,
            compatibility,
            location: self.src.locate(raw.span().start),
        })
    }

    /// Checks that need every service: ownership is exclusive, logins and
    /// applications identify one service, and references resolve. Each
    /// name is looked up in a map, so the checks grow linearly with the
    /// manifest.
    fn cross_checks(&mut self, m: &Manifest) {
        let spans = std::mem::take(&mut self.spans);
        let mut owners: HashMap<&QualifiedName, (usize, &Span)> = HashMap::new();
        let mut logins: HashMap<&Ident, usize> = HashMap::new();
        let mut applications: HashMap<&str, usize> = HashMap::new();
        let mut api_schemas: HashMap<&Ident, usize> = HashMap::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (i, (service, sp)) in m.services.iter().zip(&spans).enumerate() {
            api_schemas.entry(&service.api_schema).or_insert(i);
            by_name.entry(service.name.as_str()).or_insert(i);
            for (rel, span) in &sp.owns {
                owners.entry(rel).or_insert((i, span));
            }
        }
        for (i, (service, sp)) in m.services.iter().zip(&spans).enumerate() {
            for (rel, span) in &sp.owns {
                if let Some(&(j, first)) = owners.get(rel).filter(|(j, _)| *j != i) {
                    let at = self.src.locate(first.start);
                    self.error_help(
                        span.clone(),
                        format!("{rel} is already owned by service {} ({at})", m.services[j].name),
                        "every relation has exactly one owner; remove it from one of the services",
                    );
                }
            }
            for (login, span) in &sp.logins {
                match logins.get(login) {
                    Some(&j) if j != i => self.error_help(
                        span.clone(),
                        format!("login {login} is already used by service {}", m.services[j].name),
                        "give each service its own database role, so grants and the audit can tell them apart",
                    ),
                    _ => {
                        logins.insert(login, i);
                    }
                }
            }
            for (app, span) in &sp.applications {
                match applications.get(app.as_str()) {
                    Some(&j) if j != i => self.error(
                        span.clone(),
                        format!(
                            "application {app:?} is already used by service {}",
                            m.services[j].name
                        ),
                    ),
                    _ => {
                        applications.insert(app, i);
                    }
                }
            }
            if let Some(&j) = api_schemas.get(&service.api_schema).filter(|&&j| j < i) {
                self.error(
                    sp.api_schema.clone(),
                    format!(
                        "api schema {} is already used by service {}",
                        service.api_schema, m.services[j].name
                    ),
                );
            }
            if by_name.get(service.name.as_str()).is_some_and(|&j| j < i) {
                // TOML rejects duplicate tables, so this cannot happen;
                // kept so a future input format cannot sneak one in.
                self.error(
                    sp.api_schema.clone(),
                    format!("service {} is defined twice", service.name),
                );
            }
            for (rel, span) in &sp.owns {
                if let Some(&j) = api_schemas.get(&rel.schema) {
                    self.error(
                        span.clone(),
                        format!(
                            "{rel} lies in {}, the api schema of service {}",
                            rel.schema, m.services[j].name
                        ),
                    );
                }
            }
            let declared = |service: &str| by_name.get(service).map(|&i| &spans[i]);
            for (r, span) in &sp.reads {
                if !declared(&r.service).is_some_and(|d| d.declared_contracts.contains(&r.key())) {
                    let other_versions: Vec<u32> = declared(&r.service)
                        .map(|d| {
                            d.declared_contracts
                                .iter()
                                .filter(|k| k.contract == r.contract)
                                .map(|k| k.version)
                                .collect()
                        })
                        .unwrap_or_default();
                    let newest = other_versions.iter().max().copied().unwrap_or(0);
                    if newest > r.version {
                        // The version left the manifest while a service still reads it.
                        let list: Vec<String> =
                            other_versions.iter().map(|v| format!("v{v}")).collect();
                        self.error_help(
                            span.clone(),
                            format!(
                                "{} still reads {r}, which {} no longer publishes (it publishes {})",
                                service.name,
                                r.service,
                                list.join(", ")
                            ),
                            format!(
                                "a version leaves the manifest only when no service reads it: move {} to a published version first",
                                service.name
                            ),
                        );
                        continue;
                    }
                    let help = match by_name.get(r.service.as_str()).map(|&j| &m.services[j]) {
                        None => format!("there is no service {:?}", r.service),
                        Some(s) if s.contracts.is_empty() => {
                            format!("service {} publishes no contracts yet", s.name)
                        }
                        Some(s) => format!(
                            "service {} publishes: {}",
                            s.name,
                            s.contracts
                                .iter()
                                .map(|c| c.reference(&s.name).to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.error_help(span.clone(), format!("unknown contract version {r}"), help);
                }
            }
            for (rel, span) in &sp.exceptions {
                let owner = owners
                    .get(rel)
                    .map(|&(j, _)| &m.services[j])
                    .or_else(|| api_schemas.get(&rel.schema).map(|&j| &m.services[j]));
                match owner {
                    Some(owner) if owner.name == service.name => self.error(
                        span.clone(),
                        format!("{rel} is this service's own; an exception is for another service's relation"),
                    ),
                    Some(_) => {}
                    None => self.error_help(
                        span.clone(),
                        format!("no service owns {rel}, so there is no grant to keep"),
                        "exceptions keep a direct grant on a relation another service owns",
                    ),
                }
            }
            for (r, span) in &sp.consumes {
                let Some(d) = declared(&r.service) else {
                    self.error_help(
                        span.clone(),
                        format!("unknown event {r}"),
                        format!("there is no service {:?}", r.service),
                    );
                    continue;
                };
                if !d.declared_events.contains(&r.event) {
                    let help = if d.declared_events.is_empty() {
                        format!("service {} declares no events", r.service)
                    } else {
                        let names: Vec<String> = d
                            .declared_events
                            .iter()
                            .map(|e| format!("{}.{e}", r.service))
                            .collect();
                        format!("service {} declares: {}", r.service, names.join(", "))
                    };
                    self.error_help(span.clone(), format!("unknown event {r}"), help);
                }
            }
        }
    }
}

/// The most structural errors (unknown keys, wrong types) reported at once
/// that serde stops at one by one: after each, the lines it covers are
/// blanked (offsets kept, so locations stay exact) and the text read again.
/// A later "missing field" for a key that was blanked is the blanking's
/// doing, not the user's, and is left out.
fn deserialize(src: &SourceFile, text: &str) -> Result<RawManifest, ManifestErrors> {
    const MAX_ERRORS: usize = 20;
    let mut work = text.to_string();
    let mut errors: Vec<ManifestError> = Vec::new();
    let mut blanked_keys: Vec<String> = Vec::new();
    loop {
        let e = match toml::from_str::<RawManifest>(&work) {
            Ok(raw) if errors.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => e,
        };
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().to_string();
        let cascade = blanked_keys.iter().any(|k| message == format!("missing field `{k}`"));
        if !cascade {
            errors.push(ManifestError::at(src, span.clone(), message));
        }
        // A syntax error, or one with no place, leaves nothing to blank.
        let (start, end) = line_bounds(&work, span);
        if start >= end || errors.len() >= MAX_ERRORS || work[start..end].trim().is_empty() {
            break;
        }
        if let Some((key, _)) = work[start..end].split_once('=') {
            blanked_keys.push(key.trim().trim_matches('"').to_string());
        }
        let blank: String =
            work[start..end].chars().map(|c| if c == '\n' { c } else { ' ' }).collect();
        work.replace_range(start..end, &blank);
    }
    if errors.is_empty() {
        // Only cascades were left: the first real error is what to show.
        let e = toml::from_str::<RawManifest>(text).err();
        let (span, message) = e
            .map(|e| (e.span().unwrap_or(0..0), e.message().trim_end().to_string()))
            .unwrap_or((0..0, "the manifest cannot be read".into()));
        errors.push(ManifestError::at(src, span, message));
    }
    Err(ManifestErrors(errors))
}

/// The whole lines a span touches.
fn line_bounds(text: &str, span: std::ops::Range<usize>) -> (usize, usize) {
    let start = span.start.min(text.len());
    let end = span.end.max(start).min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    (line_start, line_end)
}
