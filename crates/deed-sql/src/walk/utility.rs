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
