//! The ladder rule, checked on the workspace as it is: no crate depends on
//! a higher rung, and the crates below the rungs depend on none. The rungs
//! and the dependency graph are read from ARCHITECTURE.md, so the document
//! a contributor reads is the one that is checked: a new dependency that
//! breaks the rule, or that the document does not show, fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every workspace crate's `deed-*` dependencies (not dev-dependencies),
/// without the `deed-` prefix.
fn cargo_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let path = entry.unwrap().path().join("Cargo.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_string();
        let deps = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| {
                t.keys()
                    .filter_map(|k| k.strip_prefix("deed-"))
                    .map(str::to_string)
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default();
        out.insert(name, deps);
    }
    out
}

fn architecture() -> String {
    std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap()
}

/// The rung table: crate → rung (`None` for `all`, the ladder itself).
fn rungs(doc: &str) -> BTreeMap<String, Option<u8>> {
    let mut out = BTreeMap::new();
    let start = doc.find("| rung |").expect("ARCHITECTURE.md has a rung table");
    for line in doc[start..].lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let rung = cells[1].parse::<u8>().ok();
        for krate in cells[3].split(',') {
            out.insert(krate.trim().trim_matches('`').to_string(), rung);
        }
    }
    out
}

/// The documented graph, in its order: (crates on the line, their deps;
/// `None` for "everything they drive").
fn documented(doc: &str) -> Vec<(Vec<String>, Option<BTreeSet<String>>)> {
    let start = doc.find("The dependency graph").expect("ARCHITECTURE.md shows the graph");
    let block = &doc[start..];
    let block = &block[block.find("```text\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    block
        .lines()
        .map(|line| {
            let (names, deps) = match line.find("  ") {
                Some(i) => (&line[..i], line[i..].trim()),
                None => (line, ""),
            };
            let names = names.split(',').map(|n| n.trim().to_string()).collect();
            let deps = if deps.starts_with('(') {
                None
            } else if deps.is_empty() {
                Some(BTreeSet::new())
            } else {
                Some(deps.split(',').map(|d| d.trim().to_string()).collect())
            };
            (names, deps)
        })
        .collect()
}

#[test]
fn no_crate_depends_on_a_higher_rung() {
    let graph = cargo_graph();
    let rungs = rungs(&architecture());
    assert!(rungs.len() >= 8, "the rung table was not read: {rungs:?}");
    let mut broken = Vec::new();
    for (krate, deps) in &graph {
        let own = rungs.get(krate.as_str());
        for dep in deps {
            let Some(theirs) = rungs.get(&format!("deed-{dep}")) else { continue };
            let ok = match (own, theirs) {
                // Below the rungs (or around them): a foundation depends on
                // no rung; deed-doctor, deed-demo and the binary on anything.
                (None, _) => !is_foundation(krate),
                // The ladder sits above every rung.
                (Some(None), _) => true,
                (Some(Some(_)), None) => false,
                (Some(Some(mine)), Some(theirs)) => theirs <= mine,
            };
            if !ok {
                let rung = |r: Option<&Option<u8>>| match r {
                    None => "below the rungs".to_string(),
                    Some(None) => "the ladder".to_string(),
                    Some(Some(n)) => format!("rung {n}"),
                };
                broken.push(format!(
                    "{krate} ({}) depends on deed-{dep} ({})",
                    rung(own),
                    rung(Some(theirs))
                ));
            }
        }
    }
    assert!(broken.is_empty(), "the ladder rule is broken:\n{}", broken.join("\n"));
}

/// The crates ARCHITECTURE.md lists as foundations: the graph's lines
/// before the first rung crate.
fn is_foundation(krate: &str) -> bool {
    let doc = architecture();
    let rungs = rungs(&doc);
    documented(&doc)
        .iter()
        .take_while(|(names, _)| !names.iter().any(|n| rungs.contains_key(n)))
        .any(|(names, _)| names.iter().any(|n| n == krate))
}

#[test]
fn architecture_shows_the_graph_as_it_is() {
    let graph = cargo_graph();
    let doc = architecture();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut wrong = Vec::new();
    for (names, deps) in documented(&doc) {
        for name in &names {
            let Some(actual) = graph.get(name) else {
                wrong.push(format!("{name} is shown but is not a crate"));
                continue;
            };
            match &deps {
                Some(deps) if deps != actual => {
                    wrong.push(format!("{name}: shown {deps:?}, Cargo.toml has {actual:?}"))
                }
                _ => {}
            }
            for dep in actual {
                if !seen.contains(&format!("deed-{dep}")) {
                    wrong.push(format!("{name} depends on deed-{dep}, shown below it"));
                }
            }
        }
        seen.extend(names);
    }
    for krate in graph.keys() {
        let around = ["deed-testkit", "deed-bench"];
        if !seen.contains(krate) && !around.contains(&krate.as_str()) {
            wrong.push(format!("{krate} is not in ARCHITECTURE.md's graph"));
        }
    }
    assert!(wrong.is_empty(), "ARCHITECTURE.md's graph is out of date:\n{}", wrong.join("\n"));
}
