//! The integration-test harness.
//!
//! Every test gets its own database and its own role-name prefix on a real
//! PostgreSQL. By default that is a private cluster started once per test
//! process from the local server binaries (with `pg_stat_statements` and
//! `wal_level = logical`); set `DEED_TEST_DATABASE_URL` to a superuser URL
//! to use an existing server instead. If neither works, the test fails and
//! says how to fix it: nothing is ever skipped.
//!
//! A test that holds its database longer than `DEED_TEST_TIMEOUT` seconds
//! (600 by default) ends the process as failed, after printing what every
//! server's sessions wait on (the `watchdog` module).
//!
//! `DEED_TEST_ADMIN` makes deed (and the tests' fixtures) run as a managed
//! service's admin instead of the superuser: see [`managed`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use deed_cluster::{ClusterOptions, EmbeddedCluster};
use tokio_postgres::Client;

static CLUSTER: Mutex<Vec<EmbeddedCluster>> = Mutex::new(Vec::new());
static ADMIN_URL: OnceLock<String> = OnceLock::new();
static SECOND_URL: OnceLock<String> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A superuser URL (without database) of the server tests run against.
fn admin_base() -> &'static str {
    ADMIN_URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DEED_TEST_DATABASE_URL") {
            watchdog::server(&url, None);
            return url;
        }
        start_private("DEED_TEST_DATABASE_URL")
    })
}

/// A superuser URL of a second server, for what crosses instances
/// (`deed split`): `DEED_TEST_SECOND_DATABASE_URL`, or a second private
/// cluster.
fn second_base() -> &'static str {
    SECOND_URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DEED_TEST_SECOND_DATABASE_URL") {
            watchdog::server(&url, None);
            return url;
        }
        start_private("DEED_TEST_SECOND_DATABASE_URL")
    })
}

fn start_private(variable: &str) -> String {
    let cluster = EmbeddedCluster::start(&ClusterOptions::default()).unwrap_or_else(|e| {
        panic!(
            "cannot start a private PostgreSQL for the tests: {e}\n\
             Install the PostgreSQL server (apt-get install postgresql), or point \
             {variable} at a superuser URL of a server with \
             shared_preload_libraries = 'pg_stat_statements' and wal_level = logical."
        )
    });
    let url = cluster.url("postgres");
    watchdog::server(&url, Some(cluster.data_dir().join("server.log")));
    let mut clusters = CLUSTER.lock().expect("cluster lock");
    if clusters.is_empty() {
        // SAFETY: registering a plain extern "C" function.
        unsafe {
            libc::atexit(stop_cluster);
        }
    }
    clusters.push(cluster);
    url
}

extern "C" fn stop_cluster() {
    if let Ok(mut guard) = CLUSTER.lock() {
        for cluster in guard.drain(..) {
            cluster.stop();
        }
    }
}

/// A fresh database for one test, dropped (with the test's roles) at the
/// end of the test.
pub struct TestDb {
    pub name: String,
    /// The URL deed and the fixtures use: the superuser's, or the emulated
    /// provider admin's (`DEED_TEST_ADMIN`).
    pub url: String,
    superuser_url: String,
    prefix: String,
    /// The superuser URL of the server the database is on.
    admin: String,
}

impl TestDb {
    /// Creates `deed_t<pid>_<n>_<label>`.
    pub async fn new(label: &str) -> TestDb {
        TestDb::new_as(label, Admin::from_env()).await
    }

    /// Like [`TestDb::new`], as `admin` whatever `DEED_TEST_ADMIN` says:
    /// for tests of what differs without a superuser.
    pub async fn new_as(label: &str, admin: Admin) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("t{}_{}", std::process::id(), n);
        TestDb::create(admin_base(), label, prefix, admin).await
    }

    /// A database on a second server, sharing `self`'s role prefix: where
    /// `deed split` moves a service's tables, with the same role names.
    pub async fn on_second_server(&self, label: &str) -> TestDb {
        TestDb::create(second_base(), label, self.prefix.clone(), Admin::from_env()).await
    }

    /// Another database on `self`'s server, sharing its role prefix.
    pub async fn sibling(&self, label: &str) -> TestDb {
        TestDb::create(&self.admin.clone(), label, self.prefix.clone(), Admin::from_env()).await
    }

    async fn create(base: &str, label: &str, prefix: String, as_admin: Admin) -> TestDb {
        let mut name = format!("deed_{prefix}_{}", sanitize(label));
        name.truncate(63);
        watchdog::begin(&name);
        let superuser = connect_admin(base).await;
        prepared(base, &superuser, as_admin).await;
        let owner = as_admin.login().map(|l| format!(" OWNER \"{l}\"")).unwrap_or_default();
        superuser
            .batch_execute(&format!("CREATE DATABASE \"{name}\"{owner}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let superuser_url = deed_pg::url_with_database(base, &name);
        let url = match as_admin.login() {
            Some(login) => {
                let in_db = deed_pg::connect_plain(&superuser_url)
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
                managed::prepare_database(&in_db, as_admin).await;
                url_as(&superuser_url, login)
            }
            None => superuser_url.clone(),
        };
        TestDb { name, url, superuser_url, prefix, admin: base.to_string() }
    }

    /// A superuser connection to this test's database, for what only the
    /// server's operator does (never for what deed or a service would).
    pub async fn superuser_client(&self) -> Client {
        deed_pg::connect_plain(&self.superuser_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {} as the superuser: {e}", self.name))
    }

    /// A role name unique to this test: `<prefix>_<base>`.
    pub fn role(&self, base: &str) -> String {
        format!("{}_{}", self.prefix, base)
    }

    /// A service name unique to this test, so the owner role deed derives
    /// from it (`deed_<service>_owner`) is unique too; it is dropped with
    /// the test's other roles.
    pub fn service(&self, base: &str) -> String {
        format!("{}_{}", self.prefix, base)
    }

    /// Like [`TestDb::service`], for a name that sorts before `deed` (and
    /// so before deed's own schema and objects), dropped the same way.
    pub fn early_service(&self, base: &str) -> String {
        format!("a{}_{}", self.prefix, base)
    }

    /// The prefix every role and service name of this test starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection to this test's database as the admin (the superuser,
    /// or the emulated provider's admin) with the database's own defaults,
    /// as a migration tool or an application would have it: for fixtures.
    pub async fn client(&self) -> Client {
        deed_pg::connect_plain(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }

    /// An admin session as deed opens its own (fixed settings, see
    /// `deed_pg::session`), for calling deed's library the way the command
    /// line does.
    pub async fn deed_client(&self) -> Client {
        deed_pg::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }

    /// Connects as one of the test's login roles (created by the test).
    pub async fn client_as(&self, role: &str) -> Client {
        deed_pg::connect_as(&self.url, role, None)
            .await
            .unwrap_or_else(|e| panic!("connecting to {} as {role}: {e}", self.name))
    }

    /// A connection string (libpq's `key=value` form) for one of the
    /// test's login roles, for a client that is not deed's (a driver in
    /// another language).
    pub fn conninfo_as(&self, role: &str) -> String {
        url_as(&self.url, role)
    }

    /// The URL of another database on the same server.
    pub fn url_of(&self, database: &str) -> String {
        deed_pg::url_with_database(&self.admin, database)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let prefix = self.prefix.clone();
        let base = self.admin.clone();
        // Drop may run inside a runtime, which cannot block on another
        // future; a plain thread with its own runtime can.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let admin = connect_admin(&base).await;
                // A subscription holds a slot on another server.
                let subs = admin
                    .query(
                        "SELECT subname::text FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = $1",
                        &[&name],
                    )
                    .await
                    .unwrap_or_default();
                if !subs.is_empty() {
                    if let Ok(own) = deed_pg::connect(&deed_pg::url_with_database(&base, &name)).await {
                        for row in subs {
                            let sub: String = row.get(0);
                            let q = deed_ident::quote_ident(&sub);
                            let _ = own
                                .batch_execute(&format!(
                                    "ALTER SUBSCRIPTION {q} DISABLE; ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q}"
                                ))
                                .await;
                        }
                    }
                }
                // A logical slot keeps its database from being dropped; one
                // a subscriber on another server reads is held until its
                // walsender goes.
                for _ in 0..50 {
                    let _ = admin
                        .query(
                            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
                              WHERE database = $1 AND active_pid IS NOT NULL",
                            &[&name],
                        )
                        .await;
                    let left = admin
                        .query(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                              WHERE database = $1 AND NOT active",
                            &[&name],
                        )
                        .await;
                    let remaining: i64 = admin
                        .query_one("SELECT count(*) FROM pg_replication_slots WHERE database = $1", &[&name])
                        .await
                        .map(|r| r.get(0))
                        .unwrap_or(0);
                    if left.is_ok() && remaining == 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                let roles = admin
                    .query(
                        "SELECT rolname::text FROM pg_roles
                          WHERE starts_with(rolname, $1) OR starts_with(rolname, $2)
                             OR starts_with(rolname, $3)",
                        &[&format!("{prefix}_"), &format!("deed_{prefix}_"), &format!("deed_a{prefix}_")],
                    )
                    .await
                    .unwrap_or_default();
                for row in roles {
                    let role: String = row.get(0);
                    let quoted = deed_ident::quote_ident(&role);
                    let _ = admin
                        .batch_execute(&format!("DROP OWNED BY {quoted}; DROP ROLE {quoted}"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
        watchdog::done(&self.name);
    }
}

pub async fn admin_client() -> Client {
    connect_admin(admin_base()).await
}

async fn connect_admin(base: &str) -> Client {
    deed_pg::connect(base).await.unwrap_or_else(|e| {
        panic!("cannot reach the test PostgreSQL: {e}\nIf DEED_TEST_DATABASE_URL (or DEED_TEST_SECOND_DATABASE_URL) is set, check that server is running.")
    })
}

/// `url` with another user.
fn url_as(url: &str, user: &str) -> String {
    let mut conn = deed_pg::ConnString::parse(url).expect("a test URL parses");
    conn.set("user", user);
    conn.to_conninfo()
}

/// Emulates the provider on a server once per test process.
async fn prepared(base: &str, superuser: &Client, admin: Admin) {
    static DONE: tokio::sync::Mutex<Vec<String>> = tokio::sync::Mutex::const_new(Vec::new());
    let key = format!("{base} {admin:?}");
    let mut done = DONE.lock().await;
    if !done.contains(&key) {
        managed::prepare_server(superuser, admin).await;
        done.push(key);
    }
}

/// The admin the tests run deed as (`DEED_TEST_ADMIN`).
pub fn test_admin() -> Admin {
    Admin::from_env()
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect()
}

mod certs;
mod kafka_server;
pub mod managed;
mod nats;
mod nats_cluster;
mod rabbitmq;
mod rabbitmq_server;
mod tls_front;
mod watchdog;
pub use certs::Certs;
pub use kafka_server::{KafkaServer, tansu};
pub use managed::Admin;
pub use nats::NatsServer;
pub use nats_cluster::NatsCluster;
pub use rabbitmq::{RabbitStreams, rabbitmq_url};
pub use rabbitmq_server::RabbitServer;
pub use tls_front::TlsFront;

/// A port nothing listens on now, on 127.0.0.1: for a private server, or
/// for an address that must refuse.
pub fn free_port() -> u16 {
    deed_cluster::free_port().expect("a free port")
}
