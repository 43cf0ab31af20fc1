//! A private PostgreSQL cluster in a temporary directory.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` system user. The server is started with a parent-death signal
//! from a thread that lives exactly as long as the server, so if deed dies
//! the server stops too; directories left by a killed deed are swept away
//! the next time a cluster starts.

use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no PostgreSQL server binaries found (looked in $DEED_PG_BINDIR, `pg_config --bindir`, /usr/lib/postgresql/*/bin); install the postgresql package or set DEED_PG_BINDIR"
    )]
    NoBinaries,
    #[error("running as root, and there is no `postgres` system user to run PostgreSQL as")]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed: {output}")]
    Command { command: String, output: String },
    #[error("the private PostgreSQL did not start within {0:?}; its log ends with:\n{1}")]
    StartTimeout(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// Server settings for a private cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Extra `name = value` settings, after deed's defaults.
    pub settings: Vec<(String, String)>,
}

/// Settings every private cluster gets: what deed's features need
/// (logical decoding, pg_stat_statements) and speed over durability, since
/// the cluster is thrown away.
const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "127.0.0.1"),
    ("shared_preload_libraries", "pg_stat_statements"),
    ("pg_stat_statements.track", "all"),
    ("wal_level", "logical"),
    ("max_wal_senders", "20"),
    ("max_replication_slots", "20"),
    ("max_connections", "300"),
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("synchronous_commit", "off"),
    ("shared_buffers", "128MB"),
];

pub struct EmbeddedCluster {
    root: PathBuf,
    data: PathBuf,
    port: u16,
    pid: u32,
    keeper: Option<JoinHandle<()>>,
}

struct RunAs {
    uid: libc::uid_t,
    gid: libc::gid_t,
}

impl EmbeddedCluster {
    /// Creates, configures and starts a fresh cluster. Blocks until it
    /// accepts connections.
    pub fn start(options: &ClusterOptions) -> Result<EmbeddedCluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let run_as = run_as()?;
        let base = std::env::temp_dir().join("deed-pg");
        fs::create_dir_all(&base).map_err(io(format!("creating {}", base.display())))?;
        // Several users may share the base directory, like /tmp itself.
        let _ = fs::set_permissions(&base, fs::Permissions::from_mode(0o1777));
        sweep_stale(&base);
        let root = unique_dir(&base)?;
        let data = root.join("data");
        if let Some(r) = &run_as {
            chown(&root, r)?;
        }
        let initdb = bindir.join("initdb");
        let mut cmd = Command::new(&initdb);
        cmd.arg("-D").arg(&data);
        cmd.args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        let out = privileged(&mut cmd, run_as.as_ref(), false)
            .output()
            .map_err(io(format!("running {}", initdb.display())))?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&root);
            return Err(ClusterError::Command {
                command: "initdb".into(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        let mut conf = String::from("\n# deed: private throwaway cluster\n");
        for (k, v) in DEFAULT_SETTINGS {
            conf.push_str(&format!("{k} = '{v}'\n"));
        }
        for (k, v) in &options.settings {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        conf.push_str(&format!("unix_socket_directories = '{}'\n", data.display()));
        append(&data.join("postgresql.conf"), &conf)?;

        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            match launch(&bindir, &data, port, run_as.as_ref()) {
                Ok((pid, keeper)) => {
                    return Ok(EmbeddedCluster { root, data, port, pid, keeper: Some(keeper) });
                }
                // Another process may have taken the port in between.
                Err(e) => last_error = Some(e),
            }
        }
        let _ = fs::remove_dir_all(&root);
        Err(last_error.expect("at least one attempt"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for a database of this cluster, as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, database)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stops the server (fast shutdown) and removes its files.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(keeper) = self.keeper.take() else { return };
        signal(self.pid, libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !keeper.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !keeper.is_finished() {
            signal(self.pid, libc::SIGKILL);
        }
        let _ = keeper.join();
        let _ = fs::remove_dir_all(&self.root);
    }
}

impl Drop for EmbeddedCluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `postgres` from a keeper thread and waits until it is ready.
fn launch(
    bindir: &Path,
    data: &Path,
    port: u16,
    run_as: Option<&RunAs>,
) -> Result<(u32, JoinHandle<()>), ClusterError> {
    let log_path = data.join("server.log");
    let log = fs::File::create(&log_path).map_err(io("creating the server log"))?;
    if let Some(r) = run_as {
        chown(&log_path, r)?;
    }
    let mut cmd = Command::new(bindir.join("postgres"));
    cmd.arg("-D").arg(data).arg("-p").arg(port.to_string());
    cmd.stdin(Stdio::null()).stdout(log.try_clone().map_err(io("log"))?).stderr(log);
    privileged(&mut cmd, run_as, true);
    let (tx, rx) = mpsc::channel::<std::io::Result<u32>>();
    // The parent-death signal fires when the spawning *thread* exits, so
    // the server is spawned by a thread that lives as long as the server.
    let keeper = std::thread::Builder::new()
        .name(format!("deed-pg-{port}"))
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        })
        .map_err(io("starting the keeper thread"))?;
    let pid = rx
        .recv()
        .map_err(|_| ClusterError::Command {
            command: "postgres".into(),
            output: "keeper thread died".into(),
        })?
        .map_err(io("starting postgres"))?;
    let timeout = Duration::from_secs(60);
    let deadline = Instant::now() + timeout;
    let pidfile = data.join("postmaster.pid");
    loop {
        // Line 8 of postmaster.pid becomes "ready" once connections are accepted.
        if fs::read_to_string(&pidfile)
            .is_ok_and(|t| t.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
        {
            return Ok((pid, keeper));
        }
        if keeper.is_finished() || Instant::now() > deadline {
            signal(pid, libc::SIGKILL);
            let _ = keeper.join();
            return Err(ClusterError::StartTimeout(timeout, log_tail(&log_path)));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Applies the user switch (as root) and, for the server, the parent-death
/// signal. Everything in `pre_exec` must be async-signal-safe.
fn privileged<'c>(cmd: &'c mut Command, run_as: Option<&RunAs>, server: bool) -> &'c mut Command {
    let ids = run_as.map(|r| (r.uid, r.gid));
    // SAFETY: the closure only calls async-signal-safe libc functions.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = ids {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if server {
                // SIGQUIT: immediate shutdown, the server's own crash path.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT as libc::c_ulong);
            }
            Ok(())
        });
    }
    cmd
}

/// A PostgreSQL client program (`pg_dump`, `psql`): from the server
/// binaries' directory when there is one, else from `PATH`.
pub fn tool(name: &str) -> PathBuf {
    find_bindir()
        .map(|d| d.join(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The server binaries: `$DEED_PG_BINDIR`, `pg_config --bindir`, or the
/// newest `/usr/lib/postgresql/<version>/bin`.
pub fn find_bindir() -> Option<PathBuf> {
    let has_server = |p: &Path| p.join("postgres").is_file() && p.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("DEED_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_server(&dir).then_some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| has_server(p))
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

fn run_as() -> Result<Option<RunAs>, ClusterError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns NULL or a pointer to static storage, read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(ClusterError::NoPostgresUser);
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(RunAs { uid, gid }))
}

fn chown(path: &Path, r: &RunAs) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(r.uid), Some(r.gid))
        .map_err(io(format!("handing {} to the postgres user", path.display())))
}

fn unique_dir(base: &Path) -> Result<PathBuf, ClusterError> {
    let pid = std::process::id();
    for n in 0..10_000 {
        let dir = base.join(format!("{pid}-{n}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("creating {}", dir.display()))(e)),
        }
    }
    Err(ClusterError::Command { command: "mkdir".into(), output: "no free directory name".into() })
}

/// Removes clusters whose owning deed process is gone, stopping any server
/// that somehow outlived it.
fn sweep_stale(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(owner) =
            name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        let pidfile = entry.path().join("data/postmaster.pid");
        if let Some(server) = fs::read_to_string(pidfile)
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        {
            if alive(server) {
                signal(server as u32, libc::SIGKILL);
            }
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let ok = unsafe { libc::kill(pid, 0) } == 0;
    ok || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sending a signal to a pid we started.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

fn free_port() -> Result<u16, ClusterError> {
    crate::port::free_port().map_err(io("finding a free port"))
}

fn append(path: &Path, text: &str) -> Result<(), ClusterError> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))?;
    f.write_all(text.as_bytes()).map_err(io(format!("writing {}", path.display())))
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
