//! Sources read from a real server: pg_stat_statements with real login
//! roles, and csvlog/jsonlog files written by a real server's logging
//! collector.

use std::path::Path;
use std::time::{Duration, Instant};

use deed_audit::{AccessKind, AuditRequest, Catalogue};
use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_manifest::Manifest;
use deed_testkit::TestDb;

const SCHEMA: &str = "
    CREATE TABLE products (id int PRIMARY KEY, name text, price_cents int, cost_cents int);
    CREATE TABLE orders (id int PRIMARY KEY, user_id int, status text, customer_email text);
    CREATE TABLE users (id int PRIMARY KEY, email text);
    CREATE VIEW order_summary AS SELECT o.id, o.status, u.email FROM orders o JOIN users u ON u.id = o.user_id;
    INSERT INTO products VALUES (1, 'pen', 100, 50);
    INSERT INTO users VALUES (1, 'a@example.com');
    INSERT INTO orders VALUES (1, 1, 'placed', 'a@example.com');";

fn manifest(db: &TestDb) -> Manifest {
    let text = format!(
        r#"version = 1
[services.catalog]
owns = ["public.products"]
logins = ["{}"]
applications = ["catalog-api"]
[services.orders]
owns = ["public.orders", "public.users"]
logins = ["{}"]
[services.fulfillment]
logins = ["{}"]
"#,
        db.role("catalog"),
        db.role("orders"),
        db.role("fulfillment")
    );
    Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap()
}

async fn setup(db: &TestDb) {
    let admin = db.client().await;
    admin.batch_execute(SCHEMA).await.unwrap();
    for base in ["catalog", "orders", "fulfillment", "stranger", "shared"] {
        let role = db.role(base);
        admin
            .batch_execute(&format!(
                "CREATE ROLE \"{role}\" LOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO \"{role}\";"
            ))
            .await
            .unwrap();
    }
}

/// Each role's traffic, including a view over two tables.
async fn workload(db: &TestDb) {
    let catalog = db.client_as(&db.role("catalog")).await;
    catalog
        .execute("UPDATE products SET price_cents = $1 WHERE id = $2", &[&120i32, &1i32])
        .await
        .unwrap();
    let orders = db.client_as(&db.role("orders")).await;
    orders.query("SELECT * FROM products WHERE id = $1", &[&1i32]).await.unwrap();
    let fulfillment = db.client_as(&db.role("fulfillment")).await;
    fulfillment
        .query("SELECT id, status FROM order_summary WHERE status = $1", &[&"placed"])
        .await
        .unwrap();
    fulfillment
        .execute("UPDATE orders SET status = 'shipped' WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    let stranger = db.client_as(&db.role("stranger")).await;
    stranger.execute("DELETE FROM users WHERE id = $1", &[&42i32]).await.unwrap();
}

fn has(c: &Catalogue, service: &str, relation: &str, kind: AccessKind) -> bool {
    c.accesses
        .iter()
        .any(|a| a.service == service && a.relation.to_string() == relation && a.access == kind)
}

#[tokio::test]
async fn pg_stat_statements_attributes_roles_and_resolves_views() {
    let db = TestDb::new("audit_pgss").await;
    setup(&db).await;
    let admin = db.client().await;
    admin.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").await.unwrap();
    workload(&db).await;
    let request = AuditRequest {
        manifest: Some(manifest(&db)),
        database_url: Some(db.url.clone()),
        pg_stat_statements: true,
        ..AuditRequest::default()
    };
    let outcome = deed_audit::run(&request).await.unwrap();
    let c = &outcome.catalogue;
    assert!(has(c, "catalog", "public.products", AccessKind::Write));
    let star = c.access("orders", &"public.products".parse_q(), AccessKind::Read).unwrap();
    assert!(star.select_star);
    // The view is resolved to its tables through the live catalog.
    let via = c.access("fulfillment", &"public.users".parse_q(), AccessKind::Read).unwrap();
    assert_eq!(via.via.iter().map(|v| v.to_string()).collect::<Vec<_>>(), ["public.order_summary"]);
    assert!(!via.direct);
    let stranger = format!("unknown:{}", db.role("stranger"));
    assert!(has(c, &stranger, "public.users", AccessKind::Write), "{:?}", c.services);
    let rules: Vec<String> = outcome
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.service, f.relation))
        .collect();
    for expected in [
        "foreign-write fulfillment public.orders".to_string(),
        "foreign-read fulfillment public.users".to_string(),
        "select-star orders public.products".to_string(),
        format!("foreign-write {stranger} public.users"),
    ] {
        assert!(rules.contains(&expected), "missing {expected} in {rules:#?}");
    }
}

#[tokio::test]
async fn pg_stat_statements_missing_is_a_clear_error() {
    let db = TestDb::new("audit_nopgss").await;
    let request = AuditRequest {
        database_url: Some(db.url.clone()),
        pg_stat_statements: true,
        ..AuditRequest::default()
    };
    let err =
        deed_audit::run(&request).await.err().expect("no extension in this database").to_string();
    assert!(err.contains("CREATE EXTENSION pg_stat_statements"), "{err}");
}

trait ParseQ {
    fn parse_q(&self) -> deed_ident::QualifiedName;
}

impl ParseQ for str {
    fn parse_q(&self) -> deed_ident::QualifiedName {
        deed_ident::QualifiedName::parse_sql(self).unwrap()
    }
}

/// A private server logging every statement as csvlog, jsonlog and the
/// plain stderr format (with a log_line_prefix that names user, database
/// and application).
#[tokio::test]
async fn csvlog_jsonlog_and_stderr_from_a_real_server_agree() {
    let settings = [
        ("logging_collector", "on"),
        ("log_destination", "stderr,csvlog,jsonlog"),
        ("log_line_prefix", "%m [%p] %q%u@%d app=%a "),
        ("log_directory", "log"),
        ("log_filename", "server.log"),
        ("log_statement", "all"),
    ];
    let cluster = tokio::task::spawn_blocking(move || {
        EmbeddedCluster::start(&ClusterOptions {
            settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        })
    })
    .await
    .unwrap()
    .expect("a private cluster with logging");
    let admin = deed_pg::connect(&cluster.url("postgres")).await.unwrap();
    admin.batch_execute("CREATE DATABASE shop").await.unwrap();
    let url = cluster.url("shop");
    let shop = deed_pg::connect_plain(&url).await.unwrap();
    shop.batch_execute(SCHEMA).await.unwrap();
    shop.batch_execute("CREATE ROLE orders_svc LOGIN; CREATE ROLE shared_app LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO orders_svc, shared_app;")
        .await
        .unwrap();
    let orders = deed_pg::connect_as(&url, "orders_svc", None).await.unwrap();
    orders.query("SELECT * FROM products WHERE id = $1", &[&1i32]).await.unwrap();
    orders.batch_execute("SELECT name FROM products WHERE id = 1").await.unwrap();
    // Two programs share one role; application_name tells them apart.
    let app_url =
        format!("{}?application_name=catalog-api", url.replace("postgres@", "shared_app@"));
    let catalog = deed_pg::connect_plain(&app_url).await.unwrap();
    catalog.execute("UPDATE products SET name = 'ink' WHERE id = 1", &[]).await.unwrap();
    catalog.batch_execute("SELECT 'deed-log-marker'").await.unwrap();

    let log_dir = cluster.data_dir().join("log");
    let deadline = Instant::now() + Duration::from_secs(20);
    for file in ["server.csv", "server.json", "server.log"] {
        while !std::fs::read_to_string(log_dir.join(file))
            .unwrap_or_default()
            .contains("deed-log-marker")
        {
            assert!(Instant::now() < deadline, "the server did not write {file}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let text = r#"version = 1
[services.catalog]
owns = ["public.products"]
applications = ["catalog-api"]
[services.orders]
owns = ["public.orders"]
logins = ["orders_svc"]
"#;
    let manifest = Manifest::parse(Path::new("deed.toml"), text, &|_| None).unwrap();
    let mut views = Vec::new();
    for file in ["server.csv", "server.json", "server.log"] {
        let request = AuditRequest {
            manifest: Some(manifest.clone()),
            logs: vec![log_dir.join(file)],
            log_database: Some("shop".into()),
            log_line_prefix: file.ends_with(".log").then(|| "%m [%p] %q%u@%d app=%a ".to_string()),
            ..AuditRequest::default()
        };
        let outcome = deed_audit::run(&request).await.unwrap();
        let mut rows: Vec<String> = outcome
            .catalogue
            .accesses
            .iter()
            .map(|a| {
                format!(
                    "{} {} {:?} {} star={}",
                    a.service, a.relation, a.access, a.calls, a.select_star
                )
            })
            .collect();
        rows.sort();
        views.push(rows);
    }
    assert_eq!(views[0], views[1], "csvlog and jsonlog disagree");
    assert_eq!(views[0], views[2], "csvlog and the stderr log disagree");
    // The schema setup ran as the superuser, whom the manifest does not name.
    assert!(
        views[0].contains(&"unknown:postgres public.products Write 1 star=false".to_string()),
        "{:#?}",
        views[0]
    );
    views[0].retain(|row| !row.starts_with("unknown:"));
    assert_eq!(
        views[0],
        [
            "catalog public.products Read 1 star=false",
            "catalog public.products Write 1 star=false",
            "orders public.products Read 2 star=true",
        ]
    );
    drop(cluster);
}

/// SQL stored in the database: a function owned by catalog's login, a
/// trigger on orders' table whose function writes users' table, a rule and
/// a policy. Each is attributed to the service that owns it, or whose
/// writes fire it.
#[tokio::test]
async fn database_code_is_audited() {
    let db = TestDb::new("audit_db_code").await;
    setup(&db).await;
    let admin = db.client().await;
    let catalog = db.role("catalog");
    admin
        .batch_execute(&format!(
            "CREATE TABLE audit_log (msg text);
             CREATE FUNCTION reprice(p int) RETURNS void LANGUAGE plpgsql AS $$
               BEGIN UPDATE products SET price_cents = p; INSERT INTO audit_log VALUES ('repriced'); END $$;
             ALTER FUNCTION reprice(int) OWNER TO \"{catalog}\";
             CREATE FUNCTION copy_email() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN UPDATE users SET email = NEW.customer_email WHERE id = NEW.user_id; RETURN NEW; END $$;
             CREATE TRIGGER copy_email AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION copy_email();
             CREATE RULE count_products AS ON INSERT TO products DO ALSO INSERT INTO audit_log VALUES ('new product');
             ALTER TABLE products ENABLE ROW LEVEL SECURITY;
             CREATE POLICY known_vendor ON products USING (EXISTS (SELECT 1 FROM users u WHERE u.id = products.id));"
        ))
        .await
        .unwrap();
    let request = AuditRequest {
        manifest: Some(manifest(&db)),
        database_url: Some(db.url.clone()),
        database_code: true,
        ..AuditRequest::default()
    };
    let outcome = deed_audit::run(&request).await.unwrap();
    let c = &outcome.catalogue;
    // catalog's own function.
    assert!(has(c, "catalog", "public.products", AccessKind::Write), "{:#?}", c.accesses);
    assert!(has(c, "catalog", "public.audit_log", AccessKind::Write));
    // The trigger fires inside orders' writes, and writes users' table.
    assert!(has(c, "orders", "public.users", AccessKind::Write));
    // catalog's rule and policy.
    assert!(has(c, "catalog", "public.users", AccessKind::Read));
    let rules: Vec<String> = outcome
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.service, f.relation))
        .collect();
    assert!(rules.contains(&"foreign-read catalog public.users".to_string()), "{rules:#?}");
    assert_eq!(c.sources[0].kind, "database code");
}
