//! Revoking every privilege that is not wanted.

use std::collections::{BTreeMap, BTreeSet};

use deed_ident::QualifiedName;
use deed_manifest::Privilege;

use super::{grantee_name, grantee_sql, quote_role};
use crate::live::{AclItem, RelInfo};
use deed_change::{Change, Phase, Revoked};

/// Revokes every table and column privilege not wanted, except the
/// owner's own.
pub(super) fn revoke_extra(
    relation: &QualifiedName,
    info: &RelInfo,
    keyword: &str,
    owner: &str,
    wanted: &dyn Fn(&AclItem) -> bool,
    note: &dyn Fn(&Option<String>) -> String,
    out: &mut Vec<Change>,
) {
    let name = relation.to_string();
    let keyword = if keyword == "SEQUENCE" { "SEQUENCE" } else { "TABLE" };
    let mut extra: BTreeMap<(Option<String>, String), Vec<String>> = BTreeMap::new();
    for item in info.acl.iter().filter(|i| i.grantee.as_deref() != Some(owner) && !wanted(i)) {
        extra
            .entry((item.grantee.clone(), item.grantor.clone()))
            .or_default()
            .push(item.privilege.clone());
    }
    for ((grantee, grantor), privs) in extra {
        let privs: Vec<String> = privs.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let list = privs.join(", ");
        let shown = if privs.len() == Privilege::ALL.len() {
            "all privileges".to_string()
        } else {
            list.clone()
        };
        // A superuser's REVOKE acts as the owner and only removes what the
        // owner granted; a grant made by someone else is removed by taking
        // that grantor's grant option away, with its dependents.
        let sql = if grantor == owner {
            format!(
                "REVOKE {list} ON {keyword} {} FROM {}",
                relation.quoted(),
                grantee_sql(&grantee)
            )
        } else {
            format!(
                "REVOKE GRANT OPTION FOR {list} ON {keyword} {} FROM {} CASCADE",
                relation.quoted(),
                quote_role(&grantor)
            )
        };
        out.push(Change {
            phase: Phase::Revokes,
            kind: "revoke",
            object: name.clone(),
            summary: format!(
                "revoke {shown} on {name} from {}{}",
                grantee_name(&grantee),
                note(&grantee)
            ),
            drift: format!("extra grant: {list} on {name} to {}", grantee_name(&grantee)),
            sql: vec![sql],
            location: None,
            revokes: Some(Revoked { relation: relation.clone(), grantee, privileges: privs }),
        });
    }
    let mut columns: BTreeMap<(Option<String>, String), BTreeSet<String>> = BTreeMap::new();
    for (column, item) in &info.column_acl {
        if item.grantee.as_deref() != Some(owner) {
            columns
                .entry((item.grantee.clone(), item.privilege.clone()))
                .or_default()
                .insert(column.clone());
        }
    }
    for ((grantee, privilege), cols) in columns {
        let quoted: Vec<String> = cols.iter().map(|c| quote_role(c)).collect();
        let shown: Vec<&str> = cols.iter().map(String::as_str).collect();
        out.push(Change {
            phase: Phase::Revokes,
            kind: "revoke-columns",
            object: name.clone(),
            summary: format!(
                "revoke {privilege} ({}) on {name} from {}",
                shown.join(", "),
                grantee_name(&grantee)
            ),
            drift: format!(
                "extra grant: {privilege} ({}) on {name} to {}",
                shown.join(", "),
                grantee_name(&grantee)
            ),
            sql: vec![format!(
                "REVOKE {privilege} ({}) ON TABLE {} FROM {}",
                quoted.join(", "),
                relation.quoted(),
                grantee_sql(&grantee)
            )],
            location: None,
            revokes: Some(Revoked {
                relation: relation.clone(),
                grantee,
                privileges: vec![privilege],
            }),
        });
    }
}
