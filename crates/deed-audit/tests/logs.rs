//! The log readers without a server: each file under `fixtures/logs/` (a
//! csvlog, a jsonlog, a stderr log with its `log_line_prefix`) is read as
//! `deed audit --from-log` reads it, and what it yields is snapshotted:
//! who touched what, how often, and what was skipped and why. Only the
//! database `shop` counts; `deed`'s own sessions and non-statements are
//! left out.

use std::fmt::Write;
use std::path::Path;

use deed_audit::report::AuditReport;
use deed_audit::source::{LogOptions, read_log};
use deed_audit::{Attribution, Catalogue, Collector};
use deed_manifest::Manifest;
use deed_sql::OfflineLookup;

/// The `log_line_prefix` the stderr fixtures were written with.
const STDERR_PREFIX: &str = "%m [%p] %u@%d ";

#[test]
fn every_log_format_yields_who_touched_what() {
    let manifest =
        Manifest::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/logs.toml")))
            .unwrap();
    // The reports name the file they read: the same wherever the crate is.
    let dir = regex::escape(env!("CARGO_MANIFEST_DIR"));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&dir, "[crate]");
    let _bound = settings.bind_to_scope();
    insta::glob!("fixtures/logs/*", |path| {
        let stderr = path.extension().is_some_and(|e| e == "log");
        let options = LogOptions {
            database: Some("shop".into()),
            line_prefix: stderr.then(|| STDERR_PREFIX.to_string()),
            line_prefix_given: stderr,
            ..LogOptions::default()
        };
        let lookup = OfflineLookup::default();
        let attribution = Attribution::new(Some(&manifest));
        let mut collector = Collector::new(&lookup);
        let summary = read_log(path, &options, &attribution, &mut collector).unwrap();
        let catalogue = Catalogue::build(&collector, Some(&manifest), None, vec![summary]);
        let mut out = String::new();
        for s in &catalogue.sources {
            writeln!(out, "{}: {} statements", s.kind, s.statements).unwrap();
            for note in s.notes.iter().chain(&s.warnings) {
                writeln!(out, "  {note}").unwrap();
            }
        }
        for a in &catalogue.accesses {
            writeln!(
                out,
                "{} {:?} {} ×{} (owner {})",
                a.service,
                a.access,
                a.relation,
                a.calls,
                a.owner.as_deref().unwrap_or("none")
            )
            .unwrap();
        }
        insta::assert_snapshot!(out);

        // Every report format, from the csvlog's catalogue.
        if path.extension().is_some_and(|e| e == "csv") {
            let findings = deed_audit::rules::evaluate(&catalogue, Some(&manifest));
            let report = AuditReport {
                catalogue: &catalogue,
                findings: &findings,
                excepted: &[],
                manifest: Some(&manifest),
            };
            insta::assert_snapshot!("csv_table", report.table());
            insta::assert_snapshot!("csv_json", report.json());
            insta::assert_snapshot!("csv_markdown", report.markdown());
            insta::assert_snapshot!("csv_html", report.html());
        }
    });
}
