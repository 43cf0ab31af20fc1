//! The database a benchmark works in: a fresh one, on a private cluster
//! started for the run, or on the server `--database-url` names.

use deed_cluster::{ClusterOptions, EmbeddedCluster};

pub struct Scratch {
    /// Kept so the private cluster lives as long as the benchmark.
    _cluster: Option<EmbeddedCluster>,
    /// A superuser session on the server's `postgres` database.
    pub admin: deed_pg::Client,
    /// The fresh database's URL.
    pub url: String,
    name: String,
}

impl Scratch {
    /// Database `name`, dropped first if an earlier run left it.
    pub async fn new(name: &str, database_url: Option<String>) -> anyhow::Result<Scratch> {
        let (cluster, admin_url) = match database_url {
            Some(url) => (None, url),
            None => {
                let cluster = tokio::task::spawn_blocking(|| {
                    EmbeddedCluster::start(&ClusterOptions::default())
                })
                .await??;
                let url = cluster.url("postgres");
                (Some(cluster), url)
            }
        };
        let admin = deed_pg::connect(&admin_url).await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let url = deed_pg::url_with_database(&admin_url, name);
        Ok(Scratch { _cluster: cluster, admin, url, name: name.to_string() })
    }

    /// Drops the database (and its replication slots) and these roles.
    pub async fn drop(self, roles: &[String]) -> anyhow::Result<()> {
        let name = &self.name;
        self.admin
            .batch_execute(&format!(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{name}'"
            ))
            .await?;
        self.admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await?;
        if !roles.is_empty() {
            self.admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", roles.join(", "))).await?;
        }
        Ok(())
    }
}
