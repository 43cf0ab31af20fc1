//! `deed init`: a first manifest proposed from observed traffic.
//!
//! Each role becomes a service. A relation written by exactly one service
//! is proposed as that service's; relations with several writers, or none,
//! are left for a human to decide and listed as comments. Readers get an
//! empty `reads` with the contract versions they would need as comments,
//! and owners get commented-out contract proposals holding exactly the
//! columns other services were seen reading.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use deed_ident::{Ident, QualifiedName};
use deed_manifest::edit::toml_string;

use crate::catalogue::{AccessKind, Catalogue};

/// Suffixes that name a role's purpose rather than its service.
const ROLE_SUFFIXES: &[&str] =
    &["_svc", "_service", "_app", "_user", "_role", "_rw", "_ro", "_api"];

struct Proposed {
    name: String,
    logins: Vec<String>,
    owns: Vec<QualifiedName>,
}

/// Renders the proposal. `origin` says where the traffic came from.
pub fn propose(catalogue: &Catalogue, origin: &str) -> String {
    // Service names for every principal, unique.
    let mut services: Vec<Proposed> = Vec::new();
    let mut by_principal: BTreeMap<String, usize> = BTreeMap::new();
    // Administrators (superusers, deed itself) are nobody's service.
    for principal in catalogue.services.iter().filter(|p| !crate::attribution::is_admin(p)) {
        let (name, login) = match principal.strip_prefix("unknown:") {
            Some(role) => (service_name(role), Some(role.to_string())),
            None => (principal.clone(), None),
        };
        let mut unique = name.clone();
        let mut n = 2;
        while services.iter().any(|s| s.name == unique) {
            unique = format!("{name}_{n}");
            n += 1;
        }
        by_principal.insert(principal.clone(), services.len());
        services.push(Proposed {
            name: unique,
            logins: login.into_iter().collect(),
            owns: Vec::new(),
        });
    }
    let names: BTreeMap<String, String> =
        by_principal.iter().map(|(p, &i)| (p.clone(), services[i].name.clone())).collect();
    let name_of =
        |principal: &str| names.get(principal).cloned().unwrap_or_else(|| principal.to_string());

    let mut writers: BTreeMap<&QualifiedName, Vec<(&str, u64)>> = BTreeMap::new();
    let mut readers: BTreeMap<&QualifiedName, Vec<(&str, u64)>> = BTreeMap::new();
    for a in catalogue.accesses.iter().filter(|a| !crate::attribution::is_admin(&a.service)) {
        let list = match a.access {
            AccessKind::Write => writers.entry(&a.relation).or_default(),
            AccessKind::Read => readers.entry(&a.relation).or_default(),
        };
        list.push((&a.service, a.calls));
    }
    let mut owner_of: BTreeMap<&QualifiedName, String> = BTreeMap::new();
    let mut contested = Vec::new();
    for (rel, ws) in &writers {
        if let [(only, _)] = ws.as_slice() {
            owner_of.insert(rel, name_of(only));
            services[by_principal[*only]].owns.push((*rel).clone());
        } else {
            let list: Vec<String> =
                ws.iter().map(|(s, c)| format!("{} ({c} calls)", name_of(s))).collect();
            contested.push(format!("{rel}: written by {}", list.join(", ")));
        }
    }
    let read_only: Vec<String> = readers
        .iter()
        .filter(|(rel, _)| !writers.contains_key(*rel))
        .map(|(rel, rs)| {
            let names: BTreeSet<String> = rs.iter().map(|(s, _)| name_of(s)).collect();
            format!("{rel}: read by {}", names.into_iter().collect::<Vec<_>>().join(", "))
        })
        .collect();

    let mut out = String::new();
    let _ = writeln!(out, "# deed.toml proposed by `deed init` from {origin}.");
    out.push_str(
        "# Review every line: a relation written by exactly one service was given to it.\n",
    );
    out.push_str("# Contested relations and reads of other services are listed as comments.\n");
    out.push_str("version = 1\n\n[database]\nurl = \"${DATABASE_URL}\"\n");
    for s in &services {
        let _ = write!(out, "\n[services.{}]\n", s.name);
        let owns: Vec<String> = s.owns.iter().map(|q| toml_string(&q.to_string())).collect();
        let _ = writeln!(out, "owns = [{}]", owns.join(", "));
        let logins: Vec<String> = s
            .logins
            .iter()
            .map(|l| {
                toml_string(
                    &Ident::new(l.clone()).map(|i| i.to_string()).unwrap_or_else(|_| l.clone()),
                )
            })
            .collect();
        if logins.is_empty() {
            // SQL files name no role: the proposal cannot know who connects.
            let _ = writeln!(
                out,
                "logins = []  # TO FILL: the roles {} connects as (the SQL read names none)",
                s.name
            );
        } else {
            let _ = writeln!(out, "logins = [{}]", logins.join(", "));
        }
        // Contracts this service would publish for what others read, written
        // after the service's own keys: uncommented, a `[[…contracts]]`
        // table takes every key that follows it.
        let mut contracts = String::new();
        for rel in &s.owns {
            let others: Vec<_> = catalogue
                .accesses
                .iter()
                .filter(|a| {
                    a.relation == *rel
                        && a.access == AccessKind::Read
                        && name_of(&a.service) != s.name
                })
                .collect();
            if others.is_empty() {
                continue;
            }
            let columns: BTreeSet<&String> = others.iter().flat_map(|a| a.columns.iter()).collect();
            let names: BTreeSet<String> = others.iter().map(|a| name_of(&a.service)).collect();
            let complete = others.iter().all(|a| a.columns_complete && !a.select_star);
            let cols: Vec<String> = columns.iter().map(|c| toml_string(c)).collect();
            let _ = write!(
                contracts,
                "# {} read {rel} directly. To publish it as a contract, uncomment:\n\
                 # [[services.{}.contracts]]\n# name = {}\n# version = 1\n# from = {}\n# columns = [{}]{}\n",
                names.into_iter().collect::<Vec<_>>().join(", "),
                s.name,
                toml_string(&contract_name(rel)),
                toml_string(&rel.to_string()),
                cols.join(", "),
                if complete {
                    ""
                } else {
                    "   # incomplete: SELECT * or unattributed columns were seen"
                }
            );
        }
        let foreign: Vec<_> = catalogue
            .accesses
            .iter()
            .filter(|a| {
                name_of(&a.service) == s.name
                    && a.access == AccessKind::Read
                    && owner_of.get(&a.relation).is_some_and(|o| *o != s.name)
            })
            .collect();
        if !foreign.is_empty() {
            out.push_str("# Reads of other services' relations; once their owners publish contracts, list them here:\n");
            for a in &foreign {
                let owner = &owner_of[&a.relation];
                let cols: Vec<&str> = a.columns.iter().map(String::as_str).collect();
                let _ = writeln!(
                    out,
                    "#   \"{owner}.{}.v1\"  # {} ({}), {} calls",
                    contract_name(&a.relation),
                    a.relation,
                    if a.select_star { "SELECT *".to_string() } else { cols.join(", ") },
                    a.calls
                );
            }
        }
        out.push_str("reads = []\n");
        out.push_str(&contracts);
    }
    if !contested.is_empty() {
        out.push_str("\n# Written by several services: choose one owner for each and add it to that service's owns.\n");
        for c in &contested {
            let _ = writeln!(out, "#   {c}");
        }
    }
    if !read_only.is_empty() {
        out.push_str("\n# Read but never written in this traffic: add each to its owner's owns.\n");
        for r in &read_only {
            let _ = writeln!(out, "#   {r}");
        }
    }
    out
}

/// `catalog_svc` → `catalog`; anything else made into a lower-case word.
fn service_name(role: &str) -> String {
    let lower = role.to_ascii_lowercase();
    let mut base = lower.as_str();
    for suffix in ROLE_SUFFIXES {
        if let Some(stripped) = base.strip_suffix(suffix) {
            if !stripped.is_empty() {
                base = stripped;
                break;
            }
        }
    }
    let mut name: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "svc_");
    }
    name.truncate(40);
    name
}

fn contract_name(rel: &QualifiedName) -> String {
    service_name(rel.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_services_after_roles() {
        assert_eq!(service_name("catalog_svc"), "catalog");
        assert_eq!(service_name("Orders-Service"), "orders_service");
        assert_eq!(service_name("orders_service"), "orders");
        assert_eq!(service_name("9lives"), "svc_9lives");
        assert_eq!(toml_string("public.\"Order Items\""), "'public.\"Order Items\"'");
    }
}
