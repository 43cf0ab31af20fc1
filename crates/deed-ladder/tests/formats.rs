//! Every format of `deed status` carries the same facts, over one scenario
//! with drift, a stalled flow, a dead letter and a failing relay: each
//! sentence the table prints is in the Markdown, in the JSON, and in the
//! text a real browser (headless Chromium) shows of the HTML page, where
//! quoted commands are code, not backticks, and nothing sits in a `<pre>`.

use std::path::Path;
use std::process::Command;

use deed_ladder::{Bounds, Observed, Status, status};
use deed_manifest::{Date, Manifest};
use deed_project::health::ProjectionHealth;
use deed_relay::health::CaptureHealth;

fn scenario() -> Status {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/status.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let m =
        Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let observed = Observed {
        drift: Some(vec![
            "extra grant: USAGE on schema catalog_api to deed_orders_owner".into(),
            "view catalog_api.products_v1 differs from the manifest <here & there>".into(),
        ]),
        capture: vec![CaptureHealth {
            service: "catalog".into(),
            slot: "deed_catalog_16384".into(),
            slot_exists: true,
            publication: "deed_catalog".into(),
            publication_exists: true,
            relay_running: false,
            relay_failing_since: Some("2026-12-06 06:00:00+00".into()),
            lag_bytes: 5 << 20,
            retained_wal_bytes: 7 << 20,
            wal_status: "reserved".into(),
            max_slot_wal_keep_size: "-1".into(),
            problems: vec!["the relay has been failing since 06:00: run `deed relay --service catalog` and read its log".into()],
            warnings: vec!["max_slot_wal_keep_size is unbounded: a stopped relay keeps WAL until the disk is full".into()],
        }],
        projections: vec![ProjectionHealth {
            service: "orders".into(),
            name: "products".into(),
            event: "catalog.product_changed".into(),
            phase: "live".into(),
            position: Some("0000000001000000/00000000".into()),
            applied: 10,
            backfill_rows: 5,
            waiting_events: 3,
            lag_seconds: 900.0,
            dead_letters: 1,
            on_bus: None,
            problems: vec!["1 dead letter waits: fix its cause, then `deed project --service orders --retry-dead`".into()],
        }],
        ..Observed::default()
    };
    status(&m, observed, Date::from_days(20_000), Bounds::default())
}

/// Every sentence of the table, without its layout: what each format
/// must carry too.
fn facts(s: &Status) -> Vec<String> {
    let mut out = Vec::new();
    for f in &s.flows {
        out.push(format!("{} ← {}: {}", f.consumer, f.owner, f.subject));
        out.push(f.next.clone());
        out.extend(f.stalled.iter().cloned());
    }
    out.extend(s.drift.iter().flatten().cloned());
    for c in &s.capture {
        out.push(deed_relay::health::state_line(c));
        out.extend(c.problems.iter().cloned());
        out.extend(c.warnings.iter().cloned());
    }
    for p in &s.projections {
        out.push(deed_project::health::state_line(p));
        out.extend(p.problems.iter().cloned());
    }
    for e in &s.exceptions {
        out.push(e.exception.reason.clone());
    }
    out.push("2 differences".into());
    out
}

/// Backticks dropped and whitespace collapsed: the text as read.
fn plain(text: &str) -> String {
    text.replace('`', "").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_carries(format: &str, shown: &str, facts: &[String]) {
    let shown = plain(shown);
    for fact in facts {
        assert!(shown.contains(&plain(fact)), "{format} leaves out {fact:?}:\n{shown}");
    }
}

/// The page as a browser shows it: Chromium loads it from a file and
/// reports the body's rendered text and the elements it built.
fn in_browser(page: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.html");
    // Read back what the browser rendered: the body's innerText, set as an
    // attribute once the page is parsed and laid out.
    let probe =
        "<script>document.body.setAttribute('data-shown', document.body.innerText)</script>";
    std::fs::write(&file, page.replace("</body>", &format!("{probe}</body>"))).unwrap();
    let browser = std::env::var("DEED_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {browser} ({e}): install Debian's chromium (scripts/setup does), or point DEED_CHROMIUM at a Chromium"
            )
        });
    assert!(out.status.success(), "{browser}: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8(out.stdout).unwrap();
    let start = dom.find("data-shown=\"").expect("the page ran its probe") + "data-shown=\"".len();
    let end = start + dom[start..].find('"').unwrap();
    let shown = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    (shown, dom)
}

#[test]
fn every_format_carries_the_same_facts() {
    let s = scenario();
    assert!(s.stalled(), "the scenario has something stalled");
    let facts = facts(&s);
    let table = deed_ladder::render::table(&s);
    let markdown = deed_ladder::render::markdown(&s);
    let json = deed_ladder::render::json(&s);
    let html = deed_ladder::render::html(&s);
    assert_carries("the table", &table, &facts);
    let read =
        markdown.replace("\\|", "|").replace("**", "").replace("&lt;", "<").replace("&gt;", ">");
    assert_carries("Markdown", &read, &facts);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let json_text = serde_json::to_string(&v).unwrap();
    for fact in facts.iter().filter(|f| !f.contains(" ← ") && *f != "2 differences") {
        let state_line = s.capture.iter().any(|c| deed_relay::health::state_line(c) == *fact)
            || s.projections.iter().any(|p| deed_project::health::state_line(p) == *fact);
        if !state_line {
            let quoted = serde_json::to_string(fact).unwrap();
            assert!(json_text.contains(quoted.trim_matches('"')), "JSON leaves out {fact:?}");
        }
    }
    assert_eq!(v["drift"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["projections"][0]["dead_letters"], 1);

    let (shown, dom) = in_browser(&html);
    assert_carries("the HTML page, as the browser shows it", &shown, &facts);
    assert!(!shown.contains('`'), "backticks shown literally:\n{shown}");
    assert!(!dom.contains("<pre"), "facts in a <pre> block:\n{dom}");
    assert!(dom.contains("<code>deed relay --service catalog</code>"), "{dom}");
    assert!(shown.contains("invoices <read> prices & names"), "escaping: {shown}");

    insta::assert_snapshot!("formats_table", table);
    insta::assert_snapshot!("formats_markdown", markdown);
    insta::assert_snapshot!("formats_json", json);
    insta::assert_snapshot!("formats_html", html);
}
