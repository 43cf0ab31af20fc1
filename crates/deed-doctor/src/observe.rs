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
    /// Settings the role may not read (they need pg_read_all_settings).
    pub unreadable: Vec<String>,
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
    /// The role deed runs as, and the provider that made it.
    pub actor: Option<deed_pg::Actor>,
    /// What `deed apply` does, tried in a transaction rolled back.
    pub proofs: Vec<crate::prove::Proof>,
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
            unreadable: Vec::new(),
            role: String::new(),
            superuser: false,
            createrole: false,
            replication: false,
            reads_all_stats: false,
            pgss_installed: false,
            slots_used: 0,
            missing_logins: Vec::new(),
            pg_dump: Err("not looked for".into()),
            actor: None,
            proofs: Vec::new(),
        }
    }
}

pub async fn observe(client: &Client, manifest: Option<&Manifest>) -> Result<Observed, PgError> {
    let q = |what: &'static str| move |e| PgError::query(what, e);
    let mut o = Observed::default();
    let actor = deed_pg::Actor::load(client).await?;
    o.server_major = actor.major().max(0) as u32;
    let names: Vec<String> = SETTINGS.iter().map(|s| s.to_string()).collect();
    // pg_settings leaves out what the role may not read (some settings
    // need pg_read_all_settings), where current_setting() would fail.
    for row in client
        .query("SELECT name::text, setting FROM pg_settings WHERE name = ANY($1)", &[&names])
        .await
        .map_err(q("reading server settings"))?
    {
        o.settings.insert(row.get(0), row.get(1));
    }
    o.unreadable = names.into_iter().filter(|n| !o.settings.contains_key(n)).collect();
    o.role = actor.name.as_str().to_string();
    o.superuser = actor.superuser;
    o.createrole = actor.create_role;
    o.replication = actor.replication || actor.replication_role;
    let row = client
        .query_one(
            "SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
                    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'),
                    (SELECT count(*)::int4 FROM pg_replication_slots)",
            &[],
        )
        .await
        .map_err(q("reading deed's role"))?;
    o.reads_all_stats = row.get(0);
    o.pgss_installed = row.get(1);
    o.slots_used = row.get::<_, i32>(2).max(0) as u32;
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
    o.proofs = crate::prove::prove(client, &actor).await?;
    o.actor = Some(actor);
    Ok(o)
}

fn pg_dump_major() -> Result<u32, String> {
    let program = deed_cluster::tool("pg_dump");
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
