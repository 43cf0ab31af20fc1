use std::process::ExitCode;

/// How a command ended when it did its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report.
    Clean,
    /// Findings: violations, drift, breaking changes.
    Findings,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        match o {
            Outcome::Clean => ExitCode::SUCCESS,
            Outcome::Findings => ExitCode::from(1),
        }
    }
}

/// Prints an error and returns exit code 2: deed could not do its job.
pub fn report(e: anyhow::Error) -> ExitCode {
    let message = e.to_string();
    eprintln!("error: {}", deed_text::terminal_safe(&message));
    // Library errors often embed their cause's text already; repeat only news.
    let mut shown = message;
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !shown.contains(&text) {
            eprintln!("  caused by: {}", deed_text::terminal_safe(&text));
            shown.push_str(&text);
        }
        source = cause.source();
    }
    ExitCode::from(2)
}
