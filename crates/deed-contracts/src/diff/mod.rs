//! Desired against live: the changes that make the database match the
//! manifest, in dependency order.

mod acting;
mod defaults;
mod escalation;
mod relations;
mod revoke;
mod roles;
mod routes;
mod schemas;
mod views;

use deed_ident::Ident;

use crate::desired::Desired;
use crate::live::Live;
use deed_change::Change;

use acting::acting;
use defaults::defaults;
use escalation::escalations;
use relations::relations;
use roles::roles;
use routes::routes;
use schemas::schemas;
use views::views;

/// Computes the plan's changes. Tables and data are never dropped; only
/// views deed created (marked by their comment) can be.
pub fn diff(desired: &Desired, live: &Live) -> Vec<Change> {
    let mut out = Vec::new();
    roles(desired, live, &mut out);
    escalations(desired, live, &mut out);
    schemas(desired, live, &mut out);
    relations(desired, live, &mut out);
    views(desired, live, &mut out);
    defaults(desired, live, &mut out);
    routes(desired, live, &mut out);
    deed_capture::diff_capture(&desired.capture, &live.capture, &mut out);
    acting(desired, live, &mut out);
    out.sort_by(|a, b| {
        (a.phase, step(a.kind), &a.object, a.kind).cmp(&(b.phase, step(b.kind), &b.object, b.kind))
    });
    out
}

/// Within a phase, what others depend on comes first: a schema before the
/// function and the rows that live in it, whatever the objects are called
/// (`billing.invoice_issued` sorts before `deed`, yet goes into it).
fn step(kind: &str) -> u8 {
    match kind {
        "create-schema" => 0,
        "create-function" => 1,
        "domain-event" => 3,
        _ => 2,
    }
}

pub(crate) fn grantee_sql(g: &Option<String>) -> String {
    match g {
        None => "PUBLIC".into(),
        Some(r) => quote_role(r),
    }
}

pub(crate) fn grantee_name(g: &Option<String>) -> String {
    g.as_deref().map_or_else(|| "PUBLIC".into(), quote_name)
}

/// A name read from the catalog, as people should see it: bare when that
/// reads back the same, quoted (control characters escaped) otherwise.
pub(crate) fn quote_name(name: &str) -> String {
    Ident::new(name).map_or_else(|_| format!("{name:?}"), |i| i.to_string())
}

pub(crate) use deed_ident::quote_ident as quote_role;

pub(crate) fn kind_keyword(kind: &str) -> &'static str {
    match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        "f" => "FOREIGN TABLE",
        "S" => "SEQUENCE",
        _ => "TABLE",
    }
}

pub(crate) fn kind_word(kind: &str) -> &'static str {
    match kind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "S" => "sequence",
        _ => "table",
    }
}
