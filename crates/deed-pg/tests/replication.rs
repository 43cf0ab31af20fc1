//! The replication stream's own wire client: it authenticates as libpq
//! does (SCRAM-SHA-256, md5 and a cleartext password, and says why when
//! the password is wrong or missing), and a stream stopped while its
//! caller has stopped reading (a bounded relay run that reached its end
//! with more already read ahead) still closes in order: it reports its
//! position, sends CopyDone and hears the server's answer, rather than
//! being dropped after `stop`'s timeout.

use std::time::Duration;

use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_pg::replication::{ReplicationStream, StreamOptions};

/// A private cluster with logical decoding, and its `postgres` URL.
async fn logical_cluster() -> (EmbeddedCluster, String) {
    let settings = vec![("wal_level".to_string(), "logical".to_string())];
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await
            .unwrap()
            .expect("a private cluster");
    let base = cluster.url("postgres");
    (cluster, base)
}

#[tokio::test]
async fn replication_authenticates_with_scram_md5_and_password() {
    let (cluster, base) = logical_cluster().await;
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
        status_interval: Duration::from_secs(1),
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

#[tokio::test]
async fn a_stream_stopped_with_a_backlog_read_ahead_closes_in_order() {
    let (_cluster, base) = logical_cluster().await;
    let c = deed_pg::connect_plain(&base).await.unwrap();
    c.batch_execute(
        "CREATE TABLE public.t (id int PRIMARY KEY, note text);
         CREATE PUBLICATION p FOR TABLE public.t;",
    )
    .await
    .unwrap();
    c.batch_execute("SELECT pg_create_logical_replication_slot('s', 'pgoutput')").await.unwrap();
    // Far more than the worker hands over before its channel is full
    // (16 runs of up to 1,024 messages).
    c.batch_execute("INSERT INTO public.t SELECT g, 'x' FROM generate_series(1, 60000) g")
        .await
        .unwrap();
    let options = StreamOptions {
        slot: "s".into(),
        publication: "p".into(),
        application_name: "deed stop test".into(),
        status_interval: Duration::from_secs(1),
    };
    let endpoint = deed_pg::endpoint(&format!("{base}?sslmode=disable")).unwrap();
    let mut stream = ReplicationStream::start(&endpoint, &options).await.unwrap();
    let first = stream.recv().await.unwrap();
    assert!(first.is_some(), "the backlog arrives");
    // Let the worker read ahead until its channel is full.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(stream.stop().await, "the stream was abandoned instead of closed in order");
    // The server saw the client go: the slot is free again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let active: bool = c
            .query_one("SELECT active FROM pg_replication_slots WHERE slot_name = 's'", &[])
            .await
            .unwrap()
            .get(0);
        if !active {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slot stayed active");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
