//! SELECT: WITH, FROM items, and set operations.

use pg_query::NodeEnum;
use pg_query::protobuf::{Node, RangeSubselect, SelectStmt, SetOperation, WithClause};

use super::{Walker, strings};
use crate::scope::{Cte, FromItem, Source};

impl Walker<'_> {
    /// Walks a SELECT (or VALUES, or a set operation) as a new query level
    /// and returns its output column names when they can be known.
    /// `exists` marks an EXISTS subquery, whose target list is never
    /// fetched, so a `*` there reads nothing.
    pub(crate) fn select(&mut self, s: &SelectStmt, exists: bool) -> Option<Vec<String>> {
        self.push_level();
        if let Some(with) = &s.with_clause {
            self.with_clause(with);
        }
        let op = SetOperation::try_from(s.op).unwrap_or(SetOperation::SetopNone);
        let columns = if op != SetOperation::SetopNone && op != SetOperation::Undefined {
            // Each branch is its own query level; the first names the columns.
            let left = s.larg.as_ref().and_then(|l| self.select(l, exists));
            if let Some(r) = &s.rarg {
                self.select(r, exists);
            }
            self.exprs(&s.sort_clause);
            self.opt_expr(s.limit_count.as_deref());
            self.opt_expr(s.limit_offset.as_deref());
            left
        } else {
            self.simple_select(s, exists)
        };
        self.pop_level();
        columns
    }

    fn simple_select(&mut self, s: &SelectStmt, exists: bool) -> Option<Vec<String>> {
        for item in &s.from_clause {
            self.source_item(item);
        }
        self.row_locks(&s.locking_clause);
        for row in &s.values_lists {
            self.expr(row);
        }
        let mut outputs: Option<Vec<String>> = Some(Vec::new());
        for target in &s.target_list {
            let Some(NodeEnum::ResTarget(rt)) = target.node.as_ref() else { continue };
            let produced = match rt.val.as_deref() {
                Some(v) => self.target_value(v, exists),
                None => Some(Vec::new()),
            };
            let produced = if rt.name.is_empty() {
                produced
            } else {
                self.level().output_aliases.push(rt.name.clone());
                Some(vec![rt.name.clone()])
            };
            match (produced, outputs.as_mut()) {
                (Some(names), Some(list)) => list.extend(names),
                (None, _) => outputs = None,
                (Some(_), None) => {}
            }
        }
        if !s.values_lists.is_empty() {
            let width = s.values_lists.first().map_or(0, |row| match row.node.as_ref() {
                Some(NodeEnum::List(l)) => l.items.len(),
                _ => 0,
            });
            outputs = Some((1..=width).map(|i| format!("column{i}")).collect());
        }
        self.opt_expr(s.where_clause.as_deref());
        self.sort_or_group(&s.group_clause);
        self.opt_expr(s.having_clause.as_deref());
        for w in &s.window_clause {
            self.expr(w);
        }
        self.sort_or_group(&s.sort_clause);
        self.exprs(&s.distinct_clause);
        self.opt_expr(s.limit_count.as_deref());
        self.opt_expr(s.limit_offset.as_deref());
        if let Some(into) = &s.into_clause {
            if let Some(index) = into.rel.as_ref().and_then(|rv| self.relation(rv)) {
                let access = &mut self.accesses[index];
                access.write = true;
                access.all_columns_written = true;
            }
        }
        outputs
    }

    /// One target-list entry and the output columns it produces, or
    /// `None` when a `*` expands to columns nobody can know offline.
    fn target_value(&mut self, v: &Node, exists: bool) -> Option<Vec<String>> {
        if let Some(NodeEnum::ColumnRef(c)) = v.node.as_ref() {
            let is_star =
                matches!(c.fields.last().and_then(|f| f.node.as_ref()), Some(NodeEnum::AStar(_)));
            if is_star {
                // EXISTS never fetches its target list, so nothing is read.
                return if exists { Some(Vec::new()) } else { self.star(&c.fields) };
            }
            self.column_ref(&c.fields);
            return Some(c.fields.last().and_then(super::string).into_iter().collect());
        }
        self.expr(v);
        let name = match v.node.as_ref() {
            Some(NodeEnum::FuncCall(f)) => f.funcname.last().and_then(super::string),
            _ => None,
        };
        Some(vec![name.unwrap_or_else(|| "?column?".into())])
    }

    /// ORDER BY / GROUP BY entries may name an output alias instead of a
    /// column; those are not column reads.
    fn sort_or_group(&mut self, nodes: &[Node]) {
        for node in nodes {
            let inner = match node.node.as_ref() {
                Some(NodeEnum::SortBy(s)) => s.node.as_deref(),
                _ => Some(node),
            };
            if let Some(Some(NodeEnum::ColumnRef(c))) = inner.map(|n| n.node.as_ref()) {
                if let [only] = c.fields.as_slice() {
                    let name = super::string(only);
                    if name.is_some_and(|n| self.level().output_aliases.contains(&n)) {
                        continue;
                    }
                }
            }
            self.expr(node);
        }
    }

    /// `FOR UPDATE`/`FOR SHARE` (all tables of the level, or those named
    /// in `OF`): locking rows needs UPDATE privilege, so it is recorded.
    fn row_locks(&mut self, clauses: &[Node]) {
        for clause in clauses {
            let Some(NodeEnum::LockingClause(l)) = clause.node.as_ref() else { continue };
            let named: Vec<String> = l
                .locked_rels
                .iter()
                .filter_map(|n| match n.node.as_ref() {
                    Some(NodeEnum::RangeVar(rv)) => Some(rv.relname.clone()),
                    _ => None,
                })
                .collect();
            let items = self.level().items.clone();
            for item in items {
                if let Source::Relation(i) = item.source {
                    if named.is_empty() || named.contains(&item.name) {
                        self.accesses[i].lock = true;
                    }
                }
            }
        }
    }

    pub(crate) fn with_clause(&mut self, with: &WithClause) {
        if with.recursive {
            // Under RECURSIVE every CTE of the list is visible in every
            // other, whatever their order: make all names visible first.
            for cte in &with.ctes {
                let Some(NodeEnum::CommonTableExpr(c)) = cte.node.as_ref() else { continue };
                let columns = (!c.aliascolnames.is_empty()).then(|| strings(&c.aliascolnames));
                self.level().ctes.push(Cte { name: c.ctename.clone(), columns });
            }
        }
        for cte in &with.ctes {
            let Some(NodeEnum::CommonTableExpr(c)) = cte.node.as_ref() else { continue };
            let outputs = match c.ctequery.as_deref().and_then(|q| q.node.as_ref()) {
                Some(NodeEnum::SelectStmt(s)) => self.select(s, false),
                Some(other) => {
                    self.statement(other);
                    None
                }
                None => None,
            };
            let columns =
                if c.aliascolnames.is_empty() { outputs } else { Some(strings(&c.aliascolnames)) };
            let level = self.level();
            level.ctes.retain(|x| x.name != c.ctename);
            level.ctes.push(Cte { name: c.ctename.clone(), columns });
        }
    }

    /// Adds one FROM-list entry (and, for joins, both sides) to the level.
    pub(crate) fn source_item(&mut self, node: &Node) {
        let Some(n) = node.node.as_ref() else { return };
        match n {
            NodeEnum::RangeVar(rv) => self.source_range_var(rv),
            NodeEnum::RangeSubselect(sub) => self.subselect(sub),
            NodeEnum::JoinExpr(j) => {
                let before = self.level().items.len();
                if let Some(l) = &j.larg {
                    self.source_item(l);
                }
                let middle = self.level().items.len();
                if let Some(r) = &j.rarg {
                    self.source_item(r);
                }
                let after = self.level().items.len();
                for name in strings(&j.using_clause) {
                    self.using_column(&name, before..middle);
                    self.using_column(&name, middle..after);
                }
                self.opt_expr(j.quals.as_deref());
                if let Some(alias) = &j.alias {
                    self.add_item(FromItem {
                        name: alias.aliasname.clone(),
                        schema: None,
                        source: Source::Derived(None),
                    });
                }
            }
            NodeEnum::RangeFunction(f) => {
                for func in &f.functions {
                    // Each entry is a List of (call, column definitions).
                    self.expr(func);
                }
                let name = f
                    .alias
                    .as_ref()
                    .map(|a| a.aliasname.clone())
                    .or_else(|| f.functions.first().and_then(function_name));
                let columns = f
                    .alias
                    .as_ref()
                    .filter(|a| !a.colnames.is_empty())
                    .map(|a| strings(&a.colnames));
                self.add_item(FromItem {
                    name: name.unwrap_or_default(),
                    schema: None,
                    source: Source::Derived(columns),
                });
            }
            NodeEnum::RangeTableSample(t) => {
                if let Some(rel) = &t.relation {
                    self.source_item(rel);
                }
                self.exprs(&t.args);
                self.opt_expr(t.repeatable.as_deref());
            }
            NodeEnum::RangeTableFunc(t) => {
                self.opt_expr(t.docexpr.as_deref());
                self.opt_expr(t.rowexpr.as_deref());
                self.add_item(FromItem {
                    name: t.alias.as_ref().map(|a| a.aliasname.clone()).unwrap_or_default(),
                    schema: None,
                    source: Source::Derived(None),
                });
            }
            NodeEnum::JsonTable(t) => {
                // The document it reads (often a column of an earlier FROM
                // item, or a subquery) and the PASSING values.
                if let Some(v) = &t.context_item {
                    self.opt_expr(v.raw_expr.as_deref());
                    self.opt_expr(v.formatted_expr.as_deref());
                }
                self.exprs(&t.passing);
                self.add_item(FromItem {
                    name: t.alias.as_ref().map(|a| a.aliasname.clone()).unwrap_or_default(),
                    schema: None,
                    source: Source::Derived(None),
                });
            }
            other => self.expr_fallback(other),
        }
    }

    fn subselect(&mut self, sub: &RangeSubselect) {
        let hide = !sub.lateral;
        if hide {
            self.level().hidden = true;
        }
        let outputs = match sub.subquery.as_deref().and_then(|q| q.node.as_ref()) {
            Some(NodeEnum::SelectStmt(s)) => self.select(s, false),
            Some(other) => {
                self.statement(other);
                None
            }
            None => None,
        };
        if hide {
            self.level().hidden = false;
        }
        let alias = sub.alias.as_ref();
        let columns = match alias {
            Some(a) if !a.colnames.is_empty() => Some(strings(&a.colnames)),
            _ => outputs,
        };
        self.add_item(FromItem {
            name: alias.map(|a| a.aliasname.clone()).unwrap_or_default(),
            schema: None,
            source: Source::Derived(columns),
        });
    }

    /// `JOIN ... USING (c)`: `c` is read from the one relation on each side
    /// that has it.
    fn using_column(&mut self, name: &str, items: std::ops::Range<usize>) {
        let level = self.levels.last().expect("inside a query level");
        let candidates: Vec<usize> = level.items[items]
            .iter()
            .filter_map(|item| match item.source {
                Source::Relation(i) => Some(i),
                Source::Derived(_) => None,
            })
            .filter(|&i| self.columns_of(i).is_none_or(|cols| cols.iter().any(|c| c == name)))
            .collect();
        match candidates.as_slice() {
            [only] => {
                self.accesses[*only].columns_read.insert(name.to_string());
            }
            many => many.iter().for_each(|&i| self.accesses[i].columns_uncertain = true),
        }
    }
}

fn function_name(entry: &Node) -> Option<String> {
    let Some(NodeEnum::List(list)) = entry.node.as_ref() else { return None };
    match list.items.first()?.node.as_ref()? {
        NodeEnum::FuncCall(f) => f.funcname.last().and_then(super::string),
        _ => None,
    }
}
