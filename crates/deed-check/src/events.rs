//! The events a contract version is the payload of, and what a change of
//! a payload column's nullability does to their consumers under each
//! event's `compatibility` (Schema Registry's meaning): a column that
//! loses NOT NULL may now arrive NULL, which a consumer still on the
//! earlier payload cannot read (it breaks `forward` and `full`); a column
//! that gains NOT NULL is required by the new payload, while events
//! already published may carry NULL in it (it breaks `backward` and
//! `full`). `none` accepts both.

use deed_manifest::{Compatibility, ContractRef, Manifest};

use crate::finding::BreakKind;

/// One event whose payload is a tracked contract version.
#[derive(Debug, Clone)]
pub(crate) struct EventUse {
    /// `catalog.product_changed`.
    pub event: String,
    pub compatibility: Compatibility,
    /// Services that `consume` it.
    pub consumers: Vec<String>,
}

/// The consumed events whose payload is `contract`.
pub(crate) fn uses(manifest: &Manifest, contract: &ContractRef) -> Vec<EventUse> {
    let Some(owner) = manifest.service(&contract.service) else { return Vec::new() };
    owner
        .events
        .iter()
        .filter(|e| {
            e.contract
                .as_ref()
                .is_some_and(|k| k.contract == contract.contract && k.version == contract.version)
        })
        .map(|e| EventUse {
            event: format!("{}.{}", owner.name, e.name),
            compatibility: e.compatibility,
            consumers: manifest
                .services
                .iter()
                .filter(|s| s.consumes.iter().any(|c| c.service == owner.name && c.event == e.name))
                .map(|s| s.name.clone())
                .collect(),
        })
        .filter(|u| !u.consumers.is_empty())
        .collect()
}

/// Whether `kind` breaks an event under `rule`.
fn breaks(kind: BreakKind, rule: Compatibility) -> bool {
    match kind {
        BreakKind::NotNullDropped => matches!(rule, Compatibility::Forward | Compatibility::Full),
        BreakKind::NotNullAdded => matches!(rule, Compatibility::Backward | Compatibility::Full),
        _ => false,
    }
}

/// The events `kind` breaks, each with its rule and consumers.
pub(crate) fn broken(kind: BreakKind, uses: &[EventUse]) -> Vec<&EventUse> {
    uses.iter().filter(|u| breaks(kind, u.compatibility)).collect()
}

/// `event catalog.product_changed (compatibility = "forward") is consumed by orders`.
pub(crate) fn describe(uses: &[&EventUse]) -> String {
    uses.iter()
        .map(|u| {
            format!(
                "event {} (compatibility = {:?}) is consumed by {}",
                u.event,
                u.compatibility.as_str(),
                u.consumers.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
