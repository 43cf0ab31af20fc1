//! The contract version each state event carries is its consumers' API:
//! the publication's comment records it at every apply, so a later manifest
//! that moves a consumed event to another version is checked against the
//! event's `compatibility` rule (see [`super::compatibility`]); a move that
//! breaks it is the breaking change it is (plan exits 1 naming the
//! consumers, the command line's apply refuses it without
//! `--allow-breaking`).

use std::collections::BTreeMap;

use deed_ident::quote_literal;

use deed_manifest::Compatibility;

use super::compatibility;
use super::diff::change;
use super::{CaptureDesired, CaptureLive};
use deed_change::{Change, Phase};

const PREFIX: &str = "deed events: ";

/// `deed events: a=svc.c.v1, b=svc.d.v2`, events in name order.
fn comment(pairs: &BTreeMap<&str, &str>) -> String {
    let list: Vec<String> = pairs.iter().map(|(e, c)| format!("{e}={c}")).collect();
    format!("{PREFIX}{}", list.join(", "))
}

fn parse(comment: &str) -> BTreeMap<String, String> {
    let Some(list) = comment.strip_prefix(PREFIX) else { return BTreeMap::new() };
    list.split(", ")
        .filter_map(|p| p.split_once('='))
        .map(|(e, c)| (e.to_string(), c.to_string()))
        .collect()
}

pub(super) fn event_contracts(desired: &CaptureDesired, live: &CaptureLive, out: &mut Vec<Change>) {
    for s in desired.services.iter().filter(|s| !s.event_contracts.is_empty()) {
        let wanted: BTreeMap<&str, &str> =
            s.event_contracts.iter().map(|e| (e.event.as_str(), e.contract.as_str())).collect();
        let name = s.publication.as_str();
        let text = comment(&wanted);
        let current = live.publication_comments.get(name);
        if current == Some(&text) {
            continue;
        }
        let before = current.map(|c| parse(c)).unwrap_or_default();
        let mut compatible = Vec::new();
        let mut moved = Vec::new();
        for e in s.event_contracts.iter().filter(|e| !e.consumers.is_empty()) {
            let Some(old) = before.get(&e.event).filter(|old| *old != &e.contract) else {
                continue;
            };
            let nullable = live.nullable_columns.get(&e.table).cloned().unwrap_or_default();
            // Every earlier version still in the manifest; the one the
            // event carried until now must be one of them.
            let mut reasons: Vec<String> = e
                .earlier
                .iter()
                .flat_map(|(name, cols)| {
                    compatibility::breaks(e.compatibility, &e.columns, (name, cols), &nullable)
                })
                .collect();
            let known = e.earlier.iter().any(|(name, _)| name == old);
            if !known && e.compatibility != Compatibility::None {
                reasons.push(format!(
                    "{old} is not an earlier version of the same contract in the manifest, so its columns cannot be compared"
                ));
            }
            let what = format!("{}.{} moves from {old} to {}", s.service, e.event, e.contract);
            if reasons.is_empty() {
                compatible.push(format!("{what} ({} compatible)", e.compatibility.as_str()));
            } else {
                moved.push(format!(
                    "{what}, which breaks its compatibility = \"{}\" for {} (consuming it): {}",
                    e.compatibility.as_str(),
                    e.consumers.join(", "),
                    reasons.join("; ")
                ));
            }
        }
        let sql = vec![format!(
            "COMMENT ON PUBLICATION {} IS {}",
            s.publication.quoted(),
            quote_literal(&text)
        )];
        out.push(if moved.is_empty() {
            let moves =
                if compatible.is_empty() { String::new() } else { format!(": {}", compatible.join("; ")) };
            change(
                Phase::Capture,
                "record-event-contracts",
                name,
                format!(
                    "record on publication {name} which contract each of {}'s state events carries{moves}",
                    s.service
                ),
                format!("publication {name} does not record the contracts its events carry"),
                sql,
            )
        } else {
            change(
                Phase::Capture,
                "event-contract",
                name,
                format!("breaking: {}", moved.join("; ")),
                format!("a consumed event changed contract: {}", moved.join("; ")),
                sql,
            )
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_round_trip() {
        let pairs = [("b", "s.d.v2"), ("a", "s.c.v1")].into_iter().collect();
        let text = super::comment(&pairs);
        assert_eq!(text, "deed events: a=s.c.v1, b=s.d.v2");
        let back = super::parse(&text);
        assert_eq!(back.get("b").map(String::as_str), Some("s.d.v2"));
        assert!(super::parse("something else").is_empty());
    }
}
