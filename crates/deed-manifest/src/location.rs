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
        SourceFile { path: path.into(), text: text.into() }
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
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { file: self.path.clone(), line, column }
    }

    /// The full text of a 1-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line.saturating_sub(1)).unwrap_or("")
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
