//! A split end to end on two real servers: prepare, copy while the
//! service writes, prove, cutover, rollback, cutover again.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{code, eventually, two};
use deed_split::{Phase, phases};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_copy_prove_cutover_rollback() {
    let t = two("split_life", "", "").await;
    let mut split = t.split().await;

    let prepared =
        phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(prepared.applied);
    let shown = prepared.statements.join("\n");
    assert!(!shown.contains("catalog-secret") && shown.contains("PASSWORD '…'"), "{shown}");
    assert!(
        prepared.after_copy.iter().any(|s| s.contains("tags_tag")),
        "{:?}",
        prepared.after_copy
    );
    // Again: nothing to create twice.
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));

    // The service keeps writing while the copy runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let c = t.catalog_on(&t.shared).await;
        let (stop, written) = (stop.clone(), written.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                c.batch_execute(
                    "INSERT INTO products (name, price) VALUES ('new', 1);
                     UPDATE products SET price = price + 1 WHERE id = 1 + (random() * 1999)::int;
                     DELETE FROM tags WHERE id = (SELECT min(id) FROM tags)",
                )
                .await
                .unwrap();
                written.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let copied =
        phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(copied.tables, 2);
    let proof = phases::prove_phase(&mut split, WAIT).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(proof.equal, "{proof:?}");
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(written.load(Ordering::Relaxed) > 0);
    assert_eq!(split.recorded.as_ref().unwrap().phase, Phase::Proven);

    // Before the cutover the service cannot write on the target.
    let on_target = t.catalog_on(&t.target).await;
    let e =
        on_target.batch_execute("INSERT INTO products (name) VALUES ('early')").await.unwrap_err();
    assert_eq!(code(&e), "42501");

    let switched = phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!switched.already && switched.fence_ms > 0.0, "{switched:?}");
    let on_shared = t.catalog_on(&t.shared).await;
    let e =
        on_shared.batch_execute("INSERT INTO products (name) VALUES ('late')").await.unwrap_err();
    assert_eq!(code(&e), "42501", "the shared copy is read-only");
    let max_shared: i32 =
        on_shared.query_one("SELECT max(id) FROM products", &[]).await.unwrap().get(0);
    let id: i32 = on_target
        .query_one("INSERT INTO products (name, price) VALUES ('moved', 9) RETURNING id", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(id > max_shared, "the sequence continues: {id} after {max_shared}");
    let tag: i64 = on_target
        .query_one("INSERT INTO tags (product_id, tag) VALUES ($1, 'fresh') RETURNING id", &[&id])
        .await
        .unwrap()
        .get(0);
    // The rung-1 reader still sees the service's rows, fed back.
    let orders = deed_pg::connect_as(&t.shared.url, &t.orders_login, None).await.unwrap();
    let view = format!(
        "SELECT EXISTS (SELECT 1 FROM \"{}\".products_v1 WHERE id = {id})",
        split.service.api_schema.as_str()
    );
    eventually(&orders, &view, "the reverse replication").await;
    // Again: already cut over.
    let again =
        phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None).await.unwrap();
    assert!(again.already);

    let back = phases::switch(&mut split, false, Duration::from_secs(3600), WAIT, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!back.already);
    let e =
        on_target.batch_execute("INSERT INTO products (name) VALUES ('after')").await.unwrap_err();
    assert_eq!(code(&e), "42501", "after the rollback the target is read-only again");
    let tags_back: bool = on_shared
        .query_one("SELECT EXISTS (SELECT 1 FROM tags WHERE id = $1)", &[&tag])
        .await
        .unwrap()
        .get(0);
    assert!(tags_back, "the target's writes came back");
    let id2: i32 = on_shared
        .query_one("INSERT INTO products (name) VALUES ('home') RETURNING id", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(id2 > id);
    eventually(
        &deed_pg::connect_plain(&t.target.url).await.unwrap(),
        &format!("SELECT EXISTS (SELECT 1 FROM products WHERE id = {id2})"),
        "the forward replication after the rollback",
    )
    .await;
    let proof = phases::prove_phase(&mut split, WAIT).await.unwrap();
    assert!(proof.equal, "{proof:?}");
    let switched =
        phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None).await.unwrap();
    assert!(!switched.already);
    // Finishing needs the rung-1 reader gone.
    let e = phases::finish(&mut split, &t.manifest, false).await.unwrap_err();
    assert!(e.to_string().contains(&t.orders), "{e}");
}
