//! Consumer-side contract tests and version bumps: no database needed.

use std::path::Path;

use deed_check::{bump, check_consumer};
use deed_manifest::Manifest;

const MANIFEST: &str = r#"version = 1

[services.catalog]
owns = ["public.products"]

# The first published shape.
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]   # what orders needs

[[services.catalog.contracts]]   # published as catalog_api.products_v2
name = "products"
version = 2
from = "public.products"
columns = ["id", "name", "price_cents", "currency"]

# Orders.
[services.orders]
owns = ["public.orders"]
reads = ["catalog.products.v1"]
"#;

fn manifest() -> Manifest {
    Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None).unwrap()
}

#[test]
fn consumer_sql_must_stay_inside_its_contracts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.sql"),
        "SELECT id, name, price_cents FROM catalog_api.products_v1 WHERE id = $1;\n\
         INSERT INTO orders (product_id) SELECT p.id FROM catalog_api.products_v1 p WHERE p.id = $1;\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.sql"),
        "SELECT cost_cents FROM catalog_api.products_v1;\n\
         SELECT * FROM products;\n\
         SELECT currency FROM catalog_api.products_v2;\n\
         UPDATE catalog_api.products_v1 SET name = 'x';\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join(".sqlx")).unwrap();
    std::fs::write(
        dir.path().join(".sqlx/query-abc.json"),
        r#"{"query": "SELECT o.id, p.cost_cents\nFROM orders o JOIN catalog_api.products_v1 p ON p.id = o.product_id"}"#,
    )
    .unwrap();
    let outcome =
        check_consumer(&manifest(), "orders", dir.path(), deed_sql::Placeholders::Auto).unwrap();
    let found: Vec<String> = outcome
        .violations
        .iter()
        .map(|v| {
            format!(
                "{}:{}:{} {}",
                Path::new(&v.file).file_name().unwrap().to_string_lossy(),
                v.line,
                v.column,
                v.message
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "query-abc.json:1:1 orders uses cost_cents of catalog_api.products_v1, which catalog.products.v1 does not publish",
            "bad.sql:1:1 orders uses cost_cents, which none of the contract versions it reads here publishes",
            "bad.sql:2:1 orders reads public.products directly, outside the contracts it reads (catalog owns it)",
            "bad.sql:3:1 orders reads catalog_api.products_v2 (catalog.products.v2) without declaring it: add \"catalog.products.v2\" to its reads",
            "bad.sql:4:1 orders writes the contract view catalog_api.products_v1; contracts are read-only",
        ]
    );
    assert!(outcome.violations[0].location.contains("(query text)"));
    assert_eq!(outcome.statements, 7);
}

#[test]
fn a_clean_consumer_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        "SELECT * FROM catalog_api.products_v1;\nSELECT id FROM orders;\n",
    )
    .unwrap();
    let outcome =
        check_consumer(&manifest(), "orders", dir.path(), deed_sql::Placeholders::Auto).unwrap();
    assert!(outcome.violations.is_empty(), "{:#?}", outcome.violations);
}

#[test]
fn bump_copies_the_latest_version_right_after_it() {
    let (text, reference) = bump(&manifest(), "catalog.products").unwrap();
    assert_eq!(reference, "catalog.products.v3");
    insta::assert_snapshot!(text);
    let m = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    assert_eq!(m.service("catalog").unwrap().contracts.len(), 3);
    assert!(bump(&manifest(), "catalog.nothing").is_err());
    assert!(bump(&manifest(), "nobody.products").is_err());
    assert!(bump(&manifest(), "products").is_err());
}
