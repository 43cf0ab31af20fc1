//! The contract version each state event carries is its consumers' API:
//! the publication's comment records it at every apply, so a later manifest
//! that moves a consumed event to another version is seen as the breaking
//! change it is (plan exits 1, the command line's apply refuses it without
//! `--allow-breaking`).

use std::collections::BTreeMap;

use deed_ident::quote_literal;

use super::diff::change;
use super::{CaptureDesired, CaptureLive};
use crate::change::{Change, Phase};

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
        let moved: Vec<String> = s
            .event_contracts
            .iter()
            .filter(|e| !e.consumers.is_empty())
            .filter_map(|e| {
                let old = before.get(&e.event)?;
                (old != &e.contract).then(|| {
                    format!(
                        "{}.{} moves from {old} to {}, which breaks {} (consuming it)",
                        s.service,
                        e.event,
                        e.contract,
                        e.consumers.join(", ")
                    )
                })
            })
            .collect();
        let sql = vec![format!(
            "COMMENT ON PUBLICATION {} IS {}",
            s.publication.quoted(),
            quote_literal(&text)
        )];
        out.push(if moved.is_empty() {
            change(
                Phase::Capture,
                "record-event-contracts",
                name,
                format!(
                    "record on publication {name} which contract each of {}'s state events carries",
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
