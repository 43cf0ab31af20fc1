//! A copy the subscription's workers cannot make (here a constraint on the
//! target that the source's rows break) is reported within seconds, with
//! the server's error, instead of waiting out the bound; once the cause is
//! fixed the same copy goes on.

mod common;

use std::time::{Duration, Instant};

use common::two;
use deed_split::{SplitError, phases};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_copy_is_reported_and_goes_on_once_fixed() {
    let t = two("split_copy_fails", "", "").await;
    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    // Every product has a price of at least 0: the table-sync worker's COPY
    // fails on the first row, and again each time it is retried.
    let target = t.target.superuser_client().await;
    target
        .batch_execute("ALTER TABLE products ADD CONSTRAINT no_rows CHECK (price < 0) NOT VALID")
        .await
        .unwrap();
    let started = Instant::now();
    let e = phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_err();
    let took = started.elapsed();
    let SplitError::Setup(text) = &e else { panic!("{e:?}") };
    assert!(
        text.contains(&format!("the copy of {} is failing", t.catalog))
            && text.contains("table-sync")
            && text.contains("run this again"),
        "{text}"
    );
    // The server's own error, with its SQLSTATE and detail.
    assert!(
        text.contains("copying public.products as the table-sync worker does gives")
            && text.contains("violates check constraint \"no_rows\"")
            && text.contains("Failing row contains")
            && text.contains("[SQLSTATE 23514]"),
        "{text}"
    );
    // The trial copy was rolled back.
    let rows: i64 = target.query_one("SELECT count(*) FROM products", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0);
    assert!(took < Duration::from_secs(60), "reported after {took:?}, not within seconds");

    target.batch_execute("ALTER TABLE products DROP CONSTRAINT no_rows").await.unwrap();
    let copied =
        phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(copied.tables, 2);
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap_or_else(|e| panic!("{e}")).equal);
}
