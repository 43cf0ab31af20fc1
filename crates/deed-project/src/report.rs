//! The text `deed project` prints at the end of a run (`--format json`
//! prints the [`ProjectReport`] itself).

use deed_text::plural;

use crate::run::ProjectReport;

impl ProjectReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for p in &self.projections {
            out.push_str(&format!(
                "deed project: {}.{} ({}): applied {}, skipped {}",
                self.service,
                p.name,
                p.event,
                plural(p.applied, "event", "events"),
                plural(p.skipped, "already applied", "already applied"),
            ));
            if p.backfilled_rows > 0 {
                out.push_str(&format!(", backfilled {}", plural(p.backfilled_rows, "row", "rows")));
            }
            if p.created_table {
                out.push_str(" (created its table)");
            }
            if p.retried > 0 {
                out.push_str(&format!(
                    ", retried {}",
                    plural(p.retried, "dead letter", "dead letters")
                ));
            }
            out.push('\n');
            if p.dead_letters_waiting > 0 {
                out.push_str(&format!(
                    "  {} waiting in deed.dead_letters: fix the cause, then `deed project --service {} --retry-dead`\n",
                    plural(p.dead_letters_waiting as u64, "dead letter", "dead letters"),
                    self.service
                ));
            }
        }
        out
    }
}
