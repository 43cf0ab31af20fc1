//! Where the shop lives: a private cluster, or a server the user names.

use std::collections::HashMap;

use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_pg::{Client, redact_url};

use crate::error::DemoError;
use crate::narrate::Narrator;
use crate::shop::{DEMO_DATABASE, INBOX_DATABASE, SERVICES};

/// Marks databases and roles the demo created, so it never touches others.
const MARKER: &str = "created by deed demo";

pub(crate) struct Target {
    cluster: Option<EmbeddedCluster>,
    admin_url: String,
    passwords: HashMap<&'static str, String>,
}

impl Target {
    pub async fn prepare(options: &super::DemoOptions, n: &Narrator) -> Result<Target, DemoError> {
        let (cluster, admin_url) = match &options.database_url {
            Some(url) => {
                n.step(&format!("Using the server at {}", redact_url(url)));
                (None, url.clone())
            }
            None => {
                n.step(
                    "Starting a private PostgreSQL from the local binaries (removed afterwards)",
                );
                let cluster = tokio::task::spawn_blocking(|| {
                    EmbeddedCluster::start(&ClusterOptions::default())
                })
                .await
                .map_err(|e| DemoError::Setup(format!("starting the cluster: {e}")))??;
                n.detail(&format!("ready on 127.0.0.1:{}", cluster.port()));
                let url = cluster.url("postgres");
                (Some(cluster), url)
            }
        };
        let mut target = Target { cluster, admin_url, passwords: HashMap::new() };
        target.create_database_and_roles().await?;
        Ok(target)
    }

    async fn admin(&self) -> Result<Client, DemoError> {
        Ok(deed_pg::connect(&self.admin_url).await?)
    }

    /// Checks everything it would touch first, so a refusal changes nothing;
    /// then creates the database and the roles.
    async fn create_database_and_roles(&mut self) -> Result<(), DemoError> {
        let admin = self.admin().await?;
        let existing = admin
            .query_opt(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1",
                &[&DEMO_DATABASE],
            )
            .await
            .map_err(|e| DemoError::sql("looking for an earlier demo database", e))?;
        let earlier_database = match existing {
            Some(row) if row.get::<_, String>(0) == MARKER => true,
            Some(_) => {
                return Err(DemoError::Setup(format!(
                    "a database named {DEMO_DATABASE} already exists and deed demo did not create it; it was left alone"
                )));
            }
            None => false,
        };
        let inbox = admin
            .query_opt(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1",
                &[&INBOX_DATABASE],
            )
            .await
            .map_err(|e| DemoError::sql("looking for an earlier demo inbox", e))?;
        let earlier_inbox = match inbox {
            Some(row) if row.get::<_, String>(0) == MARKER => true,
            Some(_) => {
                return Err(DemoError::Setup(format!(
                    "a database named {INBOX_DATABASE} already exists and deed demo did not create it; it was left alone"
                )));
            }
            None => false,
        };
        for owner in SERVICES
            .iter()
            .flat_map(|s| [format!("deed_{}_owner", s.name), format!("deed_{}_relay", s.name)])
        {
            let row = admin
                .query_opt(
                    "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
                    &[&owner],
                )
                .await
                .map_err(|e| DemoError::sql("looking for the demo's owner roles", e))?;
            if row.is_some_and(|r| r.get::<_, String>(0) != MARKER) {
                return Err(DemoError::Setup(format!(
                    "a role named {owner} already exists and deed demo did not create it; it was left alone"
                )));
            }
        }
        let mut earlier_roles = Vec::new();
        for s in SERVICES {
            let row = admin
                .query_opt(
                    "SELECT coalesce(shobj_description(oid, 'pg_authid'), '') FROM pg_roles WHERE rolname = $1",
                    &[&s.login],
                )
                .await
                .map_err(|e| DemoError::sql("looking for the demo roles", e))?;
            match row {
                Some(r) if r.get::<_, String>(0) == MARKER => earlier_roles.push(s.login),
                Some(_) => {
                    return Err(DemoError::Setup(format!(
                        "a role named {} already exists and deed demo did not create it; it was left alone",
                        s.login
                    )));
                }
                None => {}
            }
        }
        if earlier_database {
            for sql in drop_database(DEMO_DATABASE) {
                admin
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| DemoError::sql("dropping the previous demo database", e))?;
            }
        }
        if earlier_inbox {
            admin
                .batch_execute(&format!("DROP DATABASE \"{INBOX_DATABASE}\" WITH (FORCE)"))
                .await
                .map_err(|e| DemoError::sql("dropping the previous demo inbox", e))?;
        }
        for db in [DEMO_DATABASE, INBOX_DATABASE] {
            // CREATE DATABASE cannot share a batch (an implicit transaction).
            admin
                .batch_execute(&format!("CREATE DATABASE \"{db}\""))
                .await
                .map_err(|e| DemoError::sql("creating the demo databases", e))?;
            admin
                .batch_execute(&format!("COMMENT ON DATABASE \"{db}\" IS '{MARKER}'"))
                .await
                .map_err(|e| DemoError::sql("marking the demo databases", e))?;
        }
        for s in SERVICES {
            let password = random_password()?;
            let verb = if earlier_roles.contains(&s.login) { "ALTER" } else { "CREATE" };
            // The password is random hex, so it needs no escaping.
            admin
                .batch_execute(&format!(
                    "{verb} ROLE \"{0}\" LOGIN PASSWORD '{password}'; COMMENT ON ROLE \"{0}\" IS '{MARKER}'",
                    s.login
                ))
                .await
                .map_err(|e| DemoError::sql(&format!("creating role {}", s.login), e))?;
            self.passwords.insert(s.login, password);
        }
        Ok(())
    }

    /// Marks the owner roles (and the relay logins, once capture made
    /// them) `deed apply` created, so a later run (or the cleanup) knows
    /// they are the demo's.
    pub async fn mark_owner_roles(&self) -> Result<(), DemoError> {
        let admin = self.admin().await?;
        for s in SERVICES {
            for role in [format!("deed_{}_owner", s.name), format!("deed_{}_relay", s.name)] {
                let exists = admin
                    .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
                    .await
                    .map_err(|e| DemoError::sql("looking for the demo's roles", e))?
                    .is_some();
                if exists {
                    admin
                        .batch_execute(&format!("COMMENT ON ROLE \"{role}\" IS '{MARKER}'"))
                        .await
                        .map_err(|e| DemoError::sql("marking the demo's roles", e))?;
                }
            }
        }
        Ok(())
    }

    /// The shop database signed in as the relay login `deed apply` made for
    /// `service`, given a fresh random password here (never shown).
    pub async fn relay_login_url(&self, service: &str) -> Result<String, DemoError> {
        let role = deed_events::relay_role(service);
        let password = random_password()?;
        self.admin()
            .await?
            .batch_execute(&format!("ALTER ROLE {} PASSWORD '{password}'", role.quoted()))
            .await
            .map_err(|e| DemoError::sql("giving the relay login a password", e))?;
        let url = self.shop_url();
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", &url));
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        Ok(format!("{scheme}://{}:{password}@{host}", role.as_str()))
    }

    /// Makes `login` like a managed service's admin (`CREATEROLE CREATEDB
    /// REPLICATION`, no superuser, a fresh random password) and `database`
    /// owned by it; returns the URL that signs in as it.
    pub async fn managed_admin(&self, database: &str, login: &str) -> Result<String, DemoError> {
        let admin = self.admin().await?;
        let password = random_password()?;
        let role = deed_ident::Ident::new(login).map_err(|e| DemoError::Setup(e.to_string()))?;
        let db = deed_ident::Ident::new(database).map_err(|e| DemoError::Setup(e.to_string()))?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.quoted()),
            format!(
                "CREATE ROLE {} LOGIN CREATEROLE CREATEDB REPLICATION PASSWORD '{password}'",
                role.quoted()
            ),
            format!("CREATE DATABASE {} OWNER {}", db.quoted(), role.quoted()),
        ] {
            admin.batch_execute(&sql).await.map_err(|e| {
                DemoError::sql(&format!("making the managed-style admin {login}"), e)
            })?;
        }
        let url = deed_pg::url_with_database(&self.admin_url, database);
        let mut conn = deed_pg::ConnString::parse(&url)
            .map_err(|e| DemoError::Setup(format!("the demo's URL: {e}")))?;
        conn.set("user", login);
        conn.set("password", &password);
        Ok(conn.to_conninfo())
    }

    /// Runs each statement as the superuser, going on past failures (for
    /// cleaning up).
    pub async fn run_as_superuser(&self, statements: &[String]) {
        if let Ok(admin) = self.admin().await {
            for sql in statements {
                let _ = admin.batch_execute(sql).await;
            }
        }
    }

    /// The consumers' database, where the relay's inbox lives.
    /// The shop server's PostgreSQL major version.
    pub async fn server_major(&self) -> Result<i32, DemoError> {
        let row = self
            .admin()
            .await?
            .query_one("SELECT current_setting('server_version_num')::int / 10000", &[])
            .await
            .map_err(|e| DemoError::sql("reading the server's version", e))?;
        Ok(row.get(0))
    }

    pub fn inbox_url(&self) -> String {
        deed_pg::url_with_database(&self.admin_url, INBOX_DATABASE)
    }

    /// The shop database, as the superuser.
    pub fn shop_url(&self) -> String {
        deed_pg::url_with_database(&self.admin_url, DEMO_DATABASE)
    }

    pub async fn shop_client(&self) -> Result<Client, DemoError> {
        Ok(deed_pg::connect(&self.shop_url()).await?)
    }

    /// A superuser session with the database's own defaults, for building
    /// the shop the way its migrations would (unqualified names).
    pub async fn setup_client(&self) -> Result<Client, DemoError> {
        Ok(deed_pg::connect_plain(&self.shop_url()).await?)
    }

    /// The shop database, as a service's login role.
    pub async fn client_as(&self, login: &str) -> Result<Client, DemoError> {
        let password = self.passwords.get(login).map(String::as_str);
        Ok(deed_pg::connect_as(&self.shop_url(), login, password).await?)
    }

    /// Drops what the demo created (unless kept) and stops a private cluster.
    pub async fn finish(self, keep: bool, n: &Narrator) {
        if keep && self.cluster.is_none() {
            n.blank();
            n.detail(&format!("Kept database {DEMO_DATABASE} and its roles, as asked."));
        } else if self.cluster.is_none() {
            let mut statements = drop_database(DEMO_DATABASE);
            statements.push(format!("DROP DATABASE IF EXISTS \"{INBOX_DATABASE}\" WITH (FORCE)"));
            for s in SERVICES {
                statements.push(format!("DROP ROLE IF EXISTS \"{}\"", s.login));
                statements.push(format!("DROP ROLE IF EXISTS \"deed_{}_owner\"", s.name));
                statements.push(format!("DROP ROLE IF EXISTS \"deed_{}_relay\"", s.name));
            }
            match self.admin().await {
                Ok(admin) => {
                    for sql in statements {
                        if let Err(e) = admin.batch_execute(&sql).await {
                            n.detail(&format!(
                                "could not clean up ({sql}): {}",
                                deed_pg::PgError::query("", e)
                            ));
                        }
                    }
                }
                Err(e) => n.detail(&format!("could not clean up: {e}")),
            }
        }
        if let Some(cluster) = self.cluster {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
            n.blank();
            n.detail("The private PostgreSQL was stopped and removed.");
        }
    }
}

/// A database with capture set up cannot be dropped while its
/// replication slots exist.
fn drop_database(name: &str) -> Vec<String> {
    vec![
        format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE database = '{name}' AND NOT active"
        ),
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    ]
}

fn random_password() -> Result<String, DemoError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| DemoError::Setup(format!("no randomness for a password: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
