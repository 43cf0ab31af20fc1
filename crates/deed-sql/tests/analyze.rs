//! Each SQL construct the audit must understand, checked against a compact
//! rendering of what the analysis found: `relation R/W [* ] read(..) wrote(..)`.

use std::collections::HashMap;

use deed_ident::{Ident, QualifiedName};
use deed_sql::{OfflineLookup, SchemaLookup, analyze};

fn render(sql: &str, lookup: &dyn SchemaLookup) -> Vec<String> {
    let analysis = analyze(sql, lookup).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut out: Vec<String> = analysis
        .combined()
        .iter()
        .map(|a| {
            let mut s = a.relation.to_string();
            s.push(' ');
            if a.read {
                s.push('R');
            }
            if a.write {
                s.push('W');
            }
            if a.star {
                s.push_str(" *");
            }
            if !a.columns_read.is_empty() {
                s.push_str(&format!(
                    " read({})",
                    a.columns_read.iter().cloned().collect::<Vec<_>>().join(",")
                ));
            }
            if !a.columns_written.is_empty() {
                s.push_str(&format!(
                    " wrote({})",
                    a.columns_written.iter().cloned().collect::<Vec<_>>().join(",")
                ));
            }
            if a.all_columns_written {
                s.push_str(" wrote(all)");
            }
            if a.columns_uncertain {
                s.push_str(" uncertain");
            }
            s
        })
        .collect();
    out.sort();
    out
}

fn offline(sql: &str) -> Vec<String> {
    render(sql, &OfflineLookup::default())
}

/// A catalog with known columns, standing in for a live database.
struct Catalog(HashMap<String, Vec<&'static str>>);

impl Catalog {
    fn shop() -> Self {
        let mut m = HashMap::new();
        m.insert(
            "public.products".into(),
            vec!["id", "vendor_id", "name", "price_cents", "cost_cents"],
        );
        m.insert("public.vendors".into(), vec!["id", "name", "contact_email"]);
        m.insert(
            "public.orders".into(),
            vec!["id", "user_id", "customer_email", "status", "total_cents"],
        );
        m.insert(
            "public.order_items".into(),
            vec!["order_id", "product_id", "quantity", "unit_price_cents"],
        );
        m.insert("public.users".into(), vec!["id", "email", "name", "password_hash"]);
        m.insert("sales.orders".into(), vec!["id", "region"]);
        Catalog(m)
    }
}

impl SchemaLookup for Catalog {
    fn resolve(&self, schema: Option<&str>, name: &str) -> Option<QualifiedName> {
        let schema = schema.unwrap_or("public");
        QualifiedName::from_catalog(schema, name).ok()
    }
    fn columns(&self, relation: &QualifiedName) -> Option<Vec<String>> {
        self.0.get(&relation.to_string()).map(|c| c.iter().map(|s| s.to_string()).collect())
    }
}

fn live(sql: &str) -> Vec<String> {
    render(sql, &Catalog::shop())
}

#[test]
fn simple_select_with_columns() {
    assert_eq!(
        offline("SELECT id, name FROM products WHERE price_cents > 100"),
        ["public.products R read(id,name,price_cents)"]
    );
}

#[test]
fn select_star_and_qualified_star() {
    assert_eq!(offline("SELECT * FROM products"), ["public.products R *"]);
    assert_eq!(
        offline("SELECT p.*, v.name FROM products p JOIN vendors v ON v.id = p.vendor_id"),
        ["public.products R * read(vendor_id)", "public.vendors R read(id,name)",]
    );
}

#[test]
fn joins_attribute_qualified_columns_and_flag_ambiguous_ones_offline() {
    let sql =
        "SELECT o.id, oi.quantity, name FROM orders o JOIN order_items oi ON oi.order_id = o.id";
    assert_eq!(
        offline(sql),
        [
            "public.order_items R read(order_id,quantity) uncertain",
            "public.orders R read(id) uncertain",
        ]
    );
    // With the catalog, `name` belongs to neither; nothing is uncertain.
    let sql = "SELECT o.id, p.name, quantity FROM orders o JOIN order_items oi ON oi.order_id = o.id JOIN products p ON p.id = oi.product_id";
    assert_eq!(
        live(sql),
        [
            "public.order_items R read(order_id,product_id,quantity)",
            "public.orders R read(id)",
            "public.products R read(id,name)",
        ]
    );
}

#[test]
fn join_using_reads_both_sides() {
    assert_eq!(
        live(
            "SELECT quantity FROM order_items JOIN products p ON p.id = product_id JOIN vendors v USING (name)"
        ),
        [
            "public.order_items R read(product_id,quantity)",
            "public.products R read(id,name)",
            "public.vendors R read(name)",
        ]
    );
}

#[test]
fn subqueries_in_where_from_and_select() {
    let sql = "SELECT o.id, (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) \
               FROM (SELECT id, user_id FROM orders WHERE status = 'paid') o \
               WHERE o.user_id IN (SELECT id FROM users WHERE email LIKE '%@x')";
    assert_eq!(
        offline(sql),
        [
            "public.order_items R read(order_id)",
            "public.orders R read(id,status,user_id)",
            "public.users R read(email,id)",
        ]
    );
}

#[test]
fn correlated_subquery_reaches_the_outer_level() {
    assert_eq!(
        offline(
            "SELECT name FROM users u WHERE EXISTS (SELECT * FROM orders WHERE user_id = u.id)"
        ),
        ["public.orders R read(user_id)", "public.users R read(id,name)",]
    );
}

#[test]
fn cte_names_are_not_tables() {
    let sql = "WITH recent AS (SELECT id, user_id FROM orders WHERE id > 10), \
               products AS (SELECT 1 AS id) \
               SELECT r.id, products.id FROM recent r, products";
    assert_eq!(offline(sql), ["public.orders R read(id,user_id)"]);
    // A schema-qualified name is always the table, even with a CTE of that name.
    let sql = "WITH products AS (SELECT 1 AS id) SELECT * FROM public.products";
    assert_eq!(offline(sql), ["public.products R *"]);
}

#[test]
fn recursive_cte() {
    let sql = "WITH RECURSIVE tree(id, parent) AS (SELECT id, vendor_id FROM products \
               UNION ALL SELECT p.id, p.vendor_id FROM products p JOIN tree t ON p.vendor_id = t.id) \
               SELECT id FROM tree";
    assert_eq!(offline(sql), ["public.products R read(id,vendor_id)"]);
}

#[test]
fn data_modifying_cte() {
    let sql = "WITH moved AS (DELETE FROM orders WHERE status = 'old' RETURNING *) \
               INSERT INTO archive.orders SELECT * FROM moved";
    assert_eq!(offline(sql), ["archive.orders W wrote(all)", "public.orders RW * read(status)"]);
}

#[test]
fn insert_select() {
    let sql = "INSERT INTO orders (user_id, customer_email, status) SELECT id, email, 'new' FROM users WHERE id = $1";
    assert_eq!(
        offline(sql),
        ["public.orders W wrote(customer_email,status,user_id)", "public.users R read(email,id)",]
    );
    assert_eq!(offline("INSERT INTO products VALUES (1, 'x')"), ["public.products W wrote(all)"]);
    assert_eq!(
        live("INSERT INTO vendors VALUES (1, 'x', 'y')"),
        ["public.vendors W wrote(contact_email,id,name)"]
    );
}

#[test]
fn insert_on_conflict_and_returning() {
    let sql = "INSERT INTO products AS p (id, name) VALUES ($1, $2) \
               ON CONFLICT (id) DO UPDATE SET name = excluded.name WHERE p.price_cents > 0 RETURNING p.id";
    assert_eq!(offline(sql), ["public.products RW read(id,price_cents) wrote(id,name)"]);
}

#[test]
fn update_from() {
    let sql = "UPDATE orders o SET customer_email = u.email FROM users u WHERE u.id = o.user_id AND u.id = $1";
    assert_eq!(
        offline(sql),
        ["public.orders RW read(user_id) wrote(customer_email)", "public.users R read(email,id)",]
    );
    assert_eq!(
        offline("UPDATE orders SET status = 'shipped' WHERE id = $1"),
        ["public.orders RW read(id) wrote(status)"]
    );
}

#[test]
fn delete_using() {
    let sql = "DELETE FROM order_items oi USING orders o WHERE o.id = oi.order_id AND o.status = 'cancelled'";
    assert_eq!(
        offline(sql),
        ["public.order_items RW read(order_id)", "public.orders R read(id,status)",]
    );
    assert_eq!(offline("DELETE FROM orders"), ["public.orders W"]);
}

#[test]
fn merge() {
    let sql = "MERGE INTO products p USING staging.products s ON p.id = s.id \
               WHEN MATCHED THEN UPDATE SET price_cents = s.price_cents \
               WHEN NOT MATCHED THEN INSERT (id, name, price_cents) VALUES (s.id, s.name, s.price_cents)";
    assert_eq!(
        offline(sql),
        [
            "public.products RW read(id) wrote(id,name,price_cents)",
            "staging.products R read(id,name,price_cents)",
        ]
    );
}

#[test]
fn copy_in_and_out() {
    assert_eq!(
        offline("COPY products (id, name) FROM STDIN"),
        ["public.products W wrote(id,name)"]
    );
    assert_eq!(offline("COPY products TO STDOUT"), ["public.products R *"]);
    assert_eq!(offline("COPY (SELECT id FROM orders) TO STDOUT"), ["public.orders R read(id)"]);
}

#[test]
fn truncate() {
    assert_eq!(
        offline("TRUNCATE orders, public.order_items"),
        ["public.order_items W", "public.orders W"]
    );
}

#[test]
fn search_path_resolution_offline() {
    let lookup = OfflineLookup { search_path: vec![Ident::new("sales").unwrap()] };
    assert_eq!(
        render("SELECT o.id FROM orders o JOIN public.users u ON u.id = 1", &lookup),
        ["public.users R read(id)", "sales.orders R read(id)",]
    );
    assert_eq!(offline("SELECT relname FROM pg_class"), ["pg_catalog.pg_class R read(relname)"]);
}

#[test]
fn set_operations_and_order_by_alias() {
    let sql =
        "SELECT id, name AS label FROM products UNION SELECT id, name FROM vendors ORDER BY 1";
    assert_eq!(offline(sql), ["public.products R read(id,name)", "public.vendors R read(id,name)"]);
    assert_eq!(
        offline("SELECT sum(total_cents) AS total FROM orders GROUP BY status ORDER BY total"),
        ["public.orders R read(status,total_cents)"]
    );
}

#[test]
fn lateral_and_functions() {
    let sql = "SELECT u.id, x.n FROM users u, LATERAL (SELECT count(*) AS n FROM orders o WHERE o.user_id = u.id) x, generate_series(1, 3) g";
    assert_eq!(offline(sql), ["public.orders R read(user_id)", "public.users R read(id)"]);
}

#[test]
fn star_inside_exists_reads_nothing_extra() {
    assert_eq!(offline("SELECT 1 WHERE EXISTS (SELECT * FROM orders)"), ["public.orders R"]);
}

#[test]
fn ddl_writes_and_references() {
    assert_eq!(offline("ALTER TABLE orders ADD COLUMN note text"), ["public.orders W"]);
    assert_eq!(
        offline("CREATE TABLE shipments (id int, order_id int REFERENCES orders (id))"),
        ["public.orders R read(id)", "public.shipments W",]
    );
    assert_eq!(
        offline("CREATE VIEW v AS SELECT id FROM orders"),
        ["public.orders R read(id)", "public.v W"]
    );
    assert_eq!(offline("DROP TABLE IF EXISTS a.b, c"), ["a.b W", "public.c W"]);
    assert_eq!(offline("CREATE INDEX ON orders (status)"), ["public.orders W"]);
}

#[test]
fn several_statements_keep_their_offsets() {
    let sql = "BEGIN; UPDATE orders SET status = 'x' WHERE id = 1;\nCOMMIT;";
    let a = analyze(sql, &OfflineLookup::default()).unwrap();
    let commands: Vec<&str> = a.statements.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(commands, ["TRANSACTION", "UPDATE", "TRANSACTION"]);
    assert_eq!(
        &sql[a.statements[1].offset..a.statements[1].offset + a.statements[1].len],
        "UPDATE orders SET status = 'x' WHERE id = 1"
    );
}

#[test]
fn opaque_statements_say_so() {
    let a =
        analyze("DO $$ BEGIN UPDATE orders SET status = 'x'; END $$", &OfflineLookup::default())
            .unwrap();
    assert!(a.statements[0].opaque.as_deref().unwrap().contains("DO block"));
}

#[test]
fn syntax_errors_are_located() {
    let sql = "SELECT 1;\nSELECT * FROM orders WHERE AND id = 1";
    let e = analyze(sql, &OfflineLookup::default()).unwrap_err();
    assert!(e.message.contains("syntax error at or near \"AND\""), "{e:?}");
    assert_eq!(e.offset, Some(37));
    assert_eq!(deed_sql::line_col(sql, 37), (2, 28));
}

#[test]
fn quoted_identifiers_keep_case() {
    assert_eq!(
        offline("SELECT \"Id\" FROM \"Legacy\".\"Order Items\""),
        ["\"Legacy\".\"Order Items\" R read(Id)"]
    );
}

#[test]
fn whole_row_references_read_every_column() {
    // No column is called `p`, so `p` is the whole row, as PostgreSQL reads it.
    assert_eq!(live("SELECT p FROM products p"), ["public.products R *"]);
    assert_eq!(live("SELECT row_to_json(p) FROM products p"), ["public.products R *"]);
    assert_eq!(offline("SELECT (p).* FROM products p"), ["public.products R *"]);
    // A field of the row is one column.
    assert_eq!(live("SELECT (p).name FROM products p"), ["public.products R read(name)"]);
    // A column that shares its table's name stays a column.
    assert_eq!(live("SELECT name FROM products name"), ["public.products R read(name)"]);
}
