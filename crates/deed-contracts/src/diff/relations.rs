//! Owned relations: their owner, and the only grants others keep. The
//! partitions of an owned table and the sequences its columns draw from
//! come with it: same owner, nobody else's privileges.

use deed_ident::{Ident, QualifiedName};
use deed_manifest::Privilege;

use super::revoke::revoke_extra;
use super::{kind_keyword, kind_word, quote_name};
use crate::desired::{Desired, OwnedRelation};
use crate::live::{AclItem, Live, RelInfo};
use crate::live_owned::OwnedSequence;
use deed_change::{Change, Phase};

pub(super) fn relations(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for r in &desired.relations {
        let Some(info) = live.relations.get(&r.relation) else {
            out.push(missing(r));
            continue;
        };
        let logins = desired
            .services
            .iter()
            .find(|s| s.service == r.service)
            .map(|s| s.logins.as_slice())
            .unwrap_or(&[]);
        relation(r, info, logins, out);
        // A partition is read through its parent with the parent's
        // privileges, so it keeps none of its own.
        for child in live.owned.children_of(&r.relation) {
            if desired.relation(child).is_some() {
                continue;
            }
            let Some(child_info) = live.relations.get(child) else { continue };
            let as_owned =
                OwnedRelation { relation: child.clone(), grants: Default::default(), ..r.clone() };
            relation(&as_owned, child_info, logins, out);
        }
        for seq in live.owned.sequences_of(&r.relation) {
            if desired.relation(&seq.sequence).is_some() {
                continue;
            }
            if let Some(seq_info) = live.relations.get(&seq.sequence) {
                sequence(r, seq, seq_info, out);
            }
        }
    }
}

fn missing(r: &OwnedRelation) -> Change {
    let name = r.relation.to_string();
    Change {
        phase: Phase::Blocker,
        kind: "missing-relation",
        object: name.clone(),
        summary: format!(
            "{}: {name} is in {}'s owns but does not exist; create it, or remove it from owns",
            r.location, r.service
        ),
        drift: format!(
            "{}: {name}, owned by {} in the manifest, does not exist",
            r.location, r.service
        ),
        sql: Vec::new(),
        location: Some(r.location.clone()),
        revokes: None,
    }
}

/// The owner, the revokes and the exception grants of one relation.
fn relation(r: &OwnedRelation, info: &RelInfo, logins: &[Ident], out: &mut Vec<Change>) {
    let name = r.relation.to_string();
    if info.owner != r.owner.as_str() {
        out.push(Change {
            phase: Phase::Ownership,
            kind: "alter-owner",
            object: name.clone(),
            summary: format!(
                "give {} {name} to {} (now {})",
                kind_word(&info.kind),
                r.owner,
                quote_name(&info.owner)
            ),
            drift: format!(
                "{} {name} is owned by {}, not {}",
                kind_word(&info.kind),
                quote_name(&info.owner),
                r.owner
            ),
            sql: vec![format!(
                "ALTER {} {} OWNER TO {}",
                kind_keyword(&info.kind),
                r.relation.quoted(),
                r.owner.quoted()
            )],
            location: None,
            revokes: None,
        });
    }
    let wanted = |item: &AclItem| {
        item.grantee
            .as_ref()
            .and_then(|g| r.grants.iter().find(|(role, _)| role.as_str() == g))
            .is_some_and(|(_, privs)| privs.iter().any(|p| p.as_sql() == item.privilege))
    };
    let note = |g: &Option<String>| {
        let own = g.as_ref().is_some_and(|g| logins.iter().any(|l| l.as_str() == g));
        if own { format!(" (it keeps access as a member of {})", r.owner) } else { String::new() }
    };
    revoke_extra(&r.relation, info, kind_keyword(&info.kind), &info.owner, &wanted, &note, out);
    for (grantee, privs) in &r.grants {
        let missing: Vec<&Privilege> = privs
            .iter()
            .filter(|p| {
                !info.acl.iter().any(|i| {
                    i.grantee.as_deref() == Some(grantee.as_str()) && i.privilege == p.as_sql()
                })
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        let list = missing.iter().map(|p| p.as_sql()).collect::<Vec<_>>().join(", ");
        out.push(Change {
            phase: Phase::Grants,
            kind: "grant",
            object: name.clone(),
            summary: format!("grant {list} on {name} to {grantee} (a transitional exception)"),
            drift: format!(
                "missing grant: {list} on {name} to {grantee} (a transitional exception)"
            ),
            sql: vec![format!(
                "GRANT {list} ON TABLE {} TO {}",
                r.relation.quoted(),
                grantee.quoted()
            )],
            location: None,
            revokes: None,
        });
    }
}

/// A sequence follows its table: its owner changes with the table's, and
/// nobody else may use it, except an exception's grantee that inserts into
/// a `serial` column (the default calls `nextval`, which needs USAGE).
fn sequence(r: &OwnedRelation, seq: &OwnedSequence, info: &RelInfo, out: &mut Vec<Change>) {
    let inserters: Vec<&Ident> = if seq.identity {
        Vec::new()
    } else {
        r.grants.iter().filter(|(_, p)| p.contains(&Privilege::Insert)).map(|(g, _)| g).collect()
    };
    let wanted = |item: &AclItem| {
        item.privilege == "USAGE"
            && item.grantee.as_ref().is_some_and(|g| inserters.iter().any(|i| i.as_str() == g))
    };
    let note = |_: &Option<String>| format!(" (it belongs to {})", r.relation);
    revoke_extra(&seq.sequence, info, "SEQUENCE", &info.owner, &wanted, &note, out);
    for grantee in inserters {
        let has = info
            .acl
            .iter()
            .any(|i| i.privilege == "USAGE" && i.grantee.as_deref() == Some(grantee.as_str()));
        if has {
            continue;
        }
        out.push(sequence_usage(&seq.sequence, &r.relation, grantee));
    }
}

fn sequence_usage(sequence: &QualifiedName, table: &QualifiedName, grantee: &Ident) -> Change {
    Change {
        phase: Phase::Grants,
        kind: "grant",
        object: sequence.to_string(),
        summary: format!(
            "grant USAGE on sequence {sequence} to {grantee} (its exception inserts into {table})"
        ),
        drift: format!("missing grant: USAGE on sequence {sequence} to {grantee}"),
        sql: vec![format!("GRANT USAGE ON SEQUENCE {} TO {}", sequence.quoted(), grantee.quoted())],
        location: None,
        revokes: None,
    }
}
