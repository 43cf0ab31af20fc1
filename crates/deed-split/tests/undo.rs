//! A switch that fails half-way puts the writes back where they were: the
//! source takes them again and the target follows it.

mod common;

use std::time::Duration;

use common::{code, eventually, two};
use deed_split::{Split, phases};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_cutover_changes_nothing() {
    let t = two("split_undo", "", "").await;
    // The shared server cannot reach the target for the reverse
    // replication: the cutover fails after the fence.
    let unreachable = format!("postgres://postgres@127.0.0.1:1/{}", t.target.name);
    let mut split = Split::open(
        &t.manifest,
        &t.catalog,
        t.shared.deed_client().await,
        deed_pg::connect(&t.target.url).await.unwrap(),
        t.shared.url.clone(),
        unreachable,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);
    let e =
        phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None).await.unwrap_err();
    assert!(e.to_string().contains("nothing moved"), "{e}");
    assert_eq!(split.recorded.as_ref().unwrap().live, "source");

    let on_shared = t.catalog_on(&t.shared).await;
    let id: i32 = on_shared
        .query_one("INSERT INTO products (name) VALUES ('still here') RETURNING id", &[])
        .await
        .unwrap_or_else(|e| panic!("the source must take writes again: {e}"))
        .get(0);
    let e = t
        .catalog_on(&t.target)
        .await
        .batch_execute("INSERT INTO products (name) VALUES ('x')")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42501");
    let target = deed_pg::connect_plain(&t.target.url).await.unwrap();
    eventually(
        &target,
        &format!("SELECT EXISTS (SELECT 1 FROM products WHERE id = {id})"),
        "the forward replication",
    )
    .await;
}
