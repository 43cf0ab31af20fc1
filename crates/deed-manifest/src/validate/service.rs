//! One service: what it owns, its logins, contracts (with their
//! `not_null` columns) and exceptions.

use deed_ident::{Ident, MAX_IDENT_BYTES, QualifiedName};

use crate::date::Date;
use crate::location::Span;
use crate::model::{
    Contract, ContractShape, Event, Exception, Privilege, Projection, Service, ServiceLocations,
    default_api_schema,
};
use crate::raw::{RawContract, RawException, RawService, S};
use crate::refs::{ContractKey, ContractRef, EventRef};

use super::*;

impl Validator<'_> {
    pub(crate) fn service(&mut self, name: S<String>, raw: RawService) -> Service {
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

    pub(crate) fn contract(
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
    pub(crate) fn not_null(
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

    pub(crate) fn exception(&mut self, raw: &S<RawException>, service: &str) -> Option<Exception> {
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
}
