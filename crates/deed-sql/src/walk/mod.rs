//! The parse-tree walk. One [`Walker`] handles one statement; query levels
//! are pushed and popped as subqueries nest, so a column reference resolves
//! the way PostgreSQL resolves it: innermost level first, then outward.

mod dml;
mod expr;
mod query;
mod utility;

use deed_ident::QualifiedName;
use pg_query::NodeEnum;
use pg_query::protobuf::{Node, RangeVar};

use crate::access::{RelationAccess, Statement, StatementAnalysis};
use crate::error::SqlError;
use crate::fingerprint::message;
use crate::lookup::SchemaLookup;
use crate::scope::{Cte, FromItem, Level, Source};

/// Parses `sql` (one or more statements) and reports what each statement
/// reads and writes.
///
/// Deep but valid SQL (dozens of nested subqueries, long `||` chains,
/// hundreds of `UNION ALL`s) nests its parse tree as deep, and decoding and
/// walking it recurse as deep: the work runs on a stack of its own, large
/// enough for anything PostgreSQL's parser accepts.
pub fn analyze(sql: &str, lookup: &dyn SchemaLookup) -> Result<StatementAnalysis, SqlError> {
    warm_up_parser();
    stacker::grow(ANALYSIS_STACK, || analyze_here(sql, lookup))
}

thread_local! {
    static PARSER_READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// libpg_query sizes its stack-depth limit (like PostgreSQL's
/// `max_stack_depth`, at most 2 MB) from the thread's own stack, and keeps
/// it for the thread. On the separate stack the analysis runs on it cannot
/// measure that, so it would stay at its 100 kB minimum: one parse on the
/// thread's stack first sets the real limit.
fn warm_up_parser() {
    PARSER_READY.with(|ready| {
        if !ready.get() {
            let _ = pg_query::parse("SELECT 1", 0);
            ready.set(true);
        }
    });
}

/// PostgreSQL's parser stops at its own stack depth limit (2 MB by
/// default); decoding and walking the tree it returns takes a few times
/// that.
const ANALYSIS_STACK: usize = 64 << 20;

fn analyze_here(sql: &str, lookup: &dyn SchemaLookup) -> Result<StatementAnalysis, SqlError> {
    let parsed = pg_query::parse(sql, 0)
        .map_err(|e| SqlError { message: message(e), offset: crate::ffi::error_offset(sql) })?;
    let mut statements = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_deref().and_then(|n| n.node.as_ref()) else { continue };
        let offset = usize::try_from(raw.stmt_location).unwrap_or(0);
        let len = match usize::try_from(raw.stmt_len).unwrap_or(0) {
            // 0 means "to the end of the text".
            0 => sql.len().saturating_sub(offset),
            n => n,
        };
        let text = sql.get(offset..offset + len).unwrap_or("");
        let mut walker = Walker::new(lookup, text);
        walker.statement(node);
        statements.push(Statement {
            command: command_name(node),
            offset,
            len,
            accesses: walker.accesses,
            opaque: walker.opaque,
            unresolved_columns: walker.unresolved.into_iter().collect(),
            effects: walker.effects,
        });
    }
    Ok(StatementAnalysis { statements })
}

pub(crate) struct Walker<'a> {
    lookup: &'a dyn SchemaLookup,
    /// The statement's own text (PL/pgSQL's parser needs a function's).
    text: &'a str,
    pub accesses: Vec<RelationAccess>,
    levels: Vec<Level>,
    pub opaque: Option<String>,
    pub unresolved: std::collections::BTreeSet<String>,
    pub effects: crate::access::SessionEffects,
}

impl<'a> Walker<'a> {
    fn new(lookup: &'a dyn SchemaLookup, text: &'a str) -> Self {
        Walker {
            lookup,
            text,
            accesses: Vec::new(),
            levels: Vec::new(),
            opaque: None,
            unresolved: Default::default(),
            effects: Default::default(),
        }
    }

    /// Any statement, top-level or nested (a CTE body, EXPLAIN's target).
    pub(crate) fn statement(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::SelectStmt(s) => {
                self.select(s, false);
            }
            NodeEnum::InsertStmt(s) => self.insert(s),
            NodeEnum::UpdateStmt(s) => self.update(s),
            NodeEnum::DeleteStmt(s) => self.delete(s),
            NodeEnum::MergeStmt(s) => self.merge(s),
            other => self.utility(other),
        }
    }

    /// The access entry for a relation named in the statement, created on
    /// first use so that a relation named twice has one entry.
    pub(crate) fn relation(&mut self, rv: &RangeVar) -> Option<usize> {
        // A temporary table lives in the session's own schema, whatever
        // the search path says.
        let schema = if rv.relpersistence == "t" {
            Some("pg_temp")
        } else {
            (!rv.schemaname.is_empty()).then_some(rv.schemaname.as_str())
        };
        let name = self.lookup.resolve(schema, &rv.relname)?;
        if rv.relpersistence == "t" && !self.effects.temp_tables.contains(&rv.relname) {
            self.effects.temp_tables.push(rv.relname.clone());
        }
        Some(self.access_index(name))
    }

    pub(crate) fn access_index(&mut self, name: QualifiedName) -> usize {
        if let Some(i) = self.accesses.iter().position(|a| a.relation == name) {
            return i;
        }
        self.accesses.push(RelationAccess::new(name));
        self.accesses.len() - 1
    }

    pub(crate) fn columns_of(&self, index: usize) -> Option<Vec<String>> {
        self.lookup.columns(&self.accesses[index].relation)
    }

    /// A relation in FROM (or a CTE of that name): read, and in scope.
    pub(crate) fn source_range_var(&mut self, rv: &RangeVar) {
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        if rv.schemaname.is_empty() {
            if let Some(cte) = self.cte(&rv.relname) {
                let columns = match &rv.alias {
                    Some(a) if !a.colnames.is_empty() => Some(strings(&a.colnames)),
                    _ => cte.columns.clone(),
                };
                self.add_item(FromItem {
                    name: alias.unwrap_or_else(|| rv.relname.clone()),
                    schema: None,
                    source: Source::Derived(columns),
                });
                return;
            }
        }
        let Some(index) = self.relation(rv) else { return };
        self.accesses[index].read = true;
        self.add_item(FromItem {
            schema: alias
                .is_none()
                .then(|| self.accesses[index].relation.schema.as_str().to_string()),
            name: alias.unwrap_or_else(|| rv.relname.clone()),
            source: Source::Relation(index),
        });
    }

    pub(crate) fn cte(&self, name: &str) -> Option<&Cte> {
        self.levels.iter().rev().flat_map(|l| l.ctes.iter().rev()).find(|c| c.name == name)
    }

    pub(crate) fn push_level(&mut self) {
        self.levels.push(Level::default());
    }

    pub(crate) fn pop_level(&mut self) -> Level {
        self.levels.pop().expect("balanced levels")
    }

    pub(crate) fn level(&mut self) -> &mut Level {
        self.levels.last_mut().expect("inside a query level")
    }

    pub(crate) fn add_item(&mut self, item: FromItem) {
        self.level().items.push(item);
    }

    pub(crate) fn mark_opaque(&mut self, why: impl Into<String>) {
        if self.opaque.is_none() {
            self.opaque = Some(why.into());
        }
    }
}

/// The `sval` of each `String` node in a list, e.g. column name lists.
pub(crate) fn strings(nodes: &[Node]) -> Vec<String> {
    nodes.iter().filter_map(string).collect()
}

pub(crate) fn string(node: &Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

fn command_name(node: &NodeEnum) -> String {
    let name = match node {
        NodeEnum::SelectStmt(s) if s.into_clause.is_some() => "SELECT INTO",
        NodeEnum::SelectStmt(_) => "SELECT",
        NodeEnum::InsertStmt(_) => "INSERT",
        NodeEnum::UpdateStmt(_) => "UPDATE",
        NodeEnum::DeleteStmt(_) => "DELETE",
        NodeEnum::MergeStmt(_) => "MERGE",
        NodeEnum::CopyStmt(_) => "COPY",
        NodeEnum::TruncateStmt(_) => "TRUNCATE",
        NodeEnum::CreateStmt(_) => "CREATE TABLE",
        NodeEnum::CreateTableAsStmt(_) => "CREATE TABLE AS",
        NodeEnum::ViewStmt(_) => "CREATE VIEW",
        NodeEnum::AlterTableStmt(_) => "ALTER TABLE",
        NodeEnum::DropStmt(_) => "DROP",
        NodeEnum::IndexStmt(_) => "CREATE INDEX",
        NodeEnum::RenameStmt(_) => "ALTER ... RENAME",
        NodeEnum::ExplainStmt(_) => "EXPLAIN",
        NodeEnum::LockStmt(_) => "LOCK",
        NodeEnum::TransactionStmt(_) => "TRANSACTION",
        NodeEnum::VariableSetStmt(_) => "SET",
        NodeEnum::VariableShowStmt(_) => "SHOW",
        NodeEnum::DoStmt(_) => "DO",
        NodeEnum::CallStmt(_) => "CALL",
        NodeEnum::ExecuteStmt(_) => "EXECUTE",
        NodeEnum::PrepareStmt(_) => "PREPARE",
        NodeEnum::DeclareCursorStmt(_) => "DECLARE CURSOR",
        NodeEnum::GrantStmt(_) => "GRANT",
        NodeEnum::CommentStmt(_) => "COMMENT",
        NodeEnum::CreateFunctionStmt(_) => "CREATE FUNCTION",
        NodeEnum::CreateTrigStmt(_) => "CREATE TRIGGER",
        NodeEnum::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        other => {
            // Debug output starts with the variant name, e.g. "CreateSeqStmt(".
            let debug = format!("{other:?}");
            let variant = debug.split('(').next().unwrap_or("OTHER").trim_end_matches("Stmt");
            return variant.to_string();
        }
    };
    name.to_string()
}
