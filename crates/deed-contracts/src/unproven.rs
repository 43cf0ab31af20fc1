//! Revoking a read that a projection replaces is a cutover: without a
//! clean compare of that projection, a plan that does it breaks its
//! consumer (it would read a copy nobody proved).

use deed_manifest::Manifest;
use serde::Serialize;

use crate::naming::owner_role;
use deed_change::Change;

/// A revoke in the plan of a read a projection replaces, not proven.
#[derive(Debug, Clone, Serialize)]
pub struct UnprovenCutover {
    pub service: String,
    pub projection: String,
    pub read: String,
    pub view: String,
}

/// The plan's revokes of replaced reads whose projection `proven` does
/// not vouch for (`proven(service, projection)`: a recent clean compare).
pub fn unproven_cutovers(
    changes: &[Change],
    manifest: &Manifest,
    proven: &dyn Fn(&str, &str) -> bool,
) -> Vec<UnprovenCutover> {
    let mut out = Vec::new();
    for s in &manifest.services {
        for p in &s.projections {
            let Some(read) = &p.replaces else { continue };
            let Some((owner, contract)) = manifest.contract(read) else { continue };
            let view = contract.view_name(&owner.api_schema);
            let reader = owner_role(&s.name);
            let revoked = changes.iter().filter_map(|c| c.revokes.as_ref()).any(|r| {
                r.relation == view
                    && r.grantee.as_deref() == Some(reader.as_str())
                    && r.privileges.iter().any(|p| p == "SELECT")
            });
            if revoked && !proven(&s.name, &p.name) {
                out.push(UnprovenCutover {
                    service: s.name.clone(),
                    projection: p.name.clone(),
                    read: read.to_string(),
                    view: view.to_string(),
                });
            }
        }
    }
    out
}
