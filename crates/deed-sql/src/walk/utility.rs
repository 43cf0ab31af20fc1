//! COPY, TRUNCATE, DDL and the other non-query statements.

use pg_query::NodeEnum;
use pg_query::protobuf::{Node, ObjectType, RangeVar};

use super::{Walker, strings};

impl Walker<'_> {
    pub(crate) fn utility(&mut self, node: &NodeEnum) {
        match node {
            NodeEnum::CopyStmt(c) => {
                if let Some(rv) = &c.relation {
                    let Some(i) = self.relation(rv) else { return };
                    let columns = strings(&c.attlist);
                    let access = &mut self.accesses[i];
                    if c.is_from {
                        access.write = true;
                        if columns.is_empty() {
                            access.all_columns_written = true;
                        }
                        access.columns_written.extend(columns);
                    } else {
                        access.read = true;
                        // COPY without a column list hands over every column.
                        access.star |= columns.is_empty();
                        access.columns_read.extend(columns);
                    }
                } else if let Some(q) = c.query.as_deref().and_then(|n| n.node.as_ref()) {
                    self.statement(q);
                }
            }
            NodeEnum::TruncateStmt(t) => self.write_all(&t.relations),
            NodeEnum::CreateStmt(c) => {
                if let Some(rv) = &c.relation {
                    self.write_relation(rv);
                }
                for parent in &c.inh_relations {
                    if let Some(NodeEnum::RangeVar(rv)) = parent.node.as_ref() {
                        // PARTITION OF changes its parent; INHERITS reads it.
                        if c.partbound.is_some() {
                            self.write_relation(rv);
                        } else {
                            self.read_relation(rv);
                        }
                    }
                }
                self.referenced_tables(&c.table_elts);
                self.referenced_tables(&c.constraints);
            }
            NodeEnum::CreateTableAsStmt(c) => {
                self.query(c.query.as_deref());
                if let Some(rv) = c.into.as_ref().and_then(|i| i.rel.as_ref()) {
                    self.write_relation(rv);
                }
            }
            NodeEnum::ViewStmt(v) => {
                self.query(v.query.as_deref());
                if let Some(rv) = &v.view {
                    self.write_relation(rv);
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                if let Some(rv) = &a.relation {
                    self.write_relation(rv);
                }
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(c)) = cmd.node.as_ref() {
                        if let Some(def) = &c.def {
                            self.referenced_tables(std::slice::from_ref(def));
                        }
                    }
                }
            }
            NodeEnum::RenameStmt(r) => {
                if let Some(rv) = &r.relation {
                    self.write_relation(rv);
                }
            }
            NodeEnum::IndexStmt(i) => {
                if let Some(rv) = &i.relation {
                    self.write_relation(rv);
                }
            }
            NodeEnum::CreateFunctionStmt(f) => self.function(f),
            NodeEnum::RuleStmt(r) => {
                // The rule's actions run whenever its event does.
                for action in &r.actions {
                    if let Some(a) = action.node.as_ref() {
                        self.statement(a);
                    }
                }
                self.opt_expr(r.where_clause.as_deref());
                if let Some(rv) = &r.relation {
                    self.write_relation(rv);
                }
            }
            NodeEnum::CreateTrigStmt(t) => {
                if let Some(rv) = &t.relation {
                    self.write_relation(rv);
                }
            }
            NodeEnum::RefreshMatViewStmt(r) => {
                if let Some(rv) = &r.relation {
                    self.write_relation(rv);
                }
            }
            NodeEnum::DropStmt(d) => self.drop(d.remove_type, &d.objects),
            NodeEnum::LockStmt(l) => {
                for rel in &l.relations {
                    if let Some(NodeEnum::RangeVar(rv)) = rel.node.as_ref() {
                        self.read_relation(rv);
                    }
                }
            }
            NodeEnum::ExplainStmt(e) => self.query(e.query.as_deref()),
            NodeEnum::PrepareStmt(p) => self.query(p.query.as_deref()),
            NodeEnum::DeclareCursorStmt(d) => self.query(d.query.as_deref()),
            NodeEnum::ExecuteStmt(e) => {
                self.mark_opaque(format!("EXECUTE {} runs a statement prepared earlier", e.name))
            }
            NodeEnum::DoStmt(_) => self.mark_opaque("a DO block runs procedural code"),
            NodeEnum::VariableSetStmt(v) if v.name.eq_ignore_ascii_case("search_path") => {
                use pg_query::protobuf::VariableSetKind;
                let kind = VariableSetKind::try_from(v.kind).unwrap_or(VariableSetKind::Undefined);
                self.effects.search_path = match kind {
                    VariableSetKind::VarSetValue => {
                        Some(Some(v.args.iter().filter_map(const_string).collect()))
                    }
                    VariableSetKind::VarSetDefault | VariableSetKind::VarReset => Some(None),
                    _ => None,
                };
            }
            NodeEnum::CallStmt(_) => self.mark_opaque("CALL runs a procedure's body"),
            // Session, transaction, privilege and other statements that
            // read or write no relation's rows.
            _ => {}
        }
    }

    fn query(&mut self, node: Option<&Node>) {
        if let Some(n) = node.and_then(|n| n.node.as_ref()) {
            self.statement(n);
        }
    }

    fn write_relation(&mut self, rv: &RangeVar) {
        if let Some(i) = self.relation(rv) {
            self.accesses[i].write = true;
        }
    }

    fn read_relation(&mut self, rv: &RangeVar) {
        if let Some(i) = self.relation(rv) {
            self.accesses[i].read = true;
        }
    }

    fn write_all(&mut self, relations: &[Node]) {
        for rel in relations {
            if let Some(NodeEnum::RangeVar(rv)) = rel.node.as_ref() {
                self.write_relation(rv);
            }
        }
    }

    /// Foreign keys and LIKE clauses read the tables they name.
    fn referenced_tables(&mut self, elements: &[Node]) {
        for el in elements {
            match el.node.as_ref() {
                Some(NodeEnum::Constraint(c)) => {
                    if let Some(pk) = &c.pktable {
                        if let Some(i) = self.relation(pk) {
                            self.accesses[i].read = true;
                            self.accesses[i].columns_read.extend(strings(&c.pk_attrs));
                        }
                    }
                }
                Some(NodeEnum::ColumnDef(d)) => self.referenced_tables(&d.constraints),
                Some(NodeEnum::TableLikeClause(l)) => {
                    if let Some(rv) = &l.relation {
                        self.read_relation(rv);
                    }
                }
                _ => {}
            }
        }
    }

    fn drop(&mut self, kind: i32, objects: &[Node]) {
        let relation_kinds = [
            ObjectType::ObjectTable,
            ObjectType::ObjectView,
            ObjectType::ObjectMatview,
            ObjectType::ObjectForeignTable,
        ];
        if !relation_kinds.iter().any(|k| *k as i32 == kind) {
            return;
        }
        for obj in objects {
            let Some(NodeEnum::List(list)) = obj.node.as_ref() else { continue };
            let parts = strings(&list.items);
            let (schema, name) = match parts.as_slice() {
                [name] => (None, name),
                [schema, name] | [_, schema, name] => (Some(schema.as_str()), name),
                _ => continue,
            };
            if let Some(q) = self.lookup.resolve(schema, name) {
                let i = self.access_index(q);
                self.accesses[i].write = true;
            }
        }
    }
}

impl Walker<'_> {
    /// A function's or procedure's body: what it reads and writes when it
    /// runs is what the SQL that creates it ships.
    fn function(&mut self, f: &pg_query::protobuf::CreateFunctionStmt) {
        if let Some(body) = f.sql_body.as_deref() {
            // BEGIN ATOMIC: already parsed, a list of statements.
            self.function_statements(body);
            return;
        }
        let mut language = "sql".to_string();
        let mut source = None;
        for opt in &f.options {
            let Some(NodeEnum::DefElem(d)) = opt.node.as_ref() else { continue };
            match (d.defname.as_str(), d.arg.as_deref().and_then(|a| a.node.as_ref())) {
                ("language", Some(NodeEnum::String(s))) => language = s.sval.clone(),
                ("as", Some(NodeEnum::List(l))) => source = l.items.first().and_then(super::string),
                _ => {}
            }
        }
        let Some(source) = source else { return };
        let body = crate::function::analyze_body(&language, &source, self.text, self.lookup);
        for a in body.accesses {
            let i = self.access_index(a.relation.clone());
            self.accesses[i].merge(&a);
        }
        if let Some(why) = body.opaque {
            self.mark_opaque(format!("the function body: {why}"));
        }
    }

    fn function_statements(&mut self, node: &Node) {
        match node.node.as_ref() {
            Some(NodeEnum::List(l)) => {
                for item in &l.items {
                    self.function_statements(item);
                }
            }
            Some(NodeEnum::ReturnStmt(r)) => self.opt_expr(r.returnval.as_deref()),
            Some(other) => self.statement(other),
            None => {}
        }
    }
}

/// The text of a string constant (`'public'`) or bare word (`public`).
pub(crate) fn const_string(node: &pg_query::protobuf::Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        NodeEnum::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

/// `a, "B", c` as `set_config` takes a search path: names, quotes kept
/// meaningful.
pub(crate) fn split_path(text: &str) -> Vec<String> {
    text.split(',')
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => p.to_lowercase(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}
