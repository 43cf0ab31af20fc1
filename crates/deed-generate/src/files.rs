//! Writing generated files, and checking that files on disk are what
//! would be generated now (`--check`): the same bytes, none missing.

use std::path::Path;

use crate::error::GenerateError;
use crate::render::Files;

/// How the files on disk differ from those generated.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Staleness {
    /// Generated, but not on disk.
    pub missing: Vec<String>,
    /// On disk with other contents.
    pub changed: Vec<String>,
}

impl Staleness {
    pub fn is_current(&self) -> bool {
        self.missing.is_empty() && self.changed.is_empty()
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io { path: path.display().to_string(), source }
}

/// Writes every file under `dir`, each through a temporary file renamed
/// into place, so a reader never sees half a file. Files it did not
/// generate are left alone. Returns the paths written (changed ones only).
pub fn write(dir: &Path, files: &Files) -> Result<Vec<String>, GenerateError> {
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dir.join(relative);
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let temporary = path.with_extension("deed-tmp");
        std::fs::write(&temporary, text).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        written.push(relative.clone());
    }
    Ok(written)
}

/// Compares `files` with what is under `dir`.
pub fn check(dir: &Path, files: &Files) -> Result<Staleness, GenerateError> {
    let mut out = Staleness::default();
    for (relative, text) in files {
        let path = dir.join(relative);
        match std::fs::read(&path) {
            Ok(old) if old == text.as_bytes() => {}
            Ok(_) => out.changed.push(relative.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.missing.push(relative.clone())
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(out)
}
