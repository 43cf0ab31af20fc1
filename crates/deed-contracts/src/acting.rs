//! What the role deed runs as may do with the roles a plan touches.
//!
//! A superuser may do everything. The admin a managed service hands out
//! may not: to create a service's api schema (`AUTHORIZATION owner`), give
//! it a table (`OWNER TO owner`) or set its default privileges, it must be
//! able to act as the owner role, and to give away a table it must act as
//! the table's current owner. On PostgreSQL 16 and later the creator of a
//! role holds only `ADMIN` on it (`createrole_self_grant` is empty by
//! default); up to 15 any `CREATEROLE` role may grant itself any role that
//! is not a superuser. The plan grants deed's role what it needs,
//! explicitly (see `diff::acting`).

use std::collections::{HashMap, HashSet};

use deed_pg::{Actor, Client, PgError};

/// What the acting role holds of one role.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    /// Has its privileges (ownership checks pass): `pg_has_role(…, 'USAGE')`.
    pub usage: bool,
    /// May `SET ROLE` to it (16+), or is a member (up to 15).
    pub set: bool,
    /// May grant it, to itself too.
    pub admin: bool,
    pub superuser: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ActingLive {
    /// `None` before [`ActingLive::load`] ran (plans built without a
    /// server, in tests).
    pub actor: Option<Actor>,
    pub access: HashMap<String, Access>,
    /// (role, schema) pairs where the role may create: a new owner needs
    /// it on the relation's schema (superusers aside).
    pub create_on: HashSet<(String, String)>,
    /// Schemas on which the actor may grant CREATE.
    pub grants_create: HashSet<String>,
}

impl ActingLive {
    /// Reads `actor`'s access to `roles` (those that exist), and which of
    /// `owners` may create in which of `schemas`.
    pub async fn load(
        client: &Client,
        actor: Actor,
        roles: &[String],
        owners: &[String],
        schemas: &[String],
    ) -> Result<ActingLive, PgError> {
        let set = if actor.major() >= 16 { "SET" } else { "MEMBER" };
        let sql = format!(
            "SELECT r.rolname::text, pg_has_role(current_user, r.oid, 'USAGE'),
                    pg_has_role(current_user, r.oid, '{set}'),
                    pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION'), r.rolsuper
               FROM pg_roles r WHERE r.rolname = ANY($1)"
        );
        let mut access = HashMap::new();
        for row in client
            .query(&sql, &[&roles])
            .await
            .map_err(|e| PgError::query("reading what deed's role may act as", e))?
        {
            let superuser: bool = row.get(4);
            // Up to 15, CREATEROLE alone may grant any role but a superuser.
            let admin = row.get::<_, bool>(3)
                || (actor.major() <= 15 && actor.create_role && !superuser)
                || actor.superuser;
            access.insert(
                row.get(0),
                Access { usage: row.get(1), set: row.get(2), admin, superuser },
            );
        }
        let mut create_on = HashSet::new();
        for row in client
            .query(
                "SELECT r.rolname::text, n.nspname::text FROM pg_roles r, pg_namespace n
                  WHERE r.rolname = ANY($1) AND n.nspname = ANY($2)
                    AND has_schema_privilege(r.oid, n.oid, 'CREATE')",
                &[&owners, &schemas],
            )
            .await
            .map_err(|e| PgError::query("reading who may create in which schema", e))?
        {
            create_on.insert((row.get(0), row.get(1)));
        }
        for row in client
            .query(
                "SELECT n.nspname::text FROM pg_namespace n
                  CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                  WHERE n.nspname = ANY($1) AND a.grantee = 0 AND a.privilege_type = 'CREATE'",
                &[&schemas],
            )
            .await
            .map_err(|e| PgError::query("reading where everyone may create", e))?
        {
            // Everyone may create here (`public` up to PostgreSQL 14).
            for o in owners {
                create_on.insert((o.clone(), row.get(0)));
            }
        }
        let grants_create = client
            .query(
                "SELECT nspname::text FROM pg_namespace
                  WHERE nspname = ANY($1) AND has_schema_privilege(oid, 'CREATE WITH GRANT OPTION')",
                &[&schemas],
            )
            .await
            .map_err(|e| PgError::query("reading where deed may grant CREATE", e))?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        Ok(ActingLive { actor: Some(actor), access, create_on, grants_create })
    }

    /// Whether `role` may create in `schema` (it must, to be given a
    /// relation there by a role that is not a superuser).
    pub fn may_create(&self, role: &str, schema: &str) -> bool {
        self.create_on.contains(&(role.to_string(), schema.to_string()))
    }

    /// The actor, when it is not a superuser (who needs nothing granted).
    pub fn restricted(&self) -> Option<&Actor> {
        self.actor.as_ref().filter(|a| !a.superuser)
    }

    /// Whether the actor may act fully as `role`: use its privileges and
    /// `SET ROLE` to it. Unknown roles (not yet created) are not.
    pub fn acts_as(&self, role: &str) -> bool {
        match &self.actor {
            None => true,
            Some(a) if a.superuser || a.name.as_str() == role => true,
            Some(_) => self.access.get(role).is_some_and(|r| r.usage && r.set),
        }
    }

    /// Whether the actor owns what `role` owns (ownership checks pass).
    pub fn owns_as(&self, role: &str) -> bool {
        match &self.actor {
            None => true,
            Some(a) if a.superuser || a.name.as_str() == role => true,
            Some(_) => self.access.get(role).is_some_and(|r| r.usage),
        }
    }

    /// Whether the actor may grant `role` to itself. A role it is about
    /// to create, it may (its creator gets ADMIN on 16+; CREATEROLE
    /// suffices before).
    pub fn may_grant_itself(&self, role: &str) -> bool {
        match self.access.get(role) {
            None => self.actor.as_ref().is_some_and(|a| a.create_role || a.superuser),
            Some(r) => r.admin && !r.superuser,
        }
    }
}
