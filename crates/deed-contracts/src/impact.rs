//! Which observed statements a plan would break.
//!
//! "Now" is asked of PostgreSQL (`has_table_privilege` for each role,
//! relation and privilege seen in traffic); "after" follows from the
//! desired state: owners keep their relations, readers get their contract
//! versions, exceptions keep their grants, superusers keep everything, and
//! relations deed does not manage are untouched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deed_audit::{AccessKind, Catalogue, QueryRef};
use deed_ident::QualifiedName;
use deed_manifest::Manifest;
use deed_pg::{Client, PgError};
use serde::Serialize;

use crate::desired::Desired;
use crate::error::ContractError;
use crate::live::Live;
use crate::naming::owner_role;

/// Statements of one service on one relation that would stop working.
#[derive(Debug, Clone, Serialize)]
pub struct Break {
    pub service: String,
    pub relation: QualifiedName,
    /// The privilege they need and would lose (`OWNER` for DDL).
    pub privilege: String,
    pub calls: u64,
    pub queries: Vec<QueryRef>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Impact {
    /// Where the traffic came from.
    pub sources: Vec<String>,
    pub breaks: Vec<Break>,
}

impl Impact {
    pub fn is_breaking(&self) -> bool {
        !self.breaks.is_empty()
    }

    /// Breaks grouped by service, with total calls.
    pub fn by_service(&self) -> BTreeMap<&str, (u64, Vec<&Break>)> {
        let mut out: BTreeMap<&str, (u64, Vec<&Break>)> = BTreeMap::new();
        for b in &self.breaks {
            let e = out.entry(b.service.as_str()).or_default();
            e.0 += b.calls;
            e.1.push(b);
        }
        out
    }
}

/// The privilege a statement needs on a relation it touches.
fn needed(kind: AccessKind, command: &str) -> &'static str {
    if kind == AccessKind::Read {
        return "SELECT";
    }
    // A multi-statement text lists its commands; the writing one decides.
    for c in command.split("; ") {
        match c {
            "INSERT" | "COPY" | "SELECT INTO" => return "INSERT",
            "UPDATE" | "MERGE" => return "UPDATE",
            "DELETE" => return "DELETE",
            "TRUNCATE" => return "TRUNCATE",
            "SELECT" | "TRANSACTION" | "SET" | "SHOW" => continue,
            _ => return "OWNER",
        }
    }
    "UPDATE"
}

pub async fn impact(
    client: &Client,
    catalogue: &Catalogue,
    manifest: &Manifest,
    desired: &Desired,
    live: &Live,
) -> Result<Impact, ContractError> {
    // Each access, per query, with the roles that ran it.
    struct Need<'a> {
        service: &'a str,
        roles: Vec<String>,
        relation: &'a QualifiedName,
        privilege: &'static str,
        query: &'a QueryRef,
    }
    let mut needs = Vec::new();
    for a in &catalogue.accesses {
        let roles: Vec<String> = match manifest.service(&a.service) {
            Some(s) => s.logins.iter().map(|l| l.as_str().to_string()).collect(),
            None => match a.service.strip_prefix("unknown:") {
                Some(role) => vec![role.to_string()],
                None => continue,
            },
        };
        let roles: Vec<String> = roles.into_iter().filter(|r| live.role_exists(r)).collect();
        if roles.is_empty() || !live.relations.contains_key(&a.relation) {
            continue;
        }
        for q in &a.queries {
            needs.push(Need {
                service: &a.service,
                roles: roles.clone(),
                relation: &a.relation,
                privilege: needed(a.access, &q.command),
                query: q,
            });
        }
    }
    // Ask the server what each role may do now, in one round trip.
    let mut triples: BTreeSet<(String, String, &'static str)> = BTreeSet::new();
    for n in &needs {
        if n.privilege != "OWNER" {
            for r in &n.roles {
                triples.insert((r.clone(), n.relation.quoted(), n.privilege));
            }
        }
    }
    let (rs, rels, ps): (Vec<String>, Vec<String>, Vec<String>) = triples.iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut a, mut b, mut c), (r, rel, p)| {
            a.push(r.clone());
            b.push(rel.clone());
            c.push(p.to_string());
            (a, b, c)
        },
    );
    let mut now: HashMap<(String, String, String), bool> = HashMap::new();
    if !rs.is_empty() {
        for row in client
            .query(
                "SELECT r, rel, p, has_table_privilege(r, rel, p) FROM unnest($1::text[], $2::text[], $3::text[]) AS t(r, rel, p)",
                &[&rs, &rels, &ps],
            )
            .await
            .map_err(|e| PgError::query("checking current privileges", e))?
        {
            now.insert((row.get(0), row.get(1), row.get(2)), row.get(3));
        }
    }
    let mut breaks: BTreeMap<(String, QualifiedName, &'static str), Break> = BTreeMap::new();
    for n in &needs {
        let allowed_now = if n.privilege == "OWNER" {
            let owner = &live.relations[n.relation].owner;
            n.roles.iter().any(|r| live.is_superuser(r) || live.is_member(r, owner))
        } else {
            n.roles.iter().any(|r| {
                now.get(&(r.clone(), n.relation.quoted(), n.privilege.to_string()))
                    .copied()
                    .unwrap_or(false)
            })
        };
        if !allowed_now
            || allowed_after(n.service, &n.roles, n.relation, n.privilege, manifest, desired, live)
        {
            continue;
        }
        let b = breaks
            .entry((n.service.to_string(), n.relation.clone(), n.privilege))
            .or_insert_with(|| Break {
                service: n.service.to_string(),
                relation: n.relation.clone(),
                privilege: n.privilege.to_string(),
                calls: 0,
                queries: Vec::new(),
            });
        b.calls += n.query.calls;
        if !b.queries.iter().any(|q| q.fingerprint == n.query.fingerprint) {
            b.queries.push(n.query.clone());
        }
    }
    let mut breaks: Vec<Break> = breaks.into_values().collect();
    for b in &mut breaks {
        b.queries.sort_by_key(|q| std::cmp::Reverse(q.calls));
    }
    let sources = catalogue.sources.iter().map(|s| format!("{} {}", s.kind, s.detail)).collect();
    Ok(Impact { sources, breaks })
}

fn allowed_after(
    service: &str,
    roles: &[String],
    relation: &QualifiedName,
    privilege: &str,
    manifest: &Manifest,
    desired: &Desired,
    live: &Live,
) -> bool {
    if roles.iter().any(|r| live.is_superuser(r)) {
        return true;
    }
    let in_manifest = manifest.service(service).is_some();
    if let Some(owned) = desired.relation(relation) {
        if in_manifest && owned.service == service {
            return true;
        }
        return in_manifest
            && owned
                .grants
                .get(&owner_role(service))
                .is_some_and(|privs| privs.iter().any(|p| p.as_sql() == privilege));
    }
    if let Some(view) = desired.view(relation) {
        if in_manifest && view.service == service {
            return true;
        }
        return in_manifest && privilege == "SELECT" && view.readers.contains(&owner_role(service));
    }
    // A contract view about to be dropped is read by nobody afterwards.
    if live.contract_views().any(|(v, _)| v == relation) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileges_needed_by_commands() {
        assert_eq!(needed(AccessKind::Read, "UPDATE"), "SELECT");
        assert_eq!(needed(AccessKind::Write, "INSERT"), "INSERT");
        assert_eq!(needed(AccessKind::Write, "TRANSACTION; UPDATE; TRANSACTION"), "UPDATE");
        assert_eq!(needed(AccessKind::Write, "ALTER TABLE"), "OWNER");
        assert_eq!(needed(AccessKind::Write, "TRUNCATE"), "TRUNCATE");
    }
}
