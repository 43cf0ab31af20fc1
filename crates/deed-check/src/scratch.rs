//! A scratch database holding the live schema and none of its data.

use std::process::Stdio;

use deed_pg::{PgError, redact_url, split_password, url_with_database};
use tokio::io::AsyncReadExt;

use crate::error::CheckError;

pub(crate) struct Scratch {
    server_url: String,
    pub name: String,
    pub url: String,
    /// Extensions of the live database the scratch one could not get (a
    /// role that is not a superuser may create only trusted ones).
    pub skipped_extensions: Vec<String>,
}

impl Scratch {
    /// Creates an empty database on `server_url` (the live server unless
    /// told otherwise) and restores `pg_dump --schema-only` of `live_url`
    /// into it. On any failure the scratch database is dropped again.
    pub async fn create(live_url: &str, server_url: &str) -> Result<Scratch, CheckError> {
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)
            .map_err(|e| CheckError::Scratch(format!("no randomness: {e}")))?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        // Named after the live database, so an operator sees whose it is.
        let live: String = deed_pg::connect(live_url)
            .await?
            .query_one("SELECT current_database()::text", &[])
            .await
            .map_err(|e| PgError::query("reading the live database's name", e))?
            .get(0);
        let mut base: String = live
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect();
        base.truncate(30);
        // The creation time is part of the name, so a later run can tell a
        // scratch database a killed check left behind from a running one.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("deed_check_{now}_{suffix}_{base}");
        let admin = deed_pg::connect(server_url).await?;
        sweep(&admin).await;
        crate::interrupt::remember(server_url, &name);
        // The dump and the empty database are made at the same time.
        let create = format!("CREATE DATABASE \"{name}\" TEMPLATE template0");
        let (dump, created) = tokio::join!(schema_dump(live_url), admin.batch_execute(&create));
        created.map_err(|e| {
            CheckError::Scratch(format!(
                "cannot create the scratch database on {}: {}; the role needs CREATEDB, or pass --scratch-url to use another server",
                redact_url(server_url),
                PgError::query("", e).to_string().trim_start_matches(": ")
            ))
        })?;
        let mut scratch = Scratch {
            server_url: server_url.to_string(),
            url: url_with_database(server_url, &name),
            name,
            skipped_extensions: Vec::new(),
        };
        let restored = match dump {
            Ok(dump) => scratch.restore(&dump).await,
            Err(e) => Err(e),
        };
        match restored {
            Ok(()) => Ok(scratch),
            Err(e) => {
                scratch.drop().await;
                Err(e)
            }
        }
    }

    /// Runs the dump in chunks of objects, each chunk one multi-statement
    /// query (one round trip, one transaction): PostgreSQL slows down on
    /// one transaction holding hundreds of DDL statements, and one round
    /// trip per statement costs more than it saves.
    async fn restore(&mut self, dump: &str) -> Result<(), CheckError> {
        // Its own connection: the dump resets search_path for the session.
        let client = deed_pg::connect(&self.url).await?;
        for chunk in chunks(dump, 16) {
            match extension_of(chunk) {
                // An extension runs alone: one the role may not create is
                // left out (with its comment), and the rest goes on.
                Some(ext) if self.skipped_extensions.contains(&ext) => continue,
                Some(ext) => {
                    if let Err(e) = client.batch_execute(chunk).await {
                        if e.code() != Some(&deed_pg::SqlState::INSUFFICIENT_PRIVILEGE) {
                            return Err(restore_failed(e));
                        }
                        self.skipped_extensions.push(ext);
                    }
                }
                None => self.run_chunk(&client, chunk).await?,
            }
        }
        Ok(())
    }

    async fn run_chunk(&self, client: &deed_pg::Client, chunk: &str) -> Result<(), CheckError> {
        client.batch_execute(chunk).await.map_err(restore_failed)
    }

    /// Drops the scratch database; reported, never fatal.
    pub async fn drop(self) {
        drop_database(&self.server_url, &self.name).await;
        crate::interrupt::forget();
    }
}

fn restore_failed(e: tokio_postgres::Error) -> CheckError {
    CheckError::Scratch(format!(
        "restoring the live schema into the scratch database failed: {}",
        PgError::query("", e).to_string().trim_start_matches(": ")
    ))
}

/// The extension an object of the dump creates or comments on.
fn extension_of(chunk: &str) -> Option<String> {
    let header = chunk.strip_prefix("--\n-- Name: ")?.lines().next()?;
    let (name, rest) = header.split_once("; Type: ")?;
    let kind = rest.split(';').next()?;
    match kind {
        "EXTENSION" => Some(name.to_string()),
        "COMMENT" => name.strip_prefix("EXTENSION ").map(str::to_string),
        _ => None,
    }
}

/// Splits pg_dump's output at its object headers (`--\n-- Name: …`),
/// `per` objects a chunk, an extension (or its comment) always alone. The
/// session settings at the top stay in the first chunk and hold for the
/// whole connection.
fn chunks(dump: &str, per: usize) -> Vec<&str> {
    let starts: Vec<usize> = dump.match_indices("\n--\n-- Name: ").map(|(i, _)| i + 1).collect();
    let mut out = Vec::new();
    let mut from = 0;
    let mut in_chunk = 0;
    for (n, &at) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(dump.len());
        let alone = extension_of(&dump[at..end]).is_some();
        if (alone || in_chunk == per) && at > from {
            out.push(&dump[from..at]);
            from = at;
            in_chunk = 0;
        }
        in_chunk += 1;
        if alone {
            out.push(&dump[at..end]);
            from = end;
            in_chunk = 0;
        }
    }
    out.push(&dump[from..]);
    out
}

/// `pg_dump --schema-only` of the live database, without owners,
/// privileges, publications or subscriptions, and without psql's own
/// commands (`\restrict`), so the text runs over a plain connection.
async fn schema_dump(live_url: &str) -> Result<String, CheckError> {
    let (url, password) = split_password(live_url);
    let program = deed_cluster::tool("pg_dump");
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args([
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--no-publications",
        "--no-subscriptions",
    ])
    .arg("--dbname")
    .arg(&url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    let mut child = cmd.spawn().map_err(|e| {
        CheckError::Scratch(format!(
            "cannot run {}: {e}; install the PostgreSQL client programs, or set DEED_PG_BINDIR",
            program.display()
        ))
    })?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut out = String::new();
    let mut err = String::new();
    let (a, b) = tokio::join!(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err));
    a.and(b).map_err(|e| CheckError::Scratch(format!("reading pg_dump's output: {e}")))?;
    let status =
        child.wait().await.map_err(|e| CheckError::Scratch(format!("waiting for pg_dump: {e}")))?;
    if !status.success() {
        return Err(CheckError::Scratch(format!(
            "pg_dump --schema-only of {} failed: {}",
            redact_url(live_url),
            err.trim()
        )));
    }
    Ok(out.lines().filter(|l| !l.starts_with('\\')).collect::<Vec<_>>().join("\n"))
}

/// Drops a scratch database by name; reported, never fatal.
pub(crate) async fn drop_database(server_url: &str, name: &str) {
    let result = async {
        let admin = deed_pg::connect(server_url).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                deed_ident::quote_ident(name)
            ))
            .await
            .map_err(|e| PgError::query("dropping the scratch database", e))
    }
    .await;
    if let Err(e) = result {
        eprintln!("warning: could not drop scratch database {name}: {e}");
    }
}

/// How long a check may run before its scratch database counts as left
/// behind by a check that was killed.
const STALE_AFTER_SECS: u64 = 6 * 3600;

/// Drops scratch databases a killed `deed check` left behind: named with a
/// creation time over six hours ago, and with nobody connected.
async fn sweep(admin: &deed_pg::Client) {
    let Ok(rows) = admin
        .query(
            "SELECT d.datname::text FROM pg_database d
              WHERE d.datname ~ '^deed_check_[0-9]{9,}_'
                AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
            &[],
        )
        .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for row in rows {
        let name: String = row.get(0);
        let created: u64 = name
            .trim_start_matches("deed_check_")
            .split('_')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > STALE_AFTER_SECS {
            let sql =
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", deed_ident::quote_ident(&name));
            if admin.batch_execute(&sql).await.is_ok() {
                eprintln!(
                    "deed check: dropped {name}, a scratch database a killed check left behind"
                );
            }
        }
    }
}
