//! `deed check --since REF`: the migration files a change adds or edits,
//! as CI wants them checked, found with git.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The `.sql` files under `paths` (files or directories) that differ from
/// `reference` in the working tree, or are new and not ignored, in name
/// order: the order migration tools run them in.
pub fn changed_since(reference: &str, paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if reference.starts_with('-') {
        bail!("--since takes a git ref (a branch, tag or commit), not {reference:?}");
    }
    let paths: Vec<PathBuf> =
        if paths.is_empty() { vec![PathBuf::from(".")] } else { paths.to_vec() };
    let verify =
        git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")], &[])?;
    if verify.is_none() {
        bail!(
            "--since {reference}: git knows no such commit here (fetch it first, e.g. `git fetch origin main`)"
        );
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let changed = git(
        &[
            "diff",
            "--name-only",
            "--no-renames",
            "--diff-filter=AM",
            "--relative",
            "-z",
            reference,
            "--",
        ],
        &paths,
    )?
    .unwrap_or_default();
    let untracked = git(&["ls-files", "--others", "--exclude-standard", "-z", "--"], &paths)?
        .unwrap_or_default();
    for name in changed.split('\0').chain(untracked.split('\0')).filter(|n| !n.is_empty()) {
        let path = PathBuf::from(name);
        if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Runs git; `None` when it exits non-zero (for `--verify`).
fn git(args: &[&str], paths: &[PathBuf]) -> Result<Option<String>> {
    let out = Command::new("git")
        .args(args)
        .args(paths)
        .output()
        .context("running git (needed by --since)")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.trim().is_empty() {
            return Ok(None);
        }
        bail!("git {}: {}", args.first().unwrap_or(&""), err.trim());
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}
