//! Where each data flow stands on the ladder.

use std::collections::BTreeMap;

use deed_audit::{AccessKind, Catalogue};
use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, Date, Exception, Manifest};
use serde::Serialize;

/// A service's observed direct use of another's relation.
#[derive(Debug, Clone, Serialize)]
pub struct DirectUse {
    pub relation: QualifiedName,
    pub access: AccessKind,
    pub calls: u64,
}

/// Data flowing from an owner to a consumer.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    pub consumer: String,
    pub owner: String,
    pub rung: u8,
    pub rung_name: &'static str,
    /// Contract versions the consumer declares it reads.
    pub contracts: Vec<ContractRef>,
    /// Direct grants it keeps, in force.
    pub exceptions: Vec<Exception>,
    /// Direct uses seen in traffic, when a source was given.
    pub direct: Vec<DirectUse>,
    /// What stands between this flow and the next rung.
    pub next: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionStatus {
    #[serde(flatten)]
    pub exception: Exception,
    pub active: bool,
    /// Days until it expires (negative: since it expired).
    pub days_left: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub flows: Vec<Flow>,
    pub exceptions: Vec<ExceptionStatus>,
    /// How the database differs from the manifest, when it was checked.
    pub drift: Option<Vec<String>>,
}

pub fn status(
    manifest: &Manifest,
    catalogue: Option<&Catalogue>,
    drift: Option<Vec<String>>,
    today: Date,
) -> Status {
    let mut flows: BTreeMap<(String, String), Flow> = BTreeMap::new();
    fn flow<'f>(
        flows: &'f mut BTreeMap<(String, String), Flow>,
        consumer: &str,
        owner: &str,
    ) -> &'f mut Flow {
        flows.entry((consumer.to_string(), owner.to_string())).or_insert_with(|| Flow {
            consumer: consumer.to_string(),
            owner: owner.to_string(),
            rung: 0,
            rung_name: "",
            contracts: Vec::new(),
            exceptions: Vec::new(),
            direct: Vec::new(),
            next: String::new(),
        })
    }
    for s in &manifest.services {
        for r in &s.reads {
            flow(&mut flows, &s.name, &r.service).contracts.push(r.clone());
        }
        for e in s.exceptions.iter().filter(|e| e.is_active(today)) {
            if let Some(owner) = manifest.owner_of(&e.relation) {
                flow(&mut flows, &s.name, &owner.name).exceptions.push(e.clone());
            }
        }
    }
    for a in catalogue.into_iter().flat_map(|c| c.accesses.iter()) {
        let Some(owner) = a.owner.as_deref() else { continue };
        if owner == a.service || a.contract.is_some() {
            continue;
        }
        flow(&mut flows, &a.service, owner).direct.push(DirectUse {
            relation: a.relation.clone(),
            access: a.access,
            calls: a.calls,
        });
    }
    let mut flows: Vec<Flow> = flows.into_values().collect();
    for f in &mut flows {
        let shared = !f.direct.is_empty() || !f.exceptions.is_empty() || f.contracts.is_empty();
        if shared {
            f.rung = 0;
            f.rung_name = "shared";
            let write = f.direct.iter().find(|d| d.access == AccessKind::Write);
            f.next = match (f.contracts.is_empty(), f.direct.first(), f.exceptions.first()) {
                // A contract is read-only: no contract fixes a write.
                _ if write.is_some() => format!(
                    "{} writes {}, which only {} may write: move the write into {} (an API call, \
                     or a domain event {} acts on); a contract is read-only",
                    f.consumer,
                    write.map(|d| d.relation.to_string()).unwrap_or_default(),
                    f.owner,
                    f.owner,
                    f.owner
                ),
                (true, _, _) => format!(
                    "{} publishes no contract {} reads: publish one and list it in reads",
                    f.owner, f.consumer
                ),
                (false, Some(d), _) => format!(
                    "{} still reads {} directly: read its contract instead",
                    f.consumer, d.relation
                ),
                (false, None, Some(e)) => format!(
                    "the exception on {} is still in force{}: remove it once {} reads only contracts",
                    e.relation,
                    e.expires.map(|d| format!(" until {d}")).unwrap_or_default(),
                    f.consumer
                ),
                (false, None, None) => String::new(),
            };
        } else {
            f.rung = 1;
            f.rung_name = "contracted";
            f.next = rung_two_step(manifest, f);
        }
    }
    let exceptions = manifest
        .exceptions()
        .map(|e| ExceptionStatus {
            exception: e.clone(),
            active: e.is_active(today),
            days_left: e.expires.map(|d| d.days() - today.days()),
        })
        .collect();
    Status { flows, exceptions, drift }
}

/// What takes a contracted flow to rung 2, in terms of what the manifest
/// already has: an event on the contract the consumer reads, and the
/// consumer subscribed to it.
fn rung_two_step(manifest: &Manifest, f: &Flow) -> String {
    let events: Vec<&str> = manifest
        .service(&f.owner)
        .map(|o| {
            o.events
                .iter()
                .filter(|e| {
                    e.contract.as_ref().is_some_and(|k| {
                        f.contracts
                            .iter()
                            .any(|c| c.contract == k.contract && c.version == k.version)
                    })
                })
                .map(|e| e.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let Some(event) = events.first() else {
        let contract = f.contracts.first().map(|c| c.to_string()).unwrap_or_default();
        return format!(
            "rung 2: declare an event on {contract} under [[services.{}.events]], then `deed apply` \
             and `deed relay --service {}`",
            f.owner, f.owner
        );
    };
    let consumes = manifest
        .service(&f.consumer)
        .is_some_and(|c| c.consumes.iter().any(|e| e.service == f.owner && e.event == *event));
    if consumes {
        format!(
            "rung 2: {} keeps its own copy from {}.{event}, delivered by `deed relay --service {}`",
            f.consumer, f.owner, f.owner
        )
    } else {
        format!(
            "rung 2: add \"{}.{event}\" to {}'s consumes, and keep a copy from what `deed relay \
             --service {}` delivers",
            f.owner, f.consumer, f.owner
        )
    }
}
