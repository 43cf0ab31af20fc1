//! TLS against a real server with a self-signed certificate, with libpq's
//! sslmode semantics: `require` encrypts without checking the certificate,
//! `verify-full` checks it and the host name.

use std::process::Command;

use deed_pg::{ClusterOptions, EmbeddedCluster};

#[tokio::test]
async fn sslmode_means_what_it_means_to_libpq() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=deed-test",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command is needed to make a test certificate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let settings = vec![
        ("ssl".to_string(), "on".to_string()),
        ("ssl_cert_file".to_string(), cert.display().to_string()),
        ("ssl_key_file".to_string(), key.display().to_string()),
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
    let err = encrypted(format!("{base}?sslmode=verify-full")).await.unwrap_err().to_string();
    assert!(err.contains("certificate"), "an unknown CA must be refused: {err}");
    let rooted = format!("{base}?sslmode=verify-full&sslrootcert={}", cert.display());
    assert!(encrypted(rooted).await.unwrap());
    drop(cluster);
}

fn make_readable_by_server(dir: &std::path::Path, files: &[&std::path::PathBuf]) {
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
