//! The ladder rule, checked on the workspace as it is. ARCHITECTURE.md
//! sorts every crate into a rung (its rung table), the foundations below
//! the rungs, or the crates around them, and draws the dependency graph;
//! these tests read that document, so the one a contributor reads is the
//! one that is checked:
//! - a rung's crate depends on no higher rung, and on nothing around;
//! - a foundation depends on foundations only;
//! - every crate is in exactly one of the three, and the graph shows each
//!   crate's dependencies exactly as its Cargo.toml has them, each listed
//!   above the crates that use it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// Every workspace crate's `deed-*` dependencies (normal, build and
/// per-target; not dev-dependencies, which only tests see), by package
/// name (a renamed dependency counts as the package it is).
fn cargo_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        let doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut tables: Vec<&toml::Table> = Vec::new();
        for key in ["dependencies", "build-dependencies"] {
            tables.extend(doc.get(key).and_then(toml::Value::as_table));
        }
        for target in doc.get("target").and_then(toml::Value::as_table).into_iter().flatten() {
            for key in ["dependencies", "build-dependencies"] {
                tables.extend(target.1.get(key).and_then(toml::Value::as_table));
            }
        }
        let deps = tables
            .iter()
            .flat_map(|t| t.iter())
            .map(|(key, value)| {
                value.get("package").and_then(toml::Value::as_str).unwrap_or(key).to_string()
            })
            .filter(|name| name.starts_with("deed-"))
            .collect();
        out.insert(doc["package"]["name"].as_str().unwrap().to_string(), deps);
    }
    out
}

/// Where ARCHITECTURE.md puts a crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Rung(u8),
    /// `deed-ladder`, above every rung (`all` in the table).
    Ladder,
    Foundation,
    Around,
}

/// Each crate's place, as the document says it; panics on what it cannot
/// read, and lists a crate placed twice.
fn places(doc: &str) -> (BTreeMap<String, Place>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut twice = Vec::new();
    let mut put = |krate: &str, place: Place| {
        if out.insert(krate.to_string(), place).is_some() {
            twice.push(krate.to_string());
        }
    };
    let table = &doc[doc.find("| rung |").expect("ARCHITECTURE.md has a rung table")..];
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let place = match cells[1] {
            "all" => Place::Ladder,
            n => Place::Rung(n.parse().unwrap_or_else(|_| panic!("rung {n:?} in {line}"))),
        };
        for krate in cells[3].split(',') {
            put(krate.trim().trim_matches('`'), place);
        }
    }
    let foundations = &doc[doc.find("Foundations (no rung):").expect("a Foundations list")..];
    for line in foundations.lines().skip(2).take_while(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("- `") {
            put(&rest[..rest.find('`').unwrap()], Place::Foundation);
        }
    }
    let around = &doc[doc.find("Around the rungs:").expect("an Around the rungs paragraph")..];
    let around = &around[..around.find("\n\n").unwrap()];
    for (i, part) in around.split('`').enumerate() {
        if i % 2 == 1 {
            put(part, Place::Around);
        }
    }
    (out, twice)
}

/// The documented graph, in its order: (crates on the line, their deps).
fn documented(doc: &str) -> Vec<(Vec<String>, BTreeSet<String>)> {
    let start = doc.find("The dependency graph").expect("ARCHITECTURE.md shows the graph");
    let block = &doc[start..];
    let block = &block[block.find("```text\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|line| {
            let (names, deps) = line.split_at(line.find("  ").unwrap_or(line.len()));
            let names = names.split(',').map(|n| n.trim().to_string()).collect();
            let deps = deps.split(',').map(str::trim).filter(|d| !d.is_empty());
            (names, deps.map(|d| format!("deed-{d}")).collect())
        })
        .collect()
}

#[test]
fn no_crate_depends_on_a_higher_rung() {
    let graph = cargo_graph();
    let (places, twice) = places(&architecture());
    assert!(twice.is_empty(), "placed twice in ARCHITECTURE.md: {twice:?}");
    let mut broken = Vec::new();
    for krate in places.keys().filter(|k| !graph.contains_key(*k)) {
        broken.push(format!("{krate} is placed in ARCHITECTURE.md but is not a crate"));
    }
    for (krate, deps) in &graph {
        let Some(&own) = places.get(krate) else {
            broken.push(format!("{krate} is not placed in ARCHITECTURE.md"));
            continue;
        };
        for dep in deps {
            let Some(&theirs) = places.get(dep) else { continue };
            let ok = match (own, theirs) {
                (Place::Around, _) => true,
                (_, Place::Around) => false,
                (Place::Foundation, theirs) => theirs == Place::Foundation,
                (Place::Ladder, _) => true,
                (Place::Rung(_), Place::Foundation) => true,
                (Place::Rung(mine), Place::Rung(theirs)) => theirs <= mine,
                (Place::Rung(_), Place::Ladder) => false,
            };
            if !ok {
                broken.push(format!("{krate} ({own:?}) depends on {dep} ({theirs:?})"));
            }
        }
    }
    assert!(broken.is_empty(), "the ladder rule is broken:\n{}", broken.join("\n"));
}

#[test]
fn architecture_shows_the_graph_as_it_is() {
    let graph = cargo_graph();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut wrong = Vec::new();
    for (names, deps) in documented(&architecture()) {
        for name in &names {
            let Some(actual) = graph.get(name) else {
                wrong.push(format!("{name} is shown but is not a crate"));
                continue;
            };
            if &deps != actual {
                wrong.push(format!("{name}: shown {deps:?}, Cargo.toml has {actual:?}"));
            }
            for dep in actual.iter().filter(|d| !seen.contains(*d)) {
                wrong.push(format!("{name} depends on {dep}, shown below it"));
            }
        }
        seen.extend(names);
    }
    for krate in graph.keys() {
        let unshown = ["deed-testkit", "deed-bench"];
        if !seen.contains(krate) && !unshown.contains(&krate.as_str()) {
            wrong.push(format!("{krate} is not in ARCHITECTURE.md's graph"));
        }
    }
    assert!(wrong.is_empty(), "ARCHITECTURE.md's graph is out of date:\n{}", wrong.join("\n"));
}
