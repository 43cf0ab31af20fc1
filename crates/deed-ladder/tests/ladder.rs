//! One flow on each rung, from what the rung crates would observe, in
//! every format `deed status` prints.

use std::path::Path;

use deed_compare::verdict::Verdict;
use deed_ladder::{Bounds, Observed, Rung, status};
use deed_manifest::{Date, Manifest};
use deed_project::health::ProjectionHealth;

const MANIFEST: &str = r#"version = 1
[services.catalog]
owns = ["public.products"]
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

[services.shared]
[[services.shared.exceptions]]
relation = "public.products"
privileges = ["SELECT"]
reason = "reports read it directly for now"

[services.contracted]
reads = ["catalog.products.v1"]

[services.projected]
reads = ["catalog.products.v1"]
consumes = ["catalog.product_changed"]
[[services.projected.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v1"

[services.proven]
reads = ["catalog.products.v1"]
consumes = ["catalog.product_changed"]
[[services.proven.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v1"

[services.severed]
consumes = ["catalog.product_changed"]
[[services.severed.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v1"

[services.stalled]
consumes = ["catalog.product_changed"]
[[services.stalled.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
"#;

fn live(service: &str, lag: f64, dead: i64) -> ProjectionHealth {
    ProjectionHealth {
        service: service.into(),
        name: "products".into(),
        event: "catalog.product_changed".into(),
        phase: "live".into(),
        position: Some("0000000001000000/00000000".into()),
        applied: 10,
        backfill_rows: 5,
        waiting_events: if lag > 0.0 { 3 } else { 0 },
        lag_seconds: lag,
        dead_letters: dead,
        on_bus: None,
        problems: Vec::new(),
    }
}

fn clean(service: &str, age: f64) -> Verdict {
    Verdict {
        service: service.into(),
        projection: "products".into(),
        compared_at: "2026-11-22 10:00:00+00".into(),
        fence: Some("0/16B3740".into()),
        definition: "d".into(),
        source: "catalog_api.products_v1".into(),
        equal: true,
        source_rows: 5,
        target_rows: 5,
        missing: 0,
        extra: 0,
        different: 0,
        in_flight: 0,
        seconds: 0.1,
        age_seconds: age,
        current: true,
    }
}

#[test]
fn each_flow_stands_on_its_rung_with_its_next_step() {
    let m = Manifest::parse(Path::new("deed.toml"), MANIFEST, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let observed = Observed {
        projections: vec![
            live("projected", 0.0, 0),
            live("proven", 0.0, 0),
            live("severed", 0.0, 0),
            live("stalled", 900.0, 2),
        ],
        verdicts: vec![
            clean("projected", 3.0 * 86400.0),
            clean("proven", 60.0),
            clean("severed", 7200.0),
        ],
        ..Observed::default()
    };
    let s = status(&m, observed, Date::from_days(20_000), Bounds::default());
    let rung = |c: &str| {
        s.flows.iter().find(|f| f.consumer == c).map(|f| (f.rung, f.next.clone())).unwrap()
    };
    assert_eq!(rung("shared").0, Rung::Shared);
    assert_eq!(rung("contracted").0, Rung::Contracted);
    assert_eq!(rung("projected").0, Rung::Projected);
    assert!(rung("projected").1.contains("is 3 days old"), "{}", rung("projected").1);
    assert_eq!(rung("proven").0, Rung::Proven);
    assert!(rung("proven").1.contains("deed cutover proven.products"));
    assert_eq!(rung("severed").0, Rung::Severed);
    assert!(rung("severed").1.contains("deed split catalog"));
    assert!(s.stalled());
    let stalled = &s.flows.iter().find(|f| f.consumer == "stalled").unwrap().stalled;
    assert_eq!(stalled.len(), 2, "{stalled:?}");
    insta::assert_snapshot!("status_table", deed_ladder::render::table(&s));
    insta::assert_snapshot!("status_markdown", deed_ladder::render::markdown(&s));
    insta::assert_snapshot!("status_json", deed_ladder::render::json(&s));
    insta::assert_snapshot!("status_html", deed_ladder::render::html(&s));
}

const SPLIT: &str = r#"version = 1
[services.catalog]
owns = ["public.products"]
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

[services.severed]
consumes = ["catalog.product_changed"]
[[services.severed.projections]]
name = "products"
event = "catalog.product_changed"
into = "public.product_copies"
replaces = "catalog.products.v1"
"#;

/// The owner's split moves its severed flows: cut over, they wait on rung
/// 3 and say so; finished, they stand on rung 4.
#[test]
fn a_finished_split_puts_the_owner_s_flows_on_rung_4() {
    let m =
        Manifest::parse(Path::new("deed.toml"), SPLIT, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let at = |phase: &str| {
        let observed = Observed {
            projections: vec![live("severed", 0.0, 0)],
            verdicts: vec![clean("severed", 60.0)],
            splits: [("catalog".to_string(), phase.to_string())].into_iter().collect(),
            ..Observed::default()
        };
        status(&m, observed, Date::from_days(20_000), Bounds::default())
    };
    let cut = at("cut_over");
    assert_eq!(cut.flows[0].rung, Rung::Severed);
    assert!(cut.flows[0].next.contains("--finish"), "{}", cut.flows[0].next);
    let done = at("finished");
    assert_eq!(done.flows[0].rung, Rung::Separated);
    assert_eq!(done.flows[0].rung.number(), 4);
    insta::assert_snapshot!("status_separated_table", deed_ladder::render::table(&done));
}
