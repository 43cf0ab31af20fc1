//! Judging what one statement did to a followed contract version: its
//! columns, definition, underlying columns and their NULLs, before and
//! after, in words, with the safe route for each kind of break.

use std::collections::BTreeSet;

use deed_pg::session::execute_one;
use deed_pg::{Client, PgError};

use crate::error::CheckError;
use crate::finding::BreakKind;
use crate::migration::Statement;
use crate::signature::Signature;
use crate::tracked::Tracked;

pub(crate) fn compare(
    t: &Tracked,
    before: &Signature,
    after: &Signature,
    st: &Statement,
) -> Vec<(BreakKind, String)> {
    let mut out = Vec::new();
    if !before.exists {
        return out;
    }
    if !after.exists {
        let how = if st.text.to_ascii_uppercase().contains("CASCADE") {
            " (through CASCADE)"
        } else {
            ""
        };
        out.push((BreakKind::Dropped, format!("drops {}{how}", t.view)));
        return out;
    }
    if before.columns != after.columns {
        out.push((
            BreakKind::ColumnsChanged,
            format!(
                "changes the columns of {}: {}",
                t.view,
                describe(&before.columns, &after.columns)
            ),
        ));
    } else if before.viewdef != after.viewdef && st.creates_views.contains(&t.view) {
        out.push((
            BreakKind::Redefined,
            format!("redefines the published {} (CREATE OR REPLACE VIEW)", t.view),
        ));
    }
    let mut table_renamed = false;
    for (j, (b, a)) in before.underlying.iter().zip(&after.underlying).enumerate() {
        let exposed = &t.exposed[j].view_column;
        if a.dropped || a.name.is_none() {
            continue;
        }
        if b.name != a.name {
            out.push((
                BreakKind::Renamed,
                format!(
                    "renames {}.{} to {}, which {} exposes as {exposed}; the view keeps working, but the manifest's definition no longer resolves",
                    b.table.as_deref().unwrap_or("?"),
                    b.name.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        } else if b.table != a.table && !table_renamed {
            table_renamed = true;
            out.push((
                BreakKind::Renamed,
                format!(
                    "renames table {} to {}, which {} reads; the manifest's definition no longer names it",
                    b.table.as_deref().unwrap_or("?"),
                    a.table.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        }
        if !b.not_null && a.not_null && !t.events.is_empty() {
            out.push((
                BreakKind::NotNullAdded,
                format!(
                    "sets NOT NULL on {}.{}, which {} carries as {exposed} in its events: the new payload requires it, but events already published may have it NULL",
                    a.table.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.contract
                ),
            ));
        }
        if b.not_null && !a.not_null {
            out.push((
                BreakKind::NotNullDropped,
                format!(
                    "drops NOT NULL from {}.{}, which {} exposes as {exposed}: its readers may now get NULL",
                    a.table.as_deref().unwrap_or("?"),
                    a.name.as_deref().unwrap_or("?"),
                    t.view
                ),
            ));
        }
    }
    out
}

/// Removed, added, retyped and reordered columns, in words.
fn describe(before: &[(String, String)], after: &[(String, String)]) -> String {
    let mut parts = Vec::new();
    let removed: Vec<&str> = before
        .iter()
        .filter(|(n, _)| !after.iter().any(|(m, _)| m == n))
        .map(|(n, _)| n.as_str())
        .collect();
    let added: Vec<&str> = after
        .iter()
        .filter(|(n, _)| !before.iter().any(|(m, _)| m == n))
        .map(|(n, _)| n.as_str())
        .collect();
    if !removed.is_empty() {
        parts.push(format!("removes {}", removed.join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("adds {}", added.join(", ")));
    }
    for (n, t) in before {
        if let Some((_, t2)) = after.iter().find(|(m, _)| m == n) {
            if t != t2 {
                parts.push(format!("retypes {n} from {t} to {t2}"));
            }
        }
    }
    let order_before: Vec<&String> =
        before.iter().map(|(n, _)| n).filter(|n| after.iter().any(|(m, _)| m == *n)).collect();
    let order_after: Vec<&String> =
        after.iter().map(|(n, _)| n).filter(|n| before.iter().any(|(m, _)| m == *n)).collect();
    if order_before != order_after {
        parts.push("reorders columns".into());
    }
    if parts.is_empty() {
        parts.push("changes its columns".into());
    }
    parts.join("; ")
}

/// Whether the manifest's definition, rendered now, still has the
/// published columns. Run in a transaction that is rolled back.
pub(crate) async fn definition_problem(
    client: &Client,
    t: &Tracked,
    published: &Signature,
) -> Result<Option<String>, CheckError> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| PgError::query("checking a contract definition", e))?;
    let mut created = Ok(0);
    for sql in t.definition.create_statements("CREATE TEMP VIEW deed_check_definition") {
        created = execute_one(client, &sql).await;
        if created.is_err() {
            break;
        }
    }
    let result = match created {
        Err(e) => Some(format!(
            "leaves the manifest's definition of {} unresolvable: {}",
            t.contract,
            PgError::query("", e).to_string().trim_start_matches(": ")
        )),
        Ok(_) => {
            let rows = client
                .query(
                    "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                      WHERE a.attrelid = 'pg_temp.deed_check_definition'::regclass AND a.attnum > 0 ORDER BY a.attnum",
                    &[],
                )
                .await
                .map_err(|e| PgError::query("checking a contract definition", e))?;
            let now: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            (now != published.columns).then(|| {
                format!(
                    "changes what the manifest's definition of {} publishes: {}",
                    t.contract,
                    describe(&published.columns, &now)
                )
            })
        }
    };
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(|e| PgError::query("checking a contract definition", e))?;
    Ok(result)
}

pub(crate) fn safe_route(kind: BreakKind, t: &Tracked) -> String {
    let r = &t.contract;
    let next = format!("{}.{}.v{}", r.service, r.contract, t.next_version);
    let bump = format!("`deed contract bump {}.{}`", r.service, r.contract);
    let readers = deed_text::and_list(&t.consumers);
    match kind {
        BreakKind::Dropped => format!(
            "keep {} as long as {readers} {} {r}; once they moved to another version, remove {r} from deed.toml and deed apply drops the view",
            t.view,
            if t.consumers.len() == 1 { "reads" } else { "read" }
        ),
        BreakKind::ColumnsChanged | BreakKind::DefinitionBroken => format!(
            "publish {next} with the new shape ({bump}), move {readers} to it, and retire v{} once nobody reads it",
            r.version
        ),
        BreakKind::Redefined => format!(
            "a published version never changes: publish the new definition as {next} ({bump}) and move {readers} when they are ready"
        ),
        BreakKind::NotNullDropped => {
            let mut everyone: BTreeSet<String> = t.consumers.iter().cloned().collect();
            everyone.extend(t.events.iter().flat_map(|u| u.consumers.iter().cloned()));
            format!(
                "{} may rely on the column never being NULL in {r}: keep the NOT NULL, or publish {next} where it may be NULL ({bump}) and move them first",
                deed_text::and_list(&everyone.into_iter().collect::<Vec<_>>())
            )
        }
        BreakKind::NotNullAdded => {
            let events: Vec<String> = t.events.iter().map(|u| u.event.clone()).collect();
            format!(
                "consumers of {} replay events in which the column may be NULL: publish {next} with the column NOT NULL ({bump}) and move the events to it once older events are gone from the bus, or set compatibility = \"forward\" (or \"none\") on the event if its consumers move after the owner",
                deed_text::and_list(&events)
            )
        }
        BreakKind::Renamed | BreakKind::Blocked => format!(
            "expand, migrate, contract: add the new column beside the old one, publish {next} from it ({bump}), move {readers}, retire v{}, and only then drop or rename the old column",
            r.version
        ),
    }
}
