//! The manifest's behaviour as a user sees it: what parses, and the exact,
//! located message for what does not.

use std::path::Path;

use deed_manifest::{ContractShape, Manifest};

fn env(name: &str) -> Option<String> {
    match name {
        "DATABASE_URL" => Some("postgres://app:secret@db/shop".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<Manifest, String> {
    Manifest::parse(Path::new("deed.toml"), text, &env).map_err(|e| e.to_string())
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected the manifest to be rejected:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn the_product_example_parses() {
    let text = include_str!("product_example.toml");
    let m = parse(text).unwrap();
    assert_eq!(m.services.len(), 2);
    let catalog = m.service("catalog").unwrap();
    assert_eq!(catalog.api_schema.as_str(), "catalog_api");
    assert_eq!(catalog.contracts.len(), 2);
    let v2 = &catalog.contracts[1];
    assert_eq!(v2.view_name(&catalog.api_schema).to_string(), "catalog_api.products_v2");
    assert!(matches!(&v2.shape, ContractShape::Columns(c) if c.len() == 4));
    let orders = m.service("orders").unwrap();
    assert_eq!(orders.api_schema.as_str(), "orders_api");
    assert_eq!(orders.reads[0].to_string(), "catalog.products.v1");
    assert_eq!(orders.consumes[0].to_string(), "catalog.product_changed");
    assert_eq!(m.database_url(&env).unwrap().unwrap(), "postgres://app:secret@db/shop");
    let products = deed_ident::QualifiedName::parse_sql("public.products").unwrap();
    assert_eq!(m.owner_of(&products).unwrap().name, "catalog");
    assert_eq!(m.service_for_login("orders_svc").unwrap().name, "orders");
    assert_eq!(m.service_for_application("catalog-api").unwrap().name, "catalog");
}

#[test]
fn unset_url_variable_is_reported_only_when_the_url_is_needed() {
    let m = Manifest::parse(
        Path::new("deed.toml"),
        "version = 1\n[database]\nurl = \"${NOPE}\"\n",
        &|_| None,
    )
    .unwrap();
    let err = m.database_url(&|_| None).unwrap_err().to_string();
    insta::assert_snapshot!(err, @r#"
    deed.toml:3:8: environment variable NOPE is not set
      |
    3 | url = "${NOPE}"
      |        ^
    "#);
}

#[test]
fn unknown_key() {
    insta::assert_snapshot!(error("version = 1\n[services.catalog]\nonws = [\"public.products\"]\n"), @r#"
    deed.toml:3:1: unknown field `onws`, expected one of `description`, `owns`, `logins`, `applications`, `api_schema`, `contracts`, `events`, `reads`, `consumes`, `exceptions`, `database`, `projections`
      |
    3 | onws = ["public.products"]
      | ^^^^
    "#);
}

#[test]
fn toml_syntax_error() {
    insta::assert_snapshot!(error("version = 1\n[services.catalog\n"));
}

#[test]
fn missing_and_wrong_version() {
    insta::assert_snapshot!(error("[services.a]\n"));
    insta::assert_snapshot!(error("version = 2\n"));
}

#[test]
fn duplicate_ownership() {
    insta::assert_snapshot!(error(
        "version = 1\n[services.a]\nowns = [\"public.t\"]\n[services.b]\nowns = [\"public.u\", \"public.T\"]\n"
    ));
}

#[test]
fn unresolvable_references() {
    let text = r#"version = 1
[services.catalog]
owns = ["public.products"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id"]
[[services.catalog.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v3"
[services.orders]
reads = ["catalog.products.v2", "nobody.x.v1", "catalog.products"]
consumes = ["catalog.price_changed"]
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn invalid_identifiers() {
    let text = r#"version = 1
[services.Catalog]
owns = ["products", "public.products; drop table users", "public.\"ok name\"", "public.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]
logins = ["catalog svc"]
api_schema = "public"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn contract_shape_errors() {
    let text = r#"version = 1
[services.catalog]
owns = ["public.products"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "*", "id"]
[[services.catalog.contracts]]
name = "products"
version = 0
from = "public.vendors"
[[services.catalog.contracts]]
name = "other"
version = 1
from = "public.products"
columns = ["id"]
query = "SELECT id FROM public.products"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn shared_logins_and_applications() {
    let text = r#"version = 1
[services.a]
logins = ["app"]
applications = ["web"]
[services.b]
logins = ["APP"]
applications = ["web"]
api_schema = "a_api"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn domain_events_need_no_table() {
    let text = r#"version = 1
[services.orders]
owns = ["public.orders"]
[[services.orders.events]]
name = "order_confirmed"
[services.fulfillment]
consumes = ["orders.order_confirmed"]
"#;
    let m = parse(text).unwrap();
    assert!(m.service("orders").unwrap().events[0].from.is_none());
}

#[test]
fn state_event_requirements() {
    let text = r#"version = 1
[services.orders]
owns = ["public.orders"]
[[services.orders.events]]
name = "order_changed"
from = "public.orders"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn quoted_names_survive() {
    let text = r#"version = 1
[services.legacy]
owns = ['"Legacy Schema"."Order Items"', "public.\"it's\""]
logins = ['"Legacy App"']
"#;
    let m = parse(text).unwrap();
    let s = m.service("legacy").unwrap();
    assert_eq!(s.owns[0].schema.as_str(), "Legacy Schema");
    assert_eq!(s.owns[0].quoted(), "\"Legacy Schema\".\"Order Items\"");
    assert_eq!(s.owns[1].name.as_str(), "it's");
    assert_eq!(s.logins[0].as_str(), "Legacy App");
}

#[test]
fn exceptions() {
    let text = r#"version = 1
[services.orders]
owns = ["public.orders"]
[services.fulfillment]
owns = ["public.shipments"]
[[services.fulfillment.exceptions]]
relation = "public.orders"
privileges = ["select", "UPDATE"]
reason = "marks orders shipped until orders consumes shipment events"
expires = 2027-01-31
"#;
    let m = parse(text).unwrap();
    let e = &m.service("fulfillment").unwrap().exceptions[0];
    assert_eq!(e.privileges, [deed_manifest::Privilege::Select, deed_manifest::Privilege::Update]);
    assert_eq!(e.expires.unwrap().to_string(), "2027-01-31");
    assert!(e.is_active(deed_manifest::Date { year: 2027, month: 1, day: 31 }));
    assert!(!e.is_active(deed_manifest::Date { year: 2027, month: 2, day: 1 }));
    assert_eq!(e.location.to_string(), "deed.toml:6:1");

    let bad = r#"version = 1
[services.orders]
owns = ["public.orders"]
[[services.orders.exceptions]]
relation = "public.orders"
reason = "x"
[[services.orders.exceptions]]
relation = "public.nobody"
privileges = ["SELEKT"]
expires = 2027-01-31T10:00:00
"#;
    insta::assert_snapshot!(error(bad));
}

#[test]
fn a_version_still_read_cannot_leave_the_manifest() {
    let text = r#"version = 1
[services.catalog]
owns = ["public.products"]
[[services.catalog.contracts]]
name = "products"
version = 2
from = "public.products"
columns = ["id"]
[services.orders]
reads = ["catalog.products.v1"]
[services.fulfillment]
reads = ["catalog.products.v1", "catalog.products.v2"]
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn system_schemas_belong_to_no_service() {
    let text = r#"version = 1
[database]
search_path = ["public", "pg_catalog", "deed"]
[services.catalog]
owns = ["pg_catalog.pg_roles", "information_schema.tables", "pg_toast.pg_toast_1", "pg_temp_3.t", "deed.inbox", "public.products"]
api_schema = "pg_temp_9"
[services.orders]
owns = ["public.orders"]
api_schema = "deed"
[[services.orders.exceptions]]
relation = "pg_catalog.pg_authid"
privileges = ["SELECT"]
reason = "reads roles"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn an_event_key_is_part_of_its_contract() {
    let text = r#"version = 1
[services.users]
owns = ["public.users"]
[[services.users.contracts]]
name = "users"
version = 1
from = "public.users"
columns = ["id", "email"]
[[services.users.events]]
name = "user_changed"
from = "public.users"
key = ["id", "internal_notes"]
contract = "users.v1"
"#;
    insta::assert_snapshot!(error(text));
}

#[test]
fn list_entries_keep_their_locations() {
    let text = "version = 1\n[services.catalog]\nowns = [\"public.a\",\n  \"public.b\"]\nlogins = [\"x\", \"catalog_svc\"]\n";
    let m = parse(text).unwrap();
    let s = m.service("catalog").unwrap();
    let b = deed_ident::QualifiedName::parse_sql("public.b").unwrap();
    assert_eq!(s.owns_location(&b).to_string(), "deed.toml:4:3");
    assert_eq!(s.login_location("catalog_svc").to_string(), "deed.toml:5:16");
}

#[test]
fn an_oversized_manifest_is_refused_without_reading_it_all() {
    let err = Manifest::load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(err.contains("/dev/zero:1:1: the manifest is larger than 16 MiB"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("deed.toml");
    let mut text = String::from("version = 1\n");
    while (text.len() as u64) <= deed_manifest::MAX_MANIFEST_BYTES {
        text.push_str(&"# padding padding padding padding padding padding padding\n".repeat(1000));
    }
    std::fs::write(&big, text).unwrap();
    assert!(Manifest::load(&big).unwrap_err().to_string().contains("larger than 16 MiB"));
}

#[test]
fn an_exception_may_name_a_service_declared_later() {
    let text = r#"version = 1
[services.fulfillment]
owns = ["public.shipments"]
[[services.fulfillment.exceptions]]
relation = "public.orders"
reason = "reads orders until the contract is published"
[services.orders]
owns = ["public.orders"]
"#;
    parse(text).unwrap();
}

/// Misspelt keys and wrong types are all reported in one run, each at its
/// own line, and what a rejected line leaves missing is not reported on top.
#[test]
fn every_structural_error_is_reported_at_once() {
    let text = r#"version = 1
[services.catalog]
own = ["public.products"]
logins = ["catalog_svc"]
[services.orders]
owns = "public.orders"
logins = ["orders_svc"]
[[services.orders.contracts]]
name = "orders"
version = "one"
from = "public.orders"
columns = ["id"]
"#;
    let e = error(text);
    for expected in ["deed.toml:3:1", "deed.toml:6:8", "deed.toml:10:11"] {
        assert!(e.contains(expected), "missing {expected} in:\n{e}");
    }
    assert!(e.contains("unknown field `own`"), "{e}");
    assert!(!e.contains("missing field `version`"), "a cascade was reported:\n{e}");
}

const PRODUCER: &str = r#"version = 1
[services.catalog]
owns = ["public.products", "public.users"]
[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name"]
[[services.catalog.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v1"
[[services.catalog.events]]
name = "price_alert"
"#;

#[test]
fn projections_are_checked_against_the_events_they_keep() {
    let text = format!(
        r#"{PRODUCER}
[services.orders]
consumes = ["catalog.product_changed", "catalog.price_alert"]
database = "${{ORDERS_DATABASE_URL}}"
[[services.orders.projections]]
name = "copies"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v9"
[[services.orders.projections]]
name = "not_consumed"
event = "catalog.user_changed"
into = "public.x"
[[services.orders.projections]]
name = "alerts"
event = "catalog.price_alert"
into = "public.alerts"
[[services.orders.projections]]
name = "both"
event = "catalog.product_changed"
into = "public.y"
sql = "DELETE FROM y"
[[services.orders.projections]]
name = "handler"
event = "catalog.product_changed"
sql = "UPDATE orders SET product_name = :payload.nmae WHERE product_id = :key.id AND :kind = 'x'"
[[services.orders.projections]]
name = "handler2"
event = "catalog.product_changed"
sql = """
UPDATE orders
   SET product_name = :payload.name
 WHERE product_id = :key.sku"""
[[services.orders.projections]]
name = "handler3"
event = "catalog.product_changed"
sql = "UPDATE orders SET a = :payload.name; COMMIT"
[[services.orders.projections]]
name = "handler4"
event = "catalog.product_changed"
sql = 'UPDATE orders SET product_name = :payload.nmae WHERE product_id = :key.id'
"#
    );
    insta::assert_snapshot!(error(&text));
}

#[test]
fn a_valid_projection_is_understood() {
    let text = format!(
        r#"{PRODUCER}
[services.orders]
consumes = ["catalog.product_changed", "catalog.price_alert"]
database = "${{ORDERS_DATABASE_URL}}"
[[services.orders.projections]]
name = "copies"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v1"
[[services.orders.projections]]
name = "alerts"
event = "catalog.price_alert"
sql = "INSERT INTO alerts (key, body, at) VALUES (:key, :payload, :committed_at)"
"#
    );
    let m = Manifest::parse(Path::new("deed.toml"), &text, &|v| {
        (v == "ORDERS_DATABASE_URL").then(|| "postgres://o/orders".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let orders = m.service("orders").unwrap();
    assert_eq!(
        m.service_database_url(orders, &|_| Some("postgres://o/orders".into())).unwrap().as_deref(),
        Some("postgres://o/orders")
    );
    assert_eq!(orders.projections.len(), 2);
    assert_eq!(orders.projections[0].replaces.as_ref().unwrap().to_string(), "catalog.products.v1");
    match &orders.projections[1].target {
        deed_manifest::ProjectionTarget::Handler { handler, .. } => {
            assert_eq!(handler.sql, "INSERT INTO alerts (key, body, at) VALUES ($1, $2, $3)")
        }
        other => panic!("{other:?}"),
    }
}
