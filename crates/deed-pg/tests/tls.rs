//! TLS against a real server, with libpq's sslmode semantics: `require`
//! encrypts without checking the certificate, `verify-ca` checks the chain,
//! `verify-full` the chain and the host name. The same rules hold for the
//! relay's replication stream, which has its own wire client.

use std::path::{Path, PathBuf};
use std::process::Command;

use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_pg::replication::{ReplicationStream, StreamOptions};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed to make test certificates");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, and a server certificate it signs for `name` only.
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=deed test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=deed test server",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName=DNS:{name}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    );
    (dir.join("ca.crt"), dir.join("server.crt"), dir.join("server.key"))
}

#[tokio::test]
async fn sslmode_means_what_it_means_to_libpq() {
    let dir = tempfile::tempdir().unwrap();
    // The certificate names another host: only verify-full may mind.
    let (ca, cert, key) = certificates(dir.path(), "db.example");
    let settings = vec![
        ("ssl".to_string(), "on".to_string()),
        ("ssl_cert_file".to_string(), cert.display().to_string()),
        ("ssl_key_file".to_string(), key.display().to_string()),
        ("wal_level".to_string(), "logical".to_string()),
    ];
    // The server reads the files as its own user, which must own the key.
    make_readable_by_server(dir.path(), &[&cert, &key]);
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await
            .unwrap()
            .expect("a private cluster with ssl = on");
    let base = cluster.url("postgres");

    let encrypted = |url: String| async move {
        let c = deed_pg::connect(&url).await?;
        let row = c
            .query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .unwrap();
        Ok::<bool, deed_pg::PgError>(row.get(0))
    };
    assert!(encrypted(format!("{base}?sslmode=require")).await.unwrap());
    assert!(encrypted(base.clone()).await.unwrap(), "prefer must use TLS when offered");
    assert!(!encrypted(format!("{base}?sslmode=disable")).await.unwrap());
    let err = encrypted(format!("{base}?sslmode=verify-ca&sslrootcert={}", cert.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "a chain to an unknown CA must be refused: {err}");
    let err = encrypted(format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("certificate"), "a certificate for another name must be refused: {err}");
    let chain_only = format!("{base}?sslmode=verify-ca&sslrootcert={}", ca.display());
    assert!(encrypted(chain_only.clone()).await.unwrap(), "verify-ca ignores the host name");
    let err = encrypted(format!("{base}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ca.pem"), "a missing root file is named: {err}");

    // The replication stream follows the same rules.
    let c = deed_pg::connect(&base).await.unwrap();
    c.batch_execute(
        "CREATE TABLE public.t (id int PRIMARY KEY); CREATE PUBLICATION p FOR TABLE public.t",
    )
    .await
    .unwrap();
    c.batch_execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')").await.unwrap();
    let options = StreamOptions {
        slot: "s".into(),
        publication: "p".into(),
        application_name: "deed tls test".into(),
        status_interval: std::time::Duration::from_secs(1),
    };
    let refused =
        deed_pg::endpoint(&format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()))
            .unwrap();
    let err =
        ReplicationStream::start(&refused, &options).await.err().expect("refused").to_string();
    assert!(err.contains("certificate"), "{err}");
    let stream =
        ReplicationStream::start(&deed_pg::endpoint(&chain_only).unwrap(), &options).await.unwrap();
    let ssl: bool = c
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'deed tls test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the replication stream must be encrypted");
    stream.stop().await;
    drop(cluster);
}

fn make_readable_by_server(dir: &Path, files: &[&PathBuf]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let status = Command::new("chown").arg("postgres:postgres").args(files).status().unwrap();
        assert!(status.success());
    }
}
