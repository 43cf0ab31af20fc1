//! Switching traffic through PgBouncer: pause the database (clients wait,
//! their transactions in flight finish), point it at the other server in
//! PgBouncer's configuration file, reload, resume. The application keeps
//! its connection string and sees a pause, not an error.

use std::path::PathBuf;

use deed_pg::Client;

use crate::error::SplitError;

/// PgBouncer's admin console and the database name clients use.
pub struct PgBouncer {
    admin: Client,
    pub database: String,
    config: PathBuf,
}

fn admin_error(what: &str) -> impl Fn(tokio_postgres::Error) -> SplitError + '_ {
    move |e| SplitError::Database(deed_pg::PgError::query(format!("PgBouncer: {what}"), e))
}

impl PgBouncer {
    /// Connects to the admin console (the `pgbouncer` database) and finds
    /// its configuration file, which deed edits (so deed runs on
    /// PgBouncer's host).
    pub async fn connect(admin_url: &str, database: &str) -> Result<PgBouncer, SplitError> {
        let admin = deed_pg::connect_plain(admin_url).await?;
        let rows = admin.simple_query("SHOW CONFIG").await.map_err(admin_error("SHOW CONFIG"))?;
        let mut config = None;
        for m in rows {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                if r.get(0) == Some("conffile") {
                    config = r.get(1).map(PathBuf::from);
                }
            }
        }
        let config = config
            .ok_or_else(|| SplitError::Setup("PgBouncer's SHOW CONFIG names no conffile".into()))?;
        Ok(PgBouncer { admin, database: database.to_string(), config })
    }

    /// Waits until the database's transactions in flight are done; new
    /// ones queue in PgBouncer.
    pub async fn pause(&self) -> Result<(), SplitError> {
        self.admin
            .simple_query(&format!("PAUSE {}", deed_ident::quote_ident(&self.database)))
            .await
            .map_err(admin_error("PAUSE"))?;
        Ok(())
    }

    pub async fn resume(&self) -> Result<(), SplitError> {
        match self
            .admin
            .simple_query(&format!("RESUME {}", deed_ident::quote_ident(&self.database)))
            .await
        {
            Ok(_) => Ok(()),
            // Not paused (a re-run): nothing to resume.
            Err(e) if e.to_string().contains("not paused") => Ok(()),
            Err(e) => Err(admin_error("RESUME")(e)),
        }
    }

    /// Points the database's entry at `host`, `port` and `dbname`, and
    /// reloads; connections made from now on go there.
    pub async fn repoint(&self, host: &str, port: u16, dbname: &str) -> Result<(), SplitError> {
        let text = std::fs::read_to_string(&self.config).map_err(|e| {
            SplitError::Setup(format!("cannot read PgBouncer's {}: {e}", self.config.display()))
        })?;
        let edited = repointed(&text, &self.database, host, port, dbname).ok_or_else(|| {
            SplitError::Setup(format!(
                "{} has no entry for database {} under [databases]",
                self.config.display(),
                self.database
            ))
        })?;
        let tmp = self.config.with_extension("ini.deed-tmp");
        std::fs::write(&tmp, edited).and_then(|()| std::fs::rename(&tmp, &self.config)).map_err(
            |e| SplitError::Setup(format!("cannot write {}: {e}", self.config.display())),
        )?;
        self.admin.simple_query("RELOAD").await.map_err(admin_error("RELOAD"))?;
        Ok(())
    }
}

/// The configuration with `database`'s line under `[databases]` set to
/// `host`, `port` and `dbname` (its other settings kept).
pub fn repointed(
    text: &str,
    database: &str,
    host: &str,
    port: u16,
    dbname: &str,
) -> Option<String> {
    let mut section = String::new();
    let mut found = false;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            section = t.trim_matches(['[', ']']).trim().to_ascii_lowercase();
        } else if section == "databases" && !t.starts_with(';') && !t.starts_with('#') {
            if let Some((name, value)) = t.split_once('=') {
                if name.trim().trim_matches('"') == database {
                    let kept: Vec<&str> = value
                        .split_whitespace()
                        .filter(|kv| {
                            let k = kv.split('=').next().unwrap_or("");
                            !matches!(k, "host" | "port" | "dbname")
                        })
                        .collect();
                    let mut v = format!("host={host} port={port} dbname={dbname}");
                    for k in kept {
                        v.push(' ');
                        v.push_str(k);
                    }
                    out.push_str(&format!("{} = {v}\n", name.trim()));
                    found = true;
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repoints_one_entry_and_keeps_the_rest() {
        let ini = "[databases]\n; shop\nshop = host=127.0.0.1 port=5432 dbname=shop pool_size=20\nother = host=a dbname=b\n\n[pgbouncer]\nlisten_port = 6432\n";
        let got = repointed(ini, "shop", "10.0.0.2", 5433, "catalog").unwrap();
        assert_eq!(
            got,
            "[databases]\n; shop\nshop = host=10.0.0.2 port=5433 dbname=catalog pool_size=20\nother = host=a dbname=b\n\n[pgbouncer]\nlisten_port = 6432\n"
        );
        assert!(repointed(ini, "missing", "h", 1, "d").is_none());
    }
}
