//! Contract views: created, restored, dropped, and who may read them.

use deed_ident::{Ident, quote_literal};

use super::revoke::revoke_extra;

use super::kind_word;
use crate::desired::{ContractView, Desired};
use crate::live::{AclItem, Live};
use deed_change::{Change, Phase};

pub(super) fn create_view_sql(v: &ContractView, replace: bool) -> Vec<String> {
    let head = format!(
        "CREATE {}VIEW {} WITH (security_barrier)",
        if replace { "OR REPLACE " } else { "" },
        v.view.quoted()
    );
    let mut sql = v.create_statements(&head);
    sql.push(format!("ALTER VIEW {} OWNER TO {}", v.view.quoted(), v.owner.quoted()));
    sql.push(format!("COMMENT ON VIEW {} IS {}", v.view.quoted(), quote_literal(&v.comment)));
    sql
}

pub(super) fn views(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for (name, _) in live.contract_views() {
        if desired.view(name).is_none() {
            out.push(Change {
                phase: Phase::DropViews,
                kind: "drop-view",
                object: name.to_string(),
                summary: format!("drop contract view {name}: the manifest no longer lists it and no service reads it"),
                drift: format!("contract view {name} is no longer in the manifest"),
                sql: vec![format!("DROP VIEW {}", name.quoted())],
                location: None,
                revokes: None,
            });
        }
    }
    for v in &desired.views {
        let name = v.view.to_string();
        let canonical = live.canonical.get(&v.view);
        let current = live.relations.get(&v.view);
        let recreated = match current {
            None => {
                out.push(Change {
                    phase: Phase::Views,
                    kind: "create-view",
                    object: name.clone(),
                    summary: format!(
                        "create contract view {name} ({}) for {}",
                        v.contract,
                        readers(v)
                    ),
                    drift: format!("contract view {name} ({}) is missing", v.contract),
                    sql: create_view_sql(v, false),
                    location: None,
                    revokes: None,
                });
                true
            }
            Some(info) if info.kind != "v" => {
                out.push(Change {
                    phase: Phase::Blocker,
                    kind: "name-taken",
                    object: name.clone(),
                    summary: format!(
                        "{name} should be the view of contract {}, but a {} of that name exists; deed never drops it",
                        v.contract,
                        kind_word(&info.kind)
                    ),
                    drift: format!("{name} is a {}, not the view of contract {}", kind_word(&info.kind), v.contract),
                    sql: Vec::new(),
                    location: None,
                    revokes: None,
                });
                continue;
            }
            Some(info) => {
                let same =
                    canonical.is_some_and(|c| info.viewdef.as_deref() == Some(c.viewdef.as_str()));
                if same {
                    if info.owner != v.owner.as_str() {
                        out.push(Change {
                            phase: Phase::Views,
                            kind: "alter-owner",
                            object: name.clone(),
                            summary: format!(
                                "give contract view {name} to {} (now {})",
                                v.owner, info.owner
                            ),
                            drift: format!(
                                "contract view {name} is owned by {}, not {}",
                                info.owner, v.owner
                            ),
                            sql: vec![format!(
                                "ALTER VIEW {} OWNER TO {}",
                                v.view.quoted(),
                                v.owner.quoted()
                            )],
                            location: None,
                            revokes: None,
                        });
                    }
                    if !info.options.iter().any(|o| o == "security_barrier=true") {
                        out.push(Change {
                            phase: Phase::Views,
                            kind: "set-option",
                            object: name.clone(),
                            summary: format!("make {name} a security_barrier view"),
                            drift: format!("contract view {name} is not a security_barrier view"),
                            sql: vec![format!(
                                "ALTER VIEW {} SET (security_barrier = true)",
                                v.view.quoted()
                            )],
                            location: None,
                            revokes: None,
                        });
                    }
                    if info.comment.as_deref() != Some(v.comment.as_str()) {
                        out.push(Change {
                            phase: Phase::Views,
                            kind: "comment",
                            object: name.clone(),
                            summary: format!("record owner, version and source on {name}"),
                            drift: format!("the comment of contract view {name} differs"),
                            sql: vec![format!(
                                "COMMENT ON VIEW {} IS {}",
                                v.view.quoted(),
                                quote_literal(&v.comment)
                            )],
                            location: None,
                            revokes: None,
                        });
                    }
                    false
                } else {
                    // CREATE OR REPLACE only works when the old columns are
                    // a prefix of the new ones, unchanged.
                    let replaceable = canonical.is_some_and(|c| {
                        info.columns.len() <= c.columns.len()
                            && info.columns.iter().zip(&c.columns).all(|(a, b)| a == b)
                    });
                    let mut sql = Vec::new();
                    if !replaceable {
                        sql.push(format!("DROP VIEW {}", v.view.quoted()));
                    }
                    sql.extend(create_view_sql(v, replaceable));
                    out.push(Change {
                        phase: Phase::Views,
                        kind: "redefine-view",
                        object: name.clone(),
                        summary: format!(
                            "restore contract view {name} to the manifest's definition of {}",
                            v.contract
                        ),
                        drift: format!(
                            "contract view {name} ({}) was redefined{}",
                            v.contract,
                            definition_diff(
                                info.viewdef.as_deref(),
                                canonical.map(|c| c.viewdef.as_str())
                            )
                        ),
                        sql,
                        location: None,
                        revokes: None,
                    });
                    !replaceable
                }
            }
        };
        // A dropped and recreated view has no grants left.
        let acl: &[AclItem] =
            if recreated { &[] } else { current.map(|c| c.acl.as_slice()).unwrap_or(&[]) };
        if let Some(info) = current.filter(|_| !recreated) {
            let wanted = |item: &AclItem| {
                item.privilege == "SELECT"
                    && item
                        .grantee
                        .as_ref()
                        .is_some_and(|g| v.readers.iter().any(|r| r.as_str() == g))
            };
            let owner = info.owner.clone();
            let mut shown = info.clone();
            shown.acl.retain(|i| i.grantee.as_deref() != Some(v.owner.as_str()));
            revoke_extra(&v.view, &shown, "VIEW", &owner, &wanted, &|_| String::new(), out);
        }
        for reader in &v.readers {
            if !acl
                .iter()
                .any(|i| i.privilege == "SELECT" && i.grantee.as_deref() == Some(reader.as_str()))
            {
                let service =
                    desired.service_of_owner(reader.as_str()).map_or("?", |s| s.service.as_str());
                out.push(Change {
                    phase: Phase::Grants,
                    kind: "grant",
                    object: name.clone(),
                    summary: format!(
                        "grant SELECT on {name} to {reader} ({service} reads {})",
                        v.contract
                    ),
                    drift: format!("missing grant: SELECT on {name} to {reader}"),
                    sql: vec![format!(
                        "GRANT SELECT ON TABLE {} TO {}",
                        v.view.quoted(),
                        reader.quoted()
                    )],
                    location: None,
                    revokes: None,
                });
            }
        }
    }
}

pub(super) fn readers(v: &ContractView) -> String {
    if v.readers.is_empty() {
        "no reader yet".into()
    } else {
        v.readers.iter().map(Ident::to_string).collect::<Vec<_>>().join(", ")
    }
}

/// How the live definition differs from the manifest's (`-` live, `+`
/// manifest), indented under the drift line.
fn definition_diff(live: Option<&str>, wanted: Option<&str>) -> String {
    let (Some(live), Some(wanted)) = (live, wanted) else { return String::new() };
    let mut out = String::from(" (- live, + manifest):");
    for (mark, line) in deed_text::line_diff(live, wanted) {
        out.push_str(&format!("\n      {mark} {}", deed_text::printable(line)));
    }
    out
}
