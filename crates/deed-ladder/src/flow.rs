//! Every data flow (producer → consumer) and the rung it stands on, from
//! what the rung crates observed.

use std::collections::BTreeMap;

use deed_audit::{AccessKind, Catalogue};
use deed_compare::verdict::Verdict;
use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, Date, Exception, Manifest, ProjectionTarget};
use deed_project::health::ProjectionHealth;
use deed_relay::health::CaptureHealth;
use serde::Serialize;

use crate::next;
use crate::rung::Rung;

/// A service's observed direct use of another's relation.
#[derive(Debug, Clone, Serialize)]
pub struct DirectUse {
    pub relation: QualifiedName,
    pub access: AccessKind,
    pub calls: u64,
    /// The columns it reads or writes, as far as they are known.
    pub columns: Vec<String>,
}

/// A consumer's projection of the owner's events, as the flow sees it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowProjection {
    pub name: String,
    pub event: String,
    /// The contract read it replaces at cutover.
    pub replaces: Option<ContractRef>,
    /// The replaced read is gone from the consumer's reads.
    pub cut_over: bool,
    pub table: bool,
    pub phase: String,
    pub lag_seconds: f64,
    pub waiting_events: i64,
    pub dead_letters: i64,
    pub backfill_rows: i64,
    /// The latest compare, if one was recorded.
    pub compare: Option<Verdict>,
    /// Calls of the replaced contract view in the traffic given.
    pub replaced_calls: Option<u64>,
}

/// Data flowing from an owner to a consumer: one contract (all its
/// versions, and the projection that replaces it), one event kept by a
/// projection that replaces no read, or direct access to one relation.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub consumer: String,
    pub owner: String,
    /// `products` (a contract), `event product_changed`, or a relation
    /// reached directly (`public.products`).
    pub subject: String,
    pub rung: Rung,
    pub rung_name: &'static str,
    /// Contract versions the consumer declares it reads.
    pub contracts: Vec<ContractRef>,
    /// Direct grants it keeps, in force.
    pub exceptions: Vec<Exception>,
    /// Direct uses seen in traffic, when a source was given.
    pub direct: Vec<DirectUse>,
    pub projections: Vec<FlowProjection>,
    /// What stands between this flow and the next rung.
    pub next: String,
    /// Why the flow is stalled now (`deed status` exits 1).
    pub stalled: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionStatus {
    #[serde(flatten)]
    pub exception: Exception,
    pub active: bool,
    /// Days until it expires (negative: since it expired).
    pub days_left: Option<i64>,
}

/// Limits past which a flow is stalled or a proof too old.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_lag_seconds: f64,
    pub max_compare_age_seconds: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { max_lag_seconds: 300.0, max_compare_age_seconds: 3600.0 }
    }
}

/// What each rung crate observed, handed to [`status`].
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    pub catalogue: Option<&'a Catalogue>,
    /// How the database differs from the manifest, when it was checked.
    pub drift: Option<Vec<String>>,
    pub capture: Vec<CaptureHealth>,
    pub projections: Vec<ProjectionHealth>,
    pub verdicts: Vec<Verdict>,
    /// Owners `deed split` is moving: service → phase (`prepared`,
    /// `following`, `proven`, `cut_over`, `finished`).
    pub splits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub flows: Vec<Flow>,
    pub exceptions: Vec<ExceptionStatus>,
    pub drift: Option<Vec<String>>,
    pub capture: Vec<CaptureHealth>,
    pub projections: Vec<ProjectionHealth>,
}

impl Status {
    /// Whether something needs someone now: a stalled flow, capture or
    /// projection in trouble.
    pub fn stalled(&self) -> bool {
        self.flows.iter().any(|f| !f.stalled.is_empty())
            || self.capture.iter().any(|c| !c.problems.is_empty())
            || self.projections.iter().any(|p| !p.problems.is_empty())
    }
}

pub fn status(manifest: &Manifest, observed: Observed<'_>, today: Date, bounds: Bounds) -> Status {
    type Key = (String, String, String);
    let mut flows: BTreeMap<Key, Flow> = BTreeMap::new();
    fn flow<'f>(
        flows: &'f mut BTreeMap<Key, Flow>,
        consumer: &str,
        owner: &str,
        subject: &str,
    ) -> &'f mut Flow {
        let key = (consumer.to_string(), owner.to_string(), subject.to_string());
        flows.entry(key).or_insert_with(|| Flow {
            consumer: consumer.to_string(),
            owner: owner.to_string(),
            subject: subject.to_string(),
            rung: Rung::Shared,
            rung_name: "",
            contracts: Vec::new(),
            exceptions: Vec::new(),
            direct: Vec::new(),
            projections: Vec::new(),
            next: String::new(),
            stalled: Vec::new(),
        })
    }
    for s in &manifest.services {
        for r in &s.reads {
            flow(&mut flows, &s.name, &r.service, &r.contract).contracts.push(r.clone());
        }
        for e in s.exceptions.iter().filter(|e| e.is_active(today)) {
            if let Some(owner) = manifest.owner_of(&e.relation) {
                let subject = e.relation.to_string();
                flow(&mut flows, &s.name, &owner.name, &subject).exceptions.push(e.clone());
            }
        }
        for p in &s.projections {
            let health =
                observed.projections.iter().find(|h| h.service == s.name && h.name == p.name);
            let replaced_calls = p.replaces.as_ref().and_then(|r| {
                observed.catalogue.map(|c| {
                    c.accesses
                        .iter()
                        .filter(|a| a.service == s.name && a.contract.as_ref() == Some(r))
                        .map(|a| a.calls)
                        .sum()
                })
            });
            // A projection climbs the flow of the contract it replaces.
            let subject = match &p.replaces {
                Some(r) => r.contract.clone(),
                None => format!("event {}", p.event.event),
            };
            flow(&mut flows, &s.name, &p.event.service, &subject).projections.push(
                FlowProjection {
                    name: p.name.clone(),
                    event: p.event.to_string(),
                    cut_over: p.replaces.as_ref().is_some_and(|r| !s.reads.contains(r)),
                    replaces: p.replaces.clone(),
                    table: matches!(p.target, ProjectionTarget::Table(_)),
                    phase: health.map_or("not started".into(), |h| h.phase.clone()),
                    lag_seconds: health.map_or(0.0, |h| h.lag_seconds),
                    waiting_events: health.map_or(0, |h| h.waiting_events),
                    dead_letters: health.map_or(0, |h| h.dead_letters),
                    backfill_rows: health.map_or(0, |h| h.backfill_rows),
                    compare: observed
                        .verdicts
                        .iter()
                        .find(|v| v.service == s.name && v.projection == p.name)
                        .cloned(),
                    replaced_calls,
                },
            );
        }
    }
    for a in observed.catalogue.into_iter().flat_map(|c| c.accesses.iter()) {
        let Some(owner) = a.owner.as_deref() else { continue };
        if owner == a.service || a.contract.is_some() {
            continue;
        }
        flow(&mut flows, &a.service, owner, &a.relation.to_string()).direct.push(DirectUse {
            relation: a.relation.clone(),
            access: a.access,
            calls: a.calls,
            columns: a.columns.iter().cloned().collect(),
        });
    }
    let mut flows: Vec<Flow> = flows.into_values().collect();
    let placed: Vec<(Rung, String)> =
        flows.iter().map(|f| next::place(manifest, f, bounds)).collect();
    // Rung 4 is the owner's: it waits until every flow from it is severed.
    let ready = |owner: &str| {
        flows
            .iter()
            .zip(&placed)
            .filter(|(f, _)| f.owner == owner)
            .all(|(_, p)| p.0 == Rung::Severed)
    };
    let ready: Vec<bool> = flows.iter().map(|f| ready(&f.owner)).collect();
    for ((f, (mut rung, mut next)), ready) in flows.iter_mut().zip(placed).zip(ready) {
        let split = observed.splits.get(&f.owner).map(String::as_str);
        if rung == Rung::Severed {
            (rung, next) = crate::next::split_step(f, split, ready, next);
        }
        f.rung = rung;
        f.rung_name = rung.name();
        f.next = next;
        f.stalled = stalled(f, &observed.capture, bounds);
    }
    let exceptions = manifest
        .exceptions()
        .map(|e| ExceptionStatus {
            exception: e.clone(),
            active: e.is_active(today),
            days_left: e.expires.map(|d| d.days() - today.days()),
        })
        .collect();
    Status {
        flows,
        exceptions,
        drift: observed.drift,
        capture: observed.capture,
        projections: observed.projections,
    }
}

/// What stops a flow's data from moving now.
fn stalled(f: &Flow, capture: &[CaptureHealth], bounds: Bounds) -> Vec<String> {
    let mut out = Vec::new();
    if !f.projections.is_empty() {
        if let Some(c) = capture.iter().find(|c| c.service == f.owner) {
            out.extend(c.problems.iter().map(|p| format!("{}'s capture: {p}", f.owner)));
        }
    }
    for p in &f.projections {
        if p.lag_seconds > bounds.max_lag_seconds {
            out.push(format!(
                "projection {}.{} is {} behind ({} events waiting)",
                f.consumer,
                p.name,
                deed_text::duration(p.lag_seconds),
                p.waiting_events
            ));
        }
        if p.dead_letters > 0 {
            out.push(format!(
                "{} for {}.{}",
                deed_text::plural(p.dead_letters as u64, "dead letter waits", "dead letters wait"),
                f.consumer,
                p.name
            ));
        }
    }
    out
}
