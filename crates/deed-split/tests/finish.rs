//! Finish: refused while a rung-1 reader remains; then the reverse
//! replication ends for good, and `--drop-source` removes the shared copies.

mod common;

use std::time::Duration;

use common::two;
use deed_split::{Phase, phases};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_ends_the_reverse_replication_and_drops_the_source() {
    let t = two("split_finish", "", "").await;
    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);
    phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, None).await.unwrap();
    let e = phases::finish(&mut split, &t.manifest, true).await.unwrap_err();
    assert!(e.to_string().contains("still read"), "{e}");

    // orders stops reading catalog's contract; its view goes.
    let text =
        t.manifest.source.text().replace(&format!("reads = [\"{}.products.v1\"]\n", t.catalog), "");
    let manifest =
        deed_manifest::Manifest::parse(std::path::Path::new("deed.toml"), &text, &|_| None)
            .unwrap_or_else(|e| panic!("{e}"));
    let api = split.service.api_schema.quoted();
    t.shared.client().await.batch_execute(&format!("DROP VIEW {api}.products_v1")).await.unwrap();
    let done = phases::finish(&mut split, &manifest, true).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(done.dropped.iter().any(|d| d.contains("tables")), "{:?}", done.dropped);
    assert_eq!(split.recorded.as_ref().unwrap().phase, Phase::Finished);
    let shared = t.shared.client().await;
    let left: i64 = shared
        .query_one(
            "SELECT (SELECT count(*) FROM pg_subscription) + (SELECT count(*) FROM pg_publication WHERE pubname LIKE 'deedsplit%')
                  + (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "no subscription, split publication or table left in the shared database");
    let slots: i64 = t
        .target
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'deedsplit%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0);
    // The service keeps writing on its own database; no switch any more.
    t.catalog_on(&t.target)
        .await
        .batch_execute("INSERT INTO products (name) VALUES ('mine')")
        .await
        .unwrap();
    let e = phases::switch(&mut split, false, Duration::MAX, WAIT, None).await.unwrap_err();
    assert!(e.to_string().contains("finished"), "{e}");
}
