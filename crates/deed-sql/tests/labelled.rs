//! Hand-labelled statements, each checked against what PostgreSQL's own
//! permission checks require: the relations a statement reads and writes
//! (or locks) are exactly those a role needs privileges on to run it. The
//! whole list lives in one snapshot, so any change in an answer is seen.

use deed_sql::{OfflineLookup, analyze};

const STATEMENTS: &[&str] = &[
    // Under RECURSIVE, every CTE of the list sees every other: `b` is the
    // CTE, not a table.
    "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x UNION ALL SELECT x + 1 FROM b WHERE x < 3) SELECT * FROM a",
    // Without RECURSIVE, `b` in the first CTE is the table.
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a",
    // ON CONFLICT reads the conflict target's columns (SELECT needed) and
    // DO UPDATE may read the target and other tables.
    "INSERT INTO inventory (sku, qty) VALUES ('a', 1) ON CONFLICT (sku) DO UPDATE SET qty = (SELECT sum(s.qty) FROM stock s WHERE s.sku = excluded.sku)",
    "INSERT INTO inventory (sku, qty) VALUES ('a', 1) ON CONFLICT (sku) DO UPDATE SET qty = inventory.qty + excluded.qty",
    "INSERT INTO inventory (sku, qty) VALUES ('a', 1) ON CONFLICT DO NOTHING",
    // SQL/JSON wrapping subqueries.
    "SELECT JSON_ARRAY(SELECT name FROM products)",
    "SELECT JSON_OBJECT('n': (SELECT count(*) FROM orders))",
    "SELECT JSON_EXISTS((SELECT doc FROM docs LIMIT 1), '$.a')",
    "SELECT jt.* FROM JSON_TABLE((SELECT doc FROM docs LIMIT 1), '$[*]' COLUMNS (a int PATH '$.a')) jt",
    // A CTE named like the target: the target is the table, the source
    // the CTE over staging.
    "WITH products AS (SELECT id, name FROM staging) MERGE INTO public.products p USING products s ON p.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
    // Temporary tables live in the session's own schema.
    "SELECT * INTO TEMP recent FROM orders WHERE id > 10",
    "CREATE TEMP TABLE totals AS SELECT user_id, sum(total_cents) FROM orders GROUP BY user_id",
    "CREATE TABLE archive AS SELECT * FROM orders",
    // Locking rows needs UPDATE privilege.
    "SELECT id FROM orders FOR UPDATE",
    "SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id FOR SHARE OF o",
    // Whole-row references read every column.
    "SELECT row_to_json(p) FROM products p",
    "SELECT (p).* FROM products p",
    // Data-modifying CTEs write.
    "WITH gone AS (DELETE FROM sessions WHERE expires < now() RETURNING user_id) UPDATE users SET online = false WHERE id IN (SELECT user_id FROM gone)",
    // UPDATE … FROM and DELETE … USING read their other tables.
    "UPDATE orders SET status = 'shipped' FROM shipments s WHERE s.order_id = orders.id",
    "DELETE FROM carts USING users WHERE users.id = carts.user_id AND users.deleted",
    // COPY in both directions.
    "COPY products (id, name) TO STDOUT",
    "COPY products FROM STDIN",
    "COPY (SELECT id FROM orders) TO STDOUT",
    // A set-returning function in FROM is not a table.
    "SELECT * FROM generate_series(1, 3) g, products",
    // LATERAL sees the left side; the subquery's table is read.
    "SELECT u.id, l.total FROM users u, LATERAL (SELECT sum(total_cents) AS total FROM orders o WHERE o.user_id = u.id) l",
    // TRUNCATE writes every table named.
    "TRUNCATE orders, order_items",
    // DDL writes what it alters and reads what a foreign key references.
    "ALTER TABLE orders ADD COLUMN user_ref bigint REFERENCES users (id)",
    // Function bodies: what the function does when it runs.
    "CREATE FUNCTION order_count(u int) RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM orders WHERE user_id = u'",
    "CREATE FUNCTION order_total(u int) RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT sum(total_cents) FROM orders WHERE user_id = u; END",
    "CREATE FUNCTION log_order() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit_log (msg) SELECT name FROM users WHERE id = NEW.user_id; RETURN NEW; END $$",
    "CREATE PROCEDURE archive_orders() LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'DELETE FROM orders'; END $$",
    // A rule's actions run with its event.
    "CREATE RULE keep_log AS ON DELETE TO orders DO ALSO INSERT INTO audit_log (msg) VALUES ('deleted')",
];

fn render(sql: &str) -> String {
    let analysis =
        analyze(sql, &OfflineLookup::default()).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut parts: Vec<String> = analysis
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
            if a.lock {
                s.push('L');
            }
            if a.star {
                s.push('*');
            }
            s
        })
        .collect();
    parts.sort();
    format!(
        "{sql}\n  -> {}",
        if parts.is_empty() { "(no relation)".into() } else { parts.join(", ") }
    )
}

#[test]
fn labelled_statements() {
    let all: Vec<String> = STATEMENTS.iter().map(|s| render(s)).collect();
    insta::assert_snapshot!(all.join("\n"));
}

#[test]
fn deep_but_valid_sql_is_analysed() {
    // 40 nested subqueries, a 200-term || chain, 300 UNION ALLs: PostgreSQL
    // takes all three.
    let mut nested = String::from("SELECT id FROM orders");
    for _ in 0..40 {
        nested = format!("SELECT id FROM ({nested}) s");
    }
    let chain = format!(
        "SELECT {} FROM users",
        (0..200).map(|i| format!("name || '{i}'")).collect::<Vec<_>>().join(" || ")
    );
    let unions = (0..300)
        .map(|i| format!("SELECT {i} FROM products"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    for sql in [nested, chain, unions] {
        let analysis = analyze(&sql, &OfflineLookup::default())
            .unwrap_or_else(|e| panic!("{}…: {}", &sql[..60], e.message));
        assert_eq!(analysis.combined().len(), 1, "{}", &sql[..60]);
    }
}
