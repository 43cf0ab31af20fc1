use std::collections::BTreeSet;

use deed_ident::QualifiedName;
use serde::Serialize;

/// How one statement uses one relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelationAccess {
    pub relation: QualifiedName,
    /// Rows or columns of the relation are read (FROM, WHERE, RETURNING...).
    pub read: bool,
    /// Rows are inserted, updated, deleted, truncated or copied in, or the
    /// relation itself is created, altered or dropped.
    pub write: bool,
    /// Every column is read through `*`, `t.*`, or a `COPY` without a
    /// column list: the reader silently gets new columns too.
    pub star: bool,
    pub columns_read: BTreeSet<String>,
    pub columns_written: BTreeSet<String>,
    /// An INSERT without a column list writes every column by position.
    pub all_columns_written: bool,
    /// Rows are locked (`SELECT … FOR UPDATE`/`FOR SHARE`), which needs
    /// UPDATE privilege.
    pub lock: bool,
    /// Some column references could belong to this relation but could not
    /// be attributed (no catalog to disambiguate a join).
    pub columns_uncertain: bool,
}

impl RelationAccess {
    pub(crate) fn new(relation: QualifiedName) -> Self {
        RelationAccess {
            relation,
            read: false,
            write: false,
            star: false,
            columns_read: BTreeSet::new(),
            columns_written: BTreeSet::new(),
            all_columns_written: false,
            lock: false,
            columns_uncertain: false,
        }
    }

    /// Folds another statement's use of the same relation into this one.
    pub fn merge(&mut self, other: &RelationAccess) {
        self.read |= other.read;
        self.write |= other.write;
        self.star |= other.star;
        self.all_columns_written |= other.all_columns_written;
        self.lock |= other.lock;
        self.columns_uncertain |= other.columns_uncertain;
        self.columns_read.extend(other.columns_read.iter().cloned());
        self.columns_written.extend(other.columns_written.iter().cloned());
    }
}

/// One statement of a SQL text and what it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// `SELECT`, `INSERT`, `CREATE TABLE`, ... as PostgreSQL names it.
    pub command: String,
    /// Byte offset and length of the statement in the analysed text.
    pub offset: usize,
    pub len: usize,
    pub accesses: Vec<RelationAccess>,
    /// Set when part of the statement runs code deed cannot see into
    /// (a DO block, a function body, EXECUTE of a prepared statement).
    pub opaque: Option<String>,
    /// Unqualified columns no relation in scope has, by what the schema
    /// lookup knows (always empty offline, where columns are unknown).
    pub unresolved_columns: Vec<String>,
    /// How the statement changes name resolution for the statements after
    /// it in the same session.
    pub effects: SessionEffects,
}

/// What a statement changes for the rest of its session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionEffects {
    /// `SET search_path` (or `set_config('search_path', …)`): the new
    /// path, or `Some(None)` for a reset to the default.
    pub search_path: Option<Option<Vec<String>>>,
    /// Temporary tables it creates.
    pub temp_tables: Vec<String>,
}

/// Everything in one SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementAnalysis {
    pub statements: Vec<Statement>,
}

impl StatementAnalysis {
    /// The accesses of all statements, one entry per relation.
    pub fn combined(&self) -> Vec<RelationAccess> {
        let mut out: Vec<RelationAccess> = Vec::new();
        for access in self.statements.iter().flat_map(|s| &s.accesses) {
            match out.iter_mut().find(|a| a.relation == access.relation) {
                Some(existing) => existing.merge(access),
                None => out.push(access.clone()),
            }
        }
        out
    }
}
