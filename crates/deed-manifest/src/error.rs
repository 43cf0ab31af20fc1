use std::fmt;

use crate::location::{Location, SourceFile, Span};

/// The most of a line an error quotes, in characters.
const MAX_SNIPPET: usize = 160;
/// The longest message: deed's own are far shorter; one quoting a huge
/// value is cut.
const MAX_MESSAGE: usize = 600;

/// One problem in a manifest, located at the key or value that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub location: Location,
    pub message: String,
    pub help: Option<String>,
    /// The offending source line and the caret span under it, for display.
    snippet: Option<(String, usize, usize)>,
}

impl ManifestError {
    pub(crate) fn at(src: &SourceFile, span: Span, message: impl Into<String>) -> Self {
        let location = src.locate(span.start);
        // The quoted line may hold a connection string written out in
        // full, or a key named like a secret; it may be megabytes long.
        let line = src.quotable_line(location.line);
        let end = src.locate(span.end.max(span.start + 1));
        let width = if end.line == location.line {
            end.column.saturating_sub(location.column).max(1)
        } else {
            line.chars().count().saturating_sub(location.column - 1).max(1)
        };
        let (line, column, width) = deed_text::snippet(line, location.column, width, MAX_SNIPPET);
        let message = deed_text::excerpt(&src.scrub(&message.into()), MAX_MESSAGE);
        ManifestError { snippet: Some((line, column, width)), location, message, help: None }
    }

    /// An error about the file as a whole (unreadable, not UTF-8, ...).
    pub fn whole_file(location: Location, message: impl Into<String>) -> Self {
        ManifestError { location, message: message.into(), help: None, snippet: None }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some((line, column, width)) = &self.snippet {
            let number = self.location.line.to_string();
            let pad = " ".repeat(number.len());
            write!(f, "\n{pad} |\n{number} | {line}\n{pad} | ")?;
            write!(f, "{}{}", " ".repeat(column - 1), "^".repeat(*width))?;
        }
        if let Some(help) = &self.help {
            let pad = " ".repeat(self.location.line.to_string().len());
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in one manifest, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors(pub Vec<ManifestError>);

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        match self.0.len() {
            1 => Ok(()),
            n => write!(f, "\n{n} problems in the manifest"),
        }
    }
}
