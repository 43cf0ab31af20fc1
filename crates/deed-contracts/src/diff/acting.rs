//! What deed's own role needs granted for the plan to run when it is not
//! a superuser (see `crate::acting`): membership in each owner role, and
//! for a relation owned by a role it cannot act as, that role for the one
//! step that gives the relation away, or a located blocker with the exact
//! statement for whoever may grant it.

use super::quote_role;
use crate::change::{Change, Phase};
use crate::desired::Desired;
use crate::live::Live;

pub(super) fn acting(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    let Some(actor) = live.acting.restricted() else { return };
    let me = actor.name.as_str();
    for s in &desired.services {
        let owner = s.owner.as_str();
        if live.acting.acts_as(owner) {
            continue;
        }
        let grant = actor.self_grant_sql(&s.owner.quoted());
        if live.acting.may_grant_itself(owner) {
            out.push(Change {
                phase: Phase::Memberships,
                kind: "grant-membership",
                object: format!("{owner} ∋ {me}"),
                summary: format!(
                    "grant {owner} to {me}, the role deed runs as, so that it may create and give {}'s objects to it",
                    s.service
                ),
                drift: format!("{me}, the role deed runs as, cannot act as {owner}"),
                sql: vec![grant],
                location: None,
                revokes: None,
            });
        } else {
            out.push(Change {
                phase: Phase::Blocker,
                kind: "cannot-act-as",
                object: owner.into(),
                summary: format!(
                    "{}: deed runs as {me}, which cannot act as {owner} and may not grant it to itself: as a superuser or a role with ADMIN on {owner}, run `{grant}`, then deed apply again",
                    s.location
                ),
                drift: format!("{me}, the role deed runs as, cannot act as {owner}"),
                sql: Vec::new(),
                location: Some(s.location.clone()),
                revokes: None,
            });
        }
    }
    for c in out.iter_mut().filter(|c| c.kind == "alter-owner") {
        let Some((name, info)) = live.relations.iter().find(|(n, _)| n.to_string() == c.object)
        else {
            continue;
        };
        let current = info.owner.as_str();
        // The new owner must be able to create in the relation's schema;
        // it is given CREATE for this step only.
        let new_owner = desired
            .relations
            .iter()
            .find(|r| &r.relation == name || live.owned.children_of(&r.relation).contains(name))
            .map(|r| r.owner.clone());
        let schema = name.schema.as_str();
        if let Some(o) = new_owner.as_ref().filter(|o| !live.acting.may_create(o.as_str(), schema))
        {
            if live.acting.grants_create.contains(schema) {
                let on = format!("ON SCHEMA {}", name.schema.quoted());
                c.sql.insert(0, format!("GRANT CREATE {on} TO {}", o.quoted()));
                c.sql.push(format!("REVOKE CREATE {on} FROM {}", o.quoted()));
                c.summary.push_str(&format!(
                    " ({o} may create in schema {} for this step only, as PostgreSQL requires of a new owner)",
                    name.schema
                ));
            } else {
                let alter = c.sql.join("; ");
                *c = Change {
                    phase: Phase::Blocker,
                    kind: "schema-create",
                    object: c.object.clone(),
                    summary: format!(
                        "{}: to be given {}, {o} must be able to create in schema {}, and deed (running as {me}) may not grant that: as the schema's owner run `GRANT CREATE ON SCHEMA {} TO {}`, and deed apply again; or as a superuser run `{alter}`",
                        location_of(desired, live, name),
                        c.object,
                        name.schema,
                        name.schema.quoted(),
                        o.quoted()
                    ),
                    drift: c.drift.clone(),
                    sql: Vec::new(),
                    location: Some(location_of(desired, live, name)),
                    revokes: None,
                };
                continue;
            }
        }
        if live.acting.owns_as(current) {
            continue;
        }
        let location = Some(location_of(desired, live, name));
        let grant = actor.self_grant_sql(&quote_role(current));
        if live.acting.may_grant_itself(current) {
            // The current owner's role, for this one step only.
            c.summary.push_str(&format!(
                " (deed's role {me} is granted {current} for this step and loses it after)"
            ));
            // After a temporary CREATE grant, if any: the grant came first.
            let at = usize::from(c.sql.first().is_some_and(|s| s.starts_with("GRANT CREATE")));
            c.sql.insert(at, grant);
            let mut sql = std::mem::take(&mut c.sql);
            let end =
                sql.len() - usize::from(sql.last().is_some_and(|s| s.starts_with("REVOKE CREATE")));
            sql.insert(end, format!("REVOKE {} FROM {}", quote_role(current), actor.name.quoted()));
            c.sql = sql;
        } else {
            let alter = c.sql.join("; ");
            *c = Change {
                phase: Phase::Blocker,
                kind: "foreign-owner",
                object: c.object.clone(),
                summary: format!(
                    "{}: {} is owned by {current}, which deed (running as {me}) cannot act as: as a role with ADMIN on {current}, run `{grant}` and deed apply again; or as a superuser run `{alter}`",
                    location.as_deref().unwrap_or_default(),
                    c.object
                ),
                drift: c.drift.clone(),
                sql: Vec::new(),
                location,
                revokes: None,
            };
        }
    }
}

/// Where the manifest's `owns` names a relation (or the table a partition
/// or sequence comes with).
fn location_of(desired: &Desired, live: &Live, name: &deed_ident::QualifiedName) -> String {
    desired
        .relations
        .iter()
        .find(|r| &r.relation == name || live.owned.children_of(&r.relation).contains(name))
        .map_or_else(String::new, |r| r.location.clone())
}
