//! What `deed compare` prints: table, JSON (the shape in PRODUCT.md) or
//! Markdown.

use serde::Serialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    /// `service.projection`.
    pub projection: String,
    /// The contract view compared against, on the owner's database.
    pub source: String,
    pub target: String,
    pub equal: bool,
    pub source_rows: i64,
    pub target_rows: i64,
    pub missing: Vec<Json>,
    pub extra: Vec<Json>,
    pub different: Vec<DifferentRow>,
    pub in_flight: Vec<Json>,
    /// Columns of the replaced contract version the projection does not
    /// keep: its consumer could not read them from its copy.
    pub uncovered_columns: Vec<String>,
    /// The last consistent point (the owner's WAL position) the result
    /// holds at.
    pub fence: Option<String>,
    pub seconds: f64,
    /// Key ranges checksummed, rows read back, re-checks after the first pass.
    pub ranges: u64,
    pub rows_read: u64,
    pub rechecks: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DifferentRow {
    pub key: Json,
    pub columns: Vec<String>,
}

/// Rows listed per kind on a terminal; JSON lists them all.
const SHOWN: usize = 20;

impl CompareReport {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes") + "\n"
    }

    pub fn table(&self) -> String {
        let mut out = format!("{}: {} against {}\n", self.projection, self.target, self.source);
        out.push_str(&format!(
            "  {} source rows, {} projection rows, {} in {:.2} s ({} key ranges, {} rows read, {})\n",
            self.source_rows,
            self.target_rows,
            self.verdict(),
            self.seconds,
            self.ranges,
            self.rows_read,
            deed_text::plural(u64::from(self.rechecks), "re-check", "re-checks"),
        ));
        if let Some(f) = &self.fence {
            out.push_str(&format!("  consistent at the owner's WAL position {f}\n"));
        }
        for c in &self.uncovered_columns {
            out.push_str(&format!(
                "  uncovered: the projection keeps no column {c}, which {} has\n",
                self.source
            ));
        }
        list(&mut out, "missing", &self.missing);
        list(&mut out, "extra", &self.extra);
        for d in self.different.iter().take(SHOWN) {
            out.push_str(&format!("  different  {}  ({})\n", key(&d.key), d.columns.join(", ")));
        }
        more(&mut out, self.different.len());
        list(&mut out, "in flight", &self.in_flight);
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### Compare `{}`\n\n`{}` against `{}`: **{}**\n\n| | rows |\n|---|---:|\n| source | {} |\n| projection | {} |\n| missing | {} |\n| extra | {} |\n| different | {} |\n| in flight | {} |\n",
            self.projection,
            self.target,
            self.source,
            self.verdict(),
            self.source_rows,
            self.target_rows,
            self.missing.len(),
            self.extra.len(),
            self.different.len(),
            self.in_flight.len()
        );
        let rows: Vec<String> =
            self.missing
                .iter()
                .map(|k| format!("| missing | `{}` | |", key(k)))
                .chain(self.extra.iter().map(|k| format!("| extra | `{}` | |", key(k))))
                .chain(self.different.iter().map(|d| {
                    format!("| different | `{}` | {} |", key(&d.key), d.columns.join(", "))
                }))
                .take(100)
                .collect();
        if !rows.is_empty() {
            out.push_str("\n| kind | key | columns |\n|---|---|---|\n");
            out.push_str(&(rows.join("\n") + "\n"));
        }
        for c in &self.uncovered_columns {
            out.push_str(&format!(
                "\nThe projection keeps no column `{c}`, which `{}` has.\n",
                self.source
            ));
        }
        out
    }

    fn verdict(&self) -> String {
        if self.equal {
            return "equal".into();
        }
        let n = self.missing.len() + self.extra.len() + self.different.len();
        if n == 0 {
            "not equal".into()
        } else {
            deed_text::plural(n as u64, "difference", "differences")
        }
    }
}

fn key(k: &Json) -> String {
    k.to_string()
}

fn list(out: &mut String, kind: &str, keys: &[Json]) {
    for k in keys.iter().take(SHOWN) {
        out.push_str(&format!("  {kind:<10} {}\n", key(k)));
    }
    more(out, keys.len());
}

fn more(out: &mut String, n: usize) {
    if n > SHOWN {
        out.push_str(&format!("  … and {} more (--format json lists them all)\n", n - SHOWN));
    }
}
