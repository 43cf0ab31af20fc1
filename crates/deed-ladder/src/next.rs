//! A flow's rung, and the next step in words a user can act on.

use deed_audit::AccessKind;
use deed_manifest::Manifest;

use crate::flow::{Bounds, Flow, FlowProjection};
use crate::rung::Rung;

pub fn place(manifest: &Manifest, f: &Flow, bounds: Bounds) -> (Rung, String) {
    let shared = !f.direct.is_empty()
        || !f.exceptions.is_empty()
        || (f.contracts.is_empty() && f.projections.is_empty());
    if shared {
        let reads_owner = manifest
            .service(&f.consumer)
            .is_some_and(|c| c.reads.iter().any(|r| r.service == f.owner));
        return (Rung::Shared, shared_step(f, reads_owner));
    }
    let live: Vec<&FlowProjection> = f.projections.iter().filter(|p| p.phase == "live").collect();
    if live.is_empty() {
        let step = match f.projections.first() {
            None => rung_two_step(manifest, f),
            Some(p) if p.phase == "backfill" => format!(
                "rung 2: projection {}.{} is backfilling ({} rows copied); keep `deed project --service {}` running",
                f.consumer, p.name, p.backfill_rows, f.consumer
            ),
            Some(p) => format!(
                "rung 2: projection {}.{} is {}: run `deed project --service {}`",
                f.consumer, p.name, p.phase, f.consumer
            ),
        };
        return (Rung::Contracted, step);
    }
    let replacing: Vec<&FlowProjection> =
        live.iter().copied().filter(|p| p.replaces.is_some()).collect();
    if replacing.is_empty() {
        // An event row: its projection replaces no read.
        let read = manifest
            .service(&f.consumer)
            .and_then(|c| c.reads.iter().find(|r| r.service == f.owner))
            .map(|r| r.to_string());
        let step = match (live.iter().find(|p| p.table), read) {
            (Some(p), Some(read)) => format!(
                "rung 3: if projection {}.{} stands in for a read, say which (replaces = \"{read}\"), then `deed compare {}.{}`",
                f.consumer, p.name, f.consumer, p.name
            ),
            _ => format!(
                "kept from events, exactly once: nothing here reads {}'s tables, so there is nothing to prove or revoke",
                f.owner
            ),
        };
        return (Rung::Projected, step);
    }
    for p in &replacing {
        if let Some(why) = unproven(f, p, bounds) {
            return (Rung::Projected, why);
        }
    }
    if let Some(p) = replacing.iter().find(|p| !p.cut_over) {
        let read = p.replaces.as_ref().expect("filtered on replaces");
        let traffic = match p.replaced_calls {
            Some(0) => " (no call of it in the traffic given)".to_string(),
            Some(n) => format!(
                ": {} still reads {read}, {} in the traffic given; switch it to its projection first",
                f.consumer,
                deed_text::plural(n, "call", "calls")
            ),
            None => String::new(),
        };
        return (
            Rung::Proven,
            format!(
                "cut over: `deed cutover {}.{}` revokes {}'s read of {read}{traffic}",
                f.consumer, p.name, f.consumer
            ),
        );
    }
    if let Some(other) = f.contracts.first() {
        return (
            Rung::Proven,
            format!(
                "{} still reads {other}, another version of what its projection replaces: cut that one over too",
                f.consumer
            ),
        );
    }
    (
        Rung::Severed,
        format!(
            "rung 4: `deed split {}` moves {}'s tables to their own instance",
            f.owner, f.owner
        ),
    )
}

/// Why a replacing projection is not proven yet, if it is not.
fn unproven(f: &Flow, p: &FlowProjection, bounds: Bounds) -> Option<String> {
    let run = format!("`deed compare {}.{}`", f.consumer, p.name);
    let Some(v) = &p.compare else {
        return Some(format!(
            "rung 3: no compare of {}.{} is recorded: run {run}",
            f.consumer, p.name
        ));
    };
    if !v.equal {
        return Some(format!(
            "rung 3: the last compare of {}.{} found {} missing, {} extra and {} different rows: fix them, then run {run}",
            f.consumer, p.name, v.missing, v.extra, v.different
        ));
    }
    if !v.current {
        return Some(format!(
            "rung 3: {}.{} changed after its last compare: run {run}",
            f.consumer, p.name
        ));
    }
    if v.age_seconds > bounds.max_compare_age_seconds && !p.cut_over {
        return Some(format!(
            "rung 3: the compare of {}.{} is {} old: run {run} again",
            f.consumer,
            p.name,
            deed_text::duration(v.age_seconds)
        ));
    }
    None
}

fn shared_step(f: &Flow, reads_owner: bool) -> String {
    let write = f.direct.iter().find(|d| d.access == AccessKind::Write);
    match (reads_owner, f.direct.first(), f.exceptions.first()) {
        // A contract is read-only: no contract fixes a write.
        _ if write.is_some() => format!(
            "{} writes {}, which only {} may write: move the write into {} (an API call, \
             or a domain event {} acts on); a contract is read-only",
            f.consumer,
            write.map(|d| d.relation.to_string()).unwrap_or_default(),
            f.owner,
            f.owner,
            f.owner
        ),
        (false, Some(d), _) if !d.columns.is_empty() => format!(
            "publish a contract for the {} {} reads ({}) and list it in its reads",
            deed_text::plural(d.columns.len() as u64, "column", "columns"),
            f.consumer,
            d.columns.join(", ")
        ),
        (false, _, _) => format!(
            "{} publishes no contract {} reads: publish one and list it in reads",
            f.owner, f.consumer
        ),
        (true, Some(d), _) => {
            format!("{} still reads {} directly: read its contract instead", f.consumer, d.relation)
        }
        (true, None, Some(e)) => format!(
            "the exception on {} is still in force{}: remove it once {} reads only contracts",
            e.relation,
            e.expires.map(|d| format!(" until {d}")).unwrap_or_default(),
            f.consumer
        ),
        (true, None, None) => String::new(),
    }
}

/// What takes a contracted flow to rung 2, in terms of what the manifest
/// already has: an event on the contract the consumer reads, and the
/// consumer subscribed to it.
fn rung_two_step(manifest: &Manifest, f: &Flow) -> String {
    let events: Vec<&str> = manifest
        .service(&f.owner)
        .map(|o| {
            o.events
                .iter()
                .filter(|e| {
                    e.contract.as_ref().is_some_and(|k| {
                        f.contracts
                            .iter()
                            .any(|c| c.contract == k.contract && c.version == k.version)
                    })
                })
                .map(|e| e.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let Some(event) = events.first() else {
        let contract = f.contracts.first().map(|c| c.to_string()).unwrap_or_default();
        return format!(
            "rung 2: declare an event on {contract} under [[services.{}.events]], then `deed apply` \
             and `deed relay --service {}`",
            f.owner, f.owner
        );
    };
    let consumes = manifest
        .service(&f.consumer)
        .is_some_and(|c| c.consumes.iter().any(|e| e.service == f.owner && e.event == *event));
    if consumes {
        format!(
            "rung 2: declare a table projection of {}.{event} with replaces = \"{}\" under [[services.{}.projections]] and run `deed project --service {}`",
            f.owner,
            f.contracts.first().map(|c| c.to_string()).unwrap_or_default(),
            f.consumer,
            f.consumer
        )
    } else {
        format!(
            "rung 2: add \"{}.{event}\" to {}'s consumes and declare a projection of it, delivered by `deed relay --service {}`",
            f.owner, f.consumer, f.owner
        )
    }
}

/// A severed flow's step towards rung 4, from the owner's split.
pub fn split_step(f: &Flow, split: Option<&str>, ready: bool, next: String) -> (Rung, String) {
    let o = &f.owner;
    match split {
        Some("finished") => {
            (Rung::Separated, format!("separated: {o}'s tables live in its own database"))
        }
        Some("cut_over") if ready => (
            Rung::Severed,
            format!(
                "rung 4: {o}'s writes are on its own database; `deed split {o} --finish` ends the reverse replication"
            ),
        ),
        Some("cut_over") => (
            Rung::Severed,
            format!(
                "rung 4: {o}'s writes are on its own database; its rung-1 readers keep their views through the reverse replication until they move"
            ),
        ),
        Some(phase) => (
            Rung::Severed,
            format!(
                "rung 4: `deed split {o}` is {}; run it again to go on",
                phase.replace('_', " ")
            ),
        ),
        None if ready => (Rung::Severed, next),
        None => (
            Rung::Severed,
            format!(
                "severed: {} keeps its own copy; rung 4 (`deed split {o}`) can move {o}'s tables now, and finishes once {o}'s other flows are severed",
                f.consumer
            ),
        ),
    }
}
