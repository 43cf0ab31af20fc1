//! Default privileges that would hand future tables to others.

use std::collections::{BTreeMap, BTreeSet};

use deed_ident::Ident;

use super::{grantee_name, grantee_sql, quote_role};
use crate::desired::Desired;
use crate::live::Live;
use deed_change::{Change, Phase};

pub(super) fn defaults(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    let managed: BTreeSet<&str> = desired
        .services
        .iter()
        .flat_map(|s| std::iter::once(s.owner.as_str()).chain(s.logins.iter().map(Ident::as_str)))
        .collect();
    for d in &live.default_acls {
        if !managed.contains(d.role.as_str()) {
            continue;
        }
        let (word, keyword) =
            if d.objtype == "S" { ("sequences", "SEQUENCES") } else { ("tables", "TABLES") };
        let mut extra: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
        for item in d.acl.iter().filter(|i| i.grantee.as_deref() != Some(d.role.as_str())) {
            extra.entry(item.grantee.clone()).or_default().insert(item.privilege.clone());
        }
        for (grantee, privs) in extra {
            let list = privs.into_iter().collect::<Vec<_>>().join(", ");
            let scope = d.schema.as_ref().map(|s| format!(" in schema {s}")).unwrap_or_default();
            let scope_sql = d
                .schema
                .as_ref()
                .map(|s| format!(" IN SCHEMA {}", quote_role(s)))
                .unwrap_or_default();
            out.push(Change {
                phase: Phase::Defaults,
                kind: "revoke-default",
                object: d.role.clone(),
                summary: format!(
                    "stop granting {list} on {word} {} creates{scope} to {}",
                    d.role,
                    grantee_name(&grantee)
                ),
                drift: format!(
                    "default privileges: {word} {} creates{scope} get {list} for {}",
                    d.role,
                    grantee_name(&grantee)
                ),
                sql: vec![format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {}{scope_sql} REVOKE {list} ON {keyword} FROM {}",
                    quote_role(&d.role),
                    grantee_sql(&grantee)
                )],
                location: None,
                revokes: None,
            });
        }
    }
}
