//! `deed doctor` as each managed service's admin, emulated on a private
//! cluster of its own (the provider is recognised from the roles present,
//! so each gets a server to itself): which provider it names, and what
//! apply's steps, proved in a rolled-back transaction, and replication
//! give there.

use deed_cluster::{ClusterOptions, EmbeddedCluster};
use deed_doctor::{Level, checks, observe};
use deed_testkit::Admin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_provider_and_proves_what_apply_does() {
    let mut report = Vec::new();
    for &admin in Admin::MANAGED {
        let cluster = EmbeddedCluster::start(&ClusterOptions::default()).unwrap_or_else(|e| {
            panic!("cannot start a private PostgreSQL (apt-get install postgresql, or set DEED_PG_BINDIR): {e}")
        });
        let superuser = deed_pg::connect_plain(&cluster.url("postgres")).await.unwrap();
        deed_testkit::managed::prepare_server(&superuser, admin).await;
        let login = admin.login().unwrap();
        superuser.batch_execute(&format!("CREATE DATABASE shop OWNER {login}")).await.unwrap();
        let in_db = deed_pg::connect_plain(&cluster.url("shop")).await.unwrap();
        deed_testkit::managed::prepare_database(&in_db, admin).await;
        let url = format!("postgres://{login}@127.0.0.1:{}/shop", cluster.port());
        let client = deed_pg::connect(&url).await.unwrap();
        let observed = observe(&client, None).await.unwrap();
        let all = checks(&observed, None);
        // Nothing the proofs did is left behind.
        let left: i64 = superuser
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'deed_doctor_probe%'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{admin:?}: a probe role was left behind");
        let picked: Vec<String> = all
            .iter()
            .filter(|c| c.rung == 1 || c.name == "the relay's role may replicate")
            .filter(|c| c.name != "pg_dump for deed check")
            .map(|c| {
                let level = match c.level {
                    Level::Ok => "ok",
                    Level::Warn => "warn",
                    Level::Fail => "fail",
                };
                let fix = c.fix.as_deref().map(|f| format!("\n      → {f}")).unwrap_or_default();
                format!("  {level} {}: {}{fix}", c.name, c.detail)
            })
            .collect();
        report.push(format!("{admin:?} ({login})\n{}", picked.join("\n")));
        cluster.stop();
    }
    let text = report.join("\n\n");
    insta::with_settings!({filters => vec![
        (r"deed_doctor_probe_\d+", "deed_doctor_probe_<pid>"),
        (r"(\S) \d+; deed runs", "$1 <major>; deed runs"),
        (r#"GRANT ("deed_doctor_probe_<pid>") TO ("\w+")( WITH INHERIT TRUE, SET TRUE)?"#, "GRANT $1 TO $2 <options on 16+>"),
    ]}, {
        insta::assert_snapshot!(text);
    });
}
