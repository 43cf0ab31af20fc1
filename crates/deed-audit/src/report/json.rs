use serde::Serialize;

use super::AuditReport;
use crate::catalogue::{Access, Opaque, Unparsed};
use crate::rules::{Excepted, Finding};
use crate::source::SourceSummary;

/// Bumped only when a field is removed or changes meaning; new fields may
/// appear at any time.
pub const JSON_FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Json<'a> {
    format_version: u32,
    command: &'static str,
    sources: &'a [SourceSummary],
    statements: u64,
    calls: u64,
    admin_calls: u64,
    distinct_statements: usize,
    services: &'a [String],
    accesses: &'a [Access],
    violations: &'a [Finding],
    excepted: &'a [Excepted],
    unparsed: &'a [Unparsed],
    opaque: &'a [Opaque],
}

pub(crate) fn render(r: &AuditReport<'_>) -> String {
    let c = r.catalogue;
    let json = Json {
        format_version: JSON_FORMAT_VERSION,
        command: "audit",
        sources: &c.sources,
        statements: c.statements,
        calls: c.calls,
        admin_calls: c.admin_calls,
        distinct_statements: c.distinct_statements,
        services: &c.services,
        accesses: &c.accesses,
        violations: r.findings,
        excepted: r.excepted,
        unparsed: &c.unparsed,
        opaque: &c.opaque,
    };
    let mut s = serde_json::to_string_pretty(&json).expect("serialisable");
    s.push('\n');
    s
}
