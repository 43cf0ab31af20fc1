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
        SourceFile { path: path.into(), text, lines: Arc::new(lines) }
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
        let column = self.text[self.lines[index]..offset].chars().count() + 1;
        Location { file: self.path.clone(), line: index + 1, column }
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
