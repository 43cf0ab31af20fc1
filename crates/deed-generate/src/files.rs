//! Writing generated files, and checking that files on disk are what
//! would be generated now (`--check`): the same bytes, none missing, and
//! none left over from an earlier run that would not be written now (an
//! event no longer in the manifest). A left-over file is one deed wrote:
//! it carries deed's notice, so a user's own files are never touched.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::GenerateError;
use crate::render::{Files, NOTICE};

/// How the files on disk differ from those generated.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Staleness {
    /// Generated, but not on disk.
    pub missing: Vec<String>,
    /// On disk with other contents.
    pub changed: Vec<String>,
    /// Written by deed earlier, and not generated now.
    pub leftover: Vec<String>,
}

impl Staleness {
    pub fn is_current(&self) -> bool {
        self.missing.is_empty() && self.changed.is_empty() && self.leftover.is_empty()
    }
}

/// Files in the directories `files` go to that deed wrote (they carry its
/// notice near their start) and that are not among `files`.
fn leftovers(dir: &Path, files: &Files) -> Vec<String> {
    let dirs: BTreeSet<PathBuf> = files
        .keys()
        .map(|f| Path::new(f).parent().map(Path::to_path_buf).unwrap_or_default())
        .collect();
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(dir.join(&d)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = if d.as_os_str().is_empty() {
                name
            } else {
                format!("{}/{name}", d.to_string_lossy())
            };
            if files.contains_key(&relative) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let mut head = Vec::with_capacity(1024);
            let read =
                std::fs::File::open(entry.path()).and_then(|f| f.take(1024).read_to_end(&mut head));
            if read.is_ok() && String::from_utf8_lossy(&head).contains(NOTICE) {
                out.push(relative);
            }
        }
    }
    out.sort();
    out
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> GenerateError + '_ {
    move |source| GenerateError::Io { path: path.display().to_string(), source }
}

/// What [`write`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Files written (new or changed).
    pub written: Vec<String>,
    /// Files deed had written before that it no longer generates, removed.
    pub removed: Vec<String>,
}

/// Writes every file under `dir`, each through a temporary file renamed
/// into place, so a reader never sees half a file, and removes files an
/// earlier run wrote that are not generated now. Files deed did not write
/// are left alone.
pub fn write(dir: &Path, files: &Files) -> Result<Written, GenerateError> {
    let removed = leftovers(dir, files);
    for relative in &removed {
        let path = dir.join(relative);
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    let written = write_files(dir, files)?;
    Ok(Written { written, removed })
}

fn write_files(dir: &Path, files: &Files) -> Result<Vec<String>, GenerateError> {
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
    out.leftover = leftovers(dir, files);
    Ok(out)
}
