//! One projection as the projector runs it, resolved from the manifest:
//! which events, from which producer, into what.

use deed_ident::{Ident, QualifiedName};
use deed_manifest::{ContractShape, Location, Manifest, ProjectionTarget, Service};
use deed_sql::Handler;

use crate::error::ProjectError;

#[derive(Debug, Clone)]
pub struct ProjectionSpec {
    pub service: String,
    pub name: String,
    /// `<producer>.<event>`, the envelope's `type`.
    pub event: String,
    pub producer: String,
    pub kind: SpecKind,
    /// The login the backfill reads as, so rung 1's grants still decide.
    pub reader: Option<Ident>,
    pub location: Location,
    pub target_location: Location,
}

#[derive(Debug, Clone)]
pub enum SpecKind {
    Table(TableSpec),
    Handler { text: String, handler: Handler },
}

/// A table kept equal to a state event's contract columns.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub table: QualifiedName,
    pub key: Vec<Ident>,
    pub columns: Vec<Ident>,
    /// The producer's contract view the backfill reads.
    pub view: QualifiedName,
}

impl ProjectionSpec {
    /// The event's name within its producer (`users.user_changed` →
    /// `user_changed`): what its topic and subject are named after.
    pub fn event_name(&self) -> &str {
        self.event.split_once('.').map_or(self.event.as_str(), |(_, e)| e)
    }

    /// A stable text of what the projection is, recorded with its
    /// progress: when it changes, the projection starts over.
    pub fn definition(&self) -> String {
        match &self.kind {
            SpecKind::Table(t) => {
                let cols: Vec<&str> = t.columns.iter().map(|c| c.as_str()).collect();
                let key: Vec<&str> = t.key.iter().map(|c| c.as_str()).collect();
                format!(
                    "{} into {} key ({}) columns ({}) from {}",
                    self.event,
                    t.table,
                    key.join(", "),
                    cols.join(", "),
                    t.view
                )
            }
            SpecKind::Handler { text, .. } => format!("{} sql {text}", self.event),
        }
    }

    pub fn table(&self) -> Option<&TableSpec> {
        match &self.kind {
            SpecKind::Table(t) => Some(t),
            SpecKind::Handler { .. } => None,
        }
    }
}

/// Every projection of a service, in manifest order.
pub fn projections(m: &Manifest, service: &str) -> Result<Vec<ProjectionSpec>, ProjectError> {
    let s = m
        .service(service)
        .ok_or_else(|| ProjectError::Setup(format!("the manifest has no service {service:?}")))?;
    if s.projections.is_empty() {
        return Err(ProjectError::Setup(format!(
            "service {service} declares no projections: add [[services.{service}.projections]] to the manifest"
        )));
    }
    s.projections.iter().map(|p| resolve(m, s, p)).collect()
}

fn resolve(
    m: &Manifest,
    s: &Service,
    p: &deed_manifest::Projection,
) -> Result<ProjectionSpec, ProjectError> {
    let producer = m.service(&p.event.service).expect("the manifest checks consumed events");
    let event = producer.event(&p.event.event).expect("the manifest checks consumed events");
    let kind = match &p.target {
        ProjectionTarget::Handler { text, handler } => {
            SpecKind::Handler { text: text.clone(), handler: handler.clone() }
        }
        ProjectionTarget::Table(table) => {
            let contract = event
                .contract
                .as_ref()
                .and_then(|k| producer.contract(k))
                .expect("the manifest checks a table projection's event is a state event");
            let ContractShape::Columns(columns) = &contract.shape else {
                unreachable!("state events carry column contracts")
            };
            SpecKind::Table(TableSpec {
                table: table.clone(),
                key: event.key.clone(),
                columns: columns.clone(),
                view: contract.view_name(&producer.api_schema),
            })
        }
    };
    Ok(ProjectionSpec {
        service: s.name.clone(),
        name: p.name.clone(),
        event: p.event.to_string(),
        producer: producer.name.clone(),
        kind,
        reader: s.logins.first().cloned(),
        location: p.location.clone(),
        target_location: p.target_location.clone(),
    })
}
