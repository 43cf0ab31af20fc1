//! The backfill as a managed service's admin (no superuser), whatever
//! `DEED_TEST_ADMIN` says: it reads the contract view as the consumer's
//! login, which the admin made and on 16+ holds only ADMIN on, and the
//! grant it lends itself for that is never committed, so nothing is left
//! behind even when the backfill dies half way.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use common::{PRODUCTS, shop_as};
use deed_testkit::Admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_backfills_as_the_login_and_leaves_no_grant_behind() {
    let s = shop_as(
        "project_managed",
        Admin::Plain,
        "INSERT INTO products SELECT g, 'p' || g, g FROM generate_series(1, 20000) g;",
        "",
        PRODUCTS,
    )
    .await;
    let admin = Admin::Plain.login().unwrap();
    let su = s.owner.superuser_client().await;
    let lent = "SELECT count(*) FROM pg_auth_members am
                 WHERE am.roleid = (SELECT oid FROM pg_roles WHERE rolname = $1)
                   AND am.member = (SELECT oid FROM pg_roles WHERE rolname = $2)
                   AND NOT am.admin_option";
    let (reader, admin) = (s.orders_login.as_str(), admin);
    let before: i64 = su.query_one(lent, &[&reader, &admin]).await.unwrap().get(0);
    assert_eq!(before, 0, "the admin already holds {reader}: nothing would be lent");

    // Another session watches the whole backfill for the lent grant (on
    // 16+ the admin's ADMIN OPTION, from creating the login, is no grant
    // to act as it).
    let (done, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let watcher = tokio::spawn({
        let (done, seen) = (done.clone(), seen.clone());
        let (reader, admin) = (reader.to_string(), admin.to_string());
        async move {
            while !done.load(Ordering::Relaxed) {
                let n: i64 = su.query_one(lent, &[&reader, &admin]).await.unwrap().get(0);
                seen.fetch_max(n, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            su
        }
    });
    // Killed half way: the task (and its sessions) dropped mid-backfill.
    let mut opts = s.options();
    opts.chunk = 500;
    let run = tokio::spawn(deed_project::run(opts));
    let consumer = s.consumer.superuser_client().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let copied: i64 =
            match consumer.query_one("SELECT count(*) FROM public.product_copies", &[]).await {
                Ok(row) => row.get(0),
                Err(_) => 0, // not created yet
            };
        if copied >= 2000 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the backfill never got going");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    run.abort();
    let _ = run.await;
    // Then run to the end.
    let r = s.project(|o| o.chunk = 500).await;
    assert!(r.projections[0].backfilled_rows > 0, "{r:?}");
    s.assert_products_equal().await;
    done.store(true, Ordering::Relaxed);
    let su = watcher.await.unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 0, "the lent grant was visible to other sessions");
    let after: i64 = su.query_one(lent, &[&reader, &admin]).await.unwrap().get(0);
    assert_eq!(after, 0, "a grant was left behind");
}
