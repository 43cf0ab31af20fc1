//! Api schemas: created by deed, owned by the service, used by readers.

use std::collections::BTreeMap;

use super::{grantee_name, grantee_sql, quote_name};
use crate::desired::Desired;
use crate::live::Live;
use deed_change::{Change, Phase};

pub(super) fn schemas(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for s in &desired.schemas {
        let name = s.schema.to_string();
        let current = live.schemas.get(s.schema.as_str());
        match current {
            None => out.push(Change {
                phase: Phase::Schemas,
                kind: "create-schema",
                object: name.clone(),
                summary: format!("create api schema {name}, owned by {}", s.owner),
                drift: format!("api schema {name} is missing"),
                sql: vec![format!(
                    "CREATE SCHEMA {} AUTHORIZATION {}",
                    s.schema.quoted(),
                    s.owner.quoted()
                )],
                location: None,
                revokes: None,
            }),
            // A schema deed did not create is someone else's: handing it to
            // the service would hand over everything already in it.
            Some(info) if info.owner != s.owner.as_str() => {
                let shown = s.schema.to_string();
                out.push(Change {
                    phase: Phase::Blocker,
                    kind: "foreign-schema",
                    object: shown.clone(),
                    summary: format!(
                        "{}: api schema {shown} of {} already exists and belongs to {}; deed only publishes into a schema it created for the service (owned by {}): choose another api_schema, or move what is in {shown} elsewhere and drop it",
                        s.location,
                        s.service,
                        quote_name(&info.owner),
                        s.owner
                    ),
                    drift: format!(
                        "{}: api schema {shown} is owned by {}, not {}",
                        s.location,
                        quote_name(&info.owner),
                        s.owner
                    ),
                    sql: Vec::new(),
                    location: Some(s.location.clone()),
                    revokes: None,
                });
                continue;
            }
            Some(_) => {}
        }
        let acl = current.map(|c| c.acl.as_slice()).unwrap_or(&[]);
        let owner = current.map(|c| c.owner.as_str());
        let mut extra: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
        for item in acl.iter().filter(|i| {
            i.grantee.as_deref() != owner && i.grantee.as_deref() != Some(s.owner.as_str())
        }) {
            let wanted = item.privilege == "USAGE"
                && item.grantee.as_ref().is_some_and(|g| s.usage.iter().any(|u| u.as_str() == g));
            if !wanted {
                extra.entry(item.grantee.clone()).or_default().push(item.privilege.clone());
            }
        }
        for (grantee, privs) in extra {
            out.push(Change {
                phase: Phase::Revokes,
                kind: "revoke",
                object: name.clone(),
                summary: format!(
                    "revoke {} on schema {name} from {}",
                    privs.join(", "),
                    grantee_name(&grantee)
                ),
                drift: format!(
                    "extra grant: {} on schema {name} to {}",
                    privs.join(", "),
                    grantee_name(&grantee)
                ),
                sql: vec![format!(
                    "REVOKE {} ON SCHEMA {} FROM {}",
                    privs.join(", "),
                    s.schema.quoted(),
                    grantee_sql(&grantee)
                )],
                location: None,
                revokes: None,
            });
        }
        for reader in &s.usage {
            let has = acl
                .iter()
                .any(|i| i.privilege == "USAGE" && i.grantee.as_deref() == Some(reader.as_str()));
            if !has {
                out.push(Change {
                    phase: Phase::Grants,
                    kind: "grant",
                    object: name.clone(),
                    summary: format!("grant USAGE on schema {name} to {reader}"),
                    drift: format!("missing grant: USAGE on schema {name} to {reader}"),
                    sql: vec![format!(
                        "GRANT USAGE ON SCHEMA {} TO {}",
                        s.schema.quoted(),
                        reader.quoted()
                    )],
                    location: None,
                    revokes: None,
                });
            }
        }
    }
}
