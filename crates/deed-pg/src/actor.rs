//! Who deed is on a server: the role it acts as, what that role may do,
//! and which managed service (if any) made it, recognised from the roles
//! the provider leaves behind.
//!
//! Managed PostgreSQL gives nobody `SUPERUSER`: deed acts as the admin
//! role the provider hands out (`rds_superuser` on RDS and Aurora,
//! `cloudsqlsuperuser` on Cloud SQL, `azure_pg_admin` on Azure, ...), with
//! `CREATEROLE`, and gets replication the provider's way. What each step of
//! deed needs from such a role lives with the step; this is the one place
//! that reads it.

use deed_ident::Ident;
use tokio_postgres::Client;

use crate::PgError;

/// The managed service (or none) a server belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon RDS or Aurora (`rds_superuser`, `rds_replication`).
    Rds,
    /// Google Cloud SQL (`cloudsqlsuperuser`).
    CloudSql,
    /// Google AlloyDB (`alloydbsuperuser`).
    AlloyDb,
    /// Azure Database for PostgreSQL flexible server (`azure_pg_admin`).
    Azure,
    /// Supabase (`supabase_admin`; users get `postgres`, not a superuser).
    Supabase,
    /// Neon (`neon_superuser`).
    Neon,
    /// Anything else: self-managed, Crunchy Bridge, ...
    SelfManaged,
}

impl Provider {
    /// The role whose presence gives the provider away, in the order they
    /// are tried.
    const MARKERS: &'static [(&'static str, Provider)] = &[
        ("rds_superuser", Provider::Rds),
        ("cloudsqlsuperuser", Provider::CloudSql),
        ("alloydbsuperuser", Provider::AlloyDb),
        ("azure_pg_admin", Provider::Azure),
        ("supabase_admin", Provider::Supabase),
        ("neon_superuser", Provider::Neon),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Rds => "Amazon RDS / Aurora",
            Provider::CloudSql => "Google Cloud SQL",
            Provider::AlloyDb => "Google AlloyDB",
            Provider::Azure => "Azure Database for PostgreSQL",
            Provider::Supabase => "Supabase",
            Provider::Neon => "Neon",
            Provider::SelfManaged => "self-managed PostgreSQL",
        }
    }

    /// Where logical decoding (`wal_level = logical`) is switched on.
    pub fn logical_decoding_setting(self) -> &'static str {
        match self {
            Provider::Rds => "set rds.logical_replication = 1 in the DB parameter group and reboot",
            Provider::CloudSql => "set the database flag cloudsql.logical_decoding = on",
            Provider::AlloyDb => "set the database flag alloydb.logical_decoding = on",
            Provider::Azure => "set the server parameter wal_level = logical and restart",
            Provider::Supabase => "logical decoding is on by default; check the project's settings",
            Provider::Neon => "enable logical replication in the project's settings",
            Provider::SelfManaged => "set wal_level = logical in postgresql.conf and restart",
        }
    }

    /// The role through which replication is granted here, where it is a
    /// role rather than the `REPLICATION` attribute.
    pub fn replication_role(self) -> Option<&'static str> {
        match self {
            Provider::Rds => Some("rds_replication"),
            _ => None,
        }
    }
}

/// The role deed acts as, and what it may do.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `current_user`.
    pub name: Ident,
    pub superuser: bool,
    pub create_role: bool,
    pub create_db: bool,
    /// The `REPLICATION` attribute.
    pub replication: bool,
    /// A member (with its privileges) of the provider's replication role.
    pub replication_role: bool,
    /// `server_version_num`, e.g. 180004.
    pub version: i32,
    pub provider: Provider,
    /// Whether it owns the current database.
    pub owns_database: bool,
    /// Whether it may create schemas in the current database.
    pub create_in_database: bool,
}

impl Actor {
    pub async fn load(client: &Client) -> Result<Actor, PgError> {
        let row = client
            .query_one(
                "SELECT current_user::text, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
                        current_setting('server_version_num')::int,
                        d.datdba = r.oid, has_database_privilege(current_database(), 'CREATE'),
                        ARRAY(SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1))
                   FROM pg_roles r, pg_database d
                  WHERE r.rolname = current_user AND d.datname = current_database()",
                &[&Provider::MARKERS.iter().map(|(r, _)| *r).collect::<Vec<_>>()],
            )
            .await
            .map_err(|e| PgError::query("reading the role deed acts as", e))?;
        let present: Vec<String> = row.get(8);
        let provider = Provider::MARKERS
            .iter()
            .find(|(role, _)| present.iter().any(|p| p == role))
            .map_or(Provider::SelfManaged, |(_, p)| *p);
        let replication_role = match provider.replication_role() {
            Some(role) => client
                .query_one(
                    "SELECT EXISTS (SELECT FROM pg_roles g WHERE g.rolname = $1
                                      AND pg_has_role(current_user, g.oid, 'USAGE'))",
                    &[&role],
                )
                .await
                .map_err(|e| PgError::query("reading replication role membership", e))?
                .get(0),
            None => false,
        };
        let name: String = row.get(0);
        Ok(Actor {
            name: Ident::new(name.clone()).map_err(|e| PgError::Query {
                context: "reading the role deed acts as".into(),
                reason: format!("role name {name:?}: {e}"),
                source: None,
            })?,
            superuser: row.get(1),
            create_role: row.get(2),
            create_db: row.get(3),
            replication: row.get(4),
            replication_role,
            version: row.get(5),
            provider,
            owns_database: row.get(6),
            create_in_database: row.get(7),
        })
    }

    /// The major version, e.g. 18.
    pub fn major(&self) -> i32 {
        self.version / 10000
    }

    /// Whether it may create replication slots and stream them.
    pub fn can_replicate(&self) -> bool {
        self.superuser || self.replication || self.replication_role
    }

    /// Whether a role it creates may be given `REPLICATION` by it: a
    /// superuser always; from PostgreSQL 16 a `CREATEROLE` role that has
    /// `REPLICATION` itself.
    pub fn can_give_replication(&self) -> bool {
        self.superuser || (self.major() >= 16 && self.create_role && self.replication)
    }

    /// `GRANT role TO <self>` so that it may act as `role` (SET ROLE, own
    /// its objects' privileges): on 16+ the options are spelled out, since
    /// a role's creator gets only ADMIN by default
    /// (`createrole_self_grant`).
    pub fn self_grant_sql(&self, quoted_role: &str) -> String {
        let me = self.name.quoted();
        if self.major() >= 16 {
            format!("GRANT {quoted_role} TO {me} WITH INHERIT TRUE, SET TRUE")
        } else {
            format!("GRANT {quoted_role} TO {me}")
        }
    }
}

/// The statements that make a transaction act as `role`: `SET LOCAL ROLE`,
/// preceded by a grant when the role deed runs as may grant itself the
/// role but does not hold it (on PostgreSQL 16 and later a role's creator
/// holds only ADMIN on it; up to 15 `CREATEROLE` may grant any role that
/// is not a superuser), with no inheritance where the server allows
/// saying so. Run them after `BEGIN` and end that transaction with
/// `ROLLBACK`: the grant is never committed, so nothing is left behind,
/// whatever happens to the process. When deed's role may not act as
/// `role` and cannot grant it, `SET LOCAL ROLE` fails with the server's
/// own error.
pub async fn act_as(client: &Client, role: &Ident) -> Result<String, PgError> {
    let set_role = format!("SET LOCAL ROLE {}", role.quoted());
    let actor = Actor::load(client).await?;
    if actor.superuser {
        return Ok(set_role);
    }
    let set = if actor.major() >= 16 { "SET" } else { "MEMBER" };
    let row = client
        .query_opt(
            &format!(
                "SELECT pg_has_role(current_user, oid, '{set}'),
                        pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION'), rolsuper
                   FROM pg_roles WHERE rolname = $1"
            ),
            &[&role.as_str()],
        )
        .await
        .map_err(|e| PgError::query(format!("reading whether deed may act as {role}"), e))?;
    let Some(row) = row else { return Ok(set_role) };
    let (may_set, admin, superuser): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let may_grant = admin || (actor.major() <= 15 && actor.create_role && !superuser);
    if may_set || !may_grant {
        return Ok(set_role);
    }
    let (me, it) = (actor.name.quoted(), role.quoted());
    let grant = if actor.major() >= 16 {
        format!("GRANT {it} TO {me} WITH INHERIT FALSE, SET TRUE")
    } else {
        format!("GRANT {it} TO {me}")
    };
    Ok(format!("{grant}; {set_role}"))
}
