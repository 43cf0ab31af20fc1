//! Managed PostgreSQL, emulated: the admin role a provider hands out, made
//! on a private cluster with the provider's role names and grants, so
//! tests run deed the way most users do, without a superuser.
//!
//! `DEED_TEST_ADMIN` picks it: `superuser` (the default), `plain`
//! (`CREATEROLE CREATEDB REPLICATION`, the predefined monitoring roles),
//! `rds`, `cloudsql`, `azure`, `supabase` or `neon`. The test's database is
//! then owned by that admin, which also creates the test's tables (as a
//! migration tool would) and runs deed; the superuser only sets the stage
//! (the database, `pg_stat_statements`) and cleans up.
//!
//! What cannot be emulated on a stock server is said where it matters:
//! RDS gives replication through membership in `rds_replication`, which
//! only RDS's own server honours, so the `rds` admin cannot create slots
//! here.

use tokio_postgres::Client;

/// The admin deed runs as in the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    Superuser,
    Plain,
    Rds,
    CloudSql,
    Azure,
    Supabase,
    Neon,
}

impl Admin {
    /// From `DEED_TEST_ADMIN`; an unknown value fails the test.
    pub fn from_env() -> Admin {
        let value = std::env::var("DEED_TEST_ADMIN").unwrap_or_default();
        Admin::parse(&value).unwrap_or_else(|| {
            panic!(
                "DEED_TEST_ADMIN={value:?}: expected superuser, plain, rds, cloudsql, azure, supabase or neon"
            )
        })
    }

    /// Every provider emulated, the superuser aside.
    pub const MANAGED: &'static [Admin] =
        &[Admin::Plain, Admin::Rds, Admin::CloudSql, Admin::Azure, Admin::Supabase, Admin::Neon];

    pub fn parse(value: &str) -> Option<Admin> {
        Some(match value {
            "" | "superuser" => Admin::Superuser,
            "plain" => Admin::Plain,
            "rds" => Admin::Rds,
            "cloudsql" => Admin::CloudSql,
            "azure" => Admin::Azure,
            "supabase" => Admin::Supabase,
            "neon" => Admin::Neon,
            _ => return None,
        })
    }

    /// The login the tests connect as, `None` for the superuser.
    pub fn login(self) -> Option<&'static str> {
        Some(match self {
            Admin::Superuser => return None,
            Admin::Plain => "deed_test_admin",
            Admin::Rds => "deed_test_rds_admin",
            Admin::CloudSql => "deed_test_cloudsql_admin",
            Admin::Azure => "deed_test_azure_admin",
            Admin::Supabase => "deed_test_supabase_admin",
            Admin::Neon => "deed_test_neon_admin",
        })
    }

    /// The statements, run once per server as its superuser, that make
    /// the provider's roles and its admin. Idempotent.
    fn setup_sql(self, major: i32) -> Vec<String> {
        let Some(login) = self.login() else { return Vec::new() };
        let mut sql = Vec::new();
        let role = |name: &str, attrs: &str| {
            format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN CREATE ROLE {name} {attrs}; END IF; END $$"
            )
        };
        // Replication is an attribute everywhere but on RDS.
        let replication = if self == Admin::Rds { "" } else { " REPLICATION" };
        sql.push(role(login, &format!("LOGIN CREATEROLE CREATEDB{replication}")));
        let mut groups: Vec<&str> = vec!["pg_read_all_stats", "pg_monitor", "pg_signal_backend"];
        if major >= 16 {
            groups.push("pg_create_subscription");
        }
        match self {
            Admin::Rds => {
                sql.push(role("rds_superuser", "NOLOGIN CREATEROLE CREATEDB"));
                sql.push(role("rds_replication", "NOLOGIN"));
                sql.push("GRANT rds_replication TO rds_superuser WITH ADMIN OPTION".into());
                groups.push("rds_superuser");
            }
            Admin::CloudSql => {
                sql.push(role("cloudsqlsuperuser", "NOLOGIN CREATEROLE CREATEDB"));
                groups.push("cloudsqlsuperuser");
            }
            Admin::Azure => {
                sql.push(role("azure_pg_admin", "NOLOGIN"));
                sql.push(role("azuresu", "NOLOGIN SUPERUSER"));
                groups.push("azure_pg_admin");
            }
            Admin::Supabase => {
                sql.push(role("supabase_admin", "NOLOGIN SUPERUSER"));
                for r in ["anon", "authenticated", "service_role"] {
                    sql.push(role(r, "NOLOGIN"));
                }
                sql.push(format!("ALTER ROLE {login} BYPASSRLS"));
            }
            Admin::Neon => {
                sql.push(role(
                    "neon_superuser",
                    "NOLOGIN CREATEROLE CREATEDB REPLICATION BYPASSRLS",
                ));
                sql.push(format!("ALTER ROLE {login} BYPASSRLS"));
                groups.push("neon_superuser");
            }
            Admin::Plain | Admin::Superuser => {}
        }
        for g in groups {
            sql.push(format!("GRANT {g} TO {login}"));
        }
        sql
    }
}

/// Makes the provider's roles and admin on a server (as its superuser).
pub async fn prepare_server(superuser: &Client, admin: Admin) {
    if admin == Admin::Superuser {
        return;
    }
    let major: i32 = superuser
        .query_one("SELECT current_setting('server_version_num')::int / 10000", &[])
        .await
        .expect("server version")
        .get(0);
    for sql in admin.setup_sql(major) {
        superuser
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("emulating {admin:?}: {sql}: {e}"));
    }
}

/// Readies a fresh test database for the admin (as the superuser, in that
/// database): what the provider preinstalls or allows.
pub async fn prepare_database(superuser_in_db: &Client, admin: Admin) {
    let Some(login) = admin.login() else { return };
    superuser_in_db
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             GRANT CREATE ON SCHEMA public TO {login};
             DO $$ DECLARE f regprocedure; BEGIN
               FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.proname = 'pg_stat_statements_reset' LOOP
                 EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {login}', f);
               END LOOP;
             END $$"
        ))
        .await
        .unwrap_or_else(|e| panic!("preparing a database for {login}: {e:?}"));
}
