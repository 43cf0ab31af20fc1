use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range in the manifest text.
pub type Span = std::ops::Range<usize>;

/// The manifest's path and text, kept so errors can be located and quoted.
#[derive(Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: Arc<str>,
    /// Byte offset of each line's start, so locating is a binary search:
    /// a manifest of thousands of services has tens of thousands of items.
    lines: Arc<Vec<usize>>,
    /// The lines that hold a secret, masked, and the secrets taken out:
    /// worked out once, the first time an error quotes a line.
    masked: Arc<std::sync::OnceLock<Masked>>,
}

#[derive(Default)]
struct Masked {
    lines: std::collections::HashMap<usize, String>,
    secrets: Vec<String>,
}

/// A 1-based line and column (in characters) inside a named file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let lines =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        SourceFile {
            path: path.into(),
            text,
            lines: Arc::new(lines),
            masked: Arc::new(std::sync::OnceLock::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column of a byte offset; offsets past the end clamp to it.
    pub fn locate(&self, offset: usize) -> Location {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let index = self.lines.partition_point(|&start| start <= offset) - 1;
        let before = &self.text[self.lines[index]..offset];
        // Columns count characters; most manifests are ASCII, where that is
        // the byte count (a megabyte-long line stays cheap to locate in).
        let column = if before.is_ascii() { before.len() } else { before.chars().count() } + 1;
        Location { file: self.path.clone(), line: index + 1, column }
    }

    fn masked(&self) -> &Masked {
        self.masked.get_or_init(|| {
            let mut m = Masked::default();
            let mut state = deed_text::SecretLines::default();
            for n in 1..=self.lines.len() {
                let line = self.line_text(n);
                let shown = deed_text::redact_secrets(&state.next_line(line, &mut m.secrets));
                if shown != line {
                    m.lines.insert(n, shown);
                }
            }
            m.secrets.retain(|s| s.trim().len() > 1);
            m
        })
    }

    /// A 1-based line as an error may quote it: the value of every key
    /// named like a secret (`password = "…"`, a token, an api key) and
    /// every password in a connection string replaced by `***`.
    pub fn quotable_line(&self, line: usize) -> &str {
        match self.masked().lines.get(&line) {
            Some(masked) => masked.as_str(),
            None => self.line_text(line),
        }
    }

    /// `message` with every secret value of the file (see
    /// [`SourceFile::quotable_line`]) replaced by `***`, should it quote one.
    pub fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for secret in &self.masked().secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// The full text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.lines.get(line.saturating_sub(1)) else { return "" };
        let rest = &self.text[start..];
        let line = rest.split('\n').next().unwrap_or("");
        line.strip_suffix('\r').unwrap_or(line)
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile").field("path", &self.path).finish_non_exhaustive()
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_lines_and_columns() {
        let src = SourceFile::new("deed.toml", "a = 1\nbé = 2\n");
        assert_eq!(src.locate(0).to_string(), "deed.toml:1:1");
        assert_eq!(src.locate(6).to_string(), "deed.toml:2:1");
        // 'é' is two bytes but one column.
        assert_eq!(src.locate(9).to_string(), "deed.toml:2:3");
        assert_eq!(src.line_text(2), "bé = 2");
    }
}
