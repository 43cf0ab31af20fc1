//! deed killed (abort, as `kill -9`) at every step of every phase of a
//! split: running the same command again finishes it, or a rollback undoes
//! it, and either way the service can write on exactly one side and the
//! other side follows.

#[path = "../../deed-split/tests/common/mod.rs"]
mod common;
mod support;

use std::process::Output;
use support::text;

use common::{code, eventually, two};

const POINTS: &[&str] = &[
    "prepare:before-commit",
    "prepare:committed",
    "copy:subscribed",
    "copy:indexes",
    "switch:closed",
    "switch:applied",
    "switch:unsubscribed",
    "switch:subscribed",
    "switch:opened",
    "cutover:recorded",
];

fn deed(dir: &std::path::Path, shared: &str, args: &[&str], crash: Option<&str>) -> Output {
    let mut c = support::deed(dir);
    c.env("DATABASE_URL", shared).args(args);
    if let Some(p) = crash {
        c.env("DEED_SPLIT_CRASH_AT", p);
    }
    c.output().expect("deed runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_any_step_is_finished_by_running_again_or_rolled_back() {
    for (i, point) in POINTS.iter().enumerate() {
        let t = two(&format!("split_kill{i}"), "", "").await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deed.toml"), t.manifest.source.text()).unwrap();
        let (shared, to, catalog) =
            (t.shared.url.as_str(), t.target.url.as_str(), t.catalog.as_str());
        let killed = deed(dir.path(), shared, &["split", catalog, "--to", to], Some(point));
        assert!(killed.status.code().is_none(), "{point} was not reached: {}", text(&killed));

        // From a switch step: undo it, then do it again; otherwise, finish.
        if point.starts_with("switch") {
            let o = deed(dir.path(), shared, &["split", catalog, "--to", to, "--rollback"], None);
            assert_eq!(o.status.code(), Some(0), "rollback after a kill at {point}: {}", text(&o));
            check(&t, dir.path(), point, false).await;
        }
        let o = deed(dir.path(), shared, &["split", catalog, "--to", to], None);
        assert_eq!(o.status.code(), Some(0), "after a kill at {point}: {}", text(&o));
        check(&t, dir.path(), point, true).await;
    }
}

/// Exactly one side takes the service's writes, the other follows it, both
/// hold the same rows, and deed.toml says where the writes are.
async fn check(t: &common::Two, dir: &std::path::Path, point: &str, on_target: bool) {
    let on_shared = t.catalog_on(&t.shared).await;
    let on_own = t.catalog_on(&t.target).await;
    let (live, other, other_url) = if on_target {
        (&on_own, &on_shared, &t.shared.url)
    } else {
        (&on_shared, &on_own, &t.target.url)
    };
    let e =
        other.batch_execute("INSERT INTO products (name) VALUES ('wrong side')").await.unwrap_err();
    assert_eq!(code(&e), "42501", "after {point}: the side without the writes refuses them");
    let id: i32 = live
        .query_one("INSERT INTO products (name, price) VALUES ('after', 1) RETURNING id", &[])
        .await
        .unwrap_or_else(|e| panic!("after {point}: the live side refuses writes: {e}"))
        .get(0);
    let follower = deed_pg::connect_plain(other_url).await.unwrap();
    eventually(
        &follower,
        &format!("SELECT EXISTS (SELECT 1 FROM products WHERE id = {id})"),
        point,
    )
    .await;
    let sum = |c: deed_pg::Client| async move {
        c.query_one(
            "SELECT count(*)::text || ':' || sum(hashtext(p::text))::text FROM products p",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0)
    };
    let a = sum(deed_pg::connect_plain(&t.shared.url).await.unwrap()).await;
    let b = sum(deed_pg::connect_plain(&t.target.url).await.unwrap()).await;
    assert_eq!(a, b, "after a kill at {point}, the two sides differ");
    let manifest = std::fs::read_to_string(dir.join("deed.toml")).unwrap();
    assert_eq!(manifest.contains("database ="), on_target, "after {point}: {manifest}");
}

/// SIGKILL at moments picked without looking at the steps: the same
/// command then finishes the split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_at_any_moment_is_finished_by_running_again() {
    for (i, after) in [120u64, 350, 700].into_iter().enumerate() {
        let t = two(&format!("split_sigkill{i}"), "", "").await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("deed.toml"), t.manifest.source.text()).unwrap();
        let (shared, to, catalog) =
            (t.shared.url.as_str(), t.target.url.as_str(), t.catalog.as_str());
        let mut child = support::deed(dir.path())
            .env("DATABASE_URL", shared)
            .args(["split", catalog, "--to", to])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(after)).await;
        let _ = child.kill();
        let _ = child.wait();
        let o = deed(dir.path(), shared, &["split", catalog, "--to", to], None);
        assert_eq!(o.status.code(), Some(0), "after a SIGKILL at {after} ms: {}", text(&o));
        check(&t, dir.path(), &format!("SIGKILL at {after} ms"), true).await;
    }
}
