//! Cutover and rollback under load through a real PgBouncer: the writers
//! see a pause, never an error, and every acknowledged commit is there,
//! once, on the side that has the writes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::two;
use deed_cluster::EmbeddedPgBouncer;
use deed_split::pgbouncer::PgBouncer;
use deed_split::phases;
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(60);

/// What one writer saw: the ids the server acknowledged, errors, the
/// longest commit and the longest gap between two commits.
#[derive(Default)]
struct Seen {
    acked: Vec<i64>,
    errors: Vec<String>,
    longest_commit: Duration,
    longest_gap: Duration,
}

async fn writer(url: String, stop: Arc<AtomicBool>, seen: Arc<Mutex<Seen>>, n: usize) {
    let client = deed_pg::connect_plain(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let mut last = Instant::now();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let started = Instant::now();
        // The simple protocol: PgBouncer's transaction pooling keeps no
        // prepared statements.
        let r = client
            .simple_query(&format!(
                "INSERT INTO products (name, price) VALUES ('w{n}-{i}', 1) RETURNING id"
            ))
            .await;
        let took = started.elapsed();
        let mut s = seen.lock().await;
        match r {
            Ok(msgs) => {
                for m in msgs {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
                        s.acked.push(row.get(0).unwrap().parse().unwrap());
                    }
                }
                s.longest_commit = s.longest_commit.max(took);
                s.longest_gap = s.longest_gap.max(last.elapsed());
                last = Instant::now();
            }
            Err(e) => s.errors.push(format!("{e:?}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutover_and_rollback_through_pgbouncer_under_load() {
    let t = two("split_bouncer", "", "").await;
    let bouncer = EmbeddedPgBouncer::start(&[("shop", &t.shared.url)], &[&t.catalog_login])
        .unwrap_or_else(|e| panic!("{e}"));
    let mut split = t.split().await;
    phases::prepare(&mut split, &t.manifest, false).await.unwrap_or_else(|e| panic!("{e}"));
    phases::copy(&mut split, WAIT, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = bouncer.url("shop", &t.catalog_login);
    let writers: Vec<_> =
        (0..4).map(|n| tokio::spawn(writer(url.clone(), stop.clone(), seen.clone(), n))).collect();
    let admin =
        PgBouncer::connect(&bouncer.admin_url(), "shop").await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cut = phases::switch(&mut split, true, Duration::from_secs(3600), WAIT, Some(&admin))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = phases::switch(&mut split, false, Duration::MAX, WAIT, Some(&admin))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let seen = seen.lock().await;
    eprintln!(
        "fence {:.0} ms and {:.0} ms; {} commits; longest commit {:?}, longest gap {:?}\ncutover steps {:?}",
        cut.fence_ms,
        back.fence_ms,
        seen.acked.len(),
        seen.longest_commit,
        seen.longest_gap,
        cut.steps
    );
    assert!(seen.errors.is_empty(), "writers saw errors: {:?}", seen.errors);
    // Every acknowledged commit is on the shared database (the writes are
    // back there), exactly once; and the target has the same rows.
    let shared = deed_pg::connect_plain(&t.shared.url).await.unwrap();
    let ids: Vec<i64> = shared
        .query("SELECT id::int8 FROM products WHERE name LIKE 'w%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut acked = seen.acked.clone();
    acked.sort();
    let mut found = ids.clone();
    found.sort();
    assert_eq!(acked, found, "the ledger of acknowledged commits and the table differ");
    assert!(acked.windows(2).all(|w| w[0] != w[1]), "an id was handed out twice");
    assert!(phases::prove_phase(&mut split, WAIT).await.unwrap().equal);
    // The writes went to the target between the two switches.
    let on_target: i64 = deed_pg::connect_plain(&t.target.url)
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM products WHERE name LIKE 'w%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_target, acked.len() as i64);
    let config = std::fs::read_to_string(bouncer.config()).unwrap();
    let shared_port = deed_pg::endpoint(&t.shared.url).unwrap().port;
    assert!(config.contains(&format!("shop = host=127.0.0.1 port={shared_port} ")), "{config}");
}
