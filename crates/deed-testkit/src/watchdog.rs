//! A hung test fails, and says what it was waiting for.
//!
//! Every live [`crate::TestDb`] is registered here with the moment it was
//! made. A thread looks every few seconds; when one has lived longer than
//! `DEED_TEST_TIMEOUT` seconds (600 by default; the tests that run longer
//! are `#[ignore]`d and set it), it prints, for every server the process
//! uses, the sessions that are not idle with what they wait on and who
//! blocks them, the replication slots and subscriptions, and the end of
//! each private server's log, then ends the process with a failure. A
//! deadlock between two tests, or a wait with no bound, is then a red test
//! with its cause instead of a CI run that never ends.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// Straight to the process's stderr: the test harness captures what a
/// test's threads print with `eprintln!`, and would lose it on exit.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

static LIVE: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());
static SERVERS: Mutex<Vec<(String, Option<PathBuf>)>> = Mutex::new(Vec::new());
static START: Once = Once::new();

/// How long one test may keep its database.
fn limit() -> Duration {
    let secs = std::env::var("DEED_TEST_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    Duration::from_secs(secs)
}

/// A server whose state is printed when a test hangs (its superuser URL,
/// and its log when the tests started it).
pub(crate) fn server(url: &str, log: Option<PathBuf>) {
    let mut servers = SERVERS.lock().expect("watchdog servers");
    if !servers.iter().any(|(u, _)| u == url) {
        servers.push((url.to_string(), log));
    }
}

/// `database` is in use from now until [`done`].
pub(crate) fn begin(database: &str) {
    LIVE.lock().expect("watchdog").insert(database.to_string(), Instant::now());
    START.call_once(|| {
        std::thread::spawn(watch);
    });
}

pub(crate) fn done(database: &str) {
    LIVE.lock().expect("watchdog").remove(database);
}

fn watch() {
    let limit = limit();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let late: Vec<String> = LIVE
            .lock()
            .map(|l| {
                l.iter()
                    .filter(|(_, since)| since.elapsed() > limit)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if late.is_empty() {
            continue;
        }
        say!(
            "\n== deed-testkit: a test has held its database for over {} s (DEED_TEST_TIMEOUT): {} ==",
            limit.as_secs(),
            late.join(", ")
        );
        let servers = SERVERS.lock().map(|s| s.clone()).unwrap_or_default();
        for (url, log) in servers {
            report(&url, log.as_deref());
        }
        say!("== ending the test process as failed ==");
        std::process::exit(3);
    }
}

const QUERIES: &[(&str, &str)] = &[
    (
        "sessions not idle",
        "SELECT format('pid %s %s db=%s user=%s state=%s wait=%s/%s xact=%s blocked_by=%s: %s',
                pid, backend_type, datname, usename, state, wait_event_type, wait_event,
                date_trunc('second', now() - xact_start), pg_blocking_pids(pid),
                left(regexp_replace(query, '\\s+', ' ', 'g'), 300))
           FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND state IS DISTINCT FROM 'idle'
            AND backend_type NOT IN ('autovacuum launcher', 'logical replication launcher',
                                     'background writer', 'checkpointer', 'walwriter', 'archiver')
          ORDER BY xact_start NULLS LAST",
    ),
    (
        "replication slots",
        "SELECT format('%s %s db=%s active=%s pid=%s restart=%s confirmed=%s',
                slot_name, slot_type, database, active, active_pid, restart_lsn, confirmed_flush_lsn)
           FROM pg_replication_slots ORDER BY 1",
    ),
    (
        "subscriptions",
        "SELECT format('%s pid=%s rel=%s received=%s latest_end=%s', subname, pid, relid::regclass,
                received_lsn, latest_end_lsn)
           FROM pg_stat_subscription ORDER BY 1",
    ),
];

fn report(url: &str, log: Option<&std::path::Path>) {
    let shown = deed_pg::redact_url(url);
    say!("-- server {shown}");
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return say!("   (no runtime: {e})"),
    };
    rt.block_on(async {
        let client =
            tokio::time::timeout(Duration::from_secs(10), deed_pg::connect_plain(url)).await;
        let client = match client {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return say!("   (cannot connect: {e})"),
            Err(_) => return say!("   (no connection within 10 s)"),
        };
        for (what, sql) in QUERIES {
            say!("   {what}:");
            match tokio::time::timeout(Duration::from_secs(10), client.query(*sql, &[])).await {
                Ok(Ok(rows)) => {
                    for r in rows {
                        say!("     {}", r.get::<_, String>(0));
                    }
                }
                Ok(Err(e)) => say!("     (failed: {e})"),
                Err(_) => say!("     (no answer within 10 s)"),
            }
        }
    });
    if let Some(log) = log {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        say!("   the end of its log ({}):", log.display());
        for line in &lines[lines.len().saturating_sub(60)..] {
            say!("     {line}");
        }
    }
}
