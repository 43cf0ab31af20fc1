//! The audit's rules. Each finding names one rule, one service and one
//! relation, and says what to do about it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use deed_ident::QualifiedName;
use deed_manifest::{ContractShape, Date, Exception, Manifest};
use serde::Serialize;

use crate::catalogue::{Access, AccessKind, Catalogue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A service writes a relation another service owns.
    ForeignWrite,
    /// A service reads another's relation directly, not through a contract
    /// view it declares.
    ForeignRead,
    /// `*` on a relation the service does not own.
    SelectStar,
    /// A relation no service owns, used by two or more services.
    Unowned,
    /// Several services write one relation.
    MultipleWriters,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::ForeignWrite,
        Rule::ForeignRead,
        Rule::SelectStar,
        Rule::Unowned,
        Rule::MultipleWriters,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::ForeignWrite => "foreign-write",
            Rule::ForeignRead => "foreign-read",
            Rule::SelectStar => "select-star",
            Rule::Unowned => "unowned",
            Rule::MultipleWriters => "multiple-writers",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: Rule,
    pub service: String,
    pub relation: QualifiedName,
    pub message: String,
    pub owner: Option<String>,
    pub calls: u64,
    /// The most-called statement behind the finding.
    pub example: Option<String>,
}

/// Applies every rule to the catalogue.
pub fn evaluate(catalogue: &Catalogue, manifest: Option<&Manifest>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut users: BTreeMap<&QualifiedName, BTreeSet<&str>> = BTreeMap::new();
    let mut writers: BTreeMap<&QualifiedName, Vec<&Access>> = BTreeMap::new();
    // Administrators set up, migrate and maintain every table: what they
    // do is reported apart, never as a finding.
    for a in catalogue.accesses.iter().filter(|a| !crate::attribution::is_admin(&a.service)) {
        users.entry(&a.relation).or_default().insert(&a.service);
        if a.access == AccessKind::Write {
            writers.entry(&a.relation).or_default().push(a);
        }
        let foreign = a.owner.as_ref().is_some_and(|o| *o != a.service);
        match a.access {
            AccessKind::Write if foreign => findings.push(foreign_write(a)),
            AccessKind::Read if foreign => {
                if let Some(f) = foreign_read(a, manifest) {
                    findings.push(f);
                }
            }
            _ => {}
        }
        if a.access == AccessKind::Read
            && a.select_star
            && a.contract.is_none()
            && a.owner.as_deref() != Some(&a.service)
        {
            findings.push(select_star(a));
        }
    }
    for (relation, services) in &users {
        let owned =
            catalogue.accesses.iter().any(|a| a.relation == **relation && a.owner.is_some());
        if owned || services.len() < 2 {
            continue;
        }
        let list = deed_text::and_list(&services.iter().collect::<Vec<_>>());
        for service in services {
            let calls: u64 = catalogue
                .accesses
                .iter()
                .filter(|a| a.relation == **relation && a.service == *service)
                .map(|a| a.calls)
                .sum();
            findings.push(Finding {
                rule: Rule::Unowned,
                service: service.to_string(),
                relation: (*relation).clone(),
                message: format!(
                    "{relation} has no owner and is used by {list}; add it to the `owns` of the one service that should write it"
                ),
                owner: None,
                calls,
                example: example(catalogue.accesses.iter().filter(|a| a.relation == **relation && a.service == *service)),
            });
        }
    }
    for (relation, ws) in &writers {
        if ws.len() < 2 {
            continue;
        }
        // The owner writing its own table is no problem; the others are.
        let owner = ws.iter().find_map(|a| a.owner.clone());
        let others: Vec<&&Access> =
            ws.iter().filter(|a| owner.as_deref() != Some(a.service.as_str())).collect();
        let list =
            deed_text::and_list(&others.iter().map(|a| a.service.as_str()).collect::<Vec<_>>());
        for a in &others {
            let message = match ws.iter().find(|w| owner.as_deref() == Some(w.service.as_str())) {
                Some(o) => format!(
                    "{relation} is written by its owner {} and also by {list}; a relation needs exactly one writer, and the others should ask {} (an API call or an event)",
                    o.service, o.service
                ),
                None => format!(
                    "{relation} is written by {list}; a relation needs exactly one writer, and the others should ask it (an API call or an event)"
                ),
            };
            findings.push(Finding {
                rule: Rule::MultipleWriters,
                service: a.service.clone(),
                relation: (*relation).clone(),
                message,
                owner: a.owner.clone(),
                calls: a.calls,
                example: example(std::iter::once(**a)),
            });
        }
    }
    findings
        .sort_by(|a, b| (a.rule, &a.relation, &a.service).cmp(&(b.rule, &b.relation, &b.service)));
    findings
}

fn foreign_write(a: &Access) -> Finding {
    let owner = a.owner.as_deref().unwrap_or("?");
    // Only FOR UPDATE/FOR SHARE: it writes nothing, but needs UPDATE.
    let (verb, why) = if a.queries.iter().all(|q| q.lock_only) {
        ("locks rows of", " with FOR UPDATE/SHARE, which needs UPDATE privilege")
    } else {
        ("writes", "")
    };
    Finding {
        rule: Rule::ForeignWrite,
        service: a.service.clone(),
        relation: a.relation.clone(),
        message: format!(
            "{} {verb} {}{}{why}, which {owner} owns ({}); only the owner should write it: have {owner} make this change (an API call or an event), or move ownership",
            a.service,
            a.relation,
            columns_note(a),
            deed_text::plural(a.calls, "call", "calls"),
        ),
        owner: a.owner.clone(),
        calls: a.calls,
        example: example(std::iter::once(a)),
    }
}

fn foreign_read(a: &Access, manifest: Option<&Manifest>) -> Option<Finding> {
    let owner = a.owner.as_deref().unwrap_or("?");
    let reader = manifest.and_then(|m| m.service(&a.service));
    let message = if let Some(contract) = &a.contract {
        if reader.is_some_and(|s| s.reads.contains(contract)) {
            return None;
        }
        format!(
            "{} reads the contract view {} ({contract}) without declaring it; add \"{contract}\" to reads in [services.{}]",
            a.service, a.relation, a.service
        )
    } else {
        let via = if a.via.is_empty() || a.direct {
            String::new()
        } else {
            format!(
                " through view {}",
                deed_text::and_list(&a.via.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            )
        };
        let advice = contract_advice(a, manifest);
        format!(
            "{} reads {}{}{via} directly, which {owner} owns ({}); {advice}",
            a.service,
            a.relation,
            columns_note(a),
            deed_text::plural(a.calls, "call", "calls"),
        )
    };
    Some(Finding {
        rule: Rule::ForeignRead,
        service: a.service.clone(),
        relation: a.relation.clone(),
        message,
        owner: a.owner.clone(),
        calls: a.calls,
        example: example(std::iter::once(a)),
    })
}

/// Points at an existing contract that covers the columns read, or says
/// which contract to publish.
fn contract_advice(a: &Access, manifest: Option<&Manifest>) -> String {
    let owner = a.owner.as_deref().unwrap_or("?");
    let published = manifest
        .and_then(|m| m.service(owner))
        .map(|s| {
            s.contracts
                .iter()
                .filter(|c| c.from == a.relation)
                .map(|c| (c.reference(&s.name), c.view_name(&s.api_schema), c.shape.clone()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let covering = published.iter().rev().find(|(_, _, shape)| match shape {
        ContractShape::Columns(cols) => {
            a.columns_complete
                && !a.select_star
                && a.columns.iter().all(|c| cols.iter().any(|x| x.as_str() == c))
        }
        ContractShape::Query(_) => false,
    });
    if a.select_star {
        return match published.last() {
            Some((r, view, ContractShape::Columns(cols))) => format!(
                "name the columns it needs; {owner} publishes {r} ({}) as {view}: read that if it has them, or ask {owner} for a version that does",
                cols.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Some((r, view, _)) => {
                format!("name the columns it needs and read {view} ({r}) if it has them")
            }
            None => format!(
                "name the columns it needs, and have {owner} publish them as a contract view listed in reads under [services.{}]",
                a.service
            ),
        };
    }
    match (covering, published.last()) {
        (Some((r, view, _)), _) => {
            format!("read {view} instead and add \"{r}\" to reads in [services.{}]", a.service)
        }
        (None, Some((r, _, _))) => format!(
            "{owner} publishes {r}, which lacks some of these columns: publish a version with them, then read it through the contract"
        ),
        (None, None) => format!(
            "have {owner} publish a contract view with these columns and list it in reads under [services.{}]",
            a.service
        ),
    }
}

/// Counted and quoted from the statements that use `*` only.
fn select_star(a: &Access) -> Finding {
    let whose = match &a.owner {
        Some(o) => format!("owned by {o}"),
        None => "which no service owns".to_string(),
    };
    let star: Vec<&crate::catalogue::QueryRef> = a.queries.iter().filter(|q| q.star).collect();
    let n: u64 = star.iter().map(|q| q.calls).sum();
    Finding {
        rule: Rule::SelectStar,
        service: a.service.clone(),
        relation: a.relation.clone(),
        message: format!(
            "{} selects * from {}, {whose} ({}); every column added or dropped there silently changes what {} receives: name the columns",
            a.service,
            a.relation,
            deed_text::plural(n, "call", "calls"),
            a.service
        ),
        owner: a.owner.clone(),
        calls: n,
        example: star.iter().max_by_key(|q| q.calls).map(|q| q.example.clone()),
    }
}

fn columns_note(a: &Access) -> String {
    if a.columns.is_empty() {
        return String::new();
    }
    let more = if a.columns_complete { "" } else { ", ..." };
    format!(" ({}{more})", a.columns.iter().cloned().collect::<Vec<_>>().join(", "))
}

fn example<'a>(accesses: impl Iterator<Item = &'a Access>) -> Option<String> {
    accesses.flat_map(|a| a.queries.iter()).max_by_key(|q| q.calls).map(|q| q.example.clone())
}

/// A finding a transitional exception in the manifest excuses for now.
#[derive(Debug, Clone, Serialize)]
pub struct Excepted {
    #[serde(flatten)]
    pub finding: Finding,
    pub exception: Exception,
}

/// Moves findings that an active exception covers out of the violations:
/// a direct read needs SELECT in the exception, a direct write any write
/// privilege. `select-star` and `unowned` are never excused.
pub fn apply_exceptions(
    findings: Vec<Finding>,
    manifest: Option<&Manifest>,
    today: Date,
) -> (Vec<Finding>, Vec<Excepted>) {
    let Some(m) = manifest else { return (findings, Vec::new()) };
    let active: Vec<&Exception> = m.exceptions().filter(|e| e.is_active(today)).collect();
    let covering = |service: &str, relation: &QualifiedName, write: bool| {
        active.iter().find(|e| {
            e.service == service
                && e.relation == *relation
                && e.privileges
                    .iter()
                    .any(|p| if write { p.is_write() } else { p.as_sql() == "SELECT" })
        })
    };
    let writers: BTreeMap<&QualifiedName, Vec<&str>> = findings
        .iter()
        .filter(|f| f.rule == Rule::MultipleWriters)
        .fold(BTreeMap::new(), |mut acc, f| {
            acc.entry(&f.relation).or_insert_with(Vec::new).push(f.service.as_str());
            acc
        });
    let mut violations = Vec::new();
    let mut excepted = Vec::new();
    for f in &findings {
        let exception = match f.rule {
            Rule::ForeignRead => covering(&f.service, &f.relation, false),
            Rule::ForeignWrite => covering(&f.service, &f.relation, true),
            Rule::MultipleWriters => match covering(&f.service, &f.relation, true) {
                Some(e) => Some(e),
                // The owner's side is excused when every other writer is.
                None if f.owner.as_deref() == Some(f.service.as_str()) => {
                    let others: Vec<&&str> =
                        writers[&f.relation].iter().filter(|w| **w != f.service).collect();
                    let excused: Vec<_> =
                        others.iter().filter_map(|w| covering(w, &f.relation, true)).collect();
                    (excused.len() == others.len()).then(|| excused.first().copied()).flatten()
                }
                None => None,
            },
            Rule::SelectStar | Rule::Unowned => None,
        };
        match exception {
            Some(e) => excepted.push(Excepted { finding: f.clone(), exception: (*e).clone() }),
            None => violations.push(f.clone()),
        }
    }
    (violations, excepted)
}
