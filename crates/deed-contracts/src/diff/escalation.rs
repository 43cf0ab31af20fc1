//! Role attributes and memberships that give a service's roles more than
//! the manifest allows. A superuser, `BYPASSRLS`, `CREATEROLE` (it can
//! grant itself any role) or `REPLICATION` (it can stream every table's
//! changes) login makes every grant moot; so does membership, direct or
//! through other roles, in a superuser, in `pg_read_all_data` and the
//! other predefined roles that read or write everything, or in another
//! service's roles.

use super::quote_name;
use crate::desired::{Desired, ServiceRoles};
use crate::live::{Live, RoleInfo};
use deed_change::{Change, Phase};

/// Predefined roles that read or write every table, or the server itself.
const PREDEFINED: &[&str] = &[
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
];

fn attributes(info: &RoleInfo) -> Vec<&'static str> {
    let mut out = Vec::new();
    if info.superuser {
        out.push("SUPERUSER");
    }
    if info.bypass_rls {
        out.push("BYPASSRLS");
    }
    if info.create_role {
        out.push("CREATEROLE");
    }
    if info.replication {
        out.push("REPLICATION");
    }
    out
}

pub(super) fn escalations(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    // Every role that acts for some service, and for which.
    let roles_of: Vec<(&str, &ServiceRoles)> = desired
        .services
        .iter()
        .flat_map(|s| {
            std::iter::once((s.owner.as_str(), s))
                .chain(s.logins.iter().map(move |l| (l.as_str(), s)))
        })
        .collect();
    for s in &desired.services {
        let owner = s.owner.as_str();
        let members: Vec<(&str, bool)> = std::iter::once((owner, true))
            .chain(s.logins.iter().map(|l| (l.as_str(), false)))
            .collect();
        for (role, is_owner) in members {
            let Some(info) = live.roles.get(role) else { continue };
            let at = if is_owner {
                s.location.clone()
            } else {
                s.login_locations
                    .iter()
                    .find(|(l, _)| l.as_str() == role)
                    .map_or_else(|| s.location.clone(), |(_, at)| at.clone())
            };
            let attrs = attributes(info);
            if !attrs.is_empty() {
                out.push(attribute_change(s, role, is_owner, &attrs, &at));
            }
            if !is_owner && !info.login {
                if let Some(change) = group_login(live, &roles_of, s, role, &at) {
                    out.push(change);
                }
            }
            let memberships = live.memberships(role);
            // A dangerous direct membership is revoked, and with it what
            // the role reached through it: report that once.
            let direct_danger: Vec<&String> = memberships
                .iter()
                .filter(|(g, via)| g == via && danger(desired, live, &roles_of, s, g).is_some())
                .map(|(g, _)| g)
                .collect();
            for (group, via) in &memberships {
                // What a login gets through its own owner role is checked
                // on the owner role; a direct member of another owner role
                // is revoked with the owner roles' memberships.
                let owner_role = desired.services.iter().any(|x| x.owner.as_str() == group);
                if group == owner
                    || via == owner
                    || (owner_role && via == group)
                    || (via != group && direct_danger.contains(&via))
                {
                    continue;
                }
                let Some(why) = danger(desired, live, &roles_of, s, group) else { continue };
                out.push(membership_change(s, role, group, via, &why, &at));
            }
        }
    }
}

/// A NOLOGIN role listed as a login is a group: every role in it, directly
/// or through others, would get the service's owner role. That is what a
/// service's own group is for (the login roles a secrets manager creates
/// for it, say), and what a shared group must never be: one holding a
/// predefined role or another service's roles is refused.
fn group_login(
    live: &Live,
    roles_of: &[(&str, &ServiceRoles)],
    s: &ServiceRoles,
    role: &str,
    at: &str,
) -> Option<Change> {
    let mut stack: Vec<&str> = vec![role];
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::from([role]);
    let mut reasons: Vec<String> = Vec::new();
    while let Some(r) = stack.pop() {
        for m in live.members.get(r).into_iter().flatten() {
            if !seen.insert(m) {
                continue;
            }
            stack.push(m);
            if m.starts_with("pg_") {
                reasons.push(format!("{m}, a predefined role"));
            } else if let Some((_, other)) = roles_of.iter().find(|(x, _)| *x == m) {
                if other.service != s.service {
                    reasons.push(format!(
                        "{}, which acts for service {}",
                        quote_name(m),
                        other.service
                    ));
                }
            } else if m.starts_with("deed_") && m.ends_with("_owner") {
                reasons.push(format!("{m}, another service's owner role"));
            }
        }
    }
    if reasons.is_empty() {
        return None;
    }
    reasons.sort();
    let who = quote_name(role);
    let members = reasons.join("; ");
    Some(Change {
        phase: Phase::Blocker,
        kind: "group-login",
        object: role.to_string(),
        summary: format!(
            "{at}: login {who} of service {} is a NOLOGIN role whose members include {members}: they would all get {}'s writes; list the roles {} logs in as",
            s.service, s.service, s.service
        ),
        drift: format!(
            "{at}: login {who} of service {} is a NOLOGIN role whose members include {members}",
            s.service
        ),
        sql: Vec::new(),
        location: Some(at.to_string()),
        revokes: None,
    })
}

/// Why belonging to `group` gives a role of `s` more than it may have.
fn danger(
    desired: &Desired,
    live: &Live,
    roles_of: &[(&str, &ServiceRoles)],
    s: &ServiceRoles,
    group: &str,
) -> Option<String> {
    if PREDEFINED.contains(&group) {
        return Some(format!("{group} reaches every table"));
    }
    if let Some(info) = live.roles.get(group) {
        let attrs = attributes(info);
        if !attrs.is_empty() {
            return Some(format!("{} is {}", quote_name(group), attrs.join(", ")));
        }
    }
    if let Some((_, other)) = roles_of.iter().find(|(r, _)| *r == group) {
        if other.service != s.service {
            return Some(format!("{} acts for service {}", quote_name(group), other.service));
        }
    }
    let unknown_owner = group.starts_with("deed_")
        && group.ends_with("_owner")
        && !desired.services.iter().any(|x| x.owner.as_str() == group);
    unknown_owner.then(|| format!("{group} owns another service's data"))
}

fn attribute_change(
    s: &ServiceRoles,
    role: &str,
    is_owner: bool,
    attrs: &[&str],
    at: &str,
) -> Change {
    let list = attrs.join(", ");
    if is_owner {
        // deed manages owner roles, so it takes the attributes away.
        let off: Vec<String> = attrs.iter().map(|a| format!("NO{a}")).collect();
        return Change {
            phase: Phase::Roles,
            kind: "alter-role",
            object: role.to_string(),
            summary: format!("take {list} away from {role}: an owner role only owns"),
            drift: format!("owner role {role} has {list}"),
            sql: vec![format!("ALTER ROLE {} {}", s.owner.quoted(), off.join(" "))],
            location: None,
            revokes: None,
        };
    }
    let who = quote_name(role);
    Change {
        phase: Phase::Blocker,
        kind: "privileged-login",
        object: role.to_string(),
        summary: format!(
            "{at}: login {who} of service {} has {list}, which bypasses the grants deed manages; connect the service as a role without it",
            s.service
        ),
        drift: format!("{at}: login {who} of service {} has {list}", s.service),
        sql: Vec::new(),
        location: Some(at.to_string()),
        revokes: None,
    }
}

fn membership_change(
    s: &ServiceRoles,
    role: &str,
    group: &str,
    via: &str,
    why: &str,
    at: &str,
) -> Change {
    let (who, g) = (quote_name(role), quote_name(group));
    if via == group {
        return Change {
            phase: Phase::Memberships,
            kind: "revoke-membership",
            object: format!("{g} ∋ {who}"),
            summary: format!("revoke {g} from {who} ({} of {}): {why}", kind(s, role), s.service),
            drift: format!("{who} ({} of {}) is a member of {g}: {why}", kind(s, role), s.service),
            sql: vec![format!(
                "REVOKE {} FROM {}",
                deed_ident::quote_ident(group),
                deed_ident::quote_ident(role)
            )],
            location: Some(at.to_string()),
            revokes: None,
        };
    }
    let v = quote_name(via);
    Change {
        phase: Phase::Blocker,
        kind: "escalating-membership",
        object: format!("{g} ∋ {who}"),
        summary: format!(
            "{at}: {who} ({} of {}) belongs to {g} through {v}: {why}; revoke {v} from {who}, or {g} from {v}",
            kind(s, role),
            s.service
        ),
        drift: format!(
            "{at}: {who} ({} of {}) belongs to {g} through {v}: {why}",
            kind(s, role),
            s.service
        ),
        sql: Vec::new(),
        location: Some(at.to_string()),
        revokes: None,
    }
}

fn kind(s: &ServiceRoles, role: &str) -> &'static str {
    if s.owner.as_str() == role { "owner role" } else { "login" }
}
