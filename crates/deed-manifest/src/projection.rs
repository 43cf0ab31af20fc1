//! `[[services.<name>.projections]]`: what a consumer keeps from the
//! events it consumes. Checked in two passes: each entry on its own, then
//! against the producing service's event (which may be declared later in
//! the file).

use deed_ident::QualifiedName;
use deed_sql::HandlerParam;

use crate::location::Span;
use crate::model::{ContractShape, Manifest, Projection, ProjectionTarget, Service};
use crate::raw::{RawProjection, S};
use crate::refs::{ContractRef, EventRef};
use crate::validate::Validator;

/// Where one projection's keys are written.
pub(crate) struct ProjectionSpans {
    pub event: Span,
    pub target: Span,
    pub replaces: Option<Span>,
    /// Each named parameter of a handler, at its place in the text.
    pub params: Vec<(HandlerParam, Span)>,
}

/// The byte offset in the manifest of `offset` within a TOML string
/// value: past the opening quotes (and the newline a multi-line string
/// starts with). Escapes in basic strings shift it by a few bytes at most.
fn inside_string(text: &str, span: &Span, offset: usize) -> usize {
    let value = &text[span.start..span.end.min(text.len())];
    let base = if value.starts_with("\"\"\"") || value.starts_with("'''") {
        let rest = &value[3..];
        let newline =
            if rest.starts_with("\r\n") { 2 } else { usize::from(rest.starts_with('\n')) };
        span.start + 3 + newline
    } else {
        span.start + 1
    };
    (base + offset).min(span.end.saturating_sub(1))
}

impl Validator<'_> {
    pub(crate) fn projection(
        &mut self,
        raw: &S<RawProjection>,
    ) -> Option<(Projection, ProjectionSpans)> {
        let p = raw.get_ref();
        let before = self.problems();
        let name = self.simple_name(&p.name, "projection", deed_ident::MAX_IDENT_BYTES);
        let event = EventRef::parse(p.event.get_ref());
        if event.is_none() {
            self.error_help(
                p.event.span(),
                format!("{:?} is not an event reference", p.event.get_ref()),
                "write <service>.<event>, e.g. \"catalog.product_changed\"",
            );
        }
        let replaces = p.replaces.as_ref().and_then(|r| {
            let c = ContractRef::parse(r.get_ref());
            if c.is_none() {
                self.error_help(
                    r.span(),
                    format!("{:?} is not a contract reference", r.get_ref()),
                    "write <service>.<contract>.v<version>, e.g. \"catalog.products.v1\"",
                );
            }
            c
        });
        let mut params = Vec::new();
        let (target, target_span) = match (&p.into, &p.sql) {
            (Some(_), Some(sql)) => {
                self.error(
                    sql.span(),
                    "give either `into` (a table) or `sql` (a handler), not both",
                );
                (None, sql.span())
            }
            (None, None) => {
                self.error_help(
                    raw.span(),
                    "a projection needs `into` (a table deed keeps) or `sql` (a handler run per event)",
                    "e.g. into = \"public.product_copies\"",
                );
                (None, raw.span())
            }
            (Some(into), None) => (self.qualified(into).map(ProjectionTarget::Table), into.span()),
            (None, Some(sql)) => {
                let target = self.text(sql).and_then(|text| {
                    let span = sql.span();
                    match deed_sql::parse_handler(&text) {
                        Ok(handler) => {
                            for &(offset, i) in &handler.uses {
                                let at = inside_string(self.src.text(), &span, offset);
                                let len = handler.params[i].name().len() + 1;
                                params.push((handler.params[i].clone(), at..at + len));
                            }
                            Some(ProjectionTarget::Handler { text, handler })
                        }
                        Err(e) => {
                            let at = inside_string(self.src.text(), &span, e.offset);
                            self.error(at..at + 1, format!("in the handler: {}", e.message));
                            None
                        }
                    }
                });
                if let (Some(r), Some(ProjectionTarget::Handler { .. })) = (&p.replaces, &target) {
                    self.error(
                        r.span(),
                        "`replaces` belongs to table projections (`into`): a handler keeps no copy to compare",
                    );
                }
                (target, sql.span())
            }
        };
        if self.problems() != before {
            return None;
        }
        let projection = Projection {
            name: name?,
            event: event?,
            target: target?,
            replaces,
            location: self.src.locate(raw.span().start),
            target_location: self.src.locate(target_span.start),
        };
        let spans = ProjectionSpans {
            event: p.event.span(),
            target: target_span,
            replaces: p.replaces.as_ref().map(|r| r.span()),
            params,
        };
        Some((projection, spans))
    }

    /// Checks each projection against the event it names.
    pub(crate) fn projection_checks(&mut self, m: &Manifest, spans: &[Vec<ProjectionSpans>]) {
        for (service, sp) in m.services.iter().zip(spans) {
            let mut tables: Vec<&QualifiedName> = Vec::new();
            for (p, s) in service.projections.iter().zip(sp) {
                self.projection_check(m, service, p, s);
                if let ProjectionTarget::Table(t) = &p.target {
                    if tables.contains(&t) {
                        self.error(s.target.clone(), format!("two projections write {t}"));
                    }
                    tables.push(t);
                }
            }
        }
    }

    fn projection_check(
        &mut self,
        m: &Manifest,
        service: &Service,
        p: &Projection,
        s: &ProjectionSpans,
    ) {
        if !service.consumes.contains(&p.event) {
            self.error_help(
                s.event.clone(),
                format!("{} projects {}, which it does not consume", service.name, p.event),
                format!("add \"{}\" to consumes", p.event),
            );
            return;
        }
        // An unknown event is reported at `consumes`.
        let Some(producer) = m.service(&p.event.service) else { return };
        let Some(event) = producer.event(&p.event.event) else { return };
        let contract = event.contract.as_ref().and_then(|k| producer.contract(k));
        if let Some(r) = &p.replaces {
            let span = s.replaces.clone().expect("replaces has a span");
            if r.service != producer.name {
                self.error(
                    span,
                    format!(
                        "{} replaces a contract of {}, but its event comes from {}",
                        p.name, r.service, producer.name
                    ),
                );
            } else if producer.contract(&r.key()).is_none() {
                self.error(span, format!("unknown contract version {r}"));
            }
        }
        match &p.target {
            ProjectionTarget::Table(table) => {
                if event.from.is_none() {
                    self.error_help(
                        s.target.clone(),
                        format!(
                            "{} is a domain event: it carries no row to keep in a table",
                            p.event
                        ),
                        "use `sql` to handle it, or project a state event",
                    );
                }
                let shared = service.database.is_none();
                if let Some(owner) = m.owner_of(table).filter(|o| shared && o.name != service.name)
                {
                    self.error_help(
                        s.target.clone(),
                        format!("{table} belongs to service {}", owner.name),
                        "a projection is the consumer's own table: name a new one",
                    );
                }
            }
            ProjectionTarget::Handler { .. } => {
                for (param, span) in &s.params {
                    match param {
                        HandlerParam::Key(col) if event.from.is_none() => self.error_help(
                            span.clone(),
                            format!(
                                ":key.{col}: the key of domain event {} is a string, not columns",
                                p.event
                            ),
                            "write :key",
                        ),
                        HandlerParam::Key(col) if !event.key.iter().any(|k| k.as_str() == col) => {
                            let keys: Vec<&str> = event.key.iter().map(|k| k.as_str()).collect();
                            self.error_help(
                                span.clone(),
                                format!("{col} is not a key column of {}", p.event),
                                format!("its key is ({})", keys.join(", ")),
                            )
                        }
                        HandlerParam::Payload(col) => {
                            if let Some(ContractShape::Columns(cols)) = contract.map(|c| &c.shape) {
                                if !cols.iter().any(|c| c.as_str() == col) {
                                    let names: Vec<&str> =
                                        cols.iter().map(|c| c.as_str()).collect();
                                    self.error_help(
                                        span.clone(),
                                        format!("{col} is not in the payload of {}", p.event),
                                        format!("its contract carries {}", names.join(", ")),
                                    );
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
