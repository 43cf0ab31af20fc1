//! Signing in, for real: a nats-server that asks for a user and password,
//! a token, an nkey, or TLS with a client certificate, and a PostgreSQL
//! server that takes the relay's role from its client certificate. Each
//! way in works with the right secret and fails with a wrong one, and no
//! error ever shows the secret.

use std::path::Path;

use deed_bus::NatsAuth;
use deed_manifest::{Date, Manifest};
use deed_relay::RelayOptions;
use deed_testkit::{Certs, NatsServer, RabbitServer, TestDb};

struct Owner {
    db: TestDb,
    manifest: Manifest,
    service: String,
}

async fn owner(label: &str) -> Owner {
    let db = TestDb::new(label).await;
    let service = db.service("vault");
    let admin = db.client().await;
    admin.batch_execute("CREATE TABLE items (id int PRIMARY KEY, v text)").await.unwrap();
    let manifest = manifest_for(&service);
    deed_contracts::apply(&admin, &manifest, Date::today(), &[]).await.unwrap();
    admin.batch_execute("INSERT INTO items VALUES (1, 'a'), (2, 'b')").await.unwrap();
    Owner { db, manifest, service }
}

fn manifest_for(service: &str) -> Manifest {
    let text = format!(
        r#"version = 1
[services.{service}]
owns = ["public.items"]
[[services.{service}.contracts]]
name = "items"
version = 1
from = "public.items"
columns = ["id", "v"]
[[services.{service}.events]]
name = "item_changed"
from = "public.items"
key = ["id"]
contract = "items.v1"
"#
    );
    Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap()
}

/// Delivers what is there; the error's text when it cannot.
async fn relay(o: &Owner, sink: &str, auth: NatsAuth) -> Result<u64, String> {
    let mut opts = RelayOptions::new(o.manifest.clone(), &o.service, &o.db.url, sink);
    opts.until_idle = true;
    opts.auth = auth;
    deed_relay::run(opts).await.map(|r| r.events).map_err(|e| e.to_string())
}

fn refused(result: Result<u64, String>, secret: &str) -> String {
    let err = result.expect_err("a wrong secret must be refused");
    assert!(!err.contains(secret), "the error shows a secret: {err}");
    err
}

#[tokio::test]
async fn user_and_password_token_and_nkey() {
    let o = owner("creds_nats").await;

    let server = NatsServer::start(Some(
        "authorization { users = [ { user: deed, password: \"pw-3fK9x\" } ] }",
    ));
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let url = |userinfo: &str| format!("nats://{userinfo}@127.0.0.1:{port}");
    assert_eq!(relay(&o, &url("deed:pw-3fK9x"), NatsAuth::default()).await, Ok(2));
    let err = refused(relay(&o, &url("deed:wrong-9Qz"), NatsAuth::default()).await, "wrong-9Qz");
    assert!(err.contains("***@127.0.0.1"), "the URL is shown without its password: {err}");
    // The password from the environment, the user from a flag.
    let auth = NatsAuth {
        user: Some("deed".into()),
        password: Some("pw-3fK9x".into()),
        ..NatsAuth::default()
    };
    assert_eq!(relay(&o, &server.url(), auth).await, Ok(0), "nothing new to deliver");
    let auth = NatsAuth { user: Some("deed".into()), ..NatsAuth::default() };
    let err = refused(relay(&o, &server.url(), auth).await, "pw-3fK9x");
    assert!(err.contains("DEED_NATS_PASSWORD"), "{err}");
    drop(server);

    let admin = o.db.client().await;
    admin.batch_execute("INSERT INTO items VALUES (3, 'c'), (4, 'd')").await.unwrap();
    let server = NatsServer::start(Some("authorization { token: \"tok-Zr81q\" }"));
    let port = server.url().rsplit(':').next().unwrap().to_string();
    let with_token = |t: &str| format!("nats://{t}@127.0.0.1:{port}");
    assert_eq!(relay(&o, &with_token("tok-Zr81q"), NatsAuth::default()).await, Ok(2));
    refused(relay(&o, &with_token("tok-bad0"), NatsAuth::default()).await, "tok-bad0");
    let auth = NatsAuth { token: Some("tok-Zr81q".into()), ..NatsAuth::default() };
    assert_eq!(relay(&o, &server.url(), auth).await, Ok(0));
    drop(server);

    admin.batch_execute("INSERT INTO items VALUES (5, 'e'), (6, 'f')").await.unwrap();
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::start(Some(&format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}",
        user.public_key()
    )));
    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("relay.nk");
    let seed = user.seed().unwrap();
    std::fs::write(&seed_file, format!("{seed}\n")).unwrap();
    let auth = NatsAuth { nkey_file: Some(seed_file.clone()), ..NatsAuth::default() };
    assert_eq!(relay(&o, &server.url(), auth).await, Ok(2));
    let stranger = nkeys::KeyPair::new_user();
    let other = dir.path().join("other.nk");
    std::fs::write(&other, stranger.seed().unwrap()).unwrap();
    let auth = NatsAuth { nkey_file: Some(other), ..NatsAuth::default() };
    refused(relay(&o, &server.url(), auth).await, &stranger.seed().unwrap());
    let garbage = dir.path().join("garbage.nk");
    std::fs::write(&garbage, "not a seed\n").unwrap();
    let auth = NatsAuth { nkey_file: Some(garbage.clone()), ..NatsAuth::default() };
    let err = refused(relay(&o, &server.url(), auth).await, "not a seed");
    assert!(err.contains(&garbage.display().to_string()), "the file is named: {err}");
}

#[tokio::test]
async fn tls_with_a_verified_server_and_a_client_certificate() {
    let o = owner("creds_tls").await;
    let certs = Certs::make("nats_tls", "deed-relay");
    let server = NatsServer::start(Some(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 5 }}",
        certs.server_cert.display(),
        certs.server_key.display(),
        certs.ca.display()
    )));
    let tls = |ca: &Path, client: bool| NatsAuth {
        ca_file: Some(ca.to_path_buf()),
        client_cert: client.then(|| (certs.client_cert.clone(), certs.client_key.clone())),
        require_tls: true,
        ..NatsAuth::default()
    };
    assert_eq!(relay(&o, &server.url(), tls(&certs.ca, true)).await, Ok(2));
    let err = relay(&o, &server.url(), tls(&certs.other_ca, true)).await.unwrap_err();
    assert!(err.contains("certificate") || err.contains("TLS") || err.contains("tls"), "{err}");
    relay(&o, &server.url(), tls(&certs.ca, false))
        .await
        .expect_err("a server that verifies clients refuses one without a certificate");
    relay(&o, &server.url(), NatsAuth::default()).await.expect_err("plain text is refused");
}

/// RabbitMQ over TLS, as managed brokers (Amazon MQ, CloudAMQP) serve it:
/// the broker verified against `ca=`, the relay showing a client
/// certificate (`cert=`, `key=`) to a node that requires one. Another CA,
/// no certificate, plain text to the TLS port, or a wrong password are
/// refused, and no error shows the password.
#[tokio::test]
async fn rabbitmq_over_tls_with_a_verified_broker_and_a_client_certificate() {
    let o = owner("creds_amqps").await;
    let certs = Certs::make("amqp_tls", "deed-relay");
    let broker = RabbitServer::start_tls(&certs);
    let url = |ca: &Path, client: bool| {
        let mut u = format!("{}?ca={}", broker.tls_url(), ca.display());
        if client {
            u += &format!(
                "&cert={}&key={}",
                certs.client_cert.display(),
                certs.client_key.display()
            );
        }
        u
    };
    let none = NatsAuth::default;
    let err = refused(relay(&o, &url(&certs.other_ca, true), none()).await, "guest:guest");
    assert!(err.contains("amqps://guest:***@localhost") && err.contains("UnknownIssuer"), "{err}");
    // TLS 1.3 sends the broker's refusal after the handshake: the relay
    // reads either its alert or, when the broker closed first, a reset.
    let err = refused(relay(&o, &url(&certs.ca, false), none()).await, "guest:guest");
    assert!(
        err.contains("CertificateRequired") || err.contains("Connection reset by peer"),
        "{err}"
    );
    let plain = broker.tls_url().replace("amqps://", "amqp://");
    refused(relay(&o, &plain, none()).await, "guest:guest");
    let wrong = url(&certs.ca, true).replace("guest:guest", "guest:s3cret-wrong");
    refused(relay(&o, &wrong, none()).await, "s3cret-wrong");
    let missing = format!("{}?ca=/nonexistent/ca.pem", broker.tls_url());
    let err = refused(relay(&o, &missing, none()).await, "guest:guest");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    assert_eq!(relay(&o, &url(&certs.ca, true), none()).await, Ok(2));
}

#[tokio::test]
async fn postgres_takes_the_relays_role_from_its_client_certificate() {
    let o = owner("creds_pg_cert").await;
    // The relay login deed apply makes, signing in with its certificate.
    let role = deed_events::relay_role(&o.service).as_str().to_string();
    let certs = Certs::make("pg_cert", &role);
    certs.readable_by_postgres();
    let dir = tempfile::tempdir().unwrap();
    let hba = dir.path().join("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "local all all trust\nhostssl all \"{role}\" 127.0.0.1/32 cert\nhost all \"{role}\" 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 trust\n"
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&hba, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let settings = vec![
        ("ssl".to_string(), "on".to_string()),
        ("ssl_cert_file".to_string(), certs.server_cert.display().to_string()),
        ("ssl_key_file".to_string(), certs.server_key.display().to_string()),
        ("ssl_ca_file".to_string(), certs.ca.display().to_string()),
        ("hba_file".to_string(), hba.display().to_string()),
        ("wal_level".to_string(), "logical".to_string()),
    ];
    let cluster = tokio::task::spawn_blocking(move || {
        deed_cluster::EmbeddedCluster::start(&deed_cluster::ClusterOptions { settings })
    })
    .await
    .unwrap()
    .expect("a private cluster asking for client certificates");
    let admin = deed_pg::connect(&cluster.url("postgres")).await.unwrap();
    admin.batch_execute("CREATE DATABASE owner").await.unwrap();
    let owner_url = cluster.url("owner");
    let db = deed_pg::connect(&owner_url).await.unwrap();
    db.batch_execute("CREATE TABLE public.items (id int PRIMARY KEY, v text)").await.unwrap();
    deed_contracts::apply(&db, &o.manifest, Date::today(), &[]).await.unwrap();
    db.batch_execute("INSERT INTO public.items VALUES (1, 'a')").await.unwrap();
    let port = owner_url.rsplit(':').next().unwrap().split('/').next().unwrap().to_string();
    let as_relay = |cert: &Path, key: &Path| {
        format!(
            "postgres://{role}@127.0.0.1:{port}/owner?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            certs.ca.display(),
            cert.display(),
            key.display()
        )
    };
    let consumer = TestDb::new("creds_pg_cert_inbox").await;
    let mut opts = RelayOptions::new(
        o.manifest.clone(),
        &o.service,
        &as_relay(&certs.client_cert, &certs.client_key),
        &consumer.url,
    );
    opts.until_idle = true;
    let report = deed_relay::run(opts).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.events, 1, "both the session and the replication stream signed in");
    // pg_hba.conf rejects the role without TLS: the same certificate over
    // a plain connection is refused, so the run above was encrypted.
    let plain_with_cert = as_relay(&certs.client_cert, &certs.client_key)
        .replace("sslmode=verify-full", "sslmode=disable");
    let mut opts =
        RelayOptions::new(o.manifest.clone(), &o.service, &plain_with_cert, &consumer.url);
    opts.until_idle = true;
    deed_relay::run(opts).await.expect_err("the role may only come over TLS");
    // Without the certificate the server refuses the role.
    let plain = format!("postgres://{role}@127.0.0.1:{port}/owner?sslmode=require");
    let mut opts = RelayOptions::new(o.manifest.clone(), &o.service, &plain, &consumer.url);
    opts.until_idle = true;
    deed_relay::run(opts).await.expect_err("no certificate, no entry");
    drop(db);
    drop(admin);
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap();
}

/// Operator mode, as `nsc` sets it up: an operator signs an account, the
/// account signs the relay's user, and the relay signs in with a `.creds`
/// file holding the user's JWT and seed.
#[tokio::test]
async fn a_creds_file_of_a_user_an_operator_vouches_for() {
    let o = owner("creds_file").await;
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let limits = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
        "conn": -1, "leaf": -1, "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1
    });
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let acct_jwt = jwt(
        &operator,
        &account.public_key(),
        serde_json::json!({"type": "account", "version": 2, "limits": limits}),
    );
    let user_claims = serde_json::json!({"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1});
    let user_jwt = jwt(&account, &user.public_key(), user_claims.clone());
    let dir = tempfile::tempdir().unwrap();
    let op_file = dir.path().join("operator.jwt");
    std::fs::write(&op_file, &op_jwt).unwrap();
    // JetStream needs a system account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt =
        jwt(&operator, &system.public_key(), serde_json::json!({"type": "account", "version": 2}));
    let server = NatsServer::start(Some(&format!(
        "operator: \"{}\"\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{ {}: \"{}\", {}: \"{}\" }}\n",
        op_file.display(),
        system.public_key(),
        account.public_key(),
        acct_jwt,
        system.public_key(),
        system_jwt
    )));
    let creds = |jwt: &str, seed: &str| {
        format!(
            "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        )
    };
    let file = dir.path().join("relay.creds");
    std::fs::write(&file, creds(&user_jwt, &user.seed().unwrap())).unwrap();
    let auth = NatsAuth { creds_file: Some(file), ..NatsAuth::default() };
    assert_eq!(relay(&o, &server.url(), auth).await, Ok(2));

    // A user signed by an account the server does not know.
    let stranger_account = nkeys::KeyPair::new_account();
    let stranger = nkeys::KeyPair::new_user();
    let file = dir.path().join("stranger.creds");
    std::fs::write(
        &file,
        creds(
            &jwt(&stranger_account, &stranger.public_key(), user_claims),
            &stranger.seed().unwrap(),
        ),
    )
    .unwrap();
    let auth = NatsAuth { creds_file: Some(file), ..NatsAuth::default() };
    refused(relay(&o, &server.url(), auth).await, &stranger.seed().unwrap());
    let missing = dir.path().join("missing.creds");
    let auth = NatsAuth { creds_file: Some(missing.clone()), ..NatsAuth::default() };
    let err = relay(&o, &server.url(), auth).await.unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

/// A NATS JWT: `{"typ":"JWT","alg":"ed25519-nkey"}`, the claims, and the
/// issuer's signature, each base64url without padding.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value) -> String {
    let iat = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}{iat}").chars().take(52).collect::<String>(),
        "iat": iat, "iss": issuer.public_key(), "name": "deed test", "sub": subject, "nats": nats
    });
    let head = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(claims.to_string().as_bytes());
    let signature = issuer.sign(format!("{head}.{body}").as_bytes()).unwrap();
    format!("{head}.{body}.{}", b64(&signature))
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
