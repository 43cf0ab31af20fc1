//! Expressions and the column references inside them.

use pg_query::NodeEnum;
use pg_query::protobuf::{Node, SubLinkType};

use super::{Walker, string};
use crate::scope::{FromItem, Source};

/// Whether a FROM item has a column of a given name.
#[derive(PartialEq)]
enum Has {
    Yes,
    No,
    Unknown,
}

impl Walker<'_> {
    pub(crate) fn exprs(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.expr(n);
        }
    }

    pub(crate) fn opt_expr(&mut self, node: Option<&Node>) {
        if let Some(n) = node {
            self.expr(n);
        }
    }

    fn boxed(&mut self, node: &Option<Box<Node>>) {
        self.opt_expr(node.as_deref());
    }

    pub(crate) fn expr(&mut self, node: &Node) {
        let Some(n) = node.node.as_ref() else { return };
        match n {
            NodeEnum::ColumnRef(c) => {
                let star = matches!(
                    c.fields.last().and_then(|f| f.node.as_ref()),
                    Some(NodeEnum::AStar(_))
                );
                if star {
                    self.star(&c.fields);
                } else {
                    self.column_ref(&c.fields);
                }
            }
            NodeEnum::SubLink(s) => {
                self.boxed(&s.testexpr);
                let exists = s.sub_link_type == SubLinkType::ExistsSublink as i32;
                match s.subselect.as_deref().and_then(|q| q.node.as_ref()) {
                    Some(NodeEnum::SelectStmt(sel)) => {
                        self.select(sel, exists);
                    }
                    Some(other) => self.statement(other),
                    None => {}
                }
            }
            NodeEnum::SelectStmt(sel) => {
                self.select(sel, false);
            }
            NodeEnum::AExpr(e) => {
                self.boxed(&e.lexpr);
                self.boxed(&e.rexpr);
            }
            NodeEnum::BoolExpr(e) => self.exprs(&e.args),
            NodeEnum::FuncCall(f) => {
                self.set_config(f);
                self.exprs(&f.args);
                self.exprs(&f.agg_order);
                self.boxed(&f.agg_filter);
                if let Some(w) = &f.over {
                    self.exprs(&w.partition_clause);
                    self.exprs(&w.order_clause);
                    self.boxed(&w.start_offset);
                    self.boxed(&w.end_offset);
                }
            }
            NodeEnum::WindowDef(w) => {
                self.exprs(&w.partition_clause);
                self.exprs(&w.order_clause);
                self.boxed(&w.start_offset);
                self.boxed(&w.end_offset);
            }
            NodeEnum::TypeCast(t) => self.boxed(&t.arg),
            NodeEnum::NullTest(t) => self.boxed(&t.arg),
            NodeEnum::BooleanTest(t) => self.boxed(&t.arg),
            NodeEnum::CaseExpr(c) => {
                self.boxed(&c.arg);
                self.exprs(&c.args);
                self.boxed(&c.defresult);
            }
            NodeEnum::CaseWhen(w) => {
                self.boxed(&w.expr);
                self.boxed(&w.result);
            }
            NodeEnum::CoalesceExpr(c) => self.exprs(&c.args),
            NodeEnum::MinMaxExpr(m) => self.exprs(&m.args),
            NodeEnum::AArrayExpr(a) => self.exprs(&a.elements),
            NodeEnum::RowExpr(r) => self.exprs(&r.args),
            NodeEnum::ResTarget(r) => {
                self.boxed(&r.val);
                self.exprs(&r.indirection);
            }
            NodeEnum::MultiAssignRef(m) => self.boxed(&m.source),
            NodeEnum::SortBy(s) => self.boxed(&s.node),
            NodeEnum::AIndirection(a) => self.indirection(a),
            NodeEnum::AIndices(a) => {
                self.boxed(&a.lidx);
                self.boxed(&a.uidx);
            }
            NodeEnum::CollateClause(c) => self.boxed(&c.arg),
            NodeEnum::NamedArgExpr(a) => self.boxed(&a.arg),
            NodeEnum::GroupingSet(g) => self.exprs(&g.content),
            NodeEnum::GroupingFunc(g) => self.exprs(&g.args),
            NodeEnum::XmlExpr(x) => {
                self.exprs(&x.named_args);
                self.exprs(&x.args);
            }
            NodeEnum::XmlSerialize(x) => self.boxed(&x.expr),
            // SQL/JSON: each wraps expressions, and some a whole query.
            NodeEnum::JsonArrayQueryConstructor(j) => self.boxed(&j.query),
            NodeEnum::JsonArrayConstructor(j) => self.exprs(&j.exprs),
            NodeEnum::JsonObjectConstructor(j) => self.exprs(&j.exprs),
            NodeEnum::JsonKeyValue(kv) => {
                self.boxed(&kv.key);
                if let Some(v) = &kv.value {
                    self.json_value(v);
                }
            }
            NodeEnum::JsonValueExpr(v) => self.json_value(v),
            NodeEnum::JsonFuncExpr(f) => {
                if let Some(v) = &f.context_item {
                    self.json_value(v);
                }
                self.boxed(&f.pathspec);
                self.exprs(&f.passing);
            }
            NodeEnum::JsonArgument(a) => {
                if let Some(v) = &a.val {
                    self.json_value(v);
                }
            }
            NodeEnum::JsonIsPredicate(p) => self.boxed(&p.expr),
            NodeEnum::JsonParseExpr(p) => {
                if let Some(v) = &p.expr {
                    self.json_value(v);
                }
            }
            NodeEnum::JsonSerializeExpr(p) => {
                if let Some(v) = &p.expr {
                    self.json_value(v);
                }
            }
            NodeEnum::JsonScalarExpr(p) => self.boxed(&p.expr),
            NodeEnum::JsonObjectAgg(a) => {
                if let Some(kv) = &a.arg {
                    self.boxed(&kv.key);
                    if let Some(v) = &kv.value {
                        self.json_value(v);
                    }
                }
                if let Some(c) = &a.constructor {
                    self.boxed(&c.agg_filter);
                    self.exprs(&c.agg_order);
                }
            }
            NodeEnum::JsonArrayAgg(a) => {
                if let Some(v) = &a.arg {
                    self.json_value(v);
                }
                if let Some(c) = &a.constructor {
                    self.boxed(&c.agg_filter);
                    self.exprs(&c.agg_order);
                }
            }
            NodeEnum::List(l) => self.exprs(&l.items),
            NodeEnum::RangeSubselect(_) | NodeEnum::RangeFunction(_) | NodeEnum::JoinExpr(_) => {
                self.source_item(node)
            }
            // Leaves: constants, parameters, keywords-as-functions.
            NodeEnum::AConst(_)
            | NodeEnum::ParamRef(_)
            | NodeEnum::SqlvalueFunction(_)
            | NodeEnum::String(_)
            | NodeEnum::Integer(_)
            | NodeEnum::Float(_)
            | NodeEnum::Boolean(_)
            | NodeEnum::BitString(_)
            | NodeEnum::AStar(_)
            | NodeEnum::TypeName(_)
            | NodeEnum::SetToDefault(_)
            | NodeEnum::CurrentOfExpr(_) => {}
            other => self.expr_fallback(other),
        }
    }

    /// A node kind this walker has no explicit rule for. If it could hide a
    /// column reference or a subquery, the statement is marked as not fully
    /// analysed rather than silently under-reported.
    pub(crate) fn expr_fallback(&mut self, node: &NodeEnum) {
        let json = serde_json::to_string(node).unwrap_or_default();
        if ["ColumnRef", "SelectStmt", "RangeVar"].iter().any(|k| json.contains(k)) {
            let debug = format!("{node:?}");
            let kind = debug.split('(').next().unwrap_or("expression").to_string();
            self.mark_opaque(format!("deed does not analyse {kind} expressions yet"));
        }
    }

    /// `(x).*`, `(x).field`, `(x)[1]`: when `x` is a bare name, the field
    /// selection is the same reference as `x.*` or `x.field`, so a
    /// whole-row `(p).*` counts as `*`.
    fn indirection(&mut self, a: &pg_query::protobuf::AIndirection) {
        let base = match a.arg.as_deref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::ColumnRef(c)) if c.fields.len() == 1 => c.fields.first().cloned(),
            _ => None,
        };
        let first = a.indirection.first().and_then(|n| n.node.as_ref());
        match (base, first) {
            (Some(b), Some(NodeEnum::AStar(_))) => {
                self.star(&[b, a.indirection[0].clone()]);
            }
            (Some(b), Some(NodeEnum::String(_))) => {
                self.column_ref(&[b, a.indirection[0].clone()]);
                self.exprs(&a.indirection[1..]);
            }
            _ => {
                self.boxed(&a.arg);
                self.exprs(&a.indirection);
            }
        }
    }

    fn json_value(&mut self, v: &pg_query::protobuf::JsonValueExpr) {
        self.boxed(&v.raw_expr);
        self.boxed(&v.formatted_expr);
    }

    /// `set_config('search_path', 'a, b', …)` sets the path like `SET`.
    fn set_config(&mut self, f: &pg_query::protobuf::FuncCall) {
        let name = f.funcname.last().and_then(string);
        if name.as_deref() != Some("set_config") || f.args.len() < 2 {
            return;
        }
        let key = super::utility::const_string(&f.args[0]);
        if key.is_some_and(|k| k.eq_ignore_ascii_case("search_path")) {
            if let Some(path) = super::utility::const_string(&f.args[1]) {
                self.effects.search_path = Some(Some(super::utility::split_path(&path)));
            }
        }
    }

    /// A `*` or `t.*`: every column of the item(s) is read. Returns the
    /// expanded column names when they are known.
    pub(crate) fn star(&mut self, fields: &[Node]) -> Option<Vec<String>> {
        let qualifier: Vec<String> = fields[..fields.len() - 1].iter().filter_map(string).collect();
        let items: Vec<FromItem> = match qualifier.as_slice() {
            [] => self.visible_level_items().unwrap_or_default(),
            path => self.find_item(path).into_iter().collect(),
        };
        let mut expanded = Some(Vec::new());
        for item in items {
            let cols = match item.source {
                Source::Relation(i) => {
                    let access = &mut self.accesses[i];
                    access.read = true;
                    access.star = true;
                    self.columns_of(i)
                }
                Source::Derived(cols) => cols,
            };
            match (cols, expanded.as_mut()) {
                (Some(c), Some(list)) => list.extend(c),
                (None, _) => expanded = None,
                _ => {}
            }
        }
        expanded
    }

    /// A column reference (not a star) read by the statement.
    pub(crate) fn column_ref(&mut self, fields: &[Node]) {
        let names: Vec<String> = fields.iter().filter_map(string).collect();
        match names.as_slice() {
            [column] => self.unqualified_column(column),
            [qualifier @ .., column] => match self.find_item(qualifier) {
                Some(item) => {
                    if let Source::Relation(i) = item.source {
                        self.read_column(i, column);
                    }
                }
                // `a.b` where `a` names no FROM item: a composite column
                // `a` with field `b`.
                None => self.unqualified_column(&qualifier[0]),
            },
            [] => {}
        }
    }

    fn read_column(&mut self, index: usize, column: &str) {
        let access = &mut self.accesses[index];
        access.read = true;
        access.columns_read.insert(column.to_string());
    }

    /// The items of the innermost level a reference can see.
    fn visible_level_items(&self) -> Option<Vec<FromItem>> {
        self.levels.iter().rev().find(|l| !l.hidden).map(|l| l.items.clone())
    }

    /// The nearest FROM item called `t` (or `s.t` for an unaliased relation).
    fn find_item(&self, qualifier: &[String]) -> Option<FromItem> {
        let (schema, name) = match qualifier {
            [name] => (None, name),
            [schema, name] => (Some(schema), name),
            // `db.schema.table.column`: the database part is always this one.
            [_, schema, name] => (Some(schema), name),
            _ => return None,
        };
        self.levels.iter().rev().filter(|l| !l.hidden).find_map(|level| {
            level
                .items
                .iter()
                .rev()
                .find(|item| {
                    item.name == *name && schema.is_none_or(|s| item.schema.as_ref() == Some(s))
                })
                .cloned()
        })
    }

    /// An unqualified column: the innermost level with exactly one item that
    /// has (or may have) it wins; ambiguity marks candidates uncertain.
    fn unqualified_column(&mut self, column: &str) {
        let levels: Vec<Vec<FromItem>> =
            self.levels.iter().rev().filter(|l| !l.hidden).map(|l| l.items.clone()).collect();
        for items in levels {
            let verdicts: Vec<(Has, &FromItem)> =
                items.iter().map(|item| (self.has_column(item, column), item)).collect();
            let yes: Vec<&FromItem> =
                verdicts.iter().filter(|(h, _)| *h == Has::Yes).map(|(_, i)| *i).collect();
            let unknown: Vec<&FromItem> =
                verdicts.iter().filter(|(h, _)| *h == Has::Unknown).map(|(_, i)| *i).collect();
            match (yes.as_slice(), unknown.as_slice()) {
                ([item], _) | ([], [item]) => {
                    if let Source::Relation(i) = item.source {
                        self.read_column(i, column);
                    }
                    return;
                }
                ([], []) => continue,
                _ => {
                    for item in yes.iter().chain(&unknown) {
                        if let Source::Relation(i) = item.source {
                            self.accesses[i].columns_uncertain = true;
                        }
                    }
                    return;
                }
            }
        }
        // No relation in scope has such a column: as PostgreSQL does, read
        // the name as a whole-row reference to a FROM item (`SELECT p FROM
        // products p`, `row_to_json(p)`), which reads every column.
        if self.find_item(&[column.to_string()]).is_some() {
            let star = pg_query::protobuf::Node {
                node: Some(NodeEnum::AStar(pg_query::protobuf::AStar {})),
            };
            let name = pg_query::protobuf::Node {
                node: Some(NodeEnum::String(pg_query::protobuf::String {
                    sval: column.to_string(),
                })),
            };
            self.star(&[name, star]);
            return;
        }
        // No relation in scope has it, as far as the catalog knows.
        self.unresolved.insert(column.to_string());
    }

    fn has_column(&self, item: &FromItem, column: &str) -> Has {
        let cols = match &item.source {
            Source::Relation(i) => self.columns_of(*i),
            Source::Derived(cols) => cols.clone(),
        };
        match cols {
            None => Has::Unknown,
            Some(c) if c.iter().any(|x| x == column) => Has::Yes,
            Some(_) => Has::No,
        }
    }
}
