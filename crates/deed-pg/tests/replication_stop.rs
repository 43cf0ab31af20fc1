//! A replication stream stopped while its caller has stopped reading
//! (a bounded relay run that reached its end with more already read
//! ahead) still closes in order: it reports its position, sends CopyDone
//! and hears the server's answer, rather than being dropped after
//! `stop`'s timeout.

use std::time::Duration;

use deed_pg::replication::{ReplicationStream, StreamOptions};
use deed_pg::{ClusterOptions, EmbeddedCluster};

#[tokio::test]
async fn a_stream_stopped_with_a_backlog_read_ahead_closes_in_order() {
    let settings = vec![("wal_level".to_string(), "logical".to_string())];
    let cluster =
        tokio::task::spawn_blocking(move || EmbeddedCluster::start(&ClusterOptions { settings }))
            .await
            .unwrap()
            .expect("a private cluster");
    let base = cluster.url("postgres");
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
