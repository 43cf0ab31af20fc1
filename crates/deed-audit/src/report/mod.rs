//! Rendering an audit: a terminal table, stable JSON, Markdown for a pull
//! request comment, and a self-contained HTML page with an SVG graph.

mod html;
mod json;
mod markdown;
mod matrix;
mod svg;
mod table;
mod text;

use deed_manifest::Manifest;

use crate::catalogue::Catalogue;
use crate::rules::{Excepted, Finding};

pub use json::JSON_FORMAT_VERSION;

/// Everything a rendering needs.
pub struct AuditReport<'a> {
    pub catalogue: &'a Catalogue,
    pub findings: &'a [Finding],
    /// Findings excused by transitional exceptions in force.
    pub excepted: &'a [Excepted],
    pub manifest: Option<&'a Manifest>,
}

impl AuditReport<'_> {
    pub fn table(&self) -> String {
        table::render(self)
    }

    pub fn json(&self) -> String {
        json::render(self)
    }

    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    pub fn html(&self) -> String {
        html::render(self)
    }
}
