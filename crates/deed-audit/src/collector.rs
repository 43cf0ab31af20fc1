use deed_sql::{
    RelationAccess, SchemaLookup, SessionEffects, SessionLookup, SessionState, SqlError, analyze,
    fingerprint, mask_literals,
};
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
    /// What it changes for the session's later statements.
    pub effects: SessionEffects,
}

/// Groups statements by shape and counts calls per (service, shape).
///
/// A statement is analysed once per distinct text up to its literals (its
/// mask) and per session state (search path, temporary tables): the
/// analysis depends on every name in the text, aliases included, and on
/// how the session resolves them. Memory is bounded by the number of
/// distinct shapes, not by how many statements pass through.
pub struct Collector<'l> {
    lookup: &'l dyn SchemaLookup,
    masks: FxHashMap<(usize, Box<str>), usize>,
    /// Session states seen; a shape's key holds the index of its state.
    states: Vec<SessionState>,
    state: usize,
    shapes: Vec<Shape>,
    services: Vec<String>,
    service_index: FxHashMap<String, usize>,
    counts: FxHashMap<(usize, usize), u64>,
    scratch: String,
    statements: u64,
    calls: u64,
    admin_calls: u64,
    /// Statements longer than this are counted, not parsed.
    max_statement: usize,
    oversized: Option<usize>,
}

impl<'l> Collector<'l> {
    pub fn new(lookup: &'l dyn SchemaLookup) -> Self {
        Collector {
            lookup,
            masks: FxHashMap::default(),
            states: vec![SessionState::default()],
            state: 0,
            shapes: Vec::new(),
            services: Vec::new(),
            service_index: FxHashMap::default(),
            counts: FxHashMap::default(),
            scratch: String::new(),
            statements: 0,
            calls: 0,
            admin_calls: 0,
            max_statement: crate::Limits::default().statement_bytes,
            oversized: None,
        }
    }

    /// Statements over `bytes` are not parsed (parsing costs about 150
    /// bytes of memory per byte of SQL); they are grouped as one shape
    /// that the report lists among the unparsed.
    pub fn with_statement_limit(mut self, bytes: usize) -> Self {
        self.max_statement = bytes;
        self
    }

    /// The session state later statements are analysed in (a file's
    /// `SET search_path`, its temporary tables); the default state for
    /// sources without sessions.
    pub fn set_session(&mut self, state: &SessionState) {
        self.state = match self.states.iter().position(|s| s == state) {
            Some(i) => i,
            None => {
                self.states.push(state.clone());
                self.states.len() - 1
            }
        };
    }

    /// Records `calls` executions of `sql` by `service`; returns the index
    /// of its shape in [`shapes`](Self::shapes).
    pub fn add(&mut self, service: &str, sql: &str, calls: u64) -> usize {
        // deed's own reads under a service's role are deed's, not the service's.
        let service = if sql.contains(deed_pg::BACKFILL_MARKER) { "admin:deed" } else { service };
        self.statements += 1;
        self.calls += calls;
        if crate::attribution::is_admin(service) {
            self.admin_calls += calls;
        }
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
        shape
    }

    /// Whether the shape is the group of statements too large to analyse.
    pub fn is_oversized(&self, shape: usize) -> bool {
        self.oversized == Some(shape)
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
        if sql.len() > self.max_statement {
            return self.oversized(sql);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        mask_literals(sql, &mut scratch);
        let key = (self.state, Box::<str>::from(scratch.as_str()));
        let shape = match self.masks.get(&key).copied() {
            Some(s) => s,
            None => {
                let s = self.parse_new(sql, &scratch);
                self.masks.insert(key, s);
                s
            }
        };
        self.scratch = scratch;
        shape
    }

    fn oversized(&mut self, sql: &str) -> usize {
        if let Some(s) = self.oversized {
            return s;
        }
        let message = format!(
            "a statement of {} is over the limit of {} for one statement, so statements this large are counted but not analysed; raise --max-statement-bytes to analyse them",
            deed_text::bytes_exact(sql.len() as u64),
            deed_text::bytes_exact(self.max_statement as u64)
        );
        self.shapes.push(Shape {
            fingerprint: u64::MAX,
            example: truncate(sql.trim(), EXAMPLE_CHARS),
            result: Err(SqlError { message, offset: None }),
        });
        self.oversized = Some(self.shapes.len() - 1);
        self.shapes.len() - 1
    }

    fn parse_new(&mut self, sql: &str, mask: &str) -> usize {
        let fp = fingerprint(sql).unwrap_or_else(|_| {
            // Unparseable texts group by their mask instead.
            use std::hash::BuildHasher;
            rustc_hash::FxBuildHasher.hash_one(mask)
        });
        let state = &self.states[self.state];
        let session = SessionLookup { inner: self.lookup, state };
        let lookup: &dyn SchemaLookup = if state.is_default() { self.lookup } else { &session };
        let result = analyze(sql, lookup).map(|a| ShapeAnalysis {
            command: a.statements.iter().map(|s| s.command.as_str()).collect::<Vec<_>>().join("; "),
            opaque: a.statements.iter().find_map(|s| s.opaque.clone()),
            effects: a.statements.last().map(|s| s.effects.clone()).unwrap_or_default(),
            accesses: a.combined(),
        });
        let example = truncate(sql.trim(), EXAMPLE_CHARS);
        self.shapes.push(Shape { fingerprint: fp, example, result });
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

    /// Of [`calls`](Self::calls), those by administrators (no service's).
    pub fn admin_calls(&self) -> u64 {
        self.admin_calls
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
        // Three texts up to their literals, one fingerprint.
        assert_eq!(c.shapes().len(), 3);
        assert_eq!(
            c.shapes()
                .iter()
                .map(|s| s.fingerprint)
                .collect::<std::collections::HashSet<_>>()
                .len(),
            1
        );
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for (s, _, n) in c.counts() {
            *counts.entry(s.to_string()).or_default() += n;
        }
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("catalog".to_string(), 5), ("orders".to_string(), 300)]
        );
    }

    #[test]
    fn aliases_are_part_of_what_is_analysed() {
        let lookup = OfflineLookup::default();
        let mut c = Collector::new(&lookup);
        let a = c.add("a", "SELECT a.* FROM users a JOIN orders b USING (id)", 1);
        let b = c.add("b", "SELECT a.* FROM users b JOIN orders a USING (id)", 1);
        let star = |i: usize| {
            let shape = &c.shapes()[i];
            let accesses = &shape.result.as_ref().unwrap().accesses;
            accesses.iter().filter(|x| x.star).map(|x| x.relation.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(star(a), ["public.users"]);
        assert_eq!(star(b), ["public.orders"]);
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
