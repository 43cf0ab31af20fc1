//! A corpus of migrations, each labelled safe or breaking (and how), run by
//! `deed check` against a real schema with published contracts. A wrong
//! verdict fails the suite. The labelled migrations are files under
//! `tests/fixtures/check/`: a case is added without touching Rust.

use std::path::{Path, PathBuf};

use deed_check::{BreakKind, CheckError, CheckOutcome, CheckRequest, check};
use deed_manifest::{Date, Manifest};
use deed_testkit::TestDb;

const SCHEMA: &str = "
    CREATE TABLE vendors (id bigint PRIMARY KEY, name text NOT NULL);
    CREATE TABLE products (id bigint PRIMARY KEY, vendor_id bigint REFERENCES vendors, name text NOT NULL,
                           price_cents int NOT NULL, cost_cents int, note text);
    CREATE VIEW product_base AS SELECT id, name, price_cents FROM products;
    CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL);
    -- The contracts, as deed apply published them.
    CREATE SCHEMA catalog_api;
    CREATE VIEW catalog_api.products_v1 WITH (security_barrier) AS SELECT id, name, price_cents FROM public.products;
    CREATE VIEW catalog_api.base_v1 WITH (security_barrier) AS SELECT id, name FROM public.product_base;
    CREATE VIEW catalog_api.vendors_v1 WITH (security_barrier) AS SELECT id, name FROM public.vendors;";

const MANIFEST: &str = r#"version = 1
[services.catalog]
owns = ["public.products", "public.vendors", "public.product_base"]

[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]

[[services.catalog.contracts]]
name = "base"
version = 1
from = "public.product_base"
query = "SELECT id, name FROM public.product_base"

[[services.catalog.contracts]]
name = "vendors"
version = 1
from = "public.vendors"
columns = ["id", "name"]

[services.orders]
owns = ["public.orders"]
reads = ["catalog.products.v1", "catalog.base.v1"]
"#;

struct Fixture {
    db: TestDb,
    dir: tempfile::TempDir,
    manifest: Manifest,
}

impl Fixture {
    async fn new(label: &str) -> Fixture {
        let db = TestDb::new(label).await;
        db.client().await.batch_execute(SCHEMA).await.unwrap();
        let manifest = Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None).unwrap();
        Fixture { db, dir: tempfile::tempdir().unwrap(), manifest }
    }

    fn file(&self, name: &str, sql: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, sql).unwrap();
        path
    }

    async fn check(&self, files: &[(&str, &str)]) -> Result<CheckOutcome, CheckError> {
        let migrations = files.iter().map(|(n, sql)| self.file(n, sql)).collect();
        check(&CheckRequest {
            manifest: self.manifest.clone(),
            database_url: self.db.url.clone(),
            scratch_url: None,
            migrations,
            audit: None,
            today: Date::today(),
        })
        .await
    }
}

/// The expected kind of break and its 1-based line, or `None` for safe.
type Verdict = Option<(BreakKind, usize)>;

const KINDS: [BreakKind; 8] = [
    BreakKind::Dropped,
    BreakKind::ColumnsChanged,
    BreakKind::Redefined,
    BreakKind::NotNullDropped,
    BreakKind::NotNullAdded,
    BreakKind::Renamed,
    BreakKind::DefinitionBroken,
    BreakKind::Blocked,
];

/// `ColumnsChanged` as the fixtures write it: `columns-changed`.
fn kebab(kind: BreakKind) -> String {
    let mut out = String::new();
    for (i, c) in format!("{kind:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The labelled migrations under `tests/fixtures/check/`, in file-name
/// order: each file's first line says what `deed check` must find,
/// `-- <label>: safe` or `-- <label>: <kind> at line <n>` (the line counted
/// in the file as written).
fn cases() -> Vec<(String, String, String, Verdict)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&path).unwrap();
            let header = sql.lines().next().unwrap_or_default();
            let (label, expect) =
                header.strip_prefix("-- ").and_then(|h| h.rsplit_once(": ")).unwrap_or_else(|| {
                    panic!("{name}: the first line must be `-- <label>: <verdict>`")
                });
            let verdict = if expect == "safe" {
                None
            } else {
                let (kind, line) = expect
                    .split_once(" at line ")
                    .unwrap_or_else(|| panic!("{name}: write `<kind> at line <n>` or `safe`"));
                let kind = KINDS
                    .into_iter()
                    .find(|k| kebab(*k) == kind)
                    .unwrap_or_else(|| panic!("{name}: no kind of break {kind:?}"));
                Some((kind, line.parse().unwrap_or_else(|_| panic!("{name}: line {line:?}"))))
            };
            (name, label.to_string(), sql, verdict)
        })
        .collect()
}

#[tokio::test]
async fn every_labelled_migration_gets_its_verdict() {
    let f = Fixture::new("corpus").await;
    let mut wrong = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 19, "the corpus is missing files: {}", cases.len());
    for (name, label, sql, expected) in &cases {
        let outcome = match f.check(&[(name, sql)]).await {
            Ok(o) => o,
            Err(e) => {
                wrong.push(format!("{label}: error {e}"));
                continue;
            }
        };
        let got = outcome.findings.first().map(|x| (x.kind, x.line));
        if got != *expected {
            wrong.push(format!(
                "{label}: expected {expected:?}, got {got:?}: {:#?}",
                outcome.findings
            ));
        }
        if let Some(x) = outcome.findings.first() {
            assert!(x.file.ends_with(name.as_str()), "{label}: {}", x.file);
            assert!(x.consumers.contains(&"orders".to_string()), "{label}: {:?}", x.consumers);
            assert!(!x.safe_route.is_empty());
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn safe_alone_but_breaking_with_the_next_file() {
    let f = Fixture::new("sequence").await;
    let first = (
        "001_add_price.sql",
        "ALTER TABLE products ADD COLUMN price numeric;\nUPDATE products SET price = price_cents / 100.0;",
    );
    let second = ("002_drop_cents.sql", "ALTER TABLE products DROP COLUMN price_cents CASCADE;");
    assert!(f.check(&[first]).await.unwrap().findings.is_empty());
    let both = f.check(&[first, second]).await.unwrap();
    assert_eq!(both.findings.len(), 2, "{:#?}", both.findings);
    assert!(both.findings.iter().all(|x| x.file.ends_with("002_drop_cents.sql") && x.line == 1));
    let message = &both.findings[0].message;
    assert!(message.contains("drops catalog_api.products_v1 (through CASCADE)"), "{message}");
    assert!(
        both.findings[0].safe_route.contains("catalog.products.v1"),
        "{}",
        both.findings[0].safe_route
    );
}

#[tokio::test]
async fn an_unread_version_may_change() {
    let f = Fixture::new("unread").await;
    let outcome =
        f.check(&[("001.sql", "ALTER TABLE vendors DROP COLUMN name CASCADE;")]).await.unwrap();
    assert!(outcome.findings.is_empty());
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.contains("catalog.vendors.v1") && n.contains("nothing breaks")),
        "{:?}",
        outcome.notes
    );
}

#[tokio::test]
async fn bad_migrations_are_errors_at_their_location() {
    let f = Fixture::new("errors").await;
    let err = f
        .check(&[("001.sql", "SELECT 1;\nALTER TABLE products ADD COLUMN x int\nALTER TABLE y;")])
        .await
        .err()
        .unwrap();
    match err {
        CheckError::Input { location, message } => {
            assert!(location.ends_with("001.sql:3:1"), "{location}");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("{other}"),
    }
    let err =
        f.check(&[("002.sql", "\n\nALTER TABLE nowhere ADD COLUMN x int;")]).await.err().unwrap();
    match err {
        CheckError::Input { location, message } => {
            assert!(location.ends_with("002.sql:3:1"), "{location}");
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_scratch_database_never_outlives_the_check() {
    let f = Fixture::new("scratch").await;
    f.check(&[("001.sql", "DROP TABLE products CASCADE;")]).await.unwrap();
    let _ = f.check(&[("002.sql", "ALTER TABLE nowhere ADD COLUMN x int;")]).await;
    let admin = f.db.client().await;
    let left: i64 = admin
        .query_one(
            &format!(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'deed_check_{}\\_%'",
                f.db.name
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    // And the live schema is untouched.
    let exists: bool =
        f.db.client()
            .await
            .query_one("SELECT to_regclass('public.products') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
    assert!(exists);
}

/// A rename moves what the contracts depend on; a later statement on the
/// new name must still be followed.
#[tokio::test]
async fn statements_on_a_renamed_source_are_still_followed() {
    let f = Fixture::new("renamed").await;
    let outcome = f
        .check(&[(
            "001.sql",
            "ALTER TABLE products RENAME TO products_old;\nDROP TABLE products_old CASCADE;",
        )])
        .await
        .unwrap();
    let kinds: Vec<(BreakKind, usize)> =
        outcome.findings.iter().map(|x| (x.kind, x.line)).collect();
    assert!(kinds.contains(&(BreakKind::Renamed, 1)), "{kinds:?}");
    assert!(kinds.contains(&(BreakKind::Dropped, 2)), "{kinds:?}");
}

/// A version not yet published is not followed through the migrations,
/// but it must be publishable after them.
#[tokio::test]
async fn new_versions_must_be_publishable_after_the_migrations() {
    let mut f = Fixture::new("pending").await;
    let text = MANIFEST.replace(
        "[services.orders]",
        "[[services.catalog.contracts]]\nname = \"products\"\nversion = 2\nfrom = \"public.products\"\ncolumns = [\"id\", \"name\", \"price_eur\"]\n\n[services.orders]",
    );
    f.manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    let expand = ("001_expand.sql", "ALTER TABLE products ADD COLUMN price_eur numeric(12,2);");
    let outcome = f.check(&[expand]).await.unwrap();
    assert!(outcome.findings.is_empty() && outcome.notes.is_empty(), "{outcome:#?}");
    // Without the column, v2 cannot be published: a note while nobody reads it ...
    let outcome =
        f.check(&[("001_other.sql", "ALTER TABLE products ADD COLUMN x int;")]).await.unwrap();
    assert!(outcome.findings.is_empty());
    assert!(
        outcome.notes.iter().any(|n| n.contains("catalog.products.v2 cannot be published")),
        "{:?}",
        outcome.notes
    );
    // ... and breaking once a service reads it.
    let read = text.replace(
        "reads = [\"catalog.products.v1\", ",
        "reads = [\"catalog.products.v1\", \"catalog.products.v2\", ",
    );
    f.manifest = Manifest::parse(Path::new("deed.toml"), &read, &|_| None).unwrap();
    let outcome =
        f.check(&[("001_other.sql", "ALTER TABLE products ADD COLUMN x int;")]).await.unwrap();
    assert_eq!(outcome.findings.len(), 1, "{outcome:#?}");
    assert_eq!(outcome.findings[0].kind, BreakKind::DefinitionBroken);
}

/// A version the manifest dropped, which deed apply would remove, but
/// which traffic still reads: check warns.
#[tokio::test]
async fn observed_reads_of_a_leaving_version_are_reported() {
    let f = Fixture::new("leaving").await;
    let admin = f.db.client().await;
    let reader = f.db.role("legacy_reader");
    admin
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             CREATE VIEW catalog_api.products_v0 AS SELECT id FROM public.products;
             COMMENT ON VIEW catalog_api.products_v0 IS 'deed contract catalog.products.v0; owner catalog; source deed.toml';
             CREATE ROLE \"{reader}\" LOGIN;
             GRANT USAGE ON SCHEMA catalog_api TO \"{reader}\";
             GRANT SELECT ON catalog_api.products_v0 TO \"{reader}\";"
        ))
        .await
        .unwrap();
    f.db.client_as(&reader)
        .await
        .query("SELECT id FROM catalog_api.products_v0", &[])
        .await
        .unwrap();
    let migration = f.file("001.sql", "ALTER TABLE products ADD COLUMN x int;");
    let outcome = check(&CheckRequest {
        manifest: f.manifest.clone(),
        database_url: f.db.url.clone(),
        scratch_url: None,
        migrations: vec![migration],
        audit: Some(deed_audit::AuditRequest {
            manifest: Some(f.manifest.clone()),
            database_url: Some(f.db.url.clone()),
            pg_stat_statements: true,
            ..Default::default()
        }),
        today: Date::today(),
    })
    .await
    .unwrap();
    let note = outcome
        .notes
        .iter()
        .find(|n| n.contains("catalog_api.products_v0"))
        .unwrap_or_else(|| panic!("{:?}", outcome.notes));
    assert!(note.contains(&format!("unknown:{reader}")), "{note}");
}

/// The same corpus wrapped the way alembic `--sql`, Flyway and many
/// hand-written files wrap a migration (a psql setting, then `BEGIN; …
/// COMMIT;`): the same verdicts, one line further down.
#[tokio::test]
async fn wrapped_migrations_get_the_same_verdicts() {
    let f = Fixture::new("corpus_wrapped").await;
    let mut wrong = Vec::new();
    for (file, label, sql, expected) in &cases() {
        let name = format!("w{file}");
        let wrapped = format!("\\set ON_ERROR_STOP on\nBEGIN;\n{sql}\nCOMMIT;\n");
        let expected = expected.map(|(kind, line)| (kind, line + 2));
        match f.check(&[(&name, &wrapped)]).await {
            Ok(o) => {
                let got = o.findings.first().map(|x| (x.kind, x.line));
                if got != expected {
                    wrong.push(format!("{label}: expected {expected:?}, got {got:?}"));
                }
            }
            Err(e) => wrong.push(format!("{label}: error {e}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A statement a contract blocks does not end the check: it is reported,
/// stepped past (its transaction replayed without the view), and every
/// later statement of every file is still checked and counted.
#[tokio::test]
async fn every_finding_of_every_file_in_one_run() {
    let f = Fixture::new("corpus_every").await;
    let o = f
        .check(&[
            (
                "a.sql",
                "BEGIN;\nALTER TABLE vendors DROP COLUMN name;\nCOMMIT;\nALTER TABLE products ALTER COLUMN name DROP NOT NULL;\n",
            ),
            ("b.sql", "ALTER TABLE products RENAME COLUMN price_cents TO price;\n"),
        ])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((o.files, o.statements), (2, 5), "{:?}", o.notes);
    let got: Vec<(String, usize, BreakKind)> = o
        .findings
        .iter()
        .map(|x| (x.file.rsplit('/').next().unwrap().to_string(), x.line, x.kind))
        .collect();
    assert!(got.contains(&("a.sql".into(), 4, BreakKind::NotNullDropped)), "{got:?}");
    assert!(got.iter().any(|(file, line, _)| file == "b.sql" && *line == 1), "{got:?}");
    assert!(
        o.notes.iter().any(|n| n.contains("a.sql:2:") && n.contains("vendors_v1")),
        "the blocked statement is still reported: {:?}",
        o.notes
    );
}

/// A change of an event's payload nullability, judged by the event's
/// `compatibility` (Schema Registry's meaning), its consumers named: a
/// column that loses NOT NULL breaks `forward` and `full` (consumers on
/// the earlier payload get NULL), one that gains it breaks `backward` and
/// `full` (published events may lack it); `none` accepts both. The
/// contract's view is read by nobody, so only the event decides.
#[tokio::test]
async fn an_event_payload_change_is_judged_by_its_compatibility() {
    let relax = "ALTER TABLE stock ALTER COLUMN qty DROP NOT NULL;";
    let tighten = "UPDATE stock SET location = '' WHERE location IS NULL;\nALTER TABLE stock ALTER COLUMN location SET NOT NULL;";
    for (rule, relax_breaks, tighten_breaks) in [
        ("backward", false, true),
        ("forward", true, false),
        ("full", true, true),
        ("none", false, false),
    ] {
        let mut f = Fixture::new(&format!("corpus_event_{rule}")).await;
        f.db.client()
            .await
            .batch_execute(
                "CREATE TABLE stock (id bigint PRIMARY KEY, qty int NOT NULL, location text);
                 CREATE VIEW catalog_api.stock_v1 WITH (security_barrier) AS SELECT id, qty, location FROM public.stock;",
            )
            .await
            .unwrap();
        let text = MANIFEST.replace(
            "owns = [\"public.products\", \"public.vendors\", \"public.product_base\"]\n",
            &format!(
                "owns = [\"public.products\", \"public.vendors\", \"public.product_base\", \"public.stock\"]\n\n\
                 [[services.catalog.contracts]]\nname = \"stock\"\nversion = 1\nfrom = \"public.stock\"\ncolumns = [\"id\", \"qty\", \"location\"]\n\n\
                 [[services.catalog.events]]\nname = \"stock_changed\"\nfrom = \"public.stock\"\nkey = [\"id\"]\ncontract = \"stock.v1\"\ncompatibility = \"{rule}\"\n"
            ),
        ) + "\n[services.shipping]\nconsumes = [\"catalog.stock_changed\"]\n";
        f.manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (sql, breaks, kind, line) in [
            (relax, relax_breaks, BreakKind::NotNullDropped, 1),
            (tighten, tighten_breaks, BreakKind::NotNullAdded, 2),
        ] {
            let o = f.check(&[("m.sql", sql)]).await.unwrap_or_else(|e| panic!("{e}"));
            let got: Vec<(BreakKind, usize, Vec<String>)> =
                o.findings.iter().map(|x| (x.kind, x.line, x.consumers.clone())).collect();
            if breaks {
                assert_eq!(got, [(kind, line, vec!["shipping".to_string()])], "{rule}: {sql}");
                let message = &o.findings[0].message;
                assert!(
                    message.contains(&format!(
                        "event catalog.stock_changed (compatibility = \"{rule}\") is consumed by shipping"
                    )),
                    "{message}"
                );
            } else {
                assert!(got.is_empty(), "{rule} accepts {sql}, found {got:?}");
            }
        }
    }
}
