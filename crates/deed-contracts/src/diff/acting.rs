//! What deed's own role needs granted for the plan to run when it is not
//! a superuser (see `crate::acting`): membership in each owner role, and
//! for a relation owned by a role it cannot act as, that role for the one
//! step that gives the relation away, or a located blocker with the exact
//! statement for whoever may grant it.

use deed_ident::QualifiedName;

use super::quote_role;
use crate::desired::Desired;
use crate::live::{Live, RelInfo};
use deed_change::{Change, Phase};

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
    let by_name: std::collections::HashMap<String, (&QualifiedName, &RelInfo)> =
        live.relations.iter().map(|(n, info)| (n.to_string(), (n, info))).collect();
    for c in out.iter_mut().filter(|c| c.kind == "alter-owner") {
        let Some(&(name, info)) = by_name.get(&c.object) else { continue };
        let owned = desired
            .relations
            .iter()
            .find(|r| &r.relation == name || live.owned.children_of(&r.relation).contains(name));
        let location = owned.map_or_else(String::new, |r| r.location.clone());
        let alter = c.sql.join("; ");
        // Statements around the ALTER, for this one step: `before` in
        // order, `after` undoing them in reverse.
        let (mut before, mut after) = (Vec::new(), Vec::new());
        // The new owner must be able to create in the relation's schema.
        let schema = name.schema.as_str();
        if let Some(o) =
            owned.map(|r| &r.owner).filter(|o| !live.acting.may_create(o.as_str(), schema))
        {
            if !live.acting.grants_create.contains(schema) {
                *c = blocker(
                    c,
                    "schema-create",
                    location,
                    format!(
                        "to be given {}, {o} must be able to create in schema {}, and deed (running as {me}) may not grant that: as the schema's owner run `GRANT CREATE ON SCHEMA {} TO {}`, and deed apply again; or as a superuser run `{alter}`",
                        c.object,
                        name.schema,
                        name.schema.quoted(),
                        o.quoted()
                    ),
                );
                continue;
            }
            let on = format!("ON SCHEMA {}", name.schema.quoted());
            before.push(format!("GRANT CREATE {on} TO {}", o.quoted()));
            after.push(format!("REVOKE CREATE {on} FROM {}", o.quoted()));
            c.summary.push_str(&format!(
                " ({o} may create in schema {} for this step only, as PostgreSQL requires of a new owner)",
                name.schema
            ));
        }
        let current = info.owner.as_str();
        if !live.acting.owns_as(current) {
            let grant = actor.self_grant_sql(&quote_role(current));
            if !live.acting.may_grant_itself(current) {
                *c = blocker(
                    c,
                    "foreign-owner",
                    location,
                    format!(
                        "{} is owned by {current}, which deed (running as {me}) cannot act as: as a role with ADMIN on {current}, run `{grant}` and deed apply again; or as a superuser run `{alter}`",
                        c.object
                    ),
                );
                continue;
            }
            // The current owner's role, for this one step only.
            before.push(grant);
            after.insert(0, format!("REVOKE {} FROM {}", quote_role(current), actor.name.quoted()));
            c.summary.push_str(&format!(
                " (deed's role {me} is granted {current} for this step and loses it after)"
            ));
        }
        if !before.is_empty() {
            before.append(&mut c.sql);
            before.append(&mut after);
            c.sql = before;
        }
    }
}

/// `c` turned into a blocker located at its manifest entry.
fn blocker(c: &Change, kind: &'static str, location: String, why: String) -> Change {
    Change {
        phase: Phase::Blocker,
        kind,
        object: c.object.clone(),
        summary: format!("{location}: {why}"),
        drift: c.drift.clone(),
        sql: Vec::new(),
        location: Some(location),
        revokes: None,
    }
}
