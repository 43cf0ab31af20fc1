//! deed runs with a superuser's rights on manifests that arrive in pull
//! requests, against databases others configure. These tests try the
//! routes by which that could go wrong, through the real binary on a real
//! server: hostile session defaults, contract queries that do more than
//! read, system objects claimed as a service's own.

mod support;

use std::process::Output;
use support::text;

use deed_testkit::TestDb;

/// A shop with a catalog and an orders service; `contract` is the TOML of
/// catalog's contract body (after `version = 1`).
async fn shop(db: &TestDb, contract: &str) -> tempfile::TempDir {
    let admin = db.client().await;
    let (catalog, orders) = (db.role("catalog_svc"), db.role("orders_svc"));
    admin
        .batch_execute(&format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text, cost_cents int);
             CREATE TABLE orders (id int PRIMARY KEY, product_id int);
             CREATE SEQUENCE product_numbers;
             INSERT INTO products VALUES (1, 'pen', 50);
             CREATE ROLE \"{catalog}\" LOGIN; CREATE ROLE \"{orders}\" LOGIN;"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_manifest(db, dir.path(), contract, "");
    dir
}

fn write_manifest(db: &TestDb, dir: &std::path::Path, contract: &str, extra: &str) {
    std::fs::write(
        dir.join("deed.toml"),
        format!(
            r#"version = 1
[database]
url = "${{DATABASE_URL}}"
[services.{cat}]
owns = ["public.products"]
logins = ["{catalog}"]
[[services.{cat}.contracts]]
name = "products"
version = 1
from = "public.products"
{contract}
[services.{ord}]
owns = ["public.orders"]
logins = ["{orders}"]
reads = ["{cat}.products.v1"]
{extra}
"#,
            cat = db.service("catalog"),
            ord = db.service("orders"),
            catalog = db.role("catalog_svc"),
            orders = db.role("orders_svc"),
        ),
    )
    .unwrap();
}

async fn exists(db: &TestDb, relation: &str) -> bool {
    db.client()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&relation])
        .await
        .unwrap()
        .get(0)
}

/// A backslash escapes a quote only when standard_conforming_strings is
/// off: this query is one SELECT to a parser with it on, and a SELECT, a
/// COMMIT and a CREATE TABLE to a server with it off. And with a search
/// path that puts a writable schema first, a function there would stand in
/// for the built-in deed's catalog queries call.
#[tokio::test]
async fn hostile_session_defaults_change_nothing_deed_runs() {
    let db = TestDb::new("sec_session").await;
    let query = r#"query = '''SELECT id, name FROM products WHERE name <> 'a\''; COMMIT; CREATE TABLE public.pwned (x int); --' '''"#;
    let dir = shop(&db, query).await;
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA evil;
             CREATE TABLE evil.calls (at timestamptz DEFAULT now());
             CREATE FUNCTION evil.format_type(oid, integer) RETURNS text LANGUAGE plpgsql AS
               $$ BEGIN INSERT INTO evil.calls DEFAULT VALUES; RETURN 'pwned'; END $$;
             GRANT ALL ON SCHEMA evil TO PUBLIC; GRANT ALL ON evil.calls TO PUBLIC;
             ALTER DATABASE \"{0}\" SET standard_conforming_strings = off;
             ALTER DATABASE \"{0}\" SET search_path = evil, pg_catalog, public;",
            db.name
        ))
        .await
        .unwrap();
    for args in [&["plan"][..], &["drift"], &["status"], &["apply"], &["drift"]] {
        let out = support::run(dir.path(), &db.url, args);
        assert!(out.status.code().is_some_and(|c| c <= 1), "deed {args:?}: {}", text(&out));
        assert!(!exists(&db, "public.pwned").await, "deed {args:?} ran SQL hidden in a contract");
    }
    let calls: i64 = admin.query_one("SELECT count(*) FROM evil.calls", &[]).await.unwrap().get(0);
    assert_eq!(calls, 0, "a function outside pg_catalog stood in for a built-in");
    // The view holds the owner's query, read as one statement.
    let view = format!("{}_api.products_v1", db.service("catalog"));
    let def: String = admin
        .query_one("SELECT pg_get_viewdef($1::text::regclass)", &[&view])
        .await
        .unwrap()
        .get(0);
    assert!(def.contains("COMMIT; CREATE TABLE"), "{def}");
}

async fn refused(db: &TestDb, query: &str, expected: &str) {
    let dir = shop(db, &format!("query = '''{query}'''")).await;
    for command in ["plan", "apply"] {
        let out = support::run(dir.path(), &db.url, &[command]);
        assert_eq!(out.status.code(), Some(2), "{query}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains("deed.toml:") && t.contains(expected), "{query}: {t}");
    }
    assert!(!exists(db, &format!("{}_api.products_v1", db.service("catalog"))).await);
}

#[tokio::test]
async fn contract_queries_with_side_effects_are_refused() {
    let cases = [
        ("SELECT id, name, pg_terminate_backend(pg_backend_pid()) AS x FROM products", "VOLATILE"),
        ("SELECT id, pg_read_file('/etc/hostname') AS f FROM products", "VOLATILE"),
        ("SELECT id, nextval('product_numbers') AS n FROM products", "nextval"),
        ("SELECT id, set_config('search_path', 'x', false) AS s FROM products", "set_config"),
        ("SELECT id, current_setting('data_directory') AS s FROM products", "reads the server"),
        ("SELECT id, name FROM products FOR UPDATE", "locks rows"),
        ("SELECT id FROM (SELECT id FROM products FOR SHARE) s", "locks rows"),
        (
            "WITH gone AS (DELETE FROM products RETURNING id) SELECT id FROM gone",
            "writes public.products",
        ),
    ];
    for (i, (query, expected)) in cases.iter().enumerate() {
        let db = TestDb::new(&format!("sec_effects_{i}")).await;
        refused(&db, query, expected).await;
    }
}

#[tokio::test]
async fn whole_row_references_are_refused_like_star() {
    let cases = [
        ("SELECT p FROM products p", "whole-row"),
        ("SELECT (p).* FROM products p", "selects * from public.products"),
        ("SELECT id, row_to_json(p) AS doc FROM products p", "whole-row"),
        ("SELECT id, to_jsonb(products) AS doc FROM products", "whole-row"),
    ];
    for (i, (query, expected)) in cases.iter().enumerate() {
        let db = TestDb::new(&format!("sec_wholerow_{i}")).await;
        refused(&db, query, expected).await;
    }
}

#[tokio::test]
async fn a_plain_contract_query_is_still_accepted() {
    let db = TestDb::new("sec_plain_query").await;
    let dir = shop(
        &db,
        "query = \"SELECT id, upper(name) AS name, cost_cents * 2 AS price FROM products WHERE id > 0\"",
    )
    .await;
    let out = support::run(dir.path(), &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = support::run(dir.path(), &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A manifest with catalog owning `owns` (and reading nothing), orders
/// owning public.orders, and `extra` TOML appended.
fn manifest(db: &TestDb, dir: &std::path::Path, owns: &str, extra: &str) {
    std::fs::write(
        dir.join("deed.toml"),
        format!(
            r#"version = 1
[database]
url = "${{DATABASE_URL}}"
[services.{cat}]
owns = [{owns}]
logins = ["{catalog}"]
[services.{ord}]
owns = ["public.orders"]
logins = ["{orders}"]
{extra}
"#,
            cat = db.service("catalog"),
            ord = db.service("orders"),
            catalog = db.role("catalog_svc"),
            orders = db.role("orders_svc"),
        ),
    )
    .unwrap();
}

async fn base(db: &TestDb, sql: &str) -> tempfile::TempDir {
    let admin = db.client().await;
    let (catalog, orders) = (db.role("catalog_svc"), db.role("orders_svc"));
    admin
        .batch_execute(&format!(
            "CREATE TABLE orders (id int PRIMARY KEY, product_id int);
             CREATE ROLE \"{catalog}\" LOGIN; CREATE ROLE \"{orders}\" LOGIN;
             {sql}"
        ))
        .await
        .unwrap();
    tempfile::tempdir().unwrap()
}

/// Runs `sql` as `role`; the error's SQLSTATE, if it fails.
async fn try_as(db: &TestDb, role: &str, sql: &str) -> Result<(), String> {
    let c = db.client_as(&db.role(role)).await;
    c.batch_execute(sql)
        .await
        .map_err(|e| e.code().map_or_else(|| e.to_string(), |c| c.code().to_string()))
}

fn drift_names(dir: &std::path::Path, db: &TestDb, what: &[&str]) {
    let out = support::run(dir, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for w in what {
        assert!(text(&out).contains(w), "drift does not name {w:?}:\n{}", text(&out));
    }
}

fn applied(dir: &std::path::Path, db: &TestDb) {
    let out = support::run(dir, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn clean(dir: &std::path::Path, db: &TestDb) {
    let out = support::run(dir, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn a_foreign_schema_is_never_taken_as_an_api_schema() {
    let db = TestDb::new("sec_foreign_schema").await;
    let billing = db.role("billing_admin");
    let dir = base(
        &db,
        &format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text);
             CREATE ROLE \"{billing}\";
             CREATE SCHEMA billing AUTHORIZATION \"{billing}\";
             CREATE TABLE billing.invoices (id int); ALTER TABLE billing.invoices OWNER TO \"{billing}\";"
        ),
    )
    .await;
    let cat = db.service("catalog");
    manifest(
        &db,
        dir.path(),
        "\"public.products\"",
        &format!(
            "[[services.{cat}.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\"]\n"
        ),
    );
    let text_with_schema = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap().replace(
        &format!("logins = [\"{}\"]\n", db.role("catalog_svc")),
        &format!("logins = [\"{}\"]\napi_schema = \"billing\"\n", db.role("catalog_svc")),
    );
    std::fs::write(dir.path().join("deed.toml"), text_with_schema).unwrap();
    let out = support::run(dir.path(), &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("deed.toml:7:14: api schema billing"), "{}", text(&out));
    // A blocker is a refusal: exit 1, nothing changed.
    let out = support::run(dir.path(), &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refused: nothing was changed"), "{}", text(&out));
    let owner: String = db
        .client()
        .await
        .query_one(
            "SELECT pg_get_userbyid(nspowner)::text FROM pg_namespace WHERE nspname = 'billing'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owner, billing);
    assert_eq!(
        try_as(&db, "catalog_svc", "DROP TABLE billing.invoices").await.unwrap_err(),
        "42501"
    );
}

#[tokio::test]
async fn sequences_follow_their_table() {
    let db = TestDb::new("sec_sequences").await;
    let dir = base(
        &db,
        "CREATE TABLE products (id serial PRIMARY KEY, name text);
         CREATE TABLE vendors (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
         GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC;
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO PUBLIC;",
    )
    .await;
    let ord = db.service("orders");
    manifest(
        &db,
        dir.path(),
        "\"public.products\", \"public.vendors\"",
        &format!(
            "[[services.{ord}.exceptions]]\nrelation = \"public.products\"\nprivileges = [\"INSERT\"]\nreason = \"seeds products until catalog has an API\"\n"
        ),
    );
    assert_eq!(try_as(&db, "orders_svc", "SELECT nextval('vendors_id_seq')").await, Ok(()));
    applied(dir.path(), &db);
    clean(dir.path(), &db);
    for sql in [
        "SELECT nextval('vendors_id_seq')",
        "SELECT setval('vendors_id_seq', 100)",
        "SELECT setval('products_id_seq', 100)",
        "SELECT last_value FROM products_id_seq",
    ] {
        assert_eq!(try_as(&db, "orders_svc", sql).await, Err("42501".into()), "{sql}");
    }
    // The exception's INSERT still works: the serial default needs USAGE.
    assert_eq!(
        try_as(&db, "orders_svc", "INSERT INTO products (name) VALUES ('pen')").await,
        Ok(())
    );
    assert_eq!(try_as(&db, "catalog_svc", "SELECT setval('vendors_id_seq', 5)").await, Ok(()));
    // A grant by hand shows in drift.
    db.client()
        .await
        .batch_execute("GRANT UPDATE ON SEQUENCE products_id_seq TO PUBLIC")
        .await
        .unwrap();
    drift_names(dir.path(), &db, &["UPDATE on public.products_id_seq to PUBLIC"]);
}

#[tokio::test]
async fn partitions_come_with_their_table() {
    let db = TestDb::new("sec_partitions").await;
    let dir = base(
        &db,
        "CREATE TABLE ledger (id int, at date, amount int) PARTITION BY RANGE (at);
         CREATE TABLE ledger_p1 PARTITION OF ledger FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE ledger_p2 PARTITION OF ledger FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')
             PARTITION BY RANGE (at);
         CREATE TABLE ledger_p2a PARTITION OF ledger_p2 FOR VALUES FROM ('2027-01-01') TO ('2027-07-01');
         GRANT SELECT ON ledger_p1, ledger_p2a TO PUBLIC;",
    )
    .await;
    manifest(&db, dir.path(), "\"public.ledger\"", "");
    assert_eq!(try_as(&db, "orders_svc", "SELECT * FROM ledger_p1").await, Ok(()));
    applied(dir.path(), &db);
    clean(dir.path(), &db);
    for sql in ["SELECT * FROM ledger_p1", "SELECT * FROM ledger_p2a", "SELECT * FROM ledger"] {
        assert_eq!(try_as(&db, "orders_svc", sql).await, Err("42501".into()), "{sql}");
    }
    assert_eq!(
        try_as(&db, "catalog_svc", "INSERT INTO ledger VALUES (1, '2027-02-01', 5)").await,
        Ok(())
    );
    // A partition created later is caught, and brought in line.
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE ledger_p3 PARTITION OF ledger FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
             GRANT SELECT ON ledger_p3 TO PUBLIC;",
        )
        .await
        .unwrap();
    drift_names(
        dir.path(),
        &db,
        &["public.ledger_p3 is owned by", "on public.ledger_p3 to PUBLIC"],
    );
    applied(dir.path(), &db);
    clean(dir.path(), &db);
    assert_eq!(try_as(&db, "orders_svc", "SELECT * FROM ledger_p3").await, Err("42501".into()));
}

#[tokio::test]
async fn logins_that_bypass_grants_are_refused_and_escalations_are_drift() {
    let db = TestDb::new("sec_roles").await;
    let dir = base(&db, "CREATE TABLE products (id int PRIMARY KEY, name text);").await;
    manifest(&db, dir.path(), "\"public.products\"", "");
    applied(dir.path(), &db);
    clean(dir.path(), &db);
    let admin = db.client().await;
    let (catalog, orders, owner) = (
        db.role("catalog_svc"),
        db.role("orders_svc"),
        format!("deed_{}_owner", db.service("orders")),
    );
    let group = db.role("reporting");
    // Each escalation, then drift naming it, then apply (or a refusal).
    let cases: Vec<(String, Vec<String>, bool)> = vec![
        (
            format!("GRANT pg_read_all_data TO \"{orders}\""),
            vec!["is a member of pg_read_all_data".into()],
            true,
        ),
        (
            format!("GRANT pg_write_all_data TO \"{owner}\""),
            vec![format!("{owner} (owner role of"), "pg_write_all_data".into()],
            true,
        ),
        (
            format!("GRANT \"{catalog}\" TO \"{orders}\""),
            vec![format!("acts for service {}", db.service("catalog"))],
            true,
        ),
        (
            format!("ALTER ROLE \"{owner}\" BYPASSRLS"),
            vec![format!("owner role {owner} has BYPASSRLS")],
            true,
        ),
        (
            format!(
                "CREATE ROLE \"{group}\"; GRANT pg_read_all_data TO \"{group}\"; GRANT \"{group}\" TO \"{orders}\""
            ),
            vec![format!("belongs to pg_read_all_data through {group}"), "deed.toml:9:11".into()],
            false,
        ),
        (
            format!("ALTER ROLE \"{orders}\" BYPASSRLS"),
            vec!["has BYPASSRLS".into(), "deed.toml:9:11".into()],
            false,
        ),
        (format!("ALTER ROLE \"{orders}\" SUPERUSER"), vec!["has SUPERUSER".into()], false),
    ];
    for (sql, names, fixable) in cases {
        admin.batch_execute(&sql).await.unwrap();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        drift_names(dir.path(), &db, &names);
        let out = support::run(dir.path(), &db.url, &["apply"]);
        if fixable {
            assert_eq!(out.status.code(), Some(0), "{sql}: {}", text(&out));
            clean(dir.path(), &db);
        } else {
            assert_eq!(out.status.code(), Some(1), "{sql}: {}", text(&out));
            let plan = support::run(dir.path(), &db.url, &["plan"]);
            assert_eq!(plan.status.code(), Some(1), "{sql}: {}", text(&plan));
            admin
                .batch_execute(&format!(
                    "ALTER ROLE \"{orders}\" NOSUPERUSER NOBYPASSRLS; REVOKE \"{group}\" FROM \"{orders}\""
                ))
                .await
                .unwrap();
            clean(dir.path(), &db);
        }
    }
    assert_eq!(try_as(&db, "orders_svc", "SELECT * FROM products").await, Err("42501".into()));
}

/// A predefined role or PUBLIC named as a login would hand the owner role
/// to every member of it: refused at the manifest entry (exit 2, nothing
/// planned). A NOLOGIN group holding a predefined role or another
/// service's login is refused by plan and apply (exit 1, nothing granted);
/// a group of the service's own logins (as a secrets manager makes them)
/// is accepted.
#[tokio::test]
async fn predefined_roles_and_shared_groups_are_never_logins() {
    let db = TestDb::new("sec_group_login").await;
    let dir = base(&db, "CREATE TABLE products (id int PRIMARY KEY, name text);").await;
    let orders = db.role("orders_svc");
    for (login, why) in [
        ("pg_read_all_data", "a role the server predefines"),
        ("pg_monitor", "a role the server predefines"),
        ("PUBLIC", "a name the server reserves"),
        ("public", "a name the server reserves"),
    ] {
        manifest(&db, dir.path(), "\"public.products\"", "");
        let toml = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap();
        let toml = toml.replace(
            &format!("logins = [\"{orders}\"]"),
            &format!("logins = [\"{orders}\", \"{login}\"]"),
        );
        std::fs::write(dir.path().join("deed.toml"), toml).unwrap();
        for command in ["plan", "apply", "drift"] {
            let out = support::run(dir.path(), &db.url, &[command]);
            assert_eq!(out.status.code(), Some(2), "{login}, {command}: {}", text(&out));
            let t = text(&out);
            let col = 11 + orders.len() + 4;
            assert!(t.contains(&format!("deed.toml:9:{col}:")) && t.contains(why), "{login}: {t}");
            assert!(!t.contains("GRANT"), "{login}: {t}");
        }
    }
    let owner = format!("deed_{}_owner", db.service("orders"));
    let (group, catalog, pod) = (db.role("orders_group"), db.role("catalog_svc"), db.role("pod1"));
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{group}\" NOLOGIN; GRANT \"{group}\" TO pg_monitor;
             GRANT \"{group}\" TO \"{catalog}\"; CREATE ROLE \"{pod}\" LOGIN IN ROLE \"{group}\";"
        ))
        .await
        .unwrap();
    manifest(&db, dir.path(), "\"public.products\"", "");
    let toml = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        toml.replace(&format!("logins = [\"{orders}\"]"), &format!("logins = [\"{group}\"]")),
    )
    .unwrap();
    let out = support::run(dir.path(), &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("deed.toml:9:11: login") && t.contains("NOLOGIN role"), "{t}");
    assert!(t.contains("pg_monitor, a predefined role"), "{t}");
    assert!(t.contains(&format!("acts for service {}", db.service("catalog"))), "{t}");
    let out = support::run(dir.path(), &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refused: nothing was changed"), "{}", text(&out));
    let granted: bool = admin
        .query_one("SELECT pg_has_role('pg_monitor', $1::text, 'USAGE')", &[&owner])
        .await
        .map(|r| r.get(0))
        .unwrap_or(false);
    assert!(!granted, "pg_monitor got the owner role");
    // Only the service's own pods in the group: accepted, and they act as
    // the service.
    admin
        .batch_execute(&format!(
            "REVOKE \"{group}\" FROM pg_monitor; REVOKE \"{group}\" FROM \"{catalog}\";"
        ))
        .await
        .unwrap();
    applied(dir.path(), &db);
    clean(dir.path(), &db);
    let writes: bool = admin
        .query_one("SELECT has_table_privilege($1, 'public.orders', 'INSERT')", &[&pod])
        .await
        .unwrap()
        .get(0);
    assert!(writes);
}

#[tokio::test]
async fn views_and_functions_around_the_grants_are_reported_or_closed() {
    let db = TestDb::new("sec_routes").await;
    let catalog = db.role("catalog_svc");
    let dir = base(
        &db,
        &format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text, cost_cents int);
             INSERT INTO products VALUES (1, 'pen', 50);
             CREATE VIEW product_costs AS SELECT id, cost_cents FROM products;
             GRANT SELECT ON product_costs TO PUBLIC;
             CREATE FUNCTION cost_of(int) RETURNS int LANGUAGE sql STABLE SECURITY DEFINER
               AS 'SELECT cost_cents FROM public.products WHERE id = $1';
             CREATE FUNCTION own_cost(int) RETURNS int LANGUAGE sql STABLE SECURITY DEFINER
               AS 'SELECT cost_cents FROM public.products WHERE id = $1';
             ALTER FUNCTION own_cost(int) OWNER TO \"{catalog}\";"
        ),
    )
    .await;
    let cat = db.service("catalog");
    manifest(
        &db,
        dir.path(),
        "\"public.products\"",
        &format!(
            "[[services.{cat}.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\"]\n"
        ),
    );
    let api = format!("{cat}_api");
    drift_names(dir.path(), &db, &["EXECUTE on function public.own_cost(integer) to PUBLIC"]);
    applied(dir.path(), &db);
    // A function someone put in the api schema: EXECUTE goes to PUBLIC.
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE FUNCTION \"{api}\".costs() RETURNS SETOF int LANGUAGE sql SECURITY DEFINER
               AS 'SELECT cost_cents FROM public.products'"
        ))
        .await
        .unwrap();
    let out = support::run(dir.path(), &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("view public.product_costs (owned by postgres) reads public.products"),
        "{t}"
    );
    assert!(t.contains("SECURITY DEFINER function public.cost_of(integer)"), "{t}");
    assert!(t.contains(&format!("EXECUTE on function {api}.costs() to PUBLIC")), "{t}");
    applied(dir.path(), &db);
    for sql in [format!("SELECT \"{api}\".costs()"), "SELECT public.own_cost(1)".to_string()] {
        assert_eq!(try_as(&db, "orders_svc", &sql).await, Err("42501".into()), "{sql}");
    }
    assert_eq!(try_as(&db, "catalog_svc", "SELECT public.own_cost(1)").await, Ok(()));
    // What someone else owns stays, and stays reported.
    let out = support::run(dir.path(), &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("costs()"), "{}", text(&out));
    assert!(text(&out).contains("product_costs"), "{}", text(&out));
}

#[tokio::test]
async fn missing_logins_and_relations_are_located() {
    let db = TestDb::new("sec_missing").await;
    let dir = tempfile::tempdir().unwrap();
    manifest(&db, dir.path(), "\"public.products\", \"public.nowhere\"", "");
    let out = support::run(dir.path(), &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("deed.toml:5:9: public.products is in"), "{t}");
    assert!(t.contains("deed.toml:5:28: public.nowhere is in"), "{t}");
    assert!(t.contains(&format!("deed.toml:6:11: login role {}", db.role("catalog_svc"))), "{t}");
    assert!(t.contains(&format!("deed.toml:9:11: login role {}", db.role("orders_svc"))), "{t}");
}

async fn capturing(db: &TestDb) -> tempfile::TempDir {
    let dir = base(db, "CREATE TABLE products (id int PRIMARY KEY, name text);").await;
    let cat = db.service("catalog");
    manifest(
        db,
        dir.path(),
        "\"public.products\"",
        &format!(
            "[[services.{cat}.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\"]\n\
             [[services.{cat}.events]]\nname = \"product_changed\"\nfrom = \"public.products\"\nkey = [\"id\"]\ncontract = \"products.v1\"\n"
        ),
    );
    dir
}

async fn slots(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database() ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Slots are created and dropped under the apply lock: a deed killed while
/// it waits leaves nothing, concurrent applies do not collide, and the
/// same service in two databases of one server gets two slots.
#[tokio::test]
async fn slots_are_made_under_the_lock_and_named_per_database() {
    let db = TestDb::new("sec_slots").await;
    let dir = capturing(&db).await;
    let holder = db.client().await;
    holder
        .query_one("SELECT pg_advisory_lock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .unwrap();
    let mut waiting = support::deed(dir.path())
        .arg("apply")
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    waiting.kill().unwrap();
    waiting.wait().unwrap();
    assert_eq!(slots(&db).await, Vec::<String>::new(), "a deed killed while waiting left a slot");
    holder
        .query_one("SELECT pg_advisory_unlock($1)", &[&deed_contracts::ADVISORY_LOCK_KEY])
        .await
        .unwrap();

    let (d, url) = (dir.path().to_path_buf(), db.url.clone());
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (d, url) = (d.clone(), url.clone());
            tokio::task::spawn_blocking(move || support::run(&d, &url, &["apply"]))
        })
        .collect();
    for r in runs {
        let out = r.await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let oid: u32 = db
        .client()
        .await
        .query_one("SELECT oid FROM pg_database WHERE datname = current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots(&db).await, [format!("deed_{}_{oid}", db.service("catalog"))]);
    clean(dir.path(), &db);
    // A deed slot no service captures into keeps WAL: drift names it.
    db.client()
        .await
        .batch_execute("SELECT pg_create_logical_replication_slot('deed_gone_service', 'pgoutput')")
        .await
        .unwrap();
    drift_names(dir.path(), &db, &["replication slot deed_gone_service belongs to no service"]);
    applied(dir.path(), &db);
    clean(dir.path(), &db);

    // The same manifest on a second database of the same server.
    let other = TestDb::new("sec_slots_other").await;
    let other_dir = capturing(&other).await;
    // The second database uses the first one's service and role names.
    std::fs::copy(dir.path().join("deed.toml"), other_dir.path().join("deed.toml")).unwrap();
    let out = support::run(other_dir.path(), &other.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(slots(&other).await.len(), 1);
    assert_ne!(slots(&other).await, slots(&db).await);
}

fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    support::deed(dir).args(args).env_remove("DATABASE_URL").output().unwrap()
}

#[tokio::test]
async fn passwords_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deed.toml"), "version = 1\n").unwrap();
    let cases = [
        ("postgres://deed:pa/ss?w0rd@127.0.0.1:1/x", ["pa/ss", "w0rd"]),
        ("postgres://deed:s3cr%3Fet@127.0.0.1:1/x", ["s3cr", "%3Fet"]),
        (
            "host=127.0.0.1 port=1 user=deed password = hunter2xyz dbname=x",
            ["hunter2xyz", "hunter2"],
        ),
        ("host=127.0.0.1 port=1 user=deed password='a b secretpw' dbname=x", ["secretpw", "a b"]),
        ("postgres://127.0.0.1:1/x?user=deed&password=qu3ry&sslmode=disable", ["qu3ry", "qu3ry"]),
    ];
    for (url, secrets) in cases {
        let out = run_in(dir.path(), &["plan", "--database-url", url]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out));
        for s in secrets {
            assert!(!text(&out).contains(s), "{url}: a password was printed:\n{}", text(&out));
        }
    }
    // A manifest error quoted with its line: the line is redacted.
    std::fs::write(
        dir.path().join("deed.toml"),
        "version = 1\n[database]\nurl = \"postgres://deed:pa/ss?w0rd@db/${NOPE}\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("NOPE is not set"), "{}", text(&out));
    assert!(!text(&out).contains("w0rd"), "{}", text(&out));
}

/// Percent escapes in a connection string, bad or good, are decoded by one
/// decoder that never panics: a bad one is an error naming what it could
/// not use (exit 2), a good one reaches the server as written.
#[tokio::test]
async fn connection_strings_with_odd_escapes_never_panic() {
    let db = TestDb::new("sec_escapes").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deed.toml"), "version = 1\n").unwrap();
    let sep = if db.url.contains('?') { '&' } else { '?' };
    for tail in ["sslmode=require&sslrootcert=%aé", "sslrootcert=%", "sslcert=%e9%&sslkey=é%c3"] {
        let url = format!("{}{sep}{tail}", db.url);
        let out = run_in(dir.path(), &["doctor", "--database-url", &url]);
        // Used (require) it is a missing file; unused (prefer, and the
        // server offers no TLS) nothing, and doctor reports the server
        // (exit 1 when, say, the local pg_dump is older than it).
        assert!(matches!(out.status.code(), Some(0..=2)), "{url}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{url}: {}", text(&out));
        if tail.contains("require") {
            assert!(text(&out).contains("%aé: No such file"), "{url}: {}", text(&out));
        }
    }
    // Good escapes reach the server decoded.
    let url = format!("{}{sep}application_name=a%20%26%20b%2Fc%25&sslmode=disable", db.url);
    let out = run_in(dir.path(), &["plan", "--database-url", &url]);
    assert_eq!(out.status.code(), Some(0), "{url}: {}", text(&out));
    let conn = deed_pg::connect_plain(&url).await.unwrap();
    let name: String =
        conn.query_one("SELECT current_setting('application_name')", &[]).await.unwrap().get(0);
    assert_eq!(name, "a & b/c%");
}

#[tokio::test]
async fn sql_directories_are_read_without_leaving_them() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("token.sql"), "ghp_SECRETTOKEN123 and more").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("sql");
    std::fs::create_dir(&sql).unwrap();
    std::fs::write(sql.join("ok.sql"), "SELECT id FROM products;").unwrap();
    std::os::unix::fs::symlink(outside.path().join("token.sql"), sql.join("x.sql")).unwrap();
    std::os::unix::fs::symlink(outside.path(), sql.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(sql.join("ok.sql"), sql.join("same.sql")).unwrap();
    let out = run_in(dir.path(), &["audit", "--from-sql", "sql", "--service", "orders"]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
    assert!(!text(&out).contains("ghp_"), "{}", text(&out));
    assert!(text(&out).contains("a link that leads outside"), "{}", text(&out));
    let json = run_in(
        dir.path(),
        &["audit", "--from-sql", "sql", "--service", "orders", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    // ok.sql and its in-tree link: two statements.
    assert_eq!(v["statements"], 2, "{v}");

    // Bad SQL is quoted in a short, escaped excerpt only.
    let secret = format!("ghp_{}", "S".repeat(200));
    std::fs::write(
        sql.join("bad.sql"),
        format!("SELECT 1;\nSELECT '{secret}' '{secret}\u{1b}[2J';"),
    )
    .unwrap();
    let out =
        run_in(dir.path(), &["audit", "--from-sql", "sql", "--service", "orders", "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("bad.sql:2:215: syntax error at or near \"'ghp_SSS"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&"S".repeat(41)), "{}", text(&out));
    assert!(!text(&out).contains('\u{1b}'), "{}", text(&out));
}

#[tokio::test]
async fn control_characters_in_input_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let line = serde_json::json!({
        "user": "evil\u{1b}[31m\nFAKE LINE",
        "dbname": "shop",
        "application_name": "app\r\u{1b}[2K",
        "message": "statement: SELECT * FROM products -- \u{1b}]0;title\u{7}",
    });
    std::fs::write(dir.path().join("log.json"), format!("{line}\n")).unwrap();
    for format in ["table", "markdown"] {
        let out = run_in(dir.path(), &["audit", "--from-log", "log.json", "--format", format]);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        let t = text(&out);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{t:?}");
        assert!(!t.lines().any(|l| l.starts_with("FAKE LINE")), "{t}");
    }
    std::fs::write(
        dir.path().join("deed.toml"),
        r#"version = 1
[services.orders]
owns = ["public.\"my\nlog\""]
logins = ["\"svc\nFAKE\""]
"#,
    )
    .unwrap();
    let db = TestDb::new("sec_control").await;
    let out = support::run(dir.path(), &db.url, &["plan"]);
    let t = text(&out);
    assert!(t.contains(r#"public.U&"my\000Alog""#), "{t}");
    assert!(t.contains(r#"U&"svc\000AFAKE""#), "{t}");
    assert!(!t.lines().any(|l| l.starts_with("FAKE") || l.starts_with("log")), "{t}");
}

#[tokio::test]
async fn oversized_inputs_stop_with_a_clear_error() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A line that never ends.
    let out = support::deed(d)
        .args(["audit", "--from-log", "-"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 1 is longer than 64 MiB"), "{}", text(&out));
    // A gzip bomb: 200 MB of newlines in a few hundred kB.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b'\n'; 1 << 20];
    for _ in 0..200 {
        gz.write_all(&chunk).unwrap();
    }
    std::fs::write(d.join("bomb.gz"), gz.finish().unwrap()).unwrap();
    let out = run_in(d, &["audit", "--from-log", "bomb.gz", "--max-input-bytes", "100MB"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("larger than 100 MiB"), "{}", text(&out));
    // Files read whole, and the manifest.
    std::fs::write(d.join("deed.toml"), "version = 1\n").unwrap();
    let db = TestDb::new("sec_oversized").await;
    let out = support::run(d, &db.url, &["check", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("larger than 256 MiB"), "{}", text(&out));
    let out = run_in(d, &["--manifest", "/dev/zero", "plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("larger than 16 MiB"), "{}", text(&out));
    // One huge statement is counted, not parsed.
    let values = (0..200_000).map(|i| format!("({i})")).collect::<Vec<_>>().join(",");
    let line = serde_json::json!({
        "user": "loader", "dbname": "shop",
        "message": format!("statement: INSERT INTO products (id) VALUES {values}"),
    });
    std::fs::write(d.join("big.json"), format!("{line}\n")).unwrap();
    let out = run_in(d, &["audit", "--from-log", "big.json", "--format", "json"]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["unparsed"].to_string().contains("--max-statement-bytes"), "{v}");
}
