use std::collections::{BTreeMap, BTreeSet};

use deed_ident::QualifiedName;
use deed_manifest::{ContractRef, Manifest};
use deed_pg::Catalog;
use deed_sql::is_system_schema;
use serde::Serialize;

use crate::attribution::is_unknown;
use crate::collector::Collector;
use crate::source::SourceSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    Read,
    Write,
}

/// One distinct statement behind an access.
#[derive(Debug, Clone, Serialize)]
pub struct QueryRef {
    pub fingerprint: String,
    pub command: String,
    pub calls: u64,
    pub example: String,
    /// It reads the relation through `*` (or a whole-row reference).
    pub star: bool,
    /// It locks rows of the relation (`FOR UPDATE`/`FOR SHARE`) without
    /// writing them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lock_only: bool,
}

/// A service reading or writing one relation, summed over its statements.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub service: String,
    pub relation: QualifiedName,
    pub access: AccessKind,
    pub calls: u64,
    pub select_star: bool,
    /// Columns read or written, as far as they could be determined.
    pub columns: BTreeSet<String>,
    /// False when some columns could not be attributed, or an INSERT wrote
    /// every column by position.
    pub columns_complete: bool,
    /// The owning service, per the manifest.
    pub owner: Option<String>,
    /// Set when the relation is a published contract version.
    pub contract: Option<ContractRef>,
    /// Views through which the relation was reached. A statement that names
    /// the relation itself counts as direct.
    pub via: BTreeSet<QualifiedName>,
    pub direct: bool,
    /// Distinct statements, most-called first.
    pub queries: Vec<QueryRef>,
}

/// Statements the parser rejected, grouped by shape.
#[derive(Debug, Clone, Serialize)]
pub struct Unparsed {
    pub service: String,
    pub calls: u64,
    pub error: String,
    pub example: String,
}

/// Statements whose effect deed cannot see (DO blocks, CALL, EXECUTE).
#[derive(Debug, Clone, Serialize)]
pub struct Opaque {
    pub service: String,
    pub calls: u64,
    pub reason: String,
    pub example: String,
}

/// Who reads and writes what.
#[derive(Debug, Clone, Serialize)]
pub struct Catalogue {
    pub sources: Vec<SourceSummary>,
    /// Manifest services first (in manifest order), then unknown ones.
    pub services: Vec<String>,
    pub accesses: Vec<Access>,
    pub unparsed: Vec<Unparsed>,
    pub opaque: Vec<Opaque>,
    /// Statements read from the sources, the executions they stand for,
    /// and how many distinct shapes they have.
    pub statements: u64,
    pub calls: u64,
    /// Of `calls`, those by administrators: setup, migrations, people.
    pub admin_calls: u64,
    pub distinct_statements: usize,
}

impl Catalogue {
    /// Aggregates a collector's counts. With a live `catalog`, reads of
    /// views nobody owns are also resolved to the relations beneath them.
    pub fn build(
        collector: &Collector<'_>,
        manifest: Option<&Manifest>,
        catalog: Option<&Catalog>,
        sources: Vec<SourceSummary>,
    ) -> Catalogue {
        let mut map: BTreeMap<(String, QualifiedName, AccessKind), Access> = BTreeMap::new();
        let mut unparsed = Vec::new();
        let mut opaque = Vec::new();
        let owner =
            |rel: &QualifiedName| manifest.and_then(|m| m.owner_of(rel)).map(|s| s.name.clone());
        for (service, shape, calls) in collector.counts() {
            let analysis = match &shape.result {
                Ok(a) => a,
                Err(e) => {
                    unparsed.push(Unparsed {
                        service: service.to_string(),
                        calls,
                        error: e.message.clone(),
                        example: shape.example.clone(),
                    });
                    continue;
                }
            };
            if let Some(reason) = &analysis.opaque {
                opaque.push(Opaque {
                    service: service.to_string(),
                    calls,
                    reason: reason.clone(),
                    example: shape.example.clone(),
                });
            }
            for ra in &analysis.accesses {
                let query = QueryRef {
                    fingerprint: format!("{:016x}", shape.fingerprint),
                    command: analysis.command.clone(),
                    calls,
                    example: shape.example.clone(),
                    star: ra.star,
                    lock_only: ra.lock && !ra.write,
                };
                if is_system_schema(ra.relation.schema.as_str())
                    || catalog.is_some_and(|c| c.is_extension_member(&ra.relation))
                {
                    continue;
                }
                let mut targets = vec![(ra.relation.clone(), None)];
                let expand = catalog
                    .is_some_and(|c| c.kind(&ra.relation).is_some_and(|k| k.is_view()))
                    && owner(&ra.relation).is_none();
                if expand {
                    let bases = catalog.map(|c| c.base_relations(&ra.relation)).unwrap_or_default();
                    targets.extend(bases.into_iter().map(|b| (b, Some(ra.relation.clone()))));
                }
                for (relation, via) in targets {
                    // Locking rows needs UPDATE privilege: it counts as a write.
                    let kinds =
                        [(ra.read, AccessKind::Read), (ra.write || ra.lock, AccessKind::Write)];
                    for (_, kind) in kinds.into_iter().filter(|(on, _)| *on) {
                        let key = (service.to_string(), relation.clone(), kind);
                        let entry = map.entry(key).or_insert_with(|| Access {
                            service: service.to_string(),
                            relation: relation.clone(),
                            access: kind,
                            calls: 0,
                            select_star: false,
                            columns: BTreeSet::new(),
                            columns_complete: true,
                            owner: owner(&relation),
                            contract: manifest.and_then(|m| m.contract_for_view(&relation)),
                            via: BTreeSet::new(),
                            direct: false,
                            queries: Vec::new(),
                        });
                        entry.calls += calls;
                        match &via {
                            Some(v) => {
                                entry.via.insert(v.clone());
                                // The view's columns say nothing certain about the base's.
                                entry.columns_complete = false;
                            }
                            None => {
                                entry.direct = true;
                                match kind {
                                    AccessKind::Read => {
                                        entry.select_star |= ra.star;
                                        entry.columns.extend(ra.columns_read.iter().cloned());
                                        entry.columns_complete &= !ra.columns_uncertain;
                                    }
                                    AccessKind::Write => {
                                        entry.columns.extend(ra.columns_written.iter().cloned());
                                        entry.columns_complete &= !ra.all_columns_written;
                                    }
                                }
                            }
                        }
                        match entry
                            .queries
                            .iter_mut()
                            .find(|q| q.fingerprint == query.fingerprint && q.star == query.star)
                        {
                            Some(q) => q.calls += calls,
                            None => entry.queries.push(query.clone()),
                        }
                    }
                }
            }
        }
        let mut accesses: Vec<Access> = map.into_values().collect();
        for a in &mut accesses {
            a.queries.sort_by(|x, y| y.calls.cmp(&x.calls).then_with(|| x.example.cmp(&y.example)));
        }
        unparsed.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.example.cmp(&b.example)));
        opaque.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.example.cmp(&b.example)));

        let mut services: Vec<String> = manifest
            .map(|m| m.services.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
        let mut others: Vec<String> =
            collector.services().iter().filter(|s| !services.contains(s)).cloned().collect();
        others.sort_by_key(|s| (is_unknown(s), s.clone()));
        services.extend(others);
        Catalogue {
            sources,
            services,
            accesses,
            unparsed,
            opaque,
            statements: collector.statements(),
            calls: collector.calls(),
            admin_calls: collector.admin_calls(),
            distinct_statements: collector
                .shapes()
                .iter()
                .map(|s| s.fingerprint)
                .collect::<std::collections::HashSet<_>>()
                .len(),
        }
    }

    /// Every relation with an access, grouped by owner in `services` order,
    /// unowned last, each group sorted by name.
    pub fn relations(&self) -> Vec<(Option<String>, QualifiedName)> {
        let mut rels: Vec<(Option<String>, QualifiedName)> =
            self.accesses.iter().map(|a| (a.owner.clone(), a.relation.clone())).collect();
        rels.sort_by_key(|(owner, rel)| {
            let rank = owner
                .as_ref()
                .and_then(|o| self.services.iter().position(|s| s == o))
                .unwrap_or(usize::MAX);
            (rank, rel.clone())
        });
        rels.dedup();
        rels
    }

    pub fn access(
        &self,
        service: &str,
        relation: &QualifiedName,
        kind: AccessKind,
    ) -> Option<&Access> {
        self.accesses
            .iter()
            .find(|a| a.service == service && a.relation == *relation && a.access == kind)
    }
}
