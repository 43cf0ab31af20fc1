//! Turns the raw TOML into a [`Manifest`], collecting every problem.

mod cross;
mod event;
mod names;
mod service;

use std::io::Read;
use std::path::Path;

use deed_ident::{Ident, QualifiedName};

use crate::MANIFEST_VERSION;
use crate::error::{ManifestError, ManifestErrors};
use crate::location::{Location, SourceFile, Span};
use crate::model::{DatabaseSection, Manifest, Service};
use crate::projection::ProjectionSpans;
use crate::raw::{RawDatabase, RawManifest};
use crate::refs::{ContractKey, ContractRef, EventRef};

/// The largest manifest deed reads. One with 10,000 services, each with
/// tables, logins, a contract, an event and an exception, is about 5 MiB;
/// anything far beyond is not a manifest.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The most problems one manifest reports in full.
const MAX_ERRORS: usize = 100;

/// Service names become parts of role names (`deed_<service>_owner`), so
/// they stay well inside PostgreSQL's 63-byte limit.
const MAX_SERVICE_NAME: usize = 40;

/// Schemas a service may never claim as its api schema.
const RESERVED_SCHEMAS: &[&str] = &["public", "information_schema", "deed"];

/// Role names the server reserves besides every `pg_` name: `GRANT … TO
/// public` (quoted or not) grants to everyone.
const RESERVED_ROLES: &[&str] = &["public", "none"];

/// PostgreSQL's own schemas (`pg_catalog`, `pg_toast`, `pg_temp_*`, and
/// every `pg_` name, which the server reserves), `information_schema`, and
/// deed's own: no key may name a relation in one, or the schema itself.
fn system_schema(schema: &str) -> bool {
    schema.starts_with("pg_") || schema == "information_schema" || schema == "deed"
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Manifest {
    /// Reads and validates a manifest file, with `${VAR}` taken from the
    /// process environment.
    pub fn load(path: &Path) -> Result<Manifest, ManifestErrors> {
        let at_start = Location { file: path.to_path_buf(), line: 1, column: 1 };
        let unreadable = |e: std::io::Error| {
            let mut err = ManifestError::whole_file(
                at_start.clone(),
                format!("cannot read the manifest: {e}"),
            );
            err.help = Some("write one by hand, or propose one with `deed init`".into());
            ManifestErrors(vec![err])
        };
        // Read at most one byte past the limit: a device or a runaway file
        // (`--manifest /dev/zero`) is refused, not read until memory ends.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            let mut err = ManifestError::whole_file(
                at_start,
                format!("the manifest is larger than {} MiB", MAX_MANIFEST_BYTES >> 20),
            );
            err.help =
                Some("is this the right file? deed.toml describes services, not data".into());
            return Err(ManifestErrors(vec![err]));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // What `deed init > deed.toml` leaves behind when init fails.
            let mut err = ManifestError::whole_file(at_start, "the manifest is empty");
            err.help = Some(
                "propose one with `deed init --write` (it replaces an empty file), or remove it"
                    .into(),
            );
            return Err(ManifestErrors(vec![err]));
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let good = e.utf8_error().valid_up_to();
                let prefix = String::from_utf8_lossy(&e.as_bytes()[..good]).into_owned();
                let mut err = ManifestError::whole_file(
                    SourceFile::new(path, prefix).locate(good),
                    "the manifest is not valid UTF-8",
                );
                err.help = Some("save deed.toml as UTF-8".into());
                return Err(ManifestErrors(vec![err]));
            }
        };
        Manifest::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Validates manifest text. `lookup` resolves `${VAR}`.
    pub fn parse(path: &Path, text: &str, lookup: Lookup) -> Result<Manifest, ManifestErrors> {
        let src = SourceFile::new(path, text);
        let raw: RawManifest = deserialize(&src, text)?;
        let mut v = Validator {
            src: &src,
            lookup,
            errors: Vec::new(),
            more: 0,
            spans: Vec::new(),
            projection_spans: Vec::new(),
        };
        let manifest = v.manifest(raw);
        if v.errors.is_empty() {
            Ok(manifest)
        } else {
            v.errors.sort_by(|a, b| a.location.cmp(&b.location));
            if v.more > 0 {
                let mut last = ManifestError::whole_file(
                    src.locate(text.len()),
                    format!("and {} more problems not shown", v.more),
                );
                last.help = Some("fix the ones above first".into());
                v.errors.push(last);
            }
            Err(ManifestErrors(v.errors))
        }
    }
}

/// Where each validated item of one service was written, for the checks
/// that compare services with each other.
#[derive(Default)]
struct ServiceSpans {
    owns: Vec<(QualifiedName, Span)>,
    logins: Vec<(Ident, Span)>,
    applications: Vec<(String, Span)>,
    api_schema: Span,
    reads: Vec<(ContractRef, Span)>,
    consumes: Vec<(EventRef, Span)>,
    /// Contract versions and events as declared, even those rejected for
    /// another reason, so one mistake does not cascade into "unknown
    /// reference" errors elsewhere.
    declared_contracts: Vec<ContractKey>,
    declared_events: Vec<String>,
    exceptions: Vec<(QualifiedName, Span)>,
}

pub(crate) struct Validator<'a> {
    pub(crate) src: &'a SourceFile,
    lookup: Lookup<'a>,
    pub(crate) errors: Vec<ManifestError>,
    /// Problems past [`MAX_ERRORS`], counted but not kept: a manifest with
    /// a million bad entries is reported in a page, not a gigabyte.
    more: usize,
    spans: Vec<ServiceSpans>,
    projection_spans: Vec<Vec<ProjectionSpans>>,
}

fn public() -> Ident {
    Ident::new("public").expect("valid")
}

impl Validator<'_> {
    /// Problems found so far, kept or not.
    pub(crate) fn problems(&self) -> usize {
        self.errors.len() + self.more
    }

    pub(crate) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.push(|src| ManifestError::at(src, span, message));
    }

    /// Keeps a problem, or only counts it past [`MAX_ERRORS`] (without
    /// quoting its line at all).
    fn push(&mut self, error: impl FnOnce(&SourceFile) -> ManifestError) {
        if self.errors.len() >= MAX_ERRORS {
            self.more += 1;
        } else {
            self.errors.push(error(self.src));
        }
    }

    pub(crate) fn error_help(
        &mut self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(|src| ManifestError::at(src, span, message).help(help));
    }

    fn manifest(&mut self, raw: RawManifest) -> Manifest {
        match &raw.version {
            None => self.error_help(
                0..0,
                "missing the manifest format version",
                format!("add `version = {MANIFEST_VERSION}` at the top"),
            ),
            Some(v) if *v.get_ref() != MANIFEST_VERSION => self.error_help(
                v.span(),
                format!("unsupported manifest version {}", v.get_ref()),
                format!("this deed reads version = {MANIFEST_VERSION}"),
            ),
            Some(_) => {}
        }
        let database = self.database(raw.database);
        let admins: Vec<String> = match &raw.audit {
            Some(a) => self
                .list(&a.admins, "admin", |v, s| {
                    let text = v.text(s)?;
                    if text.is_empty() {
                        v.error(s.span(), "an admin role or application name cannot be empty");
                        return None;
                    }
                    Some(text)
                })
                .into_iter()
                .map(|(a, _)| a)
                .collect(),
            None => Vec::new(),
        };
        let admin_spans: Vec<(String, Span)> = raw
            .audit
            .as_ref()
            .map(|a| a.admins.iter().map(|s| (s.get_ref().clone(), s.span())).collect())
            .unwrap_or_default();
        let services: Vec<Service> =
            raw.services.into_iter().map(|(name, s)| self.service(name, s)).collect();
        let manifest =
            Manifest { source: self.src.clone(), version: 1, database, services, admins };
        for (admin, span) in admin_spans {
            if let Some(s) = manifest.service_for_login(&admin) {
                self.error_help(
                    span,
                    format!("{admin} is a login of service {}, so it cannot be an admin too", s.name),
                    "admins are the roles of people and migration tools, whose statements are no service's",
                );
            }
        }
        self.cross_checks(&manifest);
        let projection_spans = std::mem::take(&mut self.projection_spans);
        self.projection_checks(&manifest, &projection_spans);
        manifest
    }

    fn database(&mut self, raw: Option<RawDatabase>) -> DatabaseSection {
        let Some(raw) = raw else {
            return DatabaseSection { url: None, search_path: vec![public()] };
        };
        let search_path = match raw.search_path {
            None => vec![public()],
            Some(list) => list
                .iter()
                .filter_map(|s| {
                    let schema = self.ident(s)?;
                    if system_schema(schema.as_str()) {
                        self.error_help(
                            s.span(),
                            format!("{schema} cannot be in the search path"),
                            "pg_catalog is always searched first, and the other system schemas (and deed's own) hold nothing a service's SQL names; list the schemas of your tables",
                        );
                        return None;
                    }
                    Some(schema)
                })
                .collect(),
        };
        let url = raw.url.map(|u| {
            let span = u.span();
            (u.into_inner(), span)
        });
        DatabaseSection { url, search_path }
    }
}

/// The most structural errors (unknown keys, wrong types) reported at once
/// that serde stops at one by one: after each, the lines it covers are
/// blanked (offsets kept, so locations stay exact) and the text read again.
/// A later "missing field" for a key that was blanked is the blanking's
/// doing, not the user's, and is left out.
fn deserialize(src: &SourceFile, text: &str) -> Result<RawManifest, ManifestErrors> {
    const MAX_ERRORS: usize = 20;
    let mut work = text.to_string();
    let mut errors: Vec<ManifestError> = Vec::new();
    let mut blanked_keys: Vec<String> = Vec::new();
    loop {
        let e = match toml::from_str::<RawManifest>(&work) {
            Ok(raw) if errors.is_empty() => return Ok(raw),
            Ok(_) => break,
            Err(e) => e,
        };
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().to_string();
        let cascade = blanked_keys.iter().any(|k| message == format!("missing field `{k}`"));
        if !cascade {
            errors.push(ManifestError::at(src, span.clone(), message));
        }
        // A syntax error, or one with no place, leaves nothing to blank.
        let (start, end) = line_bounds(&work, span);
        if start >= end || errors.len() >= MAX_ERRORS || work[start..end].trim().is_empty() {
            break;
        }
        if let Some((key, _)) = work[start..end].split_once('=') {
            blanked_keys.push(key.trim().trim_matches('"').to_string());
        }
        let blank: String =
            work[start..end].chars().map(|c| if c == '\n' { c } else { ' ' }).collect();
        work.replace_range(start..end, &blank);
    }
    if errors.is_empty() {
        // Only cascades were left: the first real error is what to show.
        let e = toml::from_str::<RawManifest>(text).err();
        let (span, message) = e
            .map(|e| (e.span().unwrap_or(0..0), e.message().trim_end().to_string()))
            .unwrap_or((0..0, "the manifest cannot be read".into()));
        errors.push(ManifestError::at(src, span, message));
    }
    Err(ManifestErrors(errors))
}

/// The whole lines a span touches.
fn line_bounds(text: &str, span: std::ops::Range<usize>) -> (usize, usize) {
    let start = span.start.min(text.len());
    let end = span.end.max(start).min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    (line_start, line_end)
}
