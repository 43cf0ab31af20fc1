use deed_sql::{RelationAccess, SchemaLookup, SqlError, analyze, fingerprint, mask_literals};
use rustc_hash::FxHashMap;

/// Longest example statement kept per shape; enough to recognise it.
const EXAMPLE_CHARS: usize = 400;

/// One distinct statement shape (same fingerprint), parsed once.
#[derive(Debug, Clone)]
pub struct Shape {
    pub fingerprint: u64,
    /// The first text seen with this shape.
    pub example: String,
    pub result: Result<ShapeAnalysis, SqlError>,
}

#[derive(Debug, Clone)]
pub struct ShapeAnalysis {
    pub command: String,
    pub accesses: Vec<RelationAccess>,
    pub opaque: Option<String>,
}

/// Groups statements by shape and counts calls per (service, shape).
///
/// Memory is bounded by the number of distinct shapes (and literal masks of
/// them), not by how many statements pass through.
pub struct Collector<'l> {
    lookup: &'l dyn SchemaLookup,
    masks: FxHashMap<Box<str>, usize>,
    by_fingerprint: FxHashMap<u64, usize>,
    shapes: Vec<Shape>,
    services: Vec<String>,
    service_index: FxHashMap<String, usize>,
    counts: FxHashMap<(usize, usize), u64>,
    scratch: String,
    statements: u64,
    calls: u64,
}

impl<'l> Collector<'l> {
    pub fn new(lookup: &'l dyn SchemaLookup) -> Self {
        Collector {
            lookup,
            masks: FxHashMap::default(),
            by_fingerprint: FxHashMap::default(),
            shapes: Vec::new(),
            services: Vec::new(),
            service_index: FxHashMap::default(),
            counts: FxHashMap::default(),
            scratch: String::new(),
            statements: 0,
            calls: 0,
        }
    }

    /// Records `calls` executions of `sql` by `service`.
    pub fn add(&mut self, service: &str, sql: &str, calls: u64) {
        self.statements += 1;
        self.calls += calls;
        let shape = self.shape_of(sql);
        let svc = match self.service_index.get(service) {
            Some(&i) => i,
            None => {
                self.services.push(service.to_string());
                self.service_index.insert(service.to_string(), self.services.len() - 1);
                self.services.len() - 1
            }
        };
        *self.counts.entry((svc, shape)).or_insert(0) += calls;
    }

    /// Records a service's existence even if it ran nothing, so it still
    /// appears in the catalogue.
    pub fn note_service(&mut self, service: &str) {
        if !self.service_index.contains_key(service) {
            self.services.push(service.to_string());
            self.service_index.insert(service.to_string(), self.services.len() - 1);
        }
    }

    fn shape_of(&mut self, sql: &str) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        mask_literals(sql, &mut scratch);
        let found = self.masks.get(scratch.as_str()).copied();
        let shape = match found {
            Some(s) => s,
            None => {
                let s = self.parse_new(sql, &scratch);
                self.masks.insert(scratch.as_str().into(), s);
                s
            }
        };
        self.scratch = scratch;
        shape
    }

    fn parse_new(&mut self, sql: &str, mask: &str) -> usize {
        let fp = fingerprint(sql).unwrap_or_else(|_| {
            // Unparseable texts group by their mask instead.
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one(mask)
        });
        if let Some(&s) = self.by_fingerprint.get(&fp) {
            return s;
        }
        let result = analyze(sql, self.lookup).map(|a| ShapeAnalysis {
            command: a.statements.iter().map(|s| s.command.as_str()).collect::<Vec<_>>().join("; "),
            opaque: a.statements.iter().find_map(|s| s.opaque.clone()),
            accesses: a.combined(),
        });
        let example = truncate(sql.trim(), EXAMPLE_CHARS);
        self.shapes.push(Shape { fingerprint: fp, example, result });
        self.by_fingerprint.insert(fp, self.shapes.len() - 1);
        self.shapes.len() - 1
    }

    /// Statements passed to [`add`](Self::add), before grouping.
    pub fn statements(&self) -> u64 {
        self.statements
    }

    /// Executions those statements stand for (pg_stat_statements rows
    /// carry many calls each; a log line or a file statement is one).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// (service, shape, calls) for every pair seen.
    pub fn counts(&self) -> impl Iterator<Item = (&str, &Shape, u64)> {
        self.counts.iter().map(|(&(svc, shape), &calls)| {
            (self.services[svc].as_str(), &self.shapes[shape], calls)
        })
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deed_sql::OfflineLookup;

    #[test]
    fn parses_each_shape_once() {
        let lookup = OfflineLookup::default();
        let mut c = Collector::new(&lookup);
        for i in 0..100 {
            c.add("orders", &format!("SELECT name FROM products WHERE id = {i}"), 1);
            c.add("orders", &format!("select name from products where id = {i} -- again"), 2);
        }
        c.add("catalog", "SELECT name FROM products WHERE id = $1", 5);
        assert_eq!(c.statements(), 201);
        assert_eq!(c.shapes().len(), 1);
        let mut counts: Vec<(String, u64)> =
            c.counts().map(|(s, _, n)| (s.to_string(), n)).collect();
        counts.sort();
        assert_eq!(counts, [("catalog".to_string(), 5), ("orders".to_string(), 300)]);
    }

    #[test]
    fn keeps_unparseable_statements_apart() {
        let lookup = OfflineLookup::default();
        let mut c = Collector::new(&lookup);
        c.add("a", "SELEC 1", 1);
        c.add("a", "SELECT 1", 1);
        assert_eq!(c.shapes().len(), 2);
        assert!(c.shapes().iter().any(|s| s.result.is_err()));
    }
}
