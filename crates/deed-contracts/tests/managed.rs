//! Rung 1 as the admin a managed service hands out (`CREATEROLE CREATEDB
//! REPLICATION`, owning the database, no superuser), whatever
//! `DEED_TEST_ADMIN` says: deed grants its role what each step needs and
//! shows it, leaves no privilege behind that the manifest does not want,
//! and a table it may not take is a located blocker with the statement.

use std::path::Path;

use deed_contracts::{ApplyOutcome, Phase, PlanRequest, Stage, apply, plan};
use deed_manifest::{Date, Manifest};
use deed_pg::Client;
use deed_testkit::{Admin, TestDb};

fn manifest(db: &TestDb) -> Manifest {
    let text = format!(
        r#"version = 1
[services.{cat}]
owns = ["public.products"]
logins = ["{cat_login}"]
[[services.{cat}.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name"]

[services.{ord}]
owns = ["public.orders"]
logins = ["{ord_login}"]
reads = ["{cat}.products.v1"]
"#,
        cat = db.service("catalog"),
        ord = db.service("orders"),
        cat_login = db.role("catalog_svc"),
        ord_login = db.role("orders_svc"),
    );
    Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap()
}

async fn major(c: &Client) -> i32 {
    c.query_one("SELECT current_setting('server_version_num')::int / 10000", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_admin_grants_itself_what_each_step_needs_and_leaves_no_more() {
    let db = TestDb::new_as("managed_apply", Admin::Plain).await;
    let admin = db.client().await;
    let (cat, ord) = (db.role("catalog_svc"), db.role("orders_svc"));
    admin
        .batch_execute(&format!(
            "CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, cost_cents int);
             CREATE TABLE orders (id serial PRIMARY KEY, product_id int);
             CREATE ROLE \"{cat}\" LOGIN; CREATE ROLE \"{ord}\" LOGIN;
             GRANT ALL ON products, orders TO \"{cat}\", \"{ord}\";"
        ))
        .await
        .unwrap();
    let me: String = admin.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert!(
        !admin
            .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[])
            .await
            .unwrap()
            .get::<_, bool>(0)
    );
    let m = manifest(&db);
    let client = db.deed_client().await;
    let request =
        || PlanRequest { manifest: &m, audit: None, today: Date::today(), stage: Stage::Enforce };
    let p = plan(&client, request()).await.unwrap();
    let grants: Vec<&String> = p
        .changes
        .iter()
        .filter(|c| c.phase == Phase::Memberships && c.object.ends_with(&me))
        .flat_map(|c| &c.sql)
        .collect();
    assert_eq!(grants.len(), 2, "one grant of each owner role to {me}: {:#?}", p.changes);
    if major(&admin).await >= 16 {
        assert!(grants.iter().all(|g| g.ends_with("WITH INHERIT TRUE, SET TRUE")), "{grants:?}");
    }
    assert!(p.changes.iter().all(|c| c.phase != Phase::Blocker), "{:#?}", p.changes);
    match apply(&client, &m, Date::today(), &[]).await.unwrap() {
        ApplyOutcome::Applied(c) => assert!(!c.is_empty()),
        ApplyOutcome::NothingToDo => panic!("nothing applied"),
    }
    // Nothing left to do, and the new owners did not keep the CREATE on
    // `public` they were lent for the ownership change.
    let again = plan(&client, request()).await.unwrap();
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    // A superuser running deed later finds nothing to take back either:
    // the admin's memberships of the owner roles give it nothing it could
    // not take itself.
    let su = db.superuser_client().await;
    let by_superuser = plan(&su, request()).await.unwrap();
    assert!(by_superuser.changes.is_empty(), "{:#?}", by_superuser.changes);
    // But another service's login in an owner role is one service writing
    // another's tables, whatever it may do besides.
    su.batch_execute(&format!(
        "ALTER ROLE \"{ord}\" CREATEROLE; GRANT \"{}\" TO \"{ord}\"",
        deed_contracts::owner_role(&db.service("catalog")).as_str()
    ))
    .await
    .unwrap();
    let leak = plan(&su, request()).await.unwrap();
    assert!(
        leak.changes.iter().any(|c| c.kind == "revoke-membership" && c.object.ends_with(&ord)),
        "{:#?}",
        leak.changes
    );
    su.batch_execute(&format!(
        "ALTER ROLE \"{ord}\" NOCREATEROLE; REVOKE \"{}\" FROM \"{ord}\"",
        deed_contracts::owner_role(&db.service("catalog")).as_str()
    ))
    .await
    .unwrap();
    let owner = deed_contracts::owner_role(&db.service("catalog"));
    let row = admin
        .query_one(
            "SELECT pg_get_userbyid(relowner)::text, has_schema_privilege($1, 'public', 'CREATE')
               FROM pg_class WHERE oid = 'products'::regclass",
            &[&owner.as_str()],
        )
        .await
        .unwrap();
    let (owner_of, may_create): (String, bool) = (row.get(0), row.get(1));
    assert_eq!(owner_of, owner.as_str());
    assert!(!may_create || major(&admin).await <= 14, "{owner} kept CREATE on public");
    // The consumer reads the contract view and not the table.
    let o = db.client_as(&ord).await;
    let view = format!("{}_api.products_v1", db.service("catalog"));
    o.query(&format!("SELECT id, name FROM {view}"), &[]).await.unwrap();
    assert!(o.query("SELECT id FROM products", &[]).await.is_err());
}

/// A table owned by a role the admin neither is nor may grant itself (made
/// by the superuser, on 16+) is a located blocker naming the statement; up
/// to 15 a CREATEROLE admin may grant itself any role, and takes it for
/// that one step only.
#[tokio::test]
async fn a_table_owned_by_a_role_deed_cannot_act_as() {
    let db = TestDb::new_as("managed_foreign", Admin::Plain).await;
    let stranger = db.role("stranger");
    let (cat, ord) = (db.role("catalog_svc"), db.role("orders_svc"));
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{cat}\" LOGIN; CREATE ROLE \"{ord}\" LOGIN;
             CREATE TABLE orders (id serial PRIMARY KEY)"
        ))
        .await
        .unwrap();
    let su = db.superuser_client().await;
    su.batch_execute(&format!(
        "CREATE ROLE \"{stranger}\" NOLOGIN; GRANT CREATE ON SCHEMA public TO \"{stranger}\";
         CREATE TABLE products (id int PRIMARY KEY, name text); ALTER TABLE products OWNER TO \"{stranger}\";"
    ))
    .await
    .unwrap();
    let m = manifest(&db);
    let client = db.deed_client().await;
    let p = plan(
        &client,
        PlanRequest { manifest: &m, audit: None, today: Date::today(), stage: Stage::Enforce },
    )
    .await
    .unwrap();
    let products = p.changes.iter().find(|c| {
        c.object == "public.products" && (c.kind == "alter-owner" || c.kind == "foreign-owner")
    });
    let products = products.unwrap_or_else(|| panic!("{:#?}", p.changes));
    if major(&admin).await >= 16 {
        assert_eq!(products.phase, Phase::Blocker, "{products:#?}");
        assert!(products.summary.starts_with("deed.toml:3:"), "located: {}", products.summary);
        assert!(
            products.summary.contains(&format!("GRANT \"{stranger}\" TO")),
            "{}",
            products.summary
        );
        let refused = apply(&client, &m, Date::today(), &[]).await;
        assert!(
            matches!(refused, Err(deed_contracts::ContractError::Blocked(_))),
            "{:?}",
            refused.err()
        );
    } else {
        assert_eq!(products.phase, Phase::Ownership, "{products:#?}");
        assert!(
            products.sql.iter().any(|s| s.starts_with(&format!("REVOKE \"{stranger}\" FROM"))),
            "{:?}",
            products.sql
        );
        apply(&client, &m, Date::today(), &[]).await.unwrap();
        let me: String = admin.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
        let member: bool = admin
            .query_one("SELECT pg_has_role($1, $2, 'MEMBER')", &[&me, &stranger])
            .await
            .unwrap()
            .get(0);
        assert!(!member, "the admin kept {stranger}");
    }
}
