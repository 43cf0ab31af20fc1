//! The writers of every benchmark: pgbench (from the PostgreSQL the
//! benchmark runs, `deed_cluster::tool`) on a script of its own, for a time, a
//! number of transactions, or at a rate in the background.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A pgbench script, written to a temporary file and removed when dropped.
pub struct Script(PathBuf);

impl Script {
    pub fn new(name: &str, body: &str) -> anyhow::Result<Script> {
        let path =
            std::env::temp_dir().join(format!("deed-bench-{}-{name}.sql", std::process::id()));
        std::fs::write(&path, body).with_context(|| format!("writing {}", path.display()))?;
        Ok(Script(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How long a run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// `-T`: this many seconds.
    Seconds(u64),
    /// `-t`: this many transactions per client.
    Transactions(u64),
}

/// What pgbench reported.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    pub tps: f64,
    pub transactions: u64,
}

fn command(_url: &str, script: &Path, clients: usize) -> Command {
    let mut c = Command::new(deed_cluster::tool("pgbench"));
    c.args(["-n", "-j", "2", "-c", &clients.to_string(), "-f"]).arg(script);
    c
}

/// Runs `clients` clients of `script` against `url` until `until`, and
/// reads the rate and the count from pgbench's summary.
pub fn run(url: &str, script: &Path, clients: usize, until: Until) -> anyhow::Result<Ran> {
    let mut c = command(url, script, clients);
    match until {
        Until::Seconds(s) => c.args(["-T", &s.to_string()]),
        Until::Transactions(t) => c.args(["-t", &t.to_string()]),
    };
    let out = c.arg(url).output().context(MISSING)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    summary(&text)
}

/// Starts `clients` clients of `script` against `url` with `extra`
/// arguments (`-R RATE -T SECONDS`), in the background; the caller waits
/// or kills.
pub fn spawn(url: &str, script: &Path, clients: usize, extra: &[&str]) -> anyhow::Result<Child> {
    command(url, script, clients)
        .args(extra)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context(MISSING)
}

const MISSING: &str = "running pgbench (apt-get install postgresql-contrib)";

/// `tps = …` and `number of transactions actually processed: …`.
fn summary(text: &str) -> anyhow::Result<Ran> {
    let tps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {text}"))?;
    let transactions = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("number of transactions actually processed: ")
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .with_context(|| format!("no transaction count in pgbench's output: {text}"))?;
    Ok(Ran { tps, transactions })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_summary() {
        let text = "number of transactions actually processed: 12345/12345\nlatency average = 1.2 ms\ntps = 4115.000000 (without initial connection time)\n";
        let ran = super::summary(text).unwrap();
        assert_eq!((ran.tps, ran.transactions), (4115.0, 12345));
        assert!(super::summary("nothing").is_err());
    }
}
