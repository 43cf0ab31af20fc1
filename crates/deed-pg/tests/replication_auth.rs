//! The replication stream's own wire client authenticates as libpq does:
//! SCRAM-SHA-256, md5 and a cleartext password, and says why when the
//! password is wrong or missing.

use deed_pg::replication::{ReplicationStream, StreamOptions};
use deed_pg::{ClusterOptions, EmbeddedCluster};

#[tokio::test]
async fn replication_authenticates_with_scram_md5_and_password() {
    let settings = vec![("wal_level".to_string(), "logical".to_string())];
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await
            .unwrap()
            .expect("a private cluster");
    let base = cluster.url("postgres");
    let c = deed_pg::connect_plain(&base).await.unwrap();
    c.batch_execute(
        "CREATE TABLE public.t (id int PRIMARY KEY);
         CREATE PUBLICATION p FOR TABLE public.t;
         SET password_encryption = 'scram-sha-256';
         CREATE ROLE r_scram LOGIN REPLICATION PASSWORD 'sc''ret one';
         SET password_encryption = 'md5';
         CREATE ROLE r_md5 LOGIN REPLICATION PASSWORD 'md5 secret';
         CREATE ROLE r_plain LOGIN REPLICATION PASSWORD 'plain secret';",
    )
    .await
    .unwrap();
    c.batch_execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')").await.unwrap();
    let hba: String = c.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    std::fs::write(
        &hba,
        "local all all trust\n\
         host all postgres 127.0.0.1/32 trust\n\
         host all r_scram 127.0.0.1/32 scram-sha-256\n\
         host all r_md5 127.0.0.1/32 md5\n\
         host all r_plain 127.0.0.1/32 password\n",
    )
    .unwrap();
    c.batch_execute("SELECT pg_reload_conf()").await.unwrap();

    let options = StreamOptions {
        slot: "s".into(),
        publication: "p".into(),
        application_name: "deed auth test".into(),
        status_interval: std::time::Duration::from_secs(1),
    };
    let url = |user: &str, password: Option<&str>| {
        let mut e = deed_pg::endpoint(&format!("{base}?sslmode=disable")).unwrap();
        e.user = user.into();
        e.password = password.map(String::from);
        e
    };
    for (user, password) in
        [("r_scram", "sc'ret one"), ("r_md5", "md5 secret"), ("r_plain", "plain secret")]
    {
        let stream = ReplicationStream::start(&url(user, Some(password)), &options)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        stream.stop().await;
        let err = ReplicationStream::start(&url(user, Some("wrong")), &options)
            .await
            .err()
            .expect("a wrong password is refused")
            .to_string();
        assert!(err.contains("authentication failed") && err.contains("28P01"), "{user}: {err}");
        assert!(!err.contains("wrong"), "the password is never shown: {err}");
    }
    let err = ReplicationStream::start(&url("r_scram", None), &options)
        .await
        .err()
        .expect("no password")
        .to_string();
    assert!(err.contains("none was given"), "{err}");
    drop(cluster);
}
