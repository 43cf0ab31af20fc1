//! INSERT, UPDATE, DELETE and MERGE.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    CmdType, DeleteStmt, InsertStmt, MergeStmt, MergeWhenClause, Node, OnConflictClause, RangeVar,
    ReturningClause, UpdateStmt,
};

use super::Walker;
use crate::scope::{FromItem, Source};

impl Walker<'_> {
    /// Registers a DML target: written, and in scope under its alias.
    fn target(&mut self, rv: &RangeVar) -> Option<usize> {
        self.target_as(rv, true)
    }

    /// The statement's target relation, written or (a MERGE that can only
    /// DO NOTHING) not.
    fn target_as(&mut self, rv: &RangeVar, write: bool) -> Option<usize> {
        let index = self.relation(rv)?;
        self.accesses[index].write |= write;
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        self.add_item(FromItem {
            schema: alias
                .is_none()
                .then(|| self.accesses[index].relation.schema.as_str().to_string()),
            name: alias.unwrap_or_else(|| rv.relname.clone()),
            source: Source::Relation(index),
        });
        Some(index)
    }

    /// `SET a = ..`, `INSERT (a, ..)`: the names of written columns. A
    /// `SET a.b = ..` (a field of a composite column) writes `a`.
    fn written(&mut self, index: Option<usize>, targets: &[Node]) {
        for t in targets {
            let Some(NodeEnum::ResTarget(rt)) = t.node.as_ref() else { continue };
            if let Some(i) = index {
                self.accesses[i].columns_written.insert(rt.name.clone());
            }
            self.exprs(&rt.indirection);
            self.opt_expr(rt.val.as_deref());
        }
    }

    fn returning(&mut self, r: &Option<ReturningClause>) {
        if let Some(r) = r {
            for e in &r.exprs {
                if let Some(NodeEnum::ResTarget(rt)) = e.node.as_ref() {
                    if let Some(NodeEnum::ColumnRef(c)) =
                        rt.val.as_deref().and_then(|v| v.node.as_ref())
                    {
                        if matches!(
                            c.fields.last().and_then(|f| f.node.as_ref()),
                            Some(NodeEnum::AStar(_))
                        ) {
                            self.star(&c.fields);
                            continue;
                        }
                    }
                }
                self.expr(e);
            }
        }
    }

    pub(crate) fn insert(&mut self, s: &InsertStmt) {
        self.push_level();
        if let Some(with) = &s.with_clause {
            self.with_clause(with);
        }
        // The source query cannot see the target, so it is walked first.
        if let Some(NodeEnum::SelectStmt(sel)) =
            s.select_stmt.as_deref().and_then(|n| n.node.as_ref())
        {
            self.select(sel, false);
        }
        let index = s.relation.as_ref().and_then(|rv| self.target(rv));
        if let Some(i) = index {
            if s.cols.is_empty() {
                match self.columns_of(i) {
                    Some(cols) => self.accesses[i].columns_written.extend(cols),
                    None => self.accesses[i].all_columns_written = true,
                }
            }
        }
        self.written(index, &s.cols);
        if let Some(oc) = &s.on_conflict_clause {
            self.on_conflict(oc, index);
        }
        self.returning(&s.returning_clause);
        self.pop_level();
    }

    fn on_conflict(&mut self, oc: &OnConflictClause, index: Option<usize>) {
        if let Some(infer) = &oc.infer {
            for elem in &infer.index_elems {
                if let Some(NodeEnum::IndexElem(e)) = elem.node.as_ref() {
                    match (&e.expr, index) {
                        (Some(expr), _) => self.expr(expr),
                        // The conflict target's columns are read (they
                        // need SELECT privilege).
                        (None, Some(i)) if !e.name.is_empty() => {
                            self.accesses[i].read = true;
                            self.accesses[i].columns_read.insert(e.name.clone());
                        }
                        _ => {}
                    }
                }
            }
            self.opt_expr(infer.where_clause.as_deref());
        }
        // `excluded` is the proposed row, not a read of any table.
        self.add_item(FromItem {
            name: "excluded".into(),
            schema: None,
            source: Source::Derived(index.and_then(|i| self.columns_of(i))),
        });
        self.written(index, &oc.target_list);
        self.opt_expr(oc.where_clause.as_deref());
    }

    pub(crate) fn update(&mut self, s: &UpdateStmt) {
        self.push_level();
        if let Some(with) = &s.with_clause {
            self.with_clause(with);
        }
        let index = s.relation.as_ref().and_then(|rv| self.target(rv));
        for item in &s.from_clause {
            self.source_item(item);
        }
        self.written(index, &s.target_list);
        self.opt_expr(s.where_clause.as_deref());
        self.returning(&s.returning_clause);
        self.pop_level();
    }

    pub(crate) fn delete(&mut self, s: &DeleteStmt) {
        self.push_level();
        if let Some(with) = &s.with_clause {
            self.with_clause(with);
        }
        s.relation.as_ref().and_then(|rv| self.target(rv));
        for item in &s.using_clause {
            self.source_item(item);
        }
        self.opt_expr(s.where_clause.as_deref());
        self.returning(&s.returning_clause);
        self.pop_level();
    }

    pub(crate) fn merge(&mut self, s: &MergeStmt) {
        self.push_level();
        if let Some(with) = &s.with_clause {
            self.with_clause(with);
        }
        // A MERGE writes only through its UPDATE, INSERT and DELETE
        // actions: one that can only DO NOTHING needs no write privilege.
        let writes = s.merge_when_clauses.iter().any(|c| {
            matches!(c.node.as_ref(), Some(NodeEnum::MergeWhenClause(w))
                if w.command_type() != CmdType::CmdNothing)
        });
        let index = s.relation.as_ref().and_then(|rv| self.target_as(rv, writes));
        if let Some(source) = &s.source_relation {
            self.source_item(source);
        }
        self.opt_expr(s.join_condition.as_deref());
        for clause in &s.merge_when_clauses {
            if let Some(NodeEnum::MergeWhenClause(w)) = clause.node.as_ref() {
                self.merge_when(w, index);
            }
        }
        self.returning(&s.returning_clause);
        self.pop_level();
    }

    fn merge_when(&mut self, w: &MergeWhenClause, index: Option<usize>) {
        self.opt_expr(w.condition.as_deref());
        // UPDATE SET and INSERT (cols) both list written columns as targets.
        self.written(index, &w.target_list);
        if w.target_list.is_empty() && !w.values.is_empty() {
            if let Some(i) = index {
                self.accesses[i].all_columns_written = true;
            }
        }
        self.exprs(&w.values);
    }
}
