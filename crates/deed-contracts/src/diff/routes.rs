//! Other routes to an owned relation's rows (see `crate::routes`). What
//! belongs to the owning service is closed (grants to others revoked);
//! what belongs to someone else is reported, since only its owner can say
//! whether to drop it.

use std::collections::BTreeSet;

use deed_ident::QualifiedName;

use super::{grantee_name, grantee_sql, quote_name};
use crate::desired::{Desired, ServiceRoles};
use crate::live::Live;
use crate::routes::{FunctionRoute, ViewRoute};
use deed_change::{Change, Phase};

pub(super) fn routes(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for v in &live.routes.views {
        view(desired, live, v, out);
    }
    let owned: Vec<QualifiedName> = desired
        .relations
        .iter()
        .map(|r| r.relation.clone())
        .chain(live.owned.children.values().flatten().cloned())
        .collect();
    for f in &live.routes.functions {
        function(desired, live, f, &owned, out);
    }
}

/// The service whose owned relation (or partition of one) this is.
fn owning_service<'a>(
    desired: &'a Desired,
    live: &Live,
    relation: &QualifiedName,
) -> Option<&'a ServiceRoles> {
    let root = desired.relation(relation).map(|r| r.relation.clone()).or_else(|| {
        live.owned.children.iter().find(|(_, kids)| kids.contains(relation)).map(|(r, _)| r.clone())
    })?;
    let service = &desired.relation(&root)?.service;
    desired.services.iter().find(|s| &s.service == service)
}

/// The service a role acts for: its owner role, or one of its logins.
fn service_of_role<'a>(desired: &'a Desired, role: &str) -> Option<&'a ServiceRoles> {
    desired
        .services
        .iter()
        .find(|s| s.owner.as_str() == role || s.logins.iter().any(|l| l.as_str() == role))
}

fn outsiders(grantees: &[Option<String>], service: &ServiceRoles) -> Vec<Option<String>> {
    grantees
        .iter()
        .filter(|g| match g {
            None => true,
            Some(g) => {
                service.owner.as_str() != g && !service.logins.iter().any(|l| l.as_str() == g)
            }
        })
        .cloned()
        .collect()
}

fn view(desired: &Desired, live: &Live, v: &ViewRoute, out: &mut Vec<Change>) {
    let Some(service) = owning_service(desired, live, &v.reads) else { return };
    // Owned views are owned relations already, with their own revokes.
    if desired.relation(&v.view).is_some() {
        return;
    }
    let own = service_of_role(desired, &v.owner).is_some_and(|s| s.service == service.service);
    let readers = outsiders(&v.readers, service);
    if own {
        for grantee in readers {
            out.push(Change {
                phase: Phase::Revokes,
                kind: "revoke",
                object: v.view.to_string(),
                summary: format!(
                    "revoke SELECT on view {} from {}: it reads {}, which only {} may read (publish what others need as a contract)",
                    v.view,
                    grantee_name(&grantee),
                    v.reads,
                    service.service
                ),
                drift: format!(
                    "extra grant: SELECT on view {} (over {}, owned by {}) to {}",
                    v.view,
                    v.reads,
                    service.service,
                    grantee_name(&grantee)
                ),
                sql: vec![format!(
                    "REVOKE SELECT ON TABLE {} FROM {}",
                    v.view.quoted(),
                    grantee_sql(&grantee)
                )],
                location: None,
                revokes: None,
            });
        }
        return;
    }
    let who = if readers.is_empty() {
        String::new()
    } else {
        format!("; readable by {}", readers.iter().map(grantee_name).collect::<Vec<_>>().join(", "))
    };
    out.push(Change {
        phase: Phase::Warning,
        kind: "foreign-view",
        object: v.view.to_string(),
        summary: format!(
            "view {} (owned by {}) reads {}, owned by {}: it reads with its owner's rights, so its readers bypass {}'s grants{who}; drop it, or have {} own it (add it to owns) or read a contract",
            v.view,
            quote_name(&v.owner),
            v.reads,
            service.service,
            service.service,
            service.service
        ),
        drift: format!(
            "view {} (owned by {}) reads {}, owned by {}{who}",
            v.view,
            quote_name(&v.owner),
            v.reads,
            service.service
        ),
        sql: Vec::new(),
        location: None,
        revokes: None,
    });
}

fn function(
    desired: &Desired,
    live: &Live,
    f: &FunctionRoute,
    owned: &[QualifiedName],
    out: &mut Vec<Change>,
) {
    let in_api = desired.schemas.iter().find(|s| s.schema.as_str() == f.schema);
    let owner_service = service_of_role(desired, &f.owner);
    // Functions in an api schema or run with a service's rights are the
    // service's: only the service may execute them.
    let service = match (in_api, owner_service) {
        (Some(api), _) => desired.services.iter().find(|s| s.service == api.service),
        (None, Some(s)) if f.security_definer => Some(s),
        _ => None,
    };
    if let Some(service) = service {
        for grantee in outsiders(&f.executors, service) {
            out.push(Change {
                phase: Phase::Revokes,
                kind: "revoke-execute",
                object: f.signature.clone(),
                summary: format!(
                    "revoke EXECUTE on function {} from {}: {}",
                    f.signature,
                    grantee_name(&grantee),
                    if in_api.is_some() {
                        format!("an api schema of {} holds only contracts", service.service)
                    } else {
                        format!("it runs with {}'s rights", service.service)
                    }
                ),
                drift: format!(
                    "extra grant: EXECUTE on function {} to {}",
                    f.signature,
                    grantee_name(&grantee)
                ),
                sql: vec![format!(
                    "REVOKE EXECUTE ON FUNCTION {} FROM {}",
                    f.signature,
                    grantee_sql(&grantee)
                )],
                location: None,
                revokes: None,
            });
        }
        return;
    }
    if !f.security_definer || f.executors.is_empty() {
        return;
    }
    let reached: BTreeSet<QualifiedName> = f.mentions(owned.iter());
    let victims: BTreeSet<&str> = reached
        .iter()
        .filter_map(|r| owning_service(desired, live, r))
        .map(|s| s.service.as_str())
        .collect();
    if victims.is_empty() {
        return;
    }
    let names = reached.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
    let executors = f.executors.iter().map(grantee_name).collect::<Vec<_>>().join(", ");
    out.push(Change {
        phase: Phase::Warning,
        kind: "foreign-definer-function",
        object: f.signature.clone(),
        summary: format!(
            "function {} runs with the rights of {} (SECURITY DEFINER) and names {names} ({}'s); {executors} may execute it, so they can reach what the grants keep from them; drop it, revoke EXECUTE, or move it to its data's owner",
            f.signature,
            quote_name(&f.owner),
            victims.into_iter().collect::<Vec<_>>().join(", ")
        ),
        drift: format!(
            "SECURITY DEFINER function {} (owned by {}) names {names}; executable by {executors}",
            f.signature,
            quote_name(&f.owner)
        ),
        sql: Vec::new(),
        location: None,
        revokes: None,
    });
}
