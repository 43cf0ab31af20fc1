//! Which output columns of a query can be NULL, derived from the NOT NULL
//! constraints of the tables it reads.
//!
//! PostgreSQL reports every view column as nullable, so a type generated
//! from a view is wrong for a column that can never be NULL. This module
//! proves NOT NULL where the query keeps it, and says why a column stays
//! nullable otherwise:
//!
//! - a plain column of a table is NOT NULL when the table's column is,
//!   unless the table sits on the nullable side of an outer join (the
//!   right of a LEFT JOIN, the left of a RIGHT JOIN, both sides of a FULL
//!   JOIN, and everything inside such a side);
//! - a `WHERE col IS NOT NULL` at the top of the WHERE clause (alone or
//!   AND-ed) makes that column NOT NULL;
//! - a non-NULL constant, `count(…)`, and `COALESCE` with a NOT NULL
//!   argument are NOT NULL; a cast keeps its argument's answer;
//! - a subquery in FROM is analysed the same way, and a set operation
//!   (UNION …) is NOT NULL only where every branch is;
//! - anything else (functions, operators, CASE, `*`) is nullable: an owner
//!   who knows better says so in the manifest (`not_null = ["col"]`).

use pg_query::NodeEnum;
use pg_query::protobuf::{JoinType, Node, NullTestType, SelectStmt, SetOperation};

use crate::error::SqlError;

/// A table's columns and whether each is NOT NULL, as the caller read
/// them from the catalog: `(schema, table)` (schema `None` when the query
/// leaves it to the search path) to `None` when there is no such table.
pub type NotNullLookup<'a> = dyn Fn(Option<&str>, &str) -> Option<Vec<(String, bool)>> + 'a;

/// One output column: NOT NULL or not, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub not_null: bool,
    pub why: String,
}

impl Derived {
    fn nullable(why: impl Into<String>) -> Derived {
        Derived { not_null: false, why: why.into() }
    }
    fn not_null(why: impl Into<String>) -> Derived {
        Derived { not_null: true, why: why.into() }
    }
}

/// The tables `sql` (one SELECT) reads, as written: what the caller
/// looks up before [`derive`].
pub fn tables(sql: &str) -> Result<Vec<(Option<String>, String)>, SqlError> {
    let parsed = parse(sql)?;
    // The tree's own walk reaches every node, CTEs and subqueries too.
    let mut out: Vec<(Option<String>, String)> = parsed
        .protobuf
        .nodes()
        .into_iter()
        .filter_map(|(n, _, _, _)| match n {
            pg_query::NodeRef::RangeVar(rv) => Some((
                (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
                rv.relname.clone(),
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Every output column of `sql`, in order; `None` when the outputs cannot
/// be told apart (a `*`, or not a single SELECT).
pub fn derive(sql: &str, lookup: &NotNullLookup<'_>) -> Result<Option<Vec<Derived>>, SqlError> {
    let parsed = parse(sql)?;
    let [raw] = parsed.protobuf.stmts.as_slice() else { return Ok(None) };
    let Some(NodeEnum::SelectStmt(s)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return Ok(None);
    };
    Ok(select(s, lookup))
}

fn parse(sql: &str) -> Result<pg_query::ParseResult, SqlError> {
    pg_query::parse(sql, 0).map_err(|e| SqlError {
        message: crate::fingerprint::message(e),
        offset: crate::ffi::error_offset(sql),
    })
}

/// A FROM item's columns as the query sees them.
struct Range {
    /// What the query calls it (its alias, or the table's name).
    name: String,
    /// How to name it in a reason: the table (and its alias).
    shown: String,
    /// Its columns, NOT NULL or not; `None`: unknown.
    columns: Option<Vec<(String, Derived)>>,
    /// On the nullable side of an outer join.
    outer: bool,
}

fn select(s: &SelectStmt, lookup: &NotNullLookup<'_>) -> Option<Vec<Derived>> {
    let op = SetOperation::try_from(s.op).unwrap_or(SetOperation::Undefined);
    if op != SetOperation::SetopNone && op != SetOperation::Undefined {
        let left = select(s.larg.as_ref()?, lookup)?;
        let right = select(s.rarg.as_ref()?, lookup)?;
        return Some(
            left.into_iter()
                .zip(right)
                .map(|(l, r)| match (l.not_null, r.not_null) {
                    (true, true) => l,
                    (false, _) => l,
                    (true, false) => r,
                })
                .collect(),
        );
    }
    if !s.values_lists.is_empty() || s.with_clause.is_some() {
        return None;
    }
    let mut ranges = Vec::new();
    for item in &s.from_clause {
        from_item(item, false, lookup, &mut ranges);
    }
    let mut proven = Vec::new();
    if let Some(w) = s.where_clause.as_deref() {
        not_null_tests(w, &mut proven);
    }
    let mut out = Vec::new();
    for target in &s.target_list {
        let Some(NodeEnum::ResTarget(rt)) = target.node.as_ref() else { return None };
        let value = rt.val.as_deref()?;
        if is_star(value) {
            return None;
        }
        out.push(expr(value, &ranges, &proven));
    }
    Some(out)
}

fn from_item(node: &Node, outer: bool, lookup: &NotNullLookup<'_>, out: &mut Vec<Range>) {
    match node.node.as_ref() {
        Some(NodeEnum::RangeVar(rv)) => {
            let schema = (!rv.schemaname.is_empty()).then_some(rv.schemaname.as_str());
            let columns = lookup(schema, &rv.relname).map(|cols| {
                cols.into_iter()
                    .map(|(c, nn)| {
                        let why = if nn {
                            format!("{}.{c} is NOT NULL", rv.relname)
                        } else {
                            format!("{}.{c} may be NULL", rv.relname)
                        };
                        (c, Derived { not_null: nn, why })
                    })
                    .collect()
            });
            let name = rv.alias.as_ref().map_or(rv.relname.clone(), |a| a.aliasname.clone());
            let shown =
                if name == rv.relname { name.clone() } else { format!("{} ({name})", rv.relname) };
            out.push(Range { name, shown, columns, outer });
        }
        Some(NodeEnum::JoinExpr(j)) => {
            let t = JoinType::try_from(j.jointype).unwrap_or(JoinType::Undefined);
            let (l, r) = match t {
                JoinType::JoinInner => (outer, outer),
                JoinType::JoinLeft => (outer, true),
                JoinType::JoinRight => (true, outer),
                _ => (true, true),
            };
            let before = out.len();
            if let Some(n) = j.larg.as_deref() {
                from_item(n, l, lookup, out);
            }
            if let Some(n) = j.rarg.as_deref() {
                from_item(n, r, lookup, out);
            }
            // A join with an alias hides its members' names.
            if let Some(a) = &j.alias {
                out.truncate(before);
                out.push(Range {
                    name: a.aliasname.clone(),
                    shown: a.aliasname.clone(),
                    columns: None,
                    outer,
                });
            }
        }
        Some(NodeEnum::RangeSubselect(sub)) => {
            let name = sub.alias.as_ref().map_or(String::new(), |a| a.aliasname.clone());
            let columns = match sub.subquery.as_deref().and_then(|n| n.node.as_ref()) {
                Some(NodeEnum::SelectStmt(s)) => subquery_columns(s, lookup),
                _ => None,
            };
            let shown = format!("subquery {name}");
            out.push(Range { name, shown, columns, outer });
        }
        _ => out.push(Range { name: String::new(), shown: String::new(), columns: None, outer }),
    }
}

/// A subquery's output names and answers.
fn subquery_columns(s: &SelectStmt, lookup: &NotNullLookup<'_>) -> Option<Vec<(String, Derived)>> {
    let derived = select(s, lookup)?;
    let mut names = Vec::new();
    for target in &s.target_list {
        let Some(NodeEnum::ResTarget(rt)) = target.node.as_ref() else { return None };
        let name = if rt.name.is_empty() {
            match rt.val.as_deref().and_then(|v| v.node.as_ref()) {
                Some(NodeEnum::ColumnRef(c)) => strings(&c.fields).last()?.clone(),
                _ => return None,
            }
        } else {
            rt.name.clone()
        };
        names.push(name);
    }
    Some(names.into_iter().zip(derived).collect())
}

fn strings(fields: &[Node]) -> Vec<String> {
    fields
        .iter()
        .filter_map(|f| match f.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn is_star(node: &Node) -> bool {
    matches!(node.node.as_ref(), Some(NodeEnum::ColumnRef(c))
        if c.fields.iter().any(|f| matches!(f.node, Some(NodeEnum::AStar(_)))))
}

/// The columns a WHERE clause proves NOT NULL: `x IS NOT NULL` at its top,
/// alone or AND-ed, as `[relation.]column`.
fn not_null_tests(node: &Node, out: &mut Vec<Vec<String>>) {
    match node.node.as_ref() {
        Some(NodeEnum::NullTest(t))
            if NullTestType::try_from(t.nulltesttype) == Ok(NullTestType::IsNotNull) =>
        {
            if let Some(NodeEnum::ColumnRef(c)) = t.arg.as_deref().and_then(|a| a.node.as_ref()) {
                out.push(strings(&c.fields));
            }
        }
        Some(NodeEnum::BoolExpr(b))
            if b.boolop == pg_query::protobuf::BoolExprType::AndExpr as i32 =>
        {
            for a in &b.args {
                not_null_tests(a, out);
            }
        }
        _ => {}
    }
}

fn expr(node: &Node, ranges: &[Range], proven: &[Vec<String>]) -> Derived {
    match node.node.as_ref() {
        Some(NodeEnum::ColumnRef(c)) => column(&strings(&c.fields), ranges, proven),
        Some(NodeEnum::AConst(k)) if k.isnull => Derived::nullable("NULL"),
        Some(NodeEnum::AConst(_)) => Derived::not_null("a constant"),
        Some(NodeEnum::TypeCast(t)) => match t.arg.as_deref() {
            Some(a) => expr(a, ranges, proven),
            None => Derived::nullable("a cast"),
        },
        Some(NodeEnum::CoalesceExpr(c)) => {
            match c.args.iter().map(|a| expr(a, ranges, proven)).find(|d| d.not_null) {
                Some(d) => {
                    Derived::not_null(format!("COALESCE with an argument that is: {}", d.why))
                }
                None => Derived::nullable("COALESCE of arguments that may all be NULL"),
            }
        }
        Some(NodeEnum::FuncCall(f))
            if strings(&f.funcname).last().is_some_and(|n| n == "count") && f.over.is_none() =>
        {
            Derived::not_null("count(…)")
        }
        _ => Derived::nullable("an expression deed does not prove NOT NULL"),
    }
}

fn column(fields: &[String], ranges: &[Range], proven: &[Vec<String>]) -> Derived {
    let Some((col, qualifier)) = fields.split_last() else {
        return Derived::nullable("an unknown column");
    };
    let qualifier = qualifier.last();
    if proven
        .iter()
        .any(|p| p.last() == Some(col) && (p.len() == 1 || p.iter().rev().nth(1) == qualifier))
    {
        return Derived::not_null(format!("WHERE {col} IS NOT NULL"));
    }
    let mut found = ranges.iter().filter(|r| match qualifier {
        Some(q) => &r.name == q,
        None => r.columns.as_ref().is_some_and(|cs| cs.iter().any(|(c, _)| c == col)),
    });
    let (Some(range), None) = (found.next(), found.next()) else {
        return Derived::nullable(format!("{} is not a column deed can trace", fields.join(".")));
    };
    let Some(d) = range.columns.as_ref().and_then(|cs| cs.iter().find(|(c, _)| c == col)) else {
        return Derived::nullable(format!("{} is not a column deed can trace", fields.join(".")));
    };
    if range.outer && d.1.not_null {
        return Derived::nullable(format!(
            "{} may be missing: it is on the nullable side of an outer join",
            range.shown
        ));
    }
    d.1.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop(schema: Option<&str>, table: &str) -> Option<Vec<(String, bool)>> {
        let cols: &[(&str, bool)] = match (schema.unwrap_or("public"), table) {
            ("public", "products") => &[("id", true), ("name", true), ("note", false)],
            ("public", "vendors") => &[("id", true), ("vendor_name", true)],
            _ => return None,
        };
        Some(cols.iter().map(|(c, n)| (c.to_string(), *n)).collect())
    }

    fn answers(sql: &str) -> Vec<bool> {
        derive(sql, &shop).unwrap().expect("outputs").iter().map(|d| d.not_null).collect()
    }

    #[test]
    fn plain_columns_follow_their_tables() {
        assert_eq!(answers("SELECT id, name, note FROM public.products"), [true, true, false]);
        assert_eq!(answers("SELECT p.id AS pid, p.note FROM products p"), [true, false]);
    }

    #[test]
    fn the_outer_side_of_a_join_is_nullable() {
        let sql = "SELECT p.id, v.vendor_name FROM products p LEFT JOIN vendors v ON v.id = p.id";
        assert_eq!(answers(sql), [true, false]);
        let sql = "SELECT p.id, v.vendor_name FROM products p RIGHT JOIN vendors v ON v.id = p.id";
        assert_eq!(answers(sql), [false, true]);
        let sql = "SELECT p.id, v.vendor_name FROM products p JOIN vendors v ON v.id = p.id";
        assert_eq!(answers(sql), [true, true]);
        let sql = "SELECT p.id, v.vendor_name FROM products p FULL JOIN vendors v USING (id)";
        assert_eq!(answers(sql), [false, false]);
        let why = derive("SELECT v.id FROM products p LEFT JOIN vendors v ON true", &shop)
            .unwrap()
            .unwrap();
        assert!(why[0].why.contains("vendors (v) may be missing"), "{:?}", why[0]);
    }

    #[test]
    fn expressions_constants_coalesce_where_and_subqueries() {
        assert_eq!(
            answers("SELECT coalesce(note, ''), note || 'x', 1, NULL, id::text FROM products"),
            [true, false, true, false, true]
        );
        assert_eq!(answers("SELECT note FROM products WHERE note IS NOT NULL AND id > 1"), [true]);
        assert_eq!(answers("SELECT s.n FROM (SELECT name AS n FROM products) s"), [true]);
        assert_eq!(
            answers("SELECT id, note FROM products UNION SELECT id, vendor_name FROM vendors"),
            [true, false]
        );
        assert_eq!(answers("SELECT count(*) FROM products"), [true]);
        assert_eq!(derive("SELECT * FROM products", &shop).unwrap(), None);
        assert_eq!(answers("SELECT missing FROM products"), [false]);
    }

    #[test]
    fn tables_are_listed_as_written() {
        let t = tables("SELECT 1 FROM products p JOIN public.vendors v ON true").unwrap();
        assert_eq!(t, [(None, "products".into()), (Some("public".into()), "vendors".into())]);
    }
}
