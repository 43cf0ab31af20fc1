//! What the server and the machine are like, read once.

use std::collections::HashMap;
use std::process::Command;

use deed_manifest::Manifest;
use deed_pg::{Client, PgError};

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `server_version_num / 10000`.
    pub server_major: u32,
    pub settings: HashMap<String, String>,
    pub role: String,
    pub superuser: bool,
    pub createrole: bool,
    pub replication: bool,
    pub reads_all_stats: bool,
    /// pg_stat_statements is installed in the connected database.
    pub pgss_installed: bool,
    /// Replication slots in use on the server.
    pub slots_used: u32,
    /// The manifest's login roles that do not exist.
    pub missing_logins: Vec<String>,
    /// `pg_dump --version`'s major version, or why it could not be run.
    pub pg_dump: Result<u32, String>,
}

const SETTINGS: &[&str] = &[
    "shared_preload_libraries",
    "pg_stat_statements.track",
    "log_destination",
    "logging_collector",
    "log_line_prefix",
    "log_statement",
    "log_min_duration_statement",
    "wal_level",
    "max_replication_slots",
    "max_wal_senders",
    "max_slot_wal_keep_size",
];

impl Default for Observed {
    fn default() -> Self {
        Observed {
            server_major: 0,
            settings: HashMap::new(),
            role: String::new(),
            superuser: false,
            createrole: false,
            replication: false,
            reads_all_stats: false,
            pgss_installed: false,
            slots_used: 0,
            missing_logins: Vec::new(),
            pg_dump: Err("not looked for".into()),
        }
    }
}

pub async fn observe(client: &Client, manifest: Option<&Manifest>) -> Result<Observed, PgError> {
    let q = |what: &'static str| move |e| PgError::query(what, e);
    let mut o = Observed::default();
    let version: String = client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
        .map_err(q("reading the server version"))?
        .get(0);
    o.server_major = version.parse::<u32>().unwrap_or(0) / 10000;
    let names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    for row in client
        .query(
            "SELECT n, coalesce(current_setting(n, true), '') FROM unnest($1::text[]) n",
            &[&names],
        )
        .await
        .map_err(q("reading server settings"))?
    {
        o.settings.insert(row.get(0), row.get(1));
    }
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper, rolcreaterole, rolreplication,
                    pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'),
                    (SELECT count(*)::int4 FROM pg_replication_slots)
               FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(q("reading deed's role"))?;
    o.role = row.get(0);
    o.superuser = row.get(1);
    o.createrole = row.get(2);
    o.replication = row.get(3);
    o.reads_all_stats = row.get(4);
    o.pgss_installed = row.get(5);
    o.slots_used = row.get::<_, i32>(6).max(0) as u32;
    if let Some(m) = manifest {
        let logins: Vec<String> = m
            .services
            .iter()
            .flat_map(|s| s.logins.iter().map(|l| l.as_str().to_string()))
            .collect();
        o.missing_logins = client
            .query(
                "SELECT l FROM unnest($1::text[]) l WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = l)",
                &[&logins],
            )
            .await
            .map_err(q("looking for the manifest's logins"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
    }
    o.pg_dump = pg_dump_major();
    Ok(o)
}

fn pg_dump_major() -> Result<u32, String> {
    let program = deed_pg::tool("pg_dump");
    let out = Command::new(&program)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "pg_dump (PostgreSQL) 17.2 (Debian 17.2-1)"
    text.split_whitespace()
        .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
        .ok_or_else(|| format!("{} printed no version: {}", program.display(), text.trim()))
}
