//! `deed split` from the command line: exit codes, the plan shown before
//! anything changes, every phase in one run, deed.toml edited and restored,
//! `--status` as JSON, and `deed plan` clean after the move.

#[path = "../../deed-split/tests/common/mod.rs"]
mod common;
mod support;

use support::text;

use common::two;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_from_the_command_line() {
    let t = two(
        "split_cli",
        "CREATE TABLE notes (id int PRIMARY KEY, product_id int REFERENCES products (id));",
        "",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let original = t.manifest.source.text().to_string();
    std::fs::write(dir.path().join("deed.toml"), &original).unwrap();
    let (shared, to) = (t.shared.url.as_str(), t.target.url.as_str());
    let catalog = t.catalog.as_str();

    // Refused: a foreign key from a table that stays. Exit 1, nothing made.
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to, "--prepare"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("public.notes") && text(&o).contains("refused, nothing was changed"),
        "{}",
        text(&o)
    );
    let o = support::run(
        dir.path(),
        shared,
        &["split", catalog, "--to", to, "--prepare", "--format", "json"],
    );
    let json: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(json["refused"][0]["at"].as_str().unwrap().contains("notes"), "{json}");
    t.shared.client().await.batch_execute("DROP TABLE notes").await.unwrap();

    // The plan, without changing anything.
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("would run on the target (dry run)") && text(&o).contains("CREATE TABLE"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("catalog-secret"));
    let made: i64 = t
        .target
        .client()
        .await
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(made, 0);

    // Not proven: the cutover alone is refused.
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to, "--prepare"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to, "--cutover"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no clean proof"), "{}", text(&o));

    // Every phase left, in one run.
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("tables copied and following")
            && out.contains("every table equal")
            && out.contains("cut over; writes were fenced for"),
        "{out}"
    );
    let moved = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap();
    assert!(moved.contains(&format!("database = \"{to}\"")), "{moved}");
    let o = support::run(dir.path(), shared, &["split", catalog, "--status", "--format", "json"]);
    let s: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(s["recorded"]["phase"], "cut_over", "{s}");
    assert_eq!(s["writes_on"], "target", "{s}");
    assert_eq!(s["replicating"], "back", "{s}");
    // Again: nothing to do.
    let o = support::run(dir.path(), shared, &["split", catalog]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("already cut over"), "{}", text(&o));
    // Finish is refused while orders reads the contract views there:
    // exit 1 (a refusal), located at the read in deed.toml, nothing dropped.
    let o = support::run(dir.path(), shared, &["split", catalog, "--finish"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let now = std::fs::read_to_string(dir.path().join("deed.toml")).unwrap();
    let read_line = now.lines().position(|l| l.starts_with("reads =")).unwrap() + 1;
    assert!(
        text(&o).contains("refused, nothing was changed")
            && text(&o).contains(&format!("deed.toml:{read_line}:"))
            && text(&o).contains("still reads"),
        "{}",
        text(&o)
    );
    let o = support::run(dir.path(), shared, &["split", catalog, "--finish", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let json: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert!(json["refused"][0]["reason"].as_str().unwrap().contains("still reads"), "{json}");
    // A phase the state does not allow now is a refusal too.
    let o = support::run(dir.path(), shared, &["split", catalog, "--to", to, "--prove"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("nothing to prove"), "{}", text(&o));
    // The shared database has no drift: deed apply leaves the move alone.
    let o = support::run(dir.path(), shared, &["plan"]);
    assert_eq!(o.status.code(), Some(0), "deed plan after the split: {}", text(&o));
    let o = support::run(dir.path(), shared, &["status", "--format", "json"]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", text(&o));

    // Back, with the target taken from deed.toml; the file as it was.
    let o = support::run(dir.path(), shared, &["split", catalog, "--rollback"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("rolled back"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(dir.path().join("deed.toml")).unwrap(), original);
    let o = support::run(
        dir.path(),
        shared,
        &["split", catalog, "--to", to, "--status", "--format", "json"],
    );
    let s: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(s["writes_on"], "source", "{s}");
    assert_eq!(s["replicating"], "forward", "{s}");
}
