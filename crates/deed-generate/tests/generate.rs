//! `deed generate` against a real database, proven by the real
//! toolchains: the Python package is installed by pip, imported, and
//! queries a contract view
//! through SQLAlchemy as the consumer's role, mypy --strict accepts its
//! correct use and rejects a nullable column used as if it were not; the
//! JSON Schemas and Pydantic models accept the relay's real envelopes
//! (insert, update, delete, truncate) and refuse one with a NOT NULL
//! column nulled.

use std::path::{Path, PathBuf};
use std::process::Command;

use deed_generate::render::names::pascal;
use deed_generate::{Lang, choose, files, observe, render_files};
use deed_manifest::{Date, Manifest};
use deed_testkit::TestDb;

struct Shop {
    db: TestDb,
    manifest: Manifest,
    catalog: String,
    orders: String,
    orders_login: String,
}

async fn shop() -> Shop {
    let db = TestDb::new("generate").await;
    let (catalog, orders) = (db.service("catalog"), db.service("orders"));
    let (catalog_login, orders_login) = (db.role("catalog_svc"), db.role("orders_svc"));
    let admin = db.client().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{catalog_login}\" LOGIN; CREATE ROLE \"{orders_login}\" LOGIN;
             CREATE TYPE public.mood AS ENUM ('calm', 'busy');
             CREATE TABLE public.vendors (id int PRIMARY KEY, vendor_name text NOT NULL);
             CREATE TABLE public.products (
                 id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL,
                 note text, mood public.mood NOT NULL DEFAULT 'calm', tags text[],
                 created_at timestamptz NOT NULL DEFAULT now(), data jsonb,
                 vendor_id int REFERENCES public.vendors)"
        ))
        .await
        .unwrap();
    let text = format!(
        r#"version = 1
[services.{catalog}]
owns = ["public.products", "public.vendors"]
logins = ["{catalog_login}"]
api_schema = "{catalog}_api"

[[services.{catalog}.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price", "note", "mood", "tags", "created_at", "data"]

[[services.{catalog}.contracts]]
name = "listing"
version = 1
from = "public.products"
query = "SELECT p.id, p.name, v.vendor_name FROM public.products p LEFT JOIN public.vendors v ON v.id = p.vendor_id"

[[services.{catalog}.events]]
name = "product_changed"
from = "public.products"
key = ["id"]
contract = "products.v1"

[services.{orders}]
logins = ["{orders_login}"]
reads = ["{catalog}.products.v1", "{catalog}.listing.v1"]
consumes = ["{catalog}.product_changed"]
"#
    );
    let manifest = Manifest::parse(Path::new("deed.toml"), &text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    deed_contracts::apply(&db.deed_client().await, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Shop { db, manifest, catalog, orders, orders_login }
}

fn out_dir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deed-generate-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} ({e}): run scripts/setup (it installs python3's packages)")
    });
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nullability_is_derived_through_each_view() {
    let s = shop().await;
    let choice = choose(&s.manifest, Some(&s.orders)).unwrap();
    assert_eq!(choice.contracts.len(), 2, "{choice:?}");
    assert_eq!(choice.events.len(), 1, "{choice:?}");
    let model = observe(&s.db.deed_client().await, &s.manifest, &choice).await.unwrap();
    let nulls = |contract: &str| -> Vec<(String, bool)> {
        let c = model.contracts.iter().find(|c| c.name == contract).unwrap();
        c.columns.iter().map(|c| (c.name.clone(), c.not_null)).collect()
    };
    let pairs = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(n, b)| (n.to_string(), *b)).collect()
    };
    assert_eq!(
        nulls("products"),
        pairs(&[
            ("id", true),
            ("name", true),
            ("price", true),
            ("note", false),
            ("mood", true),
            ("tags", false),
            ("created_at", true),
            ("data", false)
        ])
    );
    // vendors.vendor_name is NOT NULL, but the LEFT JOIN can miss.
    assert_eq!(nulls("listing"), pairs(&[("id", true), ("name", true), ("vendor_name", false)]));
    let listing = model.contracts.iter().find(|c| c.name == "listing").unwrap();
    assert!(
        listing.columns[2].why.contains("nullable side of an outer join"),
        "{:?}",
        listing.columns[2]
    );
    let products = model.contracts.iter().find(|c| c.name == "products").unwrap();
    assert_eq!(products.identity, ["id"]);
    let event = &model.events[0];
    assert_eq!(event.contract.as_deref(), Some(format!("{}.products.v1", s.catalog).as_str()));
    assert_eq!(event.key.len(), 1);
    assert_eq!(event.payload.len(), 8);

    // The same catalog gives the same bytes; --check sees a changed file.
    let dir = out_dir("determinism");
    let files = render_files(&model, Lang::Python, None);
    assert_eq!(files, render_files(&model, Lang::Python, None));
    files::write(&dir, &files).unwrap();
    assert!(files::check(&dir, &files).unwrap().is_current());
    let contracts = dir.join("deed_models/contracts.py");
    std::fs::write(&contracts, "# edited\n").unwrap();
    // A file an earlier run wrote that is not generated now is left over;
    // a file of the user's own is not deed's to judge or remove.
    let notice = deed_generate::render::NOTICE;
    std::fs::write(dir.join("deed_models/old.py"), format!("\"\"\"{notice}\"\"\"\n")).unwrap();
    std::fs::write(dir.join("deed_models/mine.py"), "x = 1\n").unwrap();
    let stale = files::check(&dir, &files).unwrap();
    assert_eq!(stale.changed, ["deed_models/contracts.py"]);
    assert_eq!(stale.leftover, ["deed_models/old.py"]);
    let done = files::write(&dir, &files).unwrap();
    assert_eq!(
        (done.written, done.removed),
        (vec!["deed_models/contracts.py".to_string()], vec!["deed_models/old.py".to_string()])
    );
    assert!(files::check(&dir, &files).unwrap().is_current());
    assert!(dir.join("deed_models/mine.py").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_package_and_the_json_schemas_pass_their_toolchains() {
    let s = shop().await;
    let admin = s.db.client().await;
    admin
        .batch_execute(
            "INSERT INTO public.vendors VALUES (1, 'acme');
             INSERT INTO public.products (id, name, price, note, tags, data, vendor_id)
                  VALUES (1, 'pen', 1.50, NULL, '{a,b}', '{\"k\": [1]}', 1),
                         (2, 'ink', 12.00, 'blue', NULL, NULL, NULL);
             UPDATE public.products SET mood = 'busy', note = 'x' WHERE id = 1;
             DELETE FROM public.products WHERE id = 2;
             INSERT INTO public.products (id, name, price) VALUES (3, 'pad', 3);",
        )
        .await
        .unwrap();
    // Real envelopes: the relay's, through the inbox.
    let mut opts =
        deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.db.url, &s.db.url);
    opts.until_idle = true;
    deed_relay::run(opts).await.unwrap_or_else(|e| panic!("{e}"));
    admin.batch_execute("TRUNCATE public.products").await.unwrap();
    let mut opts =
        deed_relay::RelayOptions::new(s.manifest.clone(), &s.catalog, &s.db.url, &s.db.url);
    opts.until_idle = true;
    deed_relay::run(opts).await.unwrap_or_else(|e| panic!("{e}"));
    let rows =
        admin.query("SELECT envelope::text FROM deed.inbox ORDER BY position", &[]).await.unwrap();
    assert_eq!(rows.len(), 6, "insert, insert, update, delete, insert, truncate");
    admin
        .batch_execute("INSERT INTO public.products (id, name, price) VALUES (4, 'cap', 4)")
        .await
        .unwrap();

    let model =
        observe(&s.db.deed_client().await, &s.manifest, &choose(&s.manifest, None).unwrap())
            .await
            .unwrap();
    let dir = out_dir("toolchains");
    let (python, schemas) = (dir.join("python"), dir.join("schemas"));
    files::write(&python, &render_files(&model, Lang::Python, None)).unwrap();
    files::write(&schemas, &render_files(&model, Lang::JsonSchema, None)).unwrap();
    let events = dir.join("events.jsonl");
    let lines: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();

    // Installable: pip builds and installs it (setuptools from PyPI).
    let site = dir.join("site");
    let (ok, said) = run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&site)
        .arg(&python));
    assert!(ok, "pip install of the generated package: {said}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/use_models.py");
    let (ok, said) = run(Command::new("python3")
        .arg(&script)
        .arg(&site)
        .args([s.db.conninfo_as(&s.orders_login).as_str()])
        .arg(&events)
        .arg(&schemas)
        .args(["products_v1", "listing_v1"]));
    assert!(ok, "{said}");
    assert!(said.contains(r#""ops": ["delete", "insert", "truncate", "update"]"#), "{said}");

    // mypy --strict: the package itself, a correct use, and a use that
    // treats a nullable column (note; vendor_name over the LEFT JOIN; an
    // event's payload) as if it could not be NULL.
    let products = pascal(&[&s.catalog, "products", "v1"]);
    let listing = pascal(&[&s.catalog, "listing", "v1"]);
    let event = pascal(&[&s.catalog, "product_changed"]);
    let probe = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("from deed_models import {products}, {listing}, {event}\n\n{body}"),
        )
        .unwrap();
        path
    };
    let good = probe(
        "good.py",
        &format!(
            "def f(p: {products}, l: {listing}, e: {event}) -> int:\n    \
             return len(p.name) + len(p.note or '') + len(l.name) + len(l.vendor_name or '') \
             + (e.payload.id if e.payload else 0)\n"
        ),
    );
    let mypy = |file: &Path| {
        run(Command::new("python3")
            .args(["-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null"])
            .arg(file)
            .env("MYPYPATH", &python))
    };
    let (ok, said) = mypy(&good);
    assert!(ok, "mypy --strict on a correct use: {said}");
    let (ok, said) = run(Command::new("python3")
        .args([
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            "-p",
            "deed_models",
        ])
        .env("MYPYPATH", &python));
    assert!(ok, "mypy --strict on the package: {said}");
    for (name, body) in [
        ("note.py", format!("def f(p: {products}) -> int:\n    return len(p.note)\n")),
        ("join.py", format!("def f(l: {listing}) -> int:\n    return len(l.vendor_name)\n")),
        ("payload.py", format!("def f(e: {event}) -> int:\n    return e.payload.id\n")),
    ] {
        let (ok, said) = mypy(&probe(name, &body));
        assert!(!ok && said.contains("None"), "mypy must refuse {name}: {said}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
