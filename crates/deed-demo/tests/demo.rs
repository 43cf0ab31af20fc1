//! The demo on its own private cluster: the audit must find every coupling
//! the workload builds in, and nothing else.

use std::collections::BTreeSet;

use deed_demo::{DemoOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_finds_exactly_the_coupling_the_workload_creates() {
    let nats = deed_testkit::NatsServer::start(None);
    let options = DemoOptions { bus: Some(nats.url()), ..DemoOptions::default() };
    let result = run(&options).await.expect("the demo runs");
    assert!(result.workload.statements > 500, "{}", result.workload.statements);
    // The narration's count is the audit's.
    let c = &result.audit.catalogue;
    assert_eq!(result.workload.statements, c.calls - c.admin_calls);
    let found: BTreeSet<String> = result
        .audit
        .findings
        .iter()
        .map(|f| format!("{} {} {}", f.rule, f.service, f.relation))
        .collect();
    let expected: BTreeSet<String> = [
        // fulfillment marks orders shipped; users syncs the email copy.
        "foreign-write fulfillment public.orders",
        "foreign-write users public.orders",
        "multiple-writers fulfillment public.orders",
        "multiple-writers users public.orders",
        // The cross-service join.
        "foreign-read fulfillment public.orders",
        "foreign-read fulfillment public.order_items",
        "foreign-read fulfillment public.products",
        // SELECT * on catalog's table.
        "foreign-read orders public.products",
        "select-star orders public.products",
        // The denormalized email is copied from users; orders checks shipments.
        "foreign-read orders public.users",
        "foreign-read orders public.shipments",
        // users filters orders by user_id to rewrite the copies.
        "foreign-read users public.orders",
        // Nobody owns the feature flags.
        "unowned catalog public.feature_flags",
        "unowned orders public.feature_flags",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, expected);
    // Nothing the demo's own setup ran is attributed to anyone.
    assert!(result.audit.catalogue.services.iter().all(|s| !s.starts_with("unknown:")
        || result.audit.catalogue.accesses.iter().all(|a| &a.service != s)));
    assert!(result.audit.catalogue.unparsed.is_empty());

    // Rung 1: the plan would have broken the coupled workload; after the
    // switch and the apply, nothing crosses a line and the old statements
    // are refused by the database itself.
    // The same rung as a managed service's admin: doctor proves every
    // step, the plan grants deed's role the two owner roles, and the apply
    // leaves nothing to do.
    let m = &result.managed;
    assert_eq!((m.proofs, m.proofs_done), (5, 5), "{m:?}");
    assert_eq!(m.self_grants, 2, "{m:?}");
    assert!(m.applied > 0, "{m:?}");
    assert_eq!(m.left_after, 0, "{m:?}");

    let r1 = &result.rung1;
    assert!(r1.plan_breaking);
    assert!(r1.applied > 0);
    assert_eq!(r1.second_apply_changed, 0);
    let remaining: Vec<String> = r1.audit.findings.iter().map(|f| f.message.clone()).collect();
    assert!(remaining.is_empty(), "{remaining:#?}");
    assert!(
        r1.audit.catalogue.accesses.iter().any(|a| a.contract.is_some()),
        "contract views are read"
    );
    assert_eq!(r1.denied.len(), 4);
    for (login, statement, answer) in &r1.denied {
        let err =
            answer.as_ref().err().unwrap_or_else(|| panic!("{login} may still run {statement}"));
        assert!(err.contains("permission denied"), "{login}: {statement}: {err}");
    }
    assert_eq!(r1.drift, 0);
    // fulfillment's generated models: products, orders and order_items,
    // every column NOT NULL in its table and so in the views.
    let models = &r1.models;
    assert_eq!(models.files.len(), 6, "{models:?}");
    assert_eq!((models.not_null, models.columns), (9, 9), "{models:?}");
    // TypeScript (package.json, tsconfig.json, four sources), Rust
    // (Cargo.toml, lib.rs, models.rs) and Go (go.mod, two sources) from the same
    // model, each with the queries it runs (deed-queries.sql).
    let others: Vec<(&str, usize)> = models.others.iter().take(3).cloned().collect();
    assert_eq!(others, [("typescript", 7), ("rust", 4), ("go", 4)], "{models:?}");
    assert!(
        r1.escalation.iter().any(|d| d.contains("is a member of pg_read_all_data")),
        "{:?}",
        r1.escalation
    );
    assert!(!r1.escalation_reads_after_apply, "apply took pg_read_all_data back");

    // The breaking migration is rejected; the v2 route passes every step.
    let m = &result.migrations;
    let kinds: Vec<String> =
        m.rejected.findings.iter().map(|f| format!("{:?} {}", f.kind, f.contract)).collect();
    assert_eq!(kinds, ["Dropped catalog.products.v1"]);
    assert_eq!(m.rejected.findings[0].line, 3);
    assert!(m.expand.findings.is_empty(), "{:#?}", m.expand.findings);
    assert!(m.contract.findings.is_empty(), "{:#?}", m.contract.findings);
    assert_eq!(m.drift, 0);

    rung2_on_a_bus(&result.rung2);
    rungs_after_capture(&result, false);
}

/// Rung 2's consumer half, rung 3 and rung 4, all reading the events from
/// the bus the demo was given (never the inbox).
fn rungs_after_capture(result: &deed_demo::DemoResult, rabbitmq: bool) {
    // Rung 2, the consumer's half: orders' copy of products, backfilled
    // and fed by events across a stopped projector, equals the contract
    // view; its copies of emails follow users' changes.
    let p = &result.projections;
    assert_eq!(p.backfilled, 200, "{p:?}");
    assert!(p.products_equal && p.source_rows == 200 && p.copy_rows == 200, "{p:?}");
    assert_eq!(p.stale_emails, 0, "{p:?}");
    assert_eq!(p.user_events, p.emails_changed as i64, "name changes are no events: {p:?}");
    assert!(p.applied_after_kill > 0, "the projector was stopped with work left: {p:?}");
    assert_eq!(p.inbox_rows, 0, "the projections read the bus, not the inbox: {p:?}");
    // JetStream and Kafka count what waits; RabbitMQ's streams cannot.
    let counted = if rabbitmq { None } else { Some(0) };
    assert_eq!(p.pending_on_bus, counted, "deed status --bus after --until-idle: {p:?}");

    // Rung 3: refused before a compare, clean, a planted difference found
    // (one changed, one missing), repaired, cut over, and the read refused.
    let r3 = &result.rung3;
    assert!(r3.refused_before_compare, "{r3:?}");
    assert!(r3.first_equal && r3.repaired_equal, "{r3:?}");
    assert_eq!(r3.planted_found, (1, 0, 1), "{r3:?}");
    assert!(r3.cut_over, "{r3:?}");
    assert_eq!(r3.read_after.as_deref(), Some("42501"), "{r3:?}");
    assert_eq!(r3.drift_after, 0, "deed drift after the cutover: {r3:?}");
    assert_eq!((r3.rung_before, r3.rung_after), (2, 3), "{r3:?}");
    let r4 = &result.rung4;
    // A split needs PostgreSQL 15 on both sides: on an older private
    // cluster the demo says so instead of failing.
    let major = private_cluster_major();
    if major < 15 {
        let (seen, why) = r4.skipped.as_ref().expect("rung 4 is skipped before PostgreSQL 15");
        assert_eq!(*seen, major);
        assert!(why.contains("needs 15 or later"), "{why}");
        return;
    }
    assert!(r4.skipped.is_none(), "{r4:?}");
    assert!(
        r4.refused.iter().any(|r| r.contains("order_items_product_id_fkey")),
        "the foreign key from orders is refused first: {r4:?}"
    );
    assert!(r4.copied_tables == 3 && r4.proven, "{r4:?}");
    assert!(r4.fence_ms > 0.0 && r4.commits > 0, "{r4:?}");
    assert!(r4.errors.is_empty(), "catalog's application saw errors: {r4:?}");
    assert!(r4.ledger_ok && r4.fulfillment_sees && r4.orders_sees, "{r4:?}");
    assert_eq!(r4.rung_after, 3, "{r4:?}");
}

/// Rung 2: every committed change is one event on the bus, in spite of the
/// relay stopped mid-delivery; rolled-back work sent nothing.
fn rung2_on_a_bus(r2: &deed_demo::Rung2) {
    assert_eq!(r2.price_changes, 196, "{r2:?}");
    assert_eq!(r2.product_events, r2.price_changes as i64, "{r2:?}");
    assert!(r2.confirmations > 0, "{r2:?}");
    assert_eq!(r2.order_events, r2.confirmations as i64, "{r2:?}");
    assert!(r2.status_warnings > 0, "deed status must flag the relay not running: {r2:?}");
    assert!(r2.relay_login_refused_read, "orders' relay login must not read its tables");
    assert_eq!(r2.bus_events, Some(r2.product_events as usize), "{r2:?}");
}

/// `deed demo --bus kafka://…`: rungs 2 to 4 on a Kafka broker (a private
/// tansu); the demo's topics are gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rungs_2_to_4_run_on_kafka() {
    let kafka = deed_testkit::KafkaServer::start();
    let options = DemoOptions { bus: Some(kafka.url()), ..DemoOptions::default() };
    let result = run(&options).await.expect("the demo runs on Kafka");
    rung2_on_a_bus(&result.rung2);
    rungs_after_capture(&result, false);
    let url = deed_bus::KafkaUrl::parse(&kafka.url()).unwrap();
    for service in ["catalog", "orders", "users"] {
        let left = deed_relay::tail::service_topics(&url, service, None).await;
        assert!(left.is_err(), "the demo's topics are removed: {left:?}");
    }
}

/// The `--database-url` path, on a server of its own because the demo's
/// role names are fixed: it builds, audits, and leaves nothing behind; and
/// it refuses to touch a role it did not create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_given_server_it_cleans_up_and_respects_existing_roles() {
    let cluster =
        tokio::task::spawn_blocking(|| deed_cluster::EmbeddedCluster::start(&Default::default()))
            .await
            .unwrap()
            .expect("a private cluster");
    let url = cluster.url("postgres");
    let html = tempfile::NamedTempFile::new().unwrap();
    // Rung 2 on RabbitMQ: a private node, as the demo's queue names are fixed.
    let rabbit = deed_testkit::RabbitServer::start();
    let options = DemoOptions {
        database_url: Some(url.clone()),
        keep: false,
        html: Some(html.path().to_path_buf()),
        bus: Some(rabbit.url()),
        ..DemoOptions::default()
    };
    let result = run(&options).await.expect("the demo runs on a given server");
    assert_eq!(result.audit.findings.len(), 14);
    rung2_on_a_bus(&result.rung2);
    rungs_after_capture(&result, true);
    assert!(std::fs::read_to_string(html.path()).unwrap().contains("<svg"));
    let admin = deed_pg::connect(&url).await.unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'deed\\_demo%')
                  + (SELECT count(*) FROM pg_replication_slots)
                  + (SELECT count(*) FROM pg_roles WHERE rolname LIKE '%\\_svc' OR rolname LIKE 'deed\\_%')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the demo left its database or roles behind");

    admin.batch_execute("CREATE ROLE orders_svc LOGIN").await.unwrap();
    let err = run(&DemoOptions { database_url: Some(url), ..DemoOptions::default() })
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("a role named orders_svc already exists and deed demo did not create it"),
        "{err}"
    );
    let still: i64 = admin
        .query_one("SELECT count(*) FROM pg_roles WHERE rolname = 'orders_svc'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, 1);
    let changed: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'deed\\_demo%')
                  + (SELECT count(*) FROM pg_replication_slots)
                  + (SELECT count(*) FROM pg_roles WHERE rolname LIKE '%\\_svc' AND rolname <> 'orders_svc')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, 0, "a refused demo must change nothing");
    drop(cluster);
}

/// The major version of the server binaries the demo's private cluster
/// runs (`DEED_PG_BINDIR` or the machine's), from `postgres --version`.
fn private_cluster_major() -> i32 {
    let bindir = deed_cluster::find_bindir().expect("PostgreSQL server binaries");
    let out =
        std::process::Command::new(bindir.join("postgres")).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // "postgres (PostgreSQL) 14.15 ..."
    let version = text.split_whitespace().nth(2).expect("a version");
    version.split('.').next().unwrap().parse().expect("a major version")
}
