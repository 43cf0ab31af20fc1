//! The manifest and database URL every command starts from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use deed_manifest::Manifest;

use crate::cli::Cli;

const DEFAULT_MANIFEST: &str = "deed.toml";

/// Loads the manifest: the one named by `--manifest` (which must exist),
/// else `./deed.toml` if present, else none.
pub fn manifest(cli: &Cli) -> Result<Option<Manifest>> {
    let (path, explicit) = match &cli.manifest {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_MANIFEST), false),
    };
    if !explicit && !path.exists() {
        return Ok(None);
    }
    Manifest::load(&path).map(Some).map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn manifest_path(cli: &Cli) -> PathBuf {
    cli.manifest.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST))
}

/// `--database-url`, then the manifest's `[database] url`, then
/// `DATABASE_URL`.
pub fn database_url(cli: &Cli, manifest: Option<&Manifest>) -> Result<Option<String>> {
    if let Some(url) = &cli.database_url {
        return Ok(Some(url.clone()));
    }
    if let Some(m) = manifest {
        let env = |name: &str| std::env::var(name).ok();
        match m.database_url(&env) {
            Ok(Some(url)) => return Ok(Some(url)),
            Ok(None) => {}
            Err(e) => {
                if std::env::var("DATABASE_URL").is_err() {
                    bail!("{e}");
                }
            }
        }
    }
    Ok(std::env::var("DATABASE_URL").ok())
}

/// Writes `text` to `path`, or stdout when there is no path.
pub fn emit(path: Option<&Path>, text: &str) -> Result<()> {
    let text: &str = &deed_text::terminal_safe(text);
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed pipe (`deed audit | head`) is not an error worth a stack of messages.
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing to stdout"),
            }
        }
    }
}

/// The manifest, required: commands that change or compare the database
/// have nothing to work from without one.
pub fn required_manifest(cli: &Cli) -> Result<Manifest> {
    match manifest(cli)? {
        Some(m) => Ok(m),
        None => bail!(
            "no manifest: {} does not exist (pass --manifest PATH, or propose one with `deed init`)",
            manifest_path(cli).display()
        ),
    }
}

/// The database URL, required.
pub fn required_url(cli: &Cli, manifest: Option<&Manifest>) -> Result<String> {
    database_url(cli, manifest)?.ok_or_else(|| {
        anyhow::anyhow!("no database: pass --database-url, set [database] url in the manifest, or set DATABASE_URL")
    })
}
