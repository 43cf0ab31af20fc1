//! `deed check` and `deed contract bump` from the command line.

mod support;

use std::process::Output;
use support::text;

use deed_testkit::TestDb;

fn deed(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = support::deed(dir);
    c.args(args).envs(env.iter().copied());
    c.output().unwrap()
}

async fn project(db: &TestDb) -> tempfile::TempDir {
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL, cost_cents int);
             CREATE SCHEMA catalog_api;
             CREATE VIEW catalog_api.products_v1 WITH (security_barrier) AS SELECT id, name, price_cents FROM products;",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        r#"version = 1
[database]
url = "${DATABASE_URL}"
[services.catalog]
owns = ["public.products"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]
[services.orders]
reads = ["catalog.products.v1"]
"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/001_safe.sql"),
        "ALTER TABLE products DROP COLUMN cost_cents;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("migrations/002_breaking.sql"),
        "ALTER TABLE products ADD COLUMN price_eur numeric;\n\nALTER TABLE products DROP COLUMN price_cents CASCADE;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("migrations/003_invalid.sql"),
        "ALTER TABLE products ADD COLUMN;\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn check_exit_codes_and_formats() {
    let db = TestDb::new("check_cli").await;
    let dir = project(&db).await;
    let d = dir.path();
    let env = [("DATABASE_URL", db.url.as_str())];

    let out = deed(d, &["check", "migrations/001_safe.sql"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Safe"), "{}", text(&out));

    let out = deed(d, &["check", "migrations/001_safe.sql", "migrations/002_breaking.sql"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("migrations/002_breaking.sql:3:1: breaking: drops catalog_api.products_v1 (through CASCADE)"), "{t}");
    assert!(t.contains("read by orders"), "{t}");
    assert!(t.contains("safe route:"), "{t}");

    let out = deed(d, &["check", "migrations/002_breaking.sql", "--format", "json"], &env);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b = &v["breaking"][0];
    assert_eq!(b["kind"], "dropped");
    assert_eq!(b["line"], 3);
    assert_eq!(b["contract"], "catalog.products.v1");
    assert_eq!(b["consumers"][0], "orders");

    let gh = [("DATABASE_URL", db.url.as_str()), ("GITHUB_ACTIONS", "true")];
    let out = deed(d, &["check", "migrations/002_breaking.sql"], &gh);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("::error file=migrations/002_breaking.sql,line=3,col=1,title=deed check%3A breaks catalog.products.v1::"), "{stdout}");

    let out = deed(d, &["check", "migrations/003_invalid.sql"], &env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("migrations/003_invalid.sql:1:"), "{}", text(&out));

    let out = deed(d, &["check"], &env);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bump_edits_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        "version = 1\n[services.catalog]\nowns = [\"public.products\"]\n[[services.catalog.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\"]\n",
    )
    .unwrap();
    let out = deed(dir.path(), &["contract", "bump", "catalog.products"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("added catalog.products.v2"));
    let after = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap();
    assert!(after.contains("version = 2"), "{after}");
    let out = deed(dir.path(), &["contract", "bump", "catalog.nothing"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn consumer_check_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
        "version = 1\n[services.catalog]\nowns = [\"public.products\"]\n[[services.catalog.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\"]\n[services.orders]\nreads = [\"catalog.products.v1\"]\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sql")).unwrap();
    std::fs::write(dir.path().join("sql/q.sql"), "SELECT id, name FROM catalog_api.products_v1;\n")
        .unwrap();
    let out = deed(dir.path(), &["check", "--consumer", "orders", "--from-sql", "sql"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(dir.path().join("sql/bad.sql"), "\nSELECT name FROM products;\n").unwrap();
    let out = deed(dir.path(), &["check", "--consumer", "orders", "--from-sql", "sql"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("sql/bad.sql:2:1: orders reads public.products directly"),
        "{}",
        text(&out)
    );
}

/// SIGTERM or SIGINT in the middle of a check drops its scratch database;
/// one a killed check left behind (SIGKILL cannot be caught) is swept by
/// the next check once it is hours old and nobody uses it.
#[tokio::test]
async fn an_interrupted_check_leaves_no_scratch_database() {
    let db = TestDb::new("check_interrupt").await;
    let dir = project(&db).await;
    std::fs::write(dir.path().join("slow.sql"), "SELECT pg_sleep(30);\n").unwrap();
    let admin = deed_testkit::admin_client().await;
    // This test's scratch databases end with its database's name (cut to
    // 30 characters); other tests run checks at the same time.
    let mut base = db.name.clone();
    base.truncate(30);
    let scratch = || async {
        let rows = admin
            .query(
                "SELECT datname::text FROM pg_database
                  WHERE datname LIKE 'deed\\_check\\_%' AND (datname LIKE '%' || $1 OR datname LIKE '%\\_old')
                  ORDER BY 1",
                &[&base],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
    };
    let before = scratch().await;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let child = support::deed(dir.path())
            .args(["check", "slow.sql"])
            .env("DATABASE_URL", &db.url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the scratch database exists.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while scratch().await.len() == before.len() {
            assert!(std::time::Instant::now() < deadline, "no scratch database appeared");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // SAFETY: signalling a child this test started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("the scratch database was dropped"), "{}", text(&out));
        assert_eq!(scratch().await, before, "signal {signal} left a scratch database");
    }
    // Left behind long ago by a killed check (run as the same role): swept.
    db.client()
        .await
        .batch_execute("CREATE DATABASE deed_check_1000000000_00c0ffee_old")
        .await
        .unwrap();
    std::fs::write(dir.path().join("ok.sql"), "SELECT 1;\n").unwrap();
    let out = deed(dir.path(), &["check", "ok.sql"], &[("DATABASE_URL", &db.url)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!scratch().await.contains(&"deed_check_1000000000_00c0ffee_old".to_string()));
}
