//! Each rule against statements attributed to services: the case that must
//! produce the finding, and the near miss that must not.

use std::path::Path;

use deed_audit::{Catalogue, Collector, Finding, Rule, rules};
use deed_manifest::Manifest;
use deed_sql::OfflineLookup;

const MANIFEST: &str = r#"
version = 1
[services.catalog]
owns = ["public.products", "public.vendors"]
logins = ["catalog_svc"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]
[services.orders]
owns = ["public.orders"]
logins = ["orders_svc"]
reads = ["catalog.products.v1"]
[services.fulfillment]
owns = ["public.shipments"]
logins = ["fulfillment_svc"]
"#;

fn manifest() -> Manifest {
    Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None).unwrap()
}

/// (service, sql) pairs → findings as `rule service relation` strings.
fn findings(statements: &[(&str, &str)]) -> Vec<String> {
    full(statements).iter().map(|f| format!("{} {} {}", f.rule, f.service, f.relation)).collect()
}

fn full(statements: &[(&str, &str)]) -> Vec<Finding> {
    let m = manifest();
    let lookup = OfflineLookup::default();
    let mut c = Collector::new(&lookup);
    for (service, sql) in statements {
        c.add(service, sql, 1);
    }
    let catalogue = Catalogue::build(&c, Some(&m), None, Vec::new());
    rules::evaluate(&catalogue, Some(&m))
}

#[test]
fn foreign_write() {
    assert_eq!(
        findings(&[("fulfillment", "UPDATE orders SET status = 'shipped' WHERE id = 1")]),
        ["foreign-write fulfillment public.orders", "foreign-read fulfillment public.orders",]
    );
    assert!(findings(&[("orders", "UPDATE orders SET status = 'paid' WHERE id = 1")]).is_empty());
    let f = full(&[("fulfillment", "INSERT INTO orders (status) VALUES ('x')")]);
    assert_eq!(f[0].rule, Rule::ForeignWrite);
    assert!(f[0].message.contains("which orders owns"), "{}", f[0].message);
}

#[test]
fn foreign_read_points_at_a_covering_contract() {
    let f = full(&[("fulfillment", "SELECT id, name FROM products")]);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::ForeignRead);
    assert!(f[0].message.contains("read catalog_api.products_v1 instead"), "{}", f[0].message);
    // A column the contract lacks: publish a new version.
    let f = full(&[("fulfillment", "SELECT id, cost_cents FROM products")]);
    assert!(f[0].message.contains("publish a version with them"), "{}", f[0].message);
}

#[test]
fn declared_contract_reads_are_fine_and_undeclared_ones_are_not() {
    assert!(findings(&[("orders", "SELECT id, name FROM catalog_api.products_v1")]).is_empty());
    assert_eq!(
        findings(&[("fulfillment", "SELECT id, name FROM catalog_api.products_v1")]),
        ["foreign-read fulfillment catalog_api.products_v1"]
    );
}

#[test]
fn select_star() {
    assert_eq!(
        findings(&[("orders", "SELECT * FROM products")]),
        ["foreign-read orders public.products", "select-star orders public.products",]
    );
    assert_eq!(
        findings(&[("orders", "SELECT p.* FROM products p")]),
        ["foreign-read orders public.products", "select-star orders public.products",]
    );
    // On its own table, or on a frozen contract version, * is the owner's business.
    assert!(findings(&[("catalog", "SELECT * FROM products")]).is_empty());
    assert!(findings(&[("orders", "SELECT * FROM catalog_api.products_v1")]).is_empty());
    // Unowned relations count too.
    assert!(
        findings(&[("orders", "SELECT * FROM audit_log")])
            .contains(&"select-star orders public.audit_log".to_string())
    );
}

#[test]
fn unowned() {
    assert_eq!(
        findings(&[
            ("orders", "SELECT enabled FROM feature_flags"),
            ("catalog", "SELECT enabled FROM feature_flags")
        ]),
        ["unowned catalog public.feature_flags", "unowned orders public.feature_flags"]
    );
    // One user is not sharing.
    assert!(findings(&[("orders", "SELECT enabled FROM feature_flags")]).is_empty());
}

#[test]
fn multiple_writers() {
    let f = findings(&[
        ("orders", "INSERT INTO feature_flags VALUES ('a', true)"),
        ("catalog", "UPDATE feature_flags SET enabled = false"),
    ]);
    assert!(f.contains(&"multiple-writers orders public.feature_flags".to_string()), "{f:?}");
    assert!(f.contains(&"multiple-writers catalog public.feature_flags".to_string()), "{f:?}");
    // A writer and a reader are not two writers.
    let f = findings(&[
        ("orders", "INSERT INTO feature_flags VALUES ('a', true)"),
        ("catalog", "SELECT 1 FROM feature_flags"),
    ]);
    assert!(!f.iter().any(|x| x.starts_with("multiple-writers")), "{f:?}");
}

#[test]
fn unknown_principals_are_kept_and_judged() {
    assert_eq!(
        findings(&[("unknown:etl", "DELETE FROM orders")]),
        ["foreign-write unknown:etl public.orders"]
    );
}

#[test]
fn system_catalogs_are_nobodys_business() {
    assert!(
        findings(&[
            ("orders", "SELECT relname FROM pg_class"),
            ("catalog", "SELECT * FROM pg_catalog.pg_class")
        ])
        .is_empty()
    );
}

#[test]
fn active_exceptions_excuse_findings_and_expired_ones_do_not() {
    let text = format!(
        "{MANIFEST}\n[[services.fulfillment.exceptions]]\nrelation = \"public.orders\"\nprivileges = [\"SELECT\", \"UPDATE\"]\nreason = \"until the event lands\"\nexpires = 2030-01-01\n"
    );
    let m = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    let lookup = OfflineLookup::default();
    let mut c = Collector::new(&lookup);
    c.add("fulfillment", "UPDATE orders SET status = 'shipped' WHERE id = 1", 1);
    c.add("fulfillment", "SELECT * FROM products", 1);
    let catalogue = Catalogue::build(&c, Some(&m), None, Vec::new());
    let all = rules::evaluate(&catalogue, Some(&m));
    let before = deed_manifest::Date { year: 2029, month: 12, day: 31 };
    let (violations, excepted) = rules::apply_exceptions(all.clone(), Some(&m), before);
    let names =
        |f: &[Finding]| f.iter().map(|f| format!("{} {}", f.rule, f.relation)).collect::<Vec<_>>();
    assert_eq!(names(&violations), ["foreign-read public.products", "select-star public.products"]);
    let excused: Vec<String> =
        excepted.iter().map(|x| format!("{} {}", x.finding.rule, x.finding.relation)).collect();
    assert_eq!(excused, ["foreign-write public.orders", "foreign-read public.orders"]);
    let after = deed_manifest::Date { year: 2030, month: 1, day: 2 };
    let (violations, excepted) = rules::apply_exceptions(all, Some(&m), after);
    assert!(excepted.is_empty());
    assert_eq!(violations.len(), 4);
}
