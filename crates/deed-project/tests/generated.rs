//! What the projector generates, as text: the SQL it runs on the
//! consumer's database and the report `deed status` prints.

use deed_ident::{Ident, QualifiedName};
use deed_project::apply::table::TableStatements;
use deed_project::health::{OnBus, ProjectionHealth, render};
use deed_project::spec::TableSpec;
use deed_project::table::{Column, create_sql};

fn spec() -> TableSpec {
    let id = |s: &str| Ident::new(s).unwrap();
    TableSpec {
        table: QualifiedName::new(id("public"), id("Product Copies")),
        key: vec![id("warehouse"), id("sku")],
        columns: vec![id("warehouse"), id("sku"), id("name"), id("price")],
        view: QualifiedName::new(id("catalog_api"), id("products_v1")),
    }
}

#[test]
fn table_sql_quotes_every_name_and_keys_on_the_event_key() {
    let t = spec();
    let columns = [
        Column { name: "warehouse".into(), sql_type: "text".into() },
        Column { name: "sku".into(), sql_type: "integer".into() },
        Column { name: "name".into(), sql_type: "character varying(80)".into() },
        Column { name: "price".into(), sql_type: "numeric(10,2)".into() },
    ];
    let s = TableStatements::new(&t);
    insta::assert_snapshot!(format!(
        "{}\n\n{}\n\n{}",
        create_sql(&t, &columns, &[Ident::new("orders svc").unwrap()]),
        s.upsert,
        s.delete
    ));
}

#[test]
fn status_lists_each_projection_and_what_needs_doing() {
    let base = ProjectionHealth {
        service: "orders".into(),
        name: "products".into(),
        event: "catalog.product_changed".into(),
        phase: "live".into(),
        position: Some("00000000016B3748/00000001".into()),
        applied: 2000,
        backfill_rows: 200,
        waiting_events: 0,
        lag_seconds: 0.0,
        dead_letters: 0,
        on_bus: None,
        problems: vec![],
    };
    let waiting = ProjectionHealth {
        name: "customer_emails".into(),
        event: "users.user_changed".into(),
        applied: 5,
        waiting_events: 12,
        lag_seconds: 3.25,
        dead_letters: 1,
        on_bus: None,
        problems: vec!["1 dead letter waits in deed.dead_letters: fix the cause, then `deed project --service orders --retry-dead`".into()],
        ..base.clone()
    };
    let filling = ProjectionHealth {
        name: "stock".into(),
        phase: "backfill".into(),
        backfill_rows: 40_000,
        ..base.clone()
    };
    let new = ProjectionHealth {
        name: "flags".into(),
        phase: "not started".into(),
        position: None,
        problems: vec!["not started: run `deed project --service orders`".into()],
        ..base.clone()
    };
    // Read from Kafka, as `deed status --bus kafka://…` counts it.
    let on_kafka = ProjectionHealth {
        name: "prices".into(),
        on_bus: Some(OnBus { bus: "kafka://b1:9092".into(), pending: Some(37), error: None }),
        ..base.clone()
    };
    let all = [base, waiting, filling, new, on_kafka];
    insta::assert_snapshot!(render(&all));
    insta::assert_json_snapshot!(all);
}
