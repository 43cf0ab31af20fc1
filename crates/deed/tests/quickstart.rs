//! The quickstart (docs/quickstart.md), walked on a fresh database by
//! running its commands exactly as written (only the test's unique service
//! names are put in), with the edits a user makes between them; the
//! README's five-minute summary may only use commands of it. If the docs
//! and the tool part ways, this fails.

use std::path::Path;
use std::process::{Command, Output};

use deed_testkit::TestDb;

/// The commands, in order, and the exit code each must give.
const WALK: &[(&str, i32)] = &[
    ("deed doctor", 0),
    ("deed init --from pg_stat_statements --write", 0),
    ("deed audit --from pg_stat_statements", 1),
    ("deed plan --stage publish --from pg_stat_statements", 0),
    ("deed apply --stage publish --from pg_stat_statements", 0),
    ("deed apply --from pg_stat_statements", 0),
    ("deed check --since origin/main migrations/", 0),
    ("deed apply", 0),
    ("deed relay --service catalog --to \"$INBOX_URL\" --until-idle", 0),
    ("deed tail catalog.product_changed --from \"$INBOX_URL\" --limit 1", 0),
    ("deed project --service orders --until-idle", 0),
    ("deed compare orders.products", 0),
    ("deed cutover orders.products", 0),
    ("deed status --from pg_stat_statements", 0),
];

/// The `deed` commands of `sh` blocks in `text`, comments dropped.
fn sh_commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("```") {
            in_sh = !in_sh && line == "```sh";
            continue;
        }
        if in_sh && line.starts_with("deed ") {
            let command = line.split("  #").next().unwrap_or(line).trim_end();
            out.push(command.to_string());
        }
    }
    out
}

fn repository_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path))
        .unwrap_or_else(|e| panic!("{path} at the repository root: {e}"))
}

/// The `deed` commands of the book's quickstart.
fn quickstart_commands() -> Vec<String> {
    sh_commands(&repository_file("docs/quickstart.md"))
}

/// The `deed` commands of the README's five-minute summary of it.
fn readme_commands() -> Vec<String> {
    let readme = repository_file("README.md");
    let start = readme.find("## Five minutes").expect("the README's five-minute quickstart");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    sh_commands(section)
}

struct Walk {
    db: TestDb,
    inbox: TestDb,
    dir: tempfile::TempDir,
    catalog: String,
    orders: String,
}

impl Walk {
    fn run(&self, template: &str, code: i32) -> String {
        let command = template
            .replace("--service catalog", &format!("--service {}", self.catalog))
            .replace("catalog.product_changed", &format!("{}.product_changed", self.catalog))
            .replace("--service orders", &format!("--service {}", self.orders))
            .replace("orders.products", &format!("{}.products", self.orders));
        let bin = Path::new(env!("CARGO_BIN_EXE_deed")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let out: Output = Command::new("sh")
            .args(["-c", &command])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("DATABASE_URL", &self.db.url)
            .env("INBOX_URL", &self.inbox.url)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "`{command}` gave:\n{text}");
        text
    }

    fn manifest(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("deed.toml")).unwrap()
    }

    fn write_manifest(&self, text: &str) {
        std::fs::write(self.dir.path().join("deed.toml"), text).unwrap();
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=deed", "-c", "user.email=deed@example.invalid"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("git is needed for deed check --since");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// catalog reprices, orders reads product names (from `products`) and
/// writes its own orders: each as its own login.
async fn traffic(db: &TestDb, products: &str) {
    let c = db.client_as(&db.role("catalog_svc")).await;
    let o = db.client_as(&db.role("orders_svc")).await;
    for i in 1..=5i32 {
        c.execute("UPDATE products SET price_cents = price_cents + 1 WHERE id = $1", &[&i])
            .await
            .unwrap();
        o.query(&format!("SELECT id, name FROM {products} WHERE id = $1"), &[&i]).await.unwrap();
        o.execute("INSERT INTO orders (product_id) VALUES ($1)", &[&i]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickstart_works_as_written() {
    let walk: Vec<String> = WALK.iter().map(|(c, _)| c.to_string()).collect();
    assert_eq!(
        quickstart_commands(),
        walk,
        "the quickstart's commands (docs/quickstart.md) are not the ones this test runs"
    );
    let summary = readme_commands();
    assert!(summary.len() >= 5, "{summary:?}");
    for command in &summary {
        assert!(
            walk.contains(command),
            "the README runs {command:?}, which the quickstart does not"
        );
    }

    let db = TestDb::new("quickstart").await;
    let inbox = TestDb::new("quickstart_inbox").await;
    let (cat_login, ord_login) = (db.role("catalog_svc"), db.role("orders_svc"));
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price_cents int NOT NULL);
             CREATE TABLE orders (id serial PRIMARY KEY, product_id int NOT NULL);
             INSERT INTO products SELECT g, 'p' || g, 100 FROM generate_series(1, 5) g;
             CREATE ROLE \"{cat_login}\" LOGIN; CREATE ROLE \"{ord_login}\" LOGIN;
             GRANT ALL ON ALL TABLES IN SCHEMA public TO \"{cat_login}\", \"{ord_login}\";
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \"{ord_login}\";
             SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0);"
        ))
        .await
        .unwrap();
    // init names a service after its login, without `_svc`.
    let catalog = cat_login.trim_end_matches("_svc").to_string();
    let orders = ord_login.trim_end_matches("_svc").to_string();
    traffic(&db, "products").await;
    let w = Walk { db, inbox, dir: tempfile::tempdir().unwrap(), catalog, orders };
    let mut steps = WALK.iter();
    let mut next = |expect: &str| {
        let (command, code) = steps.next().unwrap();
        assert!(command.starts_with(expect), "{command}");
        w.run(command, *code)
    };

    next("deed doctor");
    next("deed init");
    let proposal = w.manifest();
    assert!(proposal.contains(&format!("[services.{}]", w.catalog)), "{proposal}");
    // The superuser that set the database up (and ran deed) is no service.
    assert!(!proposal.contains("[services.postgres]"), "{proposal}");
    let out = next("deed audit");
    assert!(out.contains("foreign-read"), "{out}");

    // The review: uncomment the proposed contract, list it in orders' reads.
    let mut section = String::new();
    let reviewed: Vec<String> = proposal
        .lines()
        .map(|l| {
            if l.starts_with('[') {
                section = l.to_string();
            }
            let t = l.strip_prefix("# ").unwrap_or(l);
            let keys = ["[[services.", "name = ", "version = ", "from = ", "columns = "];
            if l.starts_with("# ") && keys.iter().any(|k| t.starts_with(k)) {
                return t.split("   #").next().unwrap().to_string();
            }
            if section == format!("[services.{}]", w.orders) && l == "reads = []" {
                return format!("reads = [\"{}.products.v1\"]", w.catalog);
            }
            l.to_string()
        })
        .collect();
    w.write_manifest(&(reviewed.join("\n") + "\n"));

    let out = next("deed plan --stage publish");
    assert!(!out.contains("revoke"), "{out}");
    next("deed apply --stage publish");
    let view = format!("{}_api.products_v1", w.catalog);
    let o = w.db.client_as(&ord_login).await;
    o.query("SELECT id FROM products", &[]).await.expect("publish takes nothing away");
    o.query(&format!("SELECT id FROM {view}"), &[]).await.expect("the contract view exists");

    // orders moves to the view; its old statement leaves the record.
    w.db.client()
        .await
        .batch_execute("SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)")
        .await
        .unwrap();
    traffic(&w.db, &view).await;
    next("deed apply --from");
    let o = w.db.client_as(&ord_login).await;
    let denied = o.query("SELECT id FROM products", &[]).await.unwrap_err();
    assert_eq!(denied.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));

    // A pull request that adds a migration.
    w.git(&["init", "-q"]);
    w.git(&["add", "-A"]);
    w.git(&["commit", "-q", "-m", "deed.toml"]);
    w.git(&["update-ref", "refs/remotes/origin/main", "HEAD"]);
    std::fs::create_dir(w.dir.path().join("migrations")).unwrap();
    std::fs::write(
        w.dir.path().join("migrations/0001_note.sql"),
        "ALTER TABLE products ADD COLUMN note text;\n",
    )
    .unwrap();
    let out = next("deed check");
    assert!(out.contains("1 migration file, 1 statement"), "{out}");

    // Rung 2: the event, as the README shows it.
    w.write_manifest(&format!(
        "{}\n[[services.{}.events]]\nname = \"product_changed\"\nfrom = \"public.products\"\nkey = [\"id\"]\ncontract = \"products.v1\"\n",
        w.manifest(),
        w.catalog
    ));
    next("deed apply");
    w.db.client_as(&cat_login)
        .await
        .execute("UPDATE products SET name = 'renamed' WHERE id = 3", &[])
        .await
        .unwrap();
    let out = next("deed relay");
    assert!(out.contains("delivered 1 event"), "{out}");
    let out = next("deed tail");
    let event: serde_json::Value = serde_json::from_str(out.trim()).expect("one envelope");
    assert_eq!(event["type"], format!("{}.product_changed", w.catalog), "{out}");
    assert_eq!(event["key"]["id"], 3, "{out}");

    // Rung 3: orders' own copy, as the README shows it, beside what orders
    // has in deed.toml.
    let header = format!("[services.{}]", w.orders);
    let with_copy: Vec<String> = w
        .manifest()
        .lines()
        .flat_map(|l| {
            let mut out = vec![l.to_string()];
            if l == header {
                out.push(format!("consumes = [\"{}.product_changed\"]", w.catalog));
                out.push("database = \"${INBOX_URL}\"".into());
            }
            out
        })
        .collect();
    w.write_manifest(&format!(
        "{}\n[[services.{o}.projections]]\nname = \"products\"\nevent = \"{c}.product_changed\"\ninto = \"public.product_copies\"\nreplaces = \"{c}.products.v1\"\n",
        with_copy.join("\n"),
        o = w.orders,
        c = w.catalog
    ));
    let out = next("deed project");
    assert!(out.contains("5 rows"), "{out}");
    let out = next("deed compare");
    assert!(out.contains("equal"), "{out}");
    let copies = w.inbox.client_as(&ord_login).await;
    let names: Vec<String> = copies
        .query("SELECT name FROM public.product_copies ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["p1", "p2", "renamed", "p4", "p5"]);
    let before = w.manifest();
    let out = next("deed cutover");
    assert!(out.contains("REVOKE"), "{out}");
    let read = format!("reads = [\"{}.products.v1\"]", w.catalog);
    assert_eq!(w.manifest(), before.replace(&read, "reads = []"), "only the read leaves deed.toml");
    let o = w.db.client_as(&ord_login).await;
    let denied = o.query(&format!("SELECT id FROM {view}"), &[]).await.unwrap_err();
    assert_eq!(denied.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));

    let out = next("deed status");
    let flow = format!("{} ← {}: products", w.orders, w.catalog);
    let line = out.lines().find(|l| l.contains(&flow)).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("3 severed"), "{out}");
    assert!(out.contains("equal; cut over"), "{out}");
}
