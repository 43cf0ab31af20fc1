//! Changing `deed.toml` the way a person would: one home for every edit
//! deed makes to a manifest (`deed contract bump`, `deed cutover`, `deed
//! split`), on `toml_edit`, so comments, key order and layout stay as
//! written, and dotted keys, inline tables and arrays of tables are all
//! understood.
//!
//! An [`Edit`] starts from a validated [`Manifest`], changes its document,
//! and [`Edit::finish`] validates the result as a manifest before anything
//! is written: an edit can never leave a `deed.toml` that deed refuses.
//! [`write_atomically`] then replaces the file so that a reader sees the old
//! text or the new one, never half of each.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, TableLike, Value};

use crate::{ContractRef, Manifest, ManifestErrors};

mod layout;

/// Why an edit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The manifest no longer says what the edit needs (`what` names it).
    #[error("{file}: {what}; edit deed.toml by hand")]
    Missing { file: String, what: String },
    /// A key holds something other than what deed writes there.
    #[error("{file}: {what}; edit deed.toml by hand")]
    Shape { file: String, what: String },
    /// The text did not parse as TOML (it was changed since it was read).
    #[error("{file}: {source}")]
    Toml { file: String, source: Box<toml_edit::TomlError> },
    /// The edited text is not a valid manifest: nothing was written.
    #[error("the edited manifest would be invalid, so it was not written:\n{0}")]
    Invalid(ManifestErrors),
}

/// An edit in progress of one manifest's text.
pub struct Edit {
    path: PathBuf,
    doc: DocumentMut,
}

/// An edited manifest, validated: its text and what it now says.
pub struct Edited {
    pub text: String,
    pub manifest: Manifest,
}

impl Edit {
    /// Starts an edit of the text `manifest` was read from.
    pub fn of(manifest: &Manifest) -> Result<Edit, EditError> {
        let path = manifest.source.path().to_path_buf();
        let doc = manifest.source.text().parse::<DocumentMut>().map_err(|e| EditError::Toml {
            file: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(Edit { path, doc })
    }

    fn file(&self) -> String {
        self.path.display().to_string()
    }

    fn shape(&self, what: String) -> EditError {
        EditError::Shape { file: self.file(), what }
    }

    /// The service's table, however it is written (`[services.x]`, dotted
    /// keys, or an inline table).
    fn service(&mut self, service: &str) -> Result<&mut dyn TableLike, EditError> {
        let file = self.file();
        self.doc
            .get_mut("services")
            .and_then(Item::as_table_like_mut)
            .and_then(|s| s.get_mut(service))
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| EditError::Missing { file, what: format!("no service {service:?}") })
    }

    /// Adds `version = <latest + 1>` of `service`'s contract `name` as a
    /// copy of `latest`, right after it, with a comment saying what to do
    /// next. Returns the new version's reference.
    pub fn bump_contract(
        &mut self,
        service: &str,
        name: &str,
        latest: u32,
    ) -> Result<ContractRef, EditError> {
        let next = latest + 1;
        let reference = format!("{service}.{name}.v{next}");
        let what = || format!("service {service} has no contract {name} version {latest}");
        let is_latest = |t: &dyn TableLike| {
            t.get("name").and_then(Item::as_str) == Some(name)
                && t.get("version").and_then(Item::as_integer) == Some(i64::from(latest))
        };
        let file = self.file();
        let contracts = self
            .service(service)?
            .get_mut("contracts")
            .ok_or_else(|| EditError::Missing { file: file.clone(), what: what() })?;
        let comment = format!(
            "\n# {reference}: a copy of v{latest}; edit its columns, apply, move readers, then retire v{latest}.\n"
        );
        match contracts {
            Item::ArrayOfTables(tables) => {
                let at = tables
                    .iter()
                    .position(|t| is_latest(t))
                    .ok_or_else(|| EditError::Missing { file: file.clone(), what: what() })?;
                let mut copy = tables.get(at).expect("found").clone();
                copy.decor_mut().set_prefix(comment);
                // A comment on the header line describes the old version.
                copy.decor_mut().set_suffix("");
                layout::set_keeping_decor(
                    copy.get_mut("version").and_then(Item::as_value_mut),
                    i64::from(next),
                );
                let mut rebuilt = toml_edit::ArrayOfTables::new();
                for (i, t) in std::mem::take(tables).into_iter().enumerate() {
                    rebuilt.push(t);
                    if i == at {
                        rebuilt.push(copy.clone());
                    }
                }
                *tables = rebuilt;
            }
            Item::Value(Value::Array(array)) => {
                let at = array
                    .iter()
                    .position(|v| v.as_inline_table().is_some_and(|t| is_latest(t)))
                    .ok_or_else(|| EditError::Missing { file: file.clone(), what: what() })?;
                let mut copy = array.get(at).expect("found").clone();
                // `[{…}]` gets `[{…}, {…}]`; a multi-line array keeps its layout.
                if copy.decor().prefix().and_then(|p| p.as_str()).is_none_or(str::is_empty) {
                    copy.decor_mut().set_prefix(" ");
                }
                let version = copy.as_inline_table_mut().and_then(|t| t.get_mut("version"));
                layout::set_keeping_decor(version, i64::from(next));
                array.insert_formatted(at + 1, copy);
            }
            _ => {
                return Err(EditError::Shape {
                    file,
                    what: format!("service {service}'s contracts is not an array of tables"),
                });
            }
        }
        Ok(ContractRef::parse(&reference).expect("built from valid names"))
    }

    /// Takes `read` out of `service`'s `reads`, keeping the other entries
    /// and their comments.
    pub fn remove_read(&mut self, service: &str, read: &ContractRef) -> Result<(), EditError> {
        let file = self.file();
        let array = self.reads(service)?.ok_or_else(|| EditError::Missing {
            file: file.clone(),
            what: format!("service {service} has no reads"),
        })?;
        let at = array
            .iter()
            .position(|v| v.as_str().and_then(ContractRef::parse).as_ref() == Some(read))
            .ok_or_else(|| EditError::Missing {
                file,
                what: format!("service {service}'s reads does not list \"{read}\""),
            })?;
        layout::remove_entry(array, at);
        Ok(())
    }

    /// Adds `read` to `service`'s `reads` (creating the key when the
    /// service has none), laid out like the entries already there.
    pub fn add_read(&mut self, service: &str, read: &ContractRef) -> Result<(), EditError> {
        let entry = read.to_string();
        match self.reads(service)? {
            Some(array) => {
                if array
                    .iter()
                    .any(|v| v.as_str().and_then(ContractRef::parse).as_ref() == Some(read))
                {
                    return Ok(());
                }
                layout::push_entry(array, Value::from(entry));
            }
            None => {
                let mut array = toml_edit::Array::new();
                array.push(entry);
                layout::insert_last(self.service(service)?, "reads", toml_edit::value(array));
            }
        }
        Ok(())
    }

    fn reads(&mut self, service: &str) -> Result<Option<&mut toml_edit::Array>, EditError> {
        let shape = self.shape(format!("service {service}'s reads is not an array"));
        match self.service(service)?.get_mut("reads") {
            None => Ok(None),
            Some(item) => item.as_array_mut().map(Some).ok_or(shape),
        }
    }

    /// Sets `service`'s `database` to `value` as written (`${VAR}` stays a
    /// reference), or removes the key when `value` is None.
    pub fn set_database(&mut self, service: &str, value: Option<&str>) -> Result<(), EditError> {
        let table = self.service(service)?;
        match value {
            Some(v) => match table.get_mut("database") {
                Some(Item::Value(old)) => layout::set_keeping_decor(Some(old), v),
                _ => layout::insert_last(table, "database", toml_edit::value(v)),
            },
            None => layout::remove_keeping_close(table, "database"),
        }
        Ok(())
    }

    /// The edited text, validated as a manifest (`lookup` resolves
    /// `${VAR}`, as [`Manifest::parse`]'s does).
    pub fn finish(self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Edited, EditError> {
        let text = self.doc.to_string();
        let manifest = Manifest::parse(&self.path, &text, lookup).map_err(EditError::Invalid)?;
        Ok(Edited { text, manifest })
    }

    /// [`Edit::finish`] with `${VAR}` taken from the process environment.
    pub fn finish_with_env(self) -> Result<Edited, EditError> {
        self.finish(&|name| std::env::var(name).ok())
    }
}

/// `text` as a TOML string, escaped as the TOML encoder does.
pub fn toml_string(text: &str) -> String {
    Value::from(text).to_string()
}

/// Writes `text` to a new file beside `path`, flushes it to disk, and
/// renames it over `path` (keeping `path`'s permissions): a reader sees the
/// old text or the new one, never half of it.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".deed-").suffix(".toml").tempfile_in(dir)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
