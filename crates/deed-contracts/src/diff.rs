//! Desired against live: the changes that make the database match the
//! manifest, in dependency order.

use std::collections::{BTreeMap, BTreeSet};

use deed_ident::{Ident, QualifiedName, quote_literal};
use deed_manifest::Privilege;

use crate::change::{Change, Phase, Revoked};
use crate::desired::{ContractView, Desired};
use crate::live::{AclItem, Live, RelInfo};

/// Computes the plan's changes. Tables and data are never dropped; only
/// views deed created (marked by their comment) can be.
pub fn diff(desired: &Desired, live: &Live) -> Vec<Change> {
    let mut out = Vec::new();
    roles(desired, live, &mut out);
    schemas(desired, live, &mut out);
    relations(desired, live, &mut out);
    views(desired, live, &mut out);
    defaults(desired, live, &mut out);
    crate::capture::diff_capture(&desired.capture, &live.capture, &mut out);
    out.sort_by(|a, b| (a.phase, &a.object, a.kind).cmp(&(b.phase, &b.object, b.kind)));
    out
}

fn grantee_sql(g: &Option<String>) -> String {
    match g {
        None => "PUBLIC".into(),
        Some(r) => quote_role(r),
    }
}

fn grantee_name(g: &Option<String>) -> String {
    g.clone().unwrap_or_else(|| "PUBLIC".into())
}

fn quote_role(r: &str) -> String {
    format!("\"{}\"", r.replace('"', "\"\""))
}

fn roles(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for s in &desired.services {
        let owner = s.owner.as_str();
        match live.roles.get(owner) {
            None => out.push(Change {
                phase: Phase::Roles,
                kind: "create-role",
                object: owner.into(),
                summary: format!(
                    "create role {owner} (NOLOGIN): it will own the relations and api schema of {}",
                    s.service
                ),
                drift: format!("role {owner} is missing"),
                sql: vec![
                    format!("CREATE ROLE {} NOLOGIN", s.owner.quoted()),
                    format!(
                        "COMMENT ON ROLE {} IS {}",
                        s.owner.quoted(),
                        quote_literal(&format!("deed: owner role of service {}", s.service))
                    ),
                ],
                revokes: None,
            }),
            Some(info) if info.login => out.push(Change {
                phase: Phase::Roles,
                kind: "alter-role",
                object: owner.into(),
                summary: format!("make {owner} NOLOGIN: nobody logs in as an owner role"),
                drift: format!("owner role {owner} can log in"),
                sql: vec![format!("ALTER ROLE {} NOLOGIN", s.owner.quoted())],
                revokes: None,
            }),
            Some(_) => {}
        }
        for login in &s.logins {
            if !live.role_exists(login.as_str()) {
                out.push(Change {
                    phase: Phase::Blocker,
                    kind: "missing-login",
                    object: login.as_str().into(),
                    summary: format!(
                        "login role {login} of service {} does not exist; create it first (deed does not manage passwords)",
                        s.service
                    ),
                    drift: format!("login role {login} of service {} is missing", s.service),
                    sql: Vec::new(),
                    revokes: None,
                });
            } else if !live.members.get(owner).is_some_and(|m| m.contains(login.as_str())) {
                out.push(Change {
                    phase: Phase::Memberships,
                    kind: "grant-membership",
                    object: format!("{owner} ∋ {login}"),
                    summary: format!("grant {owner} to {login}"),
                    drift: format!("{login} is not a member of {owner}"),
                    sql: vec![format!("GRANT {} TO {}", s.owner.quoted(), login.quoted())],
                    revokes: None,
                });
            }
        }
        for member in live.members.get(owner).into_iter().flatten() {
            if s.logins.iter().any(|l| l.as_str() == member) {
                continue;
            }
            out.push(Change {
                phase: Phase::Memberships,
                kind: "revoke-membership",
                object: format!("{owner} ∋ {member}"),
                summary: format!(
                    "revoke {owner} from {member}, which is not a login of {}",
                    s.service
                ),
                drift: format!("{member} is a member of {owner} but not a login of {}", s.service),
                sql: vec![format!("REVOKE {} FROM {}", s.owner.quoted(), quote_role(member))],
                revokes: None,
            });
        }
    }
}

fn schemas(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for s in &desired.schemas {
        let name = s.schema.as_str();
        let current = live.schemas.get(name);
        match current {
            None => out.push(Change {
                phase: Phase::Schemas,
                kind: "create-schema",
                object: name.into(),
                summary: format!("create api schema {name}, owned by {}", s.owner),
                drift: format!("api schema {name} is missing"),
                sql: vec![format!(
                    "CREATE SCHEMA {} AUTHORIZATION {}",
                    s.schema.quoted(),
                    s.owner.quoted()
                )],
                revokes: None,
            }),
            Some(info) if info.owner != s.owner.as_str() => out.push(Change {
                phase: Phase::Schemas,
                kind: "alter-schema-owner",
                object: name.into(),
                summary: format!("give api schema {name} to {} (now {})", s.owner, info.owner),
                drift: format!("api schema {name} is owned by {}, not {}", info.owner, s.owner),
                sql: vec![format!(
                    "ALTER SCHEMA {} OWNER TO {}",
                    s.schema.quoted(),
                    s.owner.quoted()
                )],
                revokes: None,
            }),
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
                object: name.into(),
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
                    object: name.into(),
                    summary: format!("grant USAGE on schema {name} to {reader}"),
                    drift: format!("missing grant: USAGE on schema {name} to {reader}"),
                    sql: vec![format!(
                        "GRANT USAGE ON SCHEMA {} TO {}",
                        s.schema.quoted(),
                        reader.quoted()
                    )],
                    revokes: None,
                });
            }
        }
    }
}

fn kind_keyword(kind: &str) -> &'static str {
    match kind {
        "v" => "VIEW",
        "m" => "MATERIALIZED VIEW",
        "f" => "FOREIGN TABLE",
        "S" => "SEQUENCE",
        _ => "TABLE",
    }
}

fn kind_word(kind: &str) -> &'static str {
    match kind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "S" => "sequence",
        _ => "table",
    }
}

fn relations(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for r in &desired.relations {
        let name = r.relation.to_string();
        let Some(info) = live.relations.get(&r.relation) else {
            out.push(Change {
                phase: Phase::Blocker,
                kind: "missing-relation",
                object: name.clone(),
                summary: format!(
                    "{name} is in {}'s owns but does not exist; create it, or remove it from owns",
                    r.service
                ),
                drift: format!("{name}, owned by {} in the manifest, does not exist", r.service),
                sql: Vec::new(),
                revokes: None,
            });
            continue;
        };
        if info.owner != r.owner.as_str() {
            out.push(Change {
                phase: Phase::Ownership,
                kind: "alter-owner",
                object: name.clone(),
                summary: format!(
                    "give {} {name} to {} (now {})",
                    kind_word(&info.kind),
                    r.owner,
                    info.owner
                ),
                drift: format!(
                    "{} {name} is owned by {}, not {}",
                    kind_word(&info.kind),
                    info.owner,
                    r.owner
                ),
                sql: vec![format!(
                    "ALTER {} {} OWNER TO {}",
                    kind_keyword(&info.kind),
                    r.relation.quoted(),
                    r.owner.quoted()
                )],
                revokes: None,
            });
        }
        let wanted = |item: &AclItem| {
            item.grantee
                .as_ref()
                .and_then(|g| r.grants.iter().find(|(role, _)| role.as_str() == g))
                .is_some_and(|(_, privs)| privs.iter().any(|p| p.as_sql() == item.privilege))
        };
        let logins = desired
            .services
            .iter()
            .find(|s| s.service == r.service)
            .map(|s| s.logins.as_slice())
            .unwrap_or(&[]);
        let note = |g: &Option<String>| {
            let own = g.as_ref().is_some_and(|g| logins.iter().any(|l| l.as_str() == g));
            if own {
                format!(" (it keeps access as a member of {})", r.owner)
            } else {
                String::new()
            }
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
                revokes: None,
            });
        }
    }
}

/// Revokes every table and column privilege not wanted, except the
/// owner's own.
fn revoke_extra(
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
            revokes: Some(Revoked {
                relation: relation.clone(),
                grantee,
                privileges: vec![privilege],
            }),
        });
    }
}

fn create_view_sql(v: &ContractView, replace: bool) -> Vec<String> {
    vec![
        format!(
            "CREATE {}VIEW {} WITH (security_barrier) AS {}",
            if replace { "OR REPLACE " } else { "" },
            v.view.quoted(),
            v.select
        ),
        format!("ALTER VIEW {} OWNER TO {}", v.view.quoted(), v.owner.quoted()),
        format!("COMMENT ON VIEW {} IS {}", v.view.quoted(), quote_literal(&v.comment)),
    ]
}

fn views(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
    for (name, _) in live.contract_views() {
        if desired.view(name).is_none() {
            out.push(Change {
                phase: Phase::DropViews,
                kind: "drop-view",
                object: name.to_string(),
                summary: format!("drop contract view {name}: the manifest no longer lists it and no service reads it"),
                drift: format!("contract view {name} is no longer in the manifest"),
                sql: vec![format!("DROP VIEW {}", name.quoted())],
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
                        drift: format!("contract view {name} ({}) was redefined", v.contract),
                        sql,
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
                    revokes: None,
                });
            }
        }
    }
}

fn readers(v: &ContractView) -> String {
    if v.readers.is_empty() {
        "no reader yet".into()
    } else {
        v.readers.iter().map(Ident::to_string).collect::<Vec<_>>().join(", ")
    }
}

fn defaults(desired: &Desired, live: &Live, out: &mut Vec<Change>) {
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
                revokes: None,
            });
        }
    }
}
