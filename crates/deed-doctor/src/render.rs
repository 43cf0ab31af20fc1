//! The checks for people (a table by rung) and for programs (JSON).

use serde_json::json;

use crate::judge::{Check, Level};

const RUNGS: [&str; 3] = ["rung 0 · audit", "rung 1 · contracts", "rung 2 · events"];

pub fn table(checks: &[Check]) -> String {
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let warned = checks.iter().filter(|c| c.level == Level::Warn).count();
    let mut out =
        format!("deed doctor: {} checks, {failed} failed, {warned} to look at\n", checks.len());
    for (rung, title) in RUNGS.iter().enumerate() {
        out.push_str(&format!("\n{title}\n"));
        for c in checks.iter().filter(|c| usize::from(c.rung) == rung) {
            let mark = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "warn",
                Level::Fail => "FAIL",
            };
            out.push_str(&format!("  {mark}  {}: {}\n", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("        → {fix}\n"));
            }
        }
    }
    out
}

pub fn json(checks: &[Check]) -> String {
    let doc = json!({"format_version": 1, "command": "doctor", "checks": checks});
    serde_json::to_string_pretty(&doc).expect("checks serialise") + "\n"
}
