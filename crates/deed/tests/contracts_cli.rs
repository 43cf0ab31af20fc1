//! `deed plan`, `apply`, `drift` and `status` from the command line, on a
//! real database: exit codes, the refusal to break observed traffic, and
//! the messages users read.

mod support;

use std::process::Command;
use support::text;

use deed_testkit::TestDb;

async fn setup(db: &TestDb) -> tempfile::TempDir {
    let admin = db.client().await;
    let (catalog, orders) = (db.role("catalog_svc"), db.role("orders_svc"));
    admin
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             CREATE TABLE products (id int PRIMARY KEY, name text, cost_cents int);
             CREATE TABLE orders (id int PRIMARY KEY, product_id int);
             INSERT INTO products VALUES (1, 'pen', 50);
             CREATE ROLE \"{catalog}\" LOGIN; CREATE ROLE \"{orders}\" LOGIN;
             GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{catalog}\", \"{orders}\";"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deed.toml"),
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
columns = ["id", "name"]
[services.{ord}]
owns = ["public.orders"]
logins = ["{orders}"]
reads = ["{cat}.products.v1"]
"#,
            cat = db.service("catalog"),
            ord = db.service("orders"),
        ),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn plan_apply_drift_round_trip() {
    let db = TestDb::new("cli_contracts").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is missing"), "{}", text(&out));

    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("CREATE VIEW \"catalog_api\"")
            || text(&out).contains("_api\".\"products_v1\""),
        "{}",
        text(&out)
    );

    let out = support::run(d, &db.url, &["plan", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["changes"].as_array().unwrap().len() > 3);
    assert!(v["sql"].as_str().unwrap().starts_with("SELECT pg_advisory_lock("));
    assert!(v["sql"].as_str().unwrap().contains("\nBEGIN;\n"));
    assert_eq!(v["breaking"], false);

    let out = support::run(d, &db.url, &["apply", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        support::run(d, &db.url, &["drift"]).status.code(),
        Some(1),
        "--dry-run must change nothing"
    );

    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("applied"), "{}", text(&out));
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let status = support::run(d, &db.url, &["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains("1 contracted"), "{}", text(&status));
    assert!(text(&status).contains("Drift: none"), "{}", text(&status));
}

#[tokio::test]
async fn apply_refuses_to_break_observed_traffic() {
    let db = TestDb::new("cli_breaking").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let orders = db.client_as(&db.role("orders_svc")).await;
    orders.query("SELECT id, cost_cents FROM products WHERE id = $1", &[&1i32]).await.unwrap();

    let out = support::run(d, &db.url, &["plan", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("breaks") && t.contains("SELECT id, cost_cents FROM products WHERE id = $1"),
        "{t}"
    );

    let out = support::run(d, &db.url, &["apply", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));
    let still = orders.query("SELECT id, cost_cents FROM products WHERE id = $1", &[&1i32]).await;
    assert!(still.is_ok(), "a refused apply must change nothing");

    let out =
        support::run(d, &db.url, &["apply", "--from", "pg_stat_statements", "--allow-breaking"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let denied =
        db.client_as(&db.role("orders_svc")).await.query("SELECT id FROM products", &[]).await;
    let err = denied.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{err:?}"
    );
}

#[tokio::test]
async fn contract_commands_need_a_manifest_and_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::deed(dir.path()).arg("plan").env_remove("DATABASE_URL").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no manifest"), "{}", text(&out));
    std::fs::write(dir.path().join("deed.toml"), "version = 1\n").unwrap();
    let out = support::deed(dir.path()).arg("plan").env_remove("DATABASE_URL").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no database"), "{}", text(&out));
    let out = support::deed(dir.path())
        .args(["plan", "--database-url", "postgres://deed:s3cret@127.0.0.1:1/nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("postgres://deed:***@127.0.0.1:1/nowhere"), "{}", text(&out));
    assert!(!text(&out).contains("s3cret"), "a password was printed: {}", text(&out));
}

/// A version the manifest dropped but traffic still reads is kept by the
/// plan, and apply does exactly what the plan showed, --allow-breaking or
/// not.
#[tokio::test]
async fn apply_keeps_what_the_plan_keeps() {
    let db = TestDb::new("cli_keep").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let (cat, ord) = (db.service("catalog"), db.service("orders"));
    let with_v2 = std::fs::read_to_string(d.join("deed.toml")).unwrap().replace(
        &format!("[services.{ord}]"),
        &format!(
            "[[services.{cat}.contracts]]\nname = \"products\"\nversion = 2\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\", \"cost_cents\"]\n[services.{ord}]"
        ),
    );
    std::fs::write(d.join("deed.toml"), &with_v2).unwrap();
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v1 = format!("{cat}_api.products_v1");
    let orders = db.client_as(&db.role("orders_svc")).await;
    orders.batch_execute(&format!("SELECT id, name FROM \"{cat}_api\".products_v1")).await.unwrap();
    // v1 leaves the manifest; orders moves to v2 there, but still reads v1.
    let without_v1 = with_v2
        .replace(
            "[[services.CAT.contracts]]\nname = \"products\"\nversion = 1\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\"]\n"
                .replace("CAT", &cat)
                .as_str(),
            "",
        )
        .replace(&format!("reads = [\"{cat}.products.v1\"]"), &format!("reads = [\"{cat}.products.v2\"]"));
    assert_ne!(without_v1, with_v2);
    std::fs::write(d.join("deed.toml"), &without_v1).unwrap();
    let out = support::run(d, &db.url, &["plan", "--from", "pg_stat_statements"]);
    assert!(text(&out).contains(&format!("keeping {v1}")), "{}", text(&out));
    let out =
        support::run(d, &db.url, &["apply", "--from", "pg_stat_statements", "--allow-breaking"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let exists: bool = db
        .client()
        .await
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&v1])
        .await
        .unwrap()
        .get(0);
    assert!(exists, "apply dropped {v1}, which the plan kept: {}", text(&out));
}

/// deed's own catalog queries, and what administrators ran, are never a
/// service's access: an audit after `plan` and `status` finds nothing.
#[tokio::test]
async fn deeds_own_queries_never_pollute_an_audit() {
    let db = TestDb::new("cli_own_queries").await;
    let dir = setup(&db).await;
    let d = dir.path();
    db.client().await.batch_execute("SELECT pg_stat_statements_reset()").await.unwrap();
    for args in [&["plan"][..], &["status"], &["drift"]] {
        let out = support::run(d, &db.url, args);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{args:?}: {}", text(&out));
    }
    let out =
        support::run(d, &db.url, &["audit", "--from", "pg_stat_statements", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> =
        v["accesses"].as_array().unwrap().iter().map(|a| a["service"].as_str().unwrap()).collect();
    assert!(services.iter().all(|s| s.starts_with("admin:")), "{services:?}");
    let table = support::run(d, &db.url, &["audit", "--from", "pg_stat_statements"]);
    assert!(
        text(&table).contains("(an administrator: setup, migrations, deed itself)"),
        "{}",
        text(&table)
    );

    // A migration role named in [audit] admins is an administrator too.
    let migrator = db.role("flyway");
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{migrator}\" LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{migrator}\";"
        ))
        .await
        .unwrap();
    db.client_as(&migrator).await.batch_execute("UPDATE products SET name = name").await.unwrap();
    let out = support::run(d, &db.url, &["audit", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("unknown:{migrator}")), "{}", text(&out));
    let text_manifest = std::fs::read_to_string(d.join("deed.toml")).unwrap();
    std::fs::write(
        d.join("deed.toml"),
        format!("{text_manifest}\n[audit]\nadmins = [\"{migrator}\"]\n"),
    )
    .unwrap();
    let out = support::run(d, &db.url, &["audit", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("admin:{migrator}")), "{}", text(&out));
}

/// Adoption in two stages: publish the contract views (nothing taken
/// away, so traffic that still reads tables directly is not in the way),
/// move the consumers, then enforce.
#[tokio::test]
async fn adoption_goes_in_two_stages() {
    let db = TestDb::new("cli_stages").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let orders = db.client_as(&db.role("orders_svc")).await;
    orders.query("SELECT id, name FROM products WHERE id = $1", &[&1i32]).await.unwrap();

    let out = support::run(d, &db.url, &["apply", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out =
        support::run(d, &db.url, &["plan", "--stage", "publish", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Nothing is taken away; a role that is not a superuser may give a
    // new owner CREATE on the table's schema for the one step that needs
    // it, and takes it back in that step.
    let takes_away = text(&out)
        .lines()
        .filter(|l| l.to_lowercase().contains("revoke"))
        .filter(|l| !l.trim_start().starts_with("REVOKE CREATE ON SCHEMA"))
        .count();
    assert_eq!(takes_away, 0, "{}", text(&out));
    let out =
        support::run(d, &db.url, &["apply", "--stage", "publish", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing was taken away"), "{}", text(&out));

    let view = format!("{}_api.products_v1", db.service("catalog"));
    let orders = db.client_as(&db.role("orders_svc")).await;
    orders.query("SELECT id, name FROM products", &[]).await.expect("direct reads still work");
    orders.query(&format!("SELECT id, name FROM {view}"), &[]).await.expect("the view is there");
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "what enforce will do is still drift: {}", text(&out));

    // The consumer moves to the view; its old query leaves the record.
    db.client()
        .await
        .batch_execute(
            "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)",
        )
        .await
        .unwrap();
    orders.query(&format!("SELECT id, name FROM {view} WHERE id = $1"), &[&1i32]).await.unwrap();
    let out =
        support::run(d, &db.url, &["apply", "--stage", "enforce", "--from", "pg_stat_statements"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let orders = db.client_as(&db.role("orders_svc")).await;
    let err = orders.query("SELECT id FROM products", &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    orders.query(&format!("SELECT id, name FROM {view}"), &[]).await.unwrap();
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `deed doctor` on a real server: every rung's prerequisites in one
/// report; a login the manifest names but the server lacks fails it.
#[tokio::test]
async fn doctor_checks_every_rung_at_once() {
    let db = TestDb::new("cli_doctor").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let out = support::run(d, &db.url, &["doctor", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    for rung in 0..3 {
        assert!(checks.iter().any(|c| c["rung"] == rung), "{v}");
    }
    let named = |name: &str| checks.iter().find(|c| c["name"] == name).cloned().unwrap();
    assert_eq!(named("pg_dump for deed check")["level"], "ok", "{v}");
    assert_eq!(named("the manifest's logins exist")["level"], "ok", "{v}");

    let manifest = std::fs::read_to_string(d.join("deed.toml")).unwrap();
    let ghost = db.role("ghost_svc");
    std::fs::write(
        d.join("deed.toml"),
        manifest.replacen("logins = [\"", &format!("logins = [\"{ghost}\", \""), 1),
    )
    .unwrap();
    let out = support::run(d, &db.url, &["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&format!("missing: {ghost}")), "{}", text(&out));
    assert!(text(&out).contains("FAIL"), "{}", text(&out));
}

/// A saved plan applies exactly, once; a plan the database moved away from
/// (or a manifest edited since) is refused with nothing changed. Apply
/// reports in the past tense, and piped output carries no colour.
#[tokio::test]
async fn saved_plans_apply_exactly_or_not_at_all() {
    let db = TestDb::new("cli_saved_plan").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let out = support::run(d, &db.url, &["plan", "-o", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains('\u{1b}'), "no colour when piped: {}", text(&out));

    // The database moves on: someone creates the api schema by hand.
    let schema = format!("{}_api", db.service("catalog"));
    db.client().await.batch_execute(&format!("CREATE SCHEMA \"{schema}\"")).await.unwrap();
    let out = support::run(d, &db.url, &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("changed since this plan was made"), "{}", text(&out));
    assert_eq!(
        support::run(d, &db.url, &["drift"]).status.code(),
        Some(1),
        "a refused plan changed something"
    );
    db.client().await.batch_execute(&format!("DROP SCHEMA \"{schema}\"")).await.unwrap();

    // The manifest moves on.
    let manifest = std::fs::read_to_string(d.join("deed.toml")).unwrap();
    std::fs::write(d.join("deed.toml"), format!("{manifest}\n# edited\n")).unwrap();
    let out = support::run(d, &db.url, &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("changed since plan.json was saved"), "{}", text(&out));
    std::fs::write(d.join("deed.toml"), &manifest).unwrap();

    let out = support::run(d, &db.url, &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("created role"), "past tense: {}", text(&out));
    assert_eq!(support::run(d, &db.url, &["drift"]).status.code(), Some(0));
    let out = support::run(d, &db.url, &["apply", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "a plan applies once: {}", text(&out));

    // A contract view redefined by hand: drift shows how.
    let view = format!("\"{schema}\".\"products_v1\"");
    db.client()
        .await
        .batch_execute(&format!(
            "CREATE OR REPLACE VIEW {view} AS SELECT id, name, cost_cents FROM public.products"
        ))
        .await
        .unwrap();
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("(- live, + manifest)"), "{t}");
    assert!(t.lines().any(|l| l.trim_start().starts_with("- ") && l.contains("cost_cents")), "{t}");
}

/// On a terminal, apply shows the plan and asks; only `yes` applies.
/// (`script` gives deed a terminal; the answer is typed into it.)
#[tokio::test]
async fn apply_asks_on_a_terminal() {
    use std::io::Write;
    use std::process::Stdio;
    let db = TestDb::new("cli_confirm").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let run = |answer: &str| {
        let command = format!("{} apply", env!("CARGO_BIN_EXE_deed"));
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(d)
            .env("DATABASE_URL", &db.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the script command (util-linux) gives deed a terminal");
        child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("no\n");
    assert!(text(&out).contains("Apply these changes?"), "{}", text(&out));
    assert!(text(&out).contains("cancelled; nothing was changed"), "{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        support::run(d, &db.url, &["drift"]).status.code(),
        Some(1),
        "no must change nothing"
    );
    let out = run("yes\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("applied"), "{}", text(&out));
    assert_eq!(support::run(d, &db.url, &["drift"]).status.code(), Some(0));
}

/// The contract a consumed event carries is its consumers' API: moving the
/// event to another version is breaking, like a revoke observed traffic
/// needs; plan exits 1 and apply refuses without --allow-breaking.
#[tokio::test]
async fn moving_a_consumed_event_to_another_contract_is_checked_against_its_compatibility() {
    let db = TestDb::new("cli_event_contract").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let (cat, ord) = (db.service("catalog"), db.service("orders"));
    let base = std::fs::read_to_string(d.join("deed.toml")).unwrap();
    let with_event = |version: u32, rule: &str| {
        base.replace(
            &format!("reads = [\"{cat}.products.v1\"]\n"),
            &format!("reads = [\"{cat}.products.v1\"]\nconsumes = [\"{cat}.product_changed\"]\n"),
        ) + &format!(
            "[[services.{cat}.contracts]]\nname = \"products\"\nversion = 2\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\", \"cost_cents\"]\n\
             [[services.{cat}.events]]\nname = \"product_changed\"\nfrom = \"public.products\"\nkey = [\"id\"]\ncontract = \"products.v{version}\"\n{rule}"
        )
    };
    std::fs::write(d.join("deed.toml"), with_event(1, "")).unwrap();
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = support::run(d, &db.url, &["drift"]);
    assert_eq!(out.status.code(), Some(0), "the contracts are recorded: {}", text(&out));

    // v2 adds cost_cents, NOT NULL: a consumer on v2 reading an event of v1
    // would find it missing, which the default rule (backward) forbids.
    db.client()
        .await
        .batch_execute("ALTER TABLE products ALTER cost_cents SET NOT NULL")
        .await
        .unwrap();
    std::fs::write(d.join("deed.toml"), with_event(2, "")).unwrap();
    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&format!("{cat}.products.v1 to {cat}.products.v2")), "{t}");
    assert!(t.contains("compatibility = \"backward\"") && t.contains(&format!("for {ord}")), "{t}");
    assert!(t.contains("adds cost_cents, which is NOT NULL"), "{t}");
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));

    // Under forward (old consumers read new events) adding is compatible.
    std::fs::write(d.join("deed.toml"), with_event(2, "compatibility = \"forward\"\n")).unwrap();
    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(forward compatible)"), "{}", text(&out));
    let out = support::run(d, &db.url, &["apply"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "once applied, nothing is pending: {}", text(&out));

    // Back to v1, an older version: nothing to compare it against as a
    // successor, so it is refused; --allow-breaking takes it anyway.
    std::fs::write(d.join("deed.toml"), with_event(1, "compatibility = \"full\"\n")).unwrap();
    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = support::run(d, &db.url, &["apply", "--allow-breaking"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A rule that is not one is refused at its location.
    std::fs::write(d.join("deed.toml"), with_event(1, "compatibility = \"sideways\"\n")).unwrap();
    let out = support::run(d, &db.url, &["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"sideways\" is not a choice for `compatibility`"),
        "{}",
        text(&out)
    );
}

/// `deed generate` from the command line: before `deed apply` there is no
/// view to read (exit 2, what to run); after it, the files are written,
/// `--check` says they are current (exit 0) and exits 1 once one is
/// edited; an unknown service is exit 2.
#[tokio::test]
async fn generate_writes_models_and_check_gates_on_them() {
    let db = TestDb::new("cli_generate").await;
    let dir = setup(&db).await;
    let d = dir.path();
    let orders = db.service("orders");
    let args = ["generate", "--service", &orders, "--lang", "python", "--out", "models"];
    let out = support::run(d, &db.url, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("deed apply"), "{}", text(&out));

    assert_eq!(support::run(d, &db.url, &["apply"]).status.code(), Some(0));
    let out = support::run(d, &db.url, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1 contract versions and 0 events (6 written"), "{}", text(&out));
    let module = format!("deed_models_{}", orders.replace('-', "_"));
    let contracts = d.join("models").join(&module).join("contracts.py");
    assert!(std::fs::read_to_string(&contracts).unwrap().contains("mapped_column(\"name\", Text)"));

    let check: Vec<&str> = args.iter().copied().chain(["--check"]).collect();
    let out = support::run(d, &db.url, &check);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::write(&contracts, "# edited by hand\n").unwrap();
    let out = support::run(d, &db.url, &[&check[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["changed"][0], format!("{module}/contracts.py"));
    // Written again, it is current; the edit is gone.
    assert_eq!(support::run(d, &db.url, &args).status.code(), Some(0));
    assert_eq!(support::run(d, &db.url, &check).status.code(), Some(0));

    // Every other language, each into its own directory, current after.
    for (lang, file) in [
        ("typescript", "src/contracts.ts"),
        ("rust", "src/models.rs"),
        ("go", "contracts.go"),
        ("jsonschema", ""),
        ("asyncapi", ""),
    ] {
        let args = ["generate", "--service", &orders, "--lang", lang, "--out", lang];
        let out = support::run(d, &db.url, &args);
        assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out));
        if !file.is_empty() {
            let written = std::fs::read_to_string(d.join(lang).join(file)).unwrap();
            assert!(written.contains("products_v1"), "{lang}: {written}");
        }
        let out = support::run(d, &db.url, &[&args[..], &["--check"]].concat());
        assert_eq!(out.status.code(), Some(0), "{lang}: {}", text(&out));
    }

    let out = support::run(
        d,
        &db.url,
        &["generate", "--service", "nobody", "--lang", "jsonschema", "--out", "s"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no service \"nobody\""), "{}", text(&out));
}
