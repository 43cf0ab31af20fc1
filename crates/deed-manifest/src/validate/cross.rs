//! The checks that compare services with each other: one owner per
//! table and login, references that resolve, reads of what exists.

use std::collections::HashMap;

use deed_ident::{Ident, QualifiedName};

use crate::location::Span;
use crate::model::Manifest;

use super::*;

impl Validator<'_> {
    /// Checks that need every service: ownership is exclusive, logins and
    /// applications identify one service, and references resolve. Each
    /// name is looked up in a map, so the checks grow linearly with the
    /// manifest.
    pub(crate) fn cross_checks(&mut self, m: &Manifest) {
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
