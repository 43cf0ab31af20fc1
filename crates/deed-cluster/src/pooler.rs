//! A private, throwaway PgBouncer in front of private clusters, for the
//! demo, the benchmark and the tests of `deed split --pgbouncer`: its own
//! port, directory and configuration file, transaction pooling, trust
//! authentication for the users it is given.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::ClusterError;

pub struct EmbeddedPgBouncer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn binary() -> Option<PathBuf> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ClusterError {
    move |source| ClusterError::Io { what, source }
}

impl EmbeddedPgBouncer {
    /// Starts PgBouncer serving each `(name, url)` as database `name`, for
    /// `users` (and `postgres`, its admin).
    pub fn start(
        databases: &[(&str, &str)],
        users: &[&str],
    ) -> Result<EmbeddedPgBouncer, ClusterError> {
        let bin = binary().ok_or(ClusterError::Command {
            command: "pgbouncer".into(),
            output: "not installed: apt-get install pgbouncer (scripts/setup does)".into(),
        })?;
        let port = crate::port::free_port().map_err(io("finding a free port".into()))?;
        let dir =
            std::env::temp_dir().join(format!("deed-pgbouncer-{}-{port}", std::process::id()));
        fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // PgBouncer will not run as root; it switches to postgres, which
        // must read and write here.
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o777));
        let mut lines = vec!["[databases]".to_string()];
        for (name, url) in databases {
            let e = deed_pg::endpoint(url).map_err(|e| ClusterError::Command {
                command: "pgbouncer".into(),
                output: e.to_string(),
            })?;
            lines.push(format!("{name} = host={} port={} dbname={}", e.host, e.port, e.database));
        }
        let mut userlist = String::from("\"postgres\" \"\"\n");
        for u in users {
            // userlist.txt quotes a name as SQL does: `"` doubled.
            userlist.push_str(&format!("{} \"\"\n", deed_ident::quote_ident(u)));
        }
        fs::write(dir.join("userlist.txt"), userlist).map_err(io("writing userlist.txt".into()))?;
        lines.extend([
            "[pgbouncer]".to_string(),
            "listen_addr = 127.0.0.1".into(),
            format!("listen_port = {port}"),
            "unix_socket_dir =".into(),
            "auth_type = trust".into(),
            format!("auth_file = {}", dir.join("userlist.txt").display()),
            "admin_users = postgres".into(),
            "pool_mode = transaction".into(),
            "max_client_conn = 1000".into(),
            "default_pool_size = 40".into(),
            "ignore_startup_parameters = extra_float_digits,search_path,options".into(),
            format!("logfile = {}", dir.join("pgbouncer.log").display()),
            format!("pidfile = {}", dir.join("pgbouncer.pid").display()),
        ]);
        let config = dir.join("pgbouncer.ini");
        fs::write(&config, lines.join("\n") + "\n").map_err(io("writing pgbouncer.ini".into()))?;
        for f in ["userlist.txt", "pgbouncer.ini"] {
            let _ = fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o644));
        }
        let mut cmd = Command::new(bin);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "postgres"]);
        }
        cmd.arg(&config).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().map_err(io("starting pgbouncer".into()))?;
        let mut bouncer = EmbeddedPgBouncer { dir, port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = bouncer.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default();
                return Err(ClusterError::Command { command: "pgbouncer".into(), output: log });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(bouncer)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client URL for `database` as `user`.
    pub fn url(&self, database: &str, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// The admin console's URL (`deed split --pgbouncer ADMIN_URL DB`).
    pub fn admin_url(&self) -> String {
        self.url("pgbouncer", "postgres")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("pgbouncer.ini")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for EmbeddedPgBouncer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
