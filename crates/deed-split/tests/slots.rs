//! A split's slot waits for the transactions open on the publisher's
//! server without holding one of its own on the subscriber's: two splits
//! subscribing each way between the same two servers once waited for each
//! other for ever. The wait is bounded by the phase's timeout and names
//! what it waited for, and leaves nothing behind.

mod common;

use std::time::{Duration, Instant};

use common::two;
use deed_split::{SplitError, phases};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_waits_for_open_transactions_without_holding_one_elsewhere() {
    let t = two("split_slot_wait", "CREATE TABLE elsewhere (n int);", "").await;
    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    // An application's transaction on the shared server, holding an id.
    let app = t.shared.client().await;
    app.batch_execute("BEGIN; INSERT INTO elsewhere VALUES (1)").await.unwrap();
    let app_pid: i32 = app.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);

    // A short bound runs out, says why, and leaves no slot and no
    // subscription.
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        phases::copy(&mut split, Duration::from_secs(2), &mut |_| {}),
    )
    .await
    .expect("the slot's wait is bounded by the phase's timeout")
    .unwrap_err();
    let SplitError::Setup(text) = &e else { panic!("{e:?}") };
    assert!(
        text.contains("waited 2 s for the transactions open on that server to end")
            && text.contains(&format!("pid {app_pid} "))
            && text.contains("run this again"),
        "{text}"
    );
    let shared = t.shared.superuser_client().await;
    let target = t.target.superuser_client().await;
    let slots: i64 = shared
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'deedsplit%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let subs: i64 =
        target.query_one("SELECT count(*) FROM pg_subscription", &[]).await.unwrap().get(0);
    assert_eq!((slots, subs), (0, 0), "a failed copy left a slot or a subscription");

    // While the slot waits, nothing of deed's holds a transaction id on
    // the target's server (CREATE SUBSCRIPTION making its slot did).
    let watch = async {
        let started = Instant::now();
        loop {
            let waiting: bool = shared
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)))",
                    &[&app_pid],
                )
                .await
                .unwrap()
                .get(0);
            if waiting {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the copy never waited for the slot"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let held: Vec<String> = target
            .query(
                "SELECT format('%s: %s', backend_type, query) FROM pg_stat_activity
                  WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        app.batch_execute("COMMIT").await.unwrap();
        held
    };
    let mut progress = |_| {};
    let (copied, held) = tokio::join!(phases::copy(&mut split, WAIT, &mut progress), watch);
    assert!(
        held.is_empty(),
        "the target's server held transaction ids while the slot waited: {held:?}"
    );
    let copied = copied.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(copied.tables, 2);
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap_or_else(|e| panic!("{e}")).equal);
}
