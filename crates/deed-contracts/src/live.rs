//! What the database looks like now, read from the catalogs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deed_ident::QualifiedName;
use deed_pg::{Client, PgError};
use serde::Serialize;

use crate::desired::Desired;
use crate::error::ContractError;
use crate::naming::CONTRACT_MARKER;

/// One entry of an ACL, as `aclexplode` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct AclItem {
    /// `None` is PUBLIC.
    pub grantee: Option<String>,
    pub grantor: String,
    pub privilege: String,
    pub grantable: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RoleInfo {
    pub login: bool,
    pub superuser: bool,
    pub bypass_rls: bool,
    pub create_role: bool,
    pub replication: bool,
}

#[derive(Debug, Clone)]
pub struct SchemaInfo {
    pub owner: String,
    pub acl: Vec<AclItem>,
}

#[derive(Debug, Clone)]
pub struct RelInfo {
    /// `r`, `p`, `v`, `m`, `f` or `S`.
    pub kind: String,
    pub owner: String,
    pub acl: Vec<AclItem>,
    /// Column privileges: (column, entry).
    pub column_acl: Vec<(String, AclItem)>,
    pub options: Vec<String>,
    pub comment: Option<String>,
    pub viewdef: Option<String>,
    /// (name, type) of each column, in order.
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct DefaultAcl {
    pub role: String,
    pub schema: Option<String>,
    /// `r` tables, `S` sequences.
    pub objtype: String,
    pub acl: Vec<AclItem>,
}

/// A desired view's definition as PostgreSQL itself renders it.
#[derive(Debug, Clone)]
pub struct Canonical {
    pub viewdef: String,
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Live {
    pub roles: HashMap<String, RoleInfo>,
    /// role → its direct members.
    pub members: HashMap<String, BTreeSet<String>>,
    /// (role, member) pairs where the member holds ADMIN OPTION.
    pub admin_members: BTreeSet<(String, String)>,
    pub schemas: HashMap<String, SchemaInfo>,
    pub relations: HashMap<QualifiedName, RelInfo>,
    pub default_acls: Vec<DefaultAcl>,
    pub canonical: HashMap<QualifiedName, Canonical>,
    pub capture: deed_capture::CaptureLive,
    /// Partitions and sequences that come with owned relations.
    pub owned: crate::live_owned::OwnedLive,
    /// Views and functions that reach owned relations by other routes.
    pub routes: crate::routes::RoutesLive,
    /// The role deed runs as, and what it may act as.
    pub acting: crate::acting::ActingLive,
}

fn q(context: &str) -> impl FnOnce(tokio_postgres::Error) -> PgError + '_ {
    move |e| PgError::query(context, e)
}

/// Explodes an ACL column, with NULL meaning the built-in default.
const ACL_COLUMNS: &str =
    "coalesce(g.rolname::text, CASE WHEN a.grantee = 0 THEN NULL ELSE a.grantee::text END),
                           pg_get_userbyid(a.grantor)::text, a.privilege_type, a.is_grantable";

fn acl_item(row: &tokio_postgres::Row, at: usize) -> AclItem {
    AclItem {
        grantee: row.get(at),
        grantor: row.get(at + 1),
        privilege: row.get(at + 2),
        grantable: row.get(at + 3),
    }
}

impl Live {
    /// Reads roles, memberships, the relevant schemas and relations, and
    /// default privileges; then asks the server how it would render each
    /// desired view, in a transaction that is rolled back.
    /// Inside a transaction (`in_transaction`), the rendering check uses a
    /// savepoint instead of a transaction of its own.
    pub async fn load(
        client: &Client,
        desired: &Desired,
        in_transaction: bool,
    ) -> Result<Live, ContractError> {
        let mut live = Live::default();
        for row in client
            .query(
                "SELECT rolname::text, rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolreplication
                   FROM pg_roles",
                &[],
            )
            .await
            .map_err(q("reading roles"))?
        {
            live.roles.insert(
                row.get(0),
                RoleInfo {
                    login: row.get(1),
                    superuser: row.get(2),
                    bypass_rls: row.get(3),
                    create_role: row.get(4),
                    replication: row.get(5),
                },
            );
        }
        for row in client
            .query(
                "SELECT r.rolname::text, m.rolname::text, am.admin_option FROM pg_auth_members am
                   JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member",
                &[],
            )
            .await
            .map_err(q("reading role memberships"))?
        {
            let (role, member): (String, String) = (row.get(0), row.get(1));
            if row.get::<_, bool>(2) {
                live.admin_members.insert((role.clone(), member.clone()));
            }
            live.members.entry(role).or_default().insert(member);
        }
        live.owned = crate::live_owned::OwnedLive::load(client, desired).await?;
        // The schemas that matter: those of owned relations (with their
        // partitions and sequences), api schemas, and any schema holding a
        // view deed created.
        let mut schemas: BTreeSet<String> =
            desired.relations.iter().map(|r| r.relation.schema.as_str().to_string()).collect();
        schemas.extend(live.owned.schemas());
        schemas.extend(desired.schemas.iter().map(|s| s.schema.as_str().to_string()));
        for row in client
            .query(
                "SELECT DISTINCT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'v' AND starts_with(coalesce(obj_description(c.oid, 'pg_class'), ''), $1)",
                &[&CONTRACT_MARKER],
            )
            .await
            .map_err(q("looking for contract views"))?
        {
            schemas.insert(row.get(0));
        }
        let schemas: Vec<String> = schemas.into_iter().collect();

        let sql = format!(
            "SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, {ACL_COLUMNS}
               FROM pg_namespace n
               CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
               LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE n.nspname = ANY($1)"
        );
        for row in client.query(&sql, &[&schemas]).await.map_err(q("reading schemas"))? {
            let entry = live
                .schemas
                .entry(row.get(0))
                .or_insert_with(|| SchemaInfo { owner: row.get(1), acl: Vec::new() });
            entry.acl.push(acl_item(&row, 2));
        }

        for row in client
            .query(
                "SELECT n.nspname::text, c.relname::text, c.relkind::text, pg_get_userbyid(c.relowner)::text,
                        coalesce(c.reloptions, '{}')::text[], obj_description(c.oid, 'pg_class'),
                        CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                        coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{}'),
                        coalesce(array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) FILTER (WHERE a.attnum > 0), '{}')
                   FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped
                  WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                  GROUP BY c.oid, n.nspname",
                &[&schemas],
            )
            .await
            .map_err(q("reading relations"))?
        {
            let Ok(name) = QualifiedName::from_catalog(row.get(0), row.get(1)) else { continue };
            let names: Vec<String> = row.get(7);
            let types: Vec<String> = row.get(8);
            live.relations.insert(
                name,
                RelInfo {
                    kind: row.get(2),
                    owner: row.get(3),
                    acl: Vec::new(),
                    column_acl: Vec::new(),
                    options: row.get(4),
                    comment: row.get(5),
                    viewdef: row.get(6),
                    columns: names.into_iter().zip(types).collect(),
                },
            );
        }
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, {ACL_COLUMNS}
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner))) a
               LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
        );
        for row in client.query(&sql, &[&schemas]).await.map_err(q("reading table privileges"))? {
            let Ok(name) = QualifiedName::from_catalog(row.get(0), row.get(1)) else { continue };
            if let Some(rel) = live.relations.get_mut(&name) {
                rel.acl.push(acl_item(&row, 2));
            }
        }
        let sql = format!(
            "SELECT n.nspname::text, c.relname::text, att.attname::text, {ACL_COLUMNS}
               FROM pg_attribute att
               JOIN pg_class c ON c.oid = att.attrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               CROSS JOIN LATERAL aclexplode(att.attacl) a
               LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE n.nspname = ANY($1) AND att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped"
        );
        for row in client.query(&sql, &[&schemas]).await.map_err(q("reading column privileges"))? {
            let Ok(name) = QualifiedName::from_catalog(row.get(0), row.get(1)) else { continue };
            if let Some(rel) = live.relations.get_mut(&name) {
                rel.column_acl.push((row.get(2), acl_item(&row, 3)));
            }
        }
        let roles: Vec<String> = desired
            .services
            .iter()
            .flat_map(|s| {
                std::iter::once(s.owner.as_str().to_string())
                    .chain(s.logins.iter().map(|l| l.as_str().to_string()))
            })
            .collect();
        let sql = format!(
            "SELECT pg_get_userbyid(d.defaclrole)::text, n.nspname::text, d.defaclobjtype::text, {ACL_COLUMNS}
               FROM pg_default_acl d
               LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
               CROSS JOIN LATERAL aclexplode(d.defaclacl) a
               LEFT JOIN pg_roles g ON g.oid = a.grantee
              WHERE pg_get_userbyid(d.defaclrole) = ANY($1) AND d.defaclobjtype IN ('r', 'S')"
        );
        for row in client.query(&sql, &[&roles]).await.map_err(q("reading default privileges"))? {
            let (role, schema, objtype): (String, Option<String>, String) =
                (row.get(0), row.get(1), row.get(2));
            let item = acl_item(&row, 3);
            match live
                .default_acls
                .iter_mut()
                .find(|d| d.role == role && d.schema == schema && d.objtype == objtype)
            {
                Some(d) => d.acl.push(item),
                None => {
                    live.default_acls.push(DefaultAcl { role, schema, objtype, acl: vec![item] })
                }
            }
        }
        live.routes = crate::routes::RoutesLive::load(client, desired).await?;
        let owners: Vec<String> =
            desired.services.iter().map(|s| s.owner.as_str().to_string()).collect();
        let relation_schemas: BTreeSet<String> =
            live.relations.keys().map(|n| n.schema.as_str().to_string()).collect();
        let mut acting_roles: BTreeSet<String> = owners.iter().cloned().collect();
        acting_roles.extend(live.relations.values().map(|r| r.owner.clone()));
        acting_roles.extend(live.schemas.values().map(|s| s.owner.clone()));
        let actor = deed_pg::Actor::load(client).await?;
        live.acting = crate::acting::ActingLive::load(
            client,
            actor.clone(),
            &acting_roles.into_iter().collect::<Vec<_>>(),
            &owners,
            &relation_schemas.into_iter().collect::<Vec<_>>(),
        )
        .await?;
        live.canonical = crate::canonical::canonical_views(client, desired, in_transaction).await?;
        let captured: Vec<QualifiedName> =
            desired.capture.services.iter().flat_map(|s| s.tables.iter().cloned()).collect();
        live.capture = deed_capture::CaptureLive::load(client, &actor, &captured).await?;
        Ok(live)
    }

    pub fn role_exists(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// Whether `role` is the role deed runs as.
    pub fn is_actor(&self, role: &str) -> bool {
        self.acting.actor.as_ref().is_some_and(|a| a.name.as_str() == role)
    }

    /// Whether `member` may make itself a member of `role` whenever it
    /// likes, so its membership gives it nothing it lacks: it holds ADMIN
    /// OPTION on `role` (on 16+, the role's creator), or has CREATEROLE on
    /// 15 or older (which lets it grant itself any role but a
    /// superuser's). That is an admin deed ran as another time (a
    /// provider's admin, where a superuser now runs deed), not a service
    /// reaching another's tables.
    pub fn could_take(&self, role: &str, member: &str) -> bool {
        let creates_roles = self.roles.get(member).is_some_and(|r| r.create_role);
        let up_to_15 = self.acting.actor.as_ref().is_some_and(|a| a.major() <= 15);
        self.admin_members.contains(&(role.to_string(), member.to_string()))
            || (creates_roles && up_to_15)
    }

    pub fn is_superuser(&self, role: &str) -> bool {
        self.roles.get(role).is_some_and(|r| r.superuser)
    }

    /// Every role `role` belongs to, directly or through others, with the
    /// role through which it first reaches each (itself for a direct
    /// membership).
    pub fn memberships(&self, role: &str) -> BTreeMap<String, String> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for (group, members) in &self.members {
            for m in members {
                parents.entry(m.as_str()).or_default().push(group.as_str());
            }
        }
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut stack: Vec<(&str, &str)> =
            parents.get(role).into_iter().flatten().map(|g| (*g, *g)).collect();
        while let Some((group, via)) = stack.pop() {
            if group == role || out.contains_key(group) {
                continue;
            }
            out.insert(group.to_string(), via.to_string());
            stack.extend(parents.get(group).into_iter().flatten().map(|g| (*g, via)));
        }
        out
    }

    /// Whether `member` is `role` or belongs to it, directly or through
    /// other roles.
    pub fn is_member(&self, member: &str, role: &str) -> bool {
        let mut stack = vec![role.to_string()];
        let mut seen = BTreeSet::new();
        while let Some(r) = stack.pop() {
            if r == member {
                return true;
            }
            if !seen.insert(r.clone()) {
                continue;
            }
            stack.extend(self.members.get(&r).into_iter().flatten().cloned());
        }
        false
    }

    /// Views deed created (by their comment), wherever they are.
    pub fn contract_views(&self) -> impl Iterator<Item = (&QualifiedName, &RelInfo)> {
        self.relations.iter().filter(|(_, r)| {
            r.kind == "v" && r.comment.as_deref().is_some_and(|c| c.starts_with(CONTRACT_MARKER))
        })
    }
}
