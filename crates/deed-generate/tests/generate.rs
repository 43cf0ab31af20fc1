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
    text: String,
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
    Shop { db, manifest, text, catalog, orders, orders_login }
}

/// Rows written, updated, deleted and truncated, and the relay's real
/// envelopes of them (through the inbox), one JSON text each; a row
/// written after, so the views have rows.
async fn relay_events(s: &Shop) -> Vec<String> {
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
    rows.iter().map(|r| r.get::<_, String>(0)).collect()
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
    let lines = relay_events(&s).await;

    let model =
        observe(&s.db.deed_client().await, &s.manifest, &choose(&s.manifest, None).unwrap())
            .await
            .unwrap();
    let dir = out_dir("toolchains");
    let (python, schemas) = (dir.join("python"), dir.join("schemas"));
    files::write(&python, &render_files(&model, Lang::Python, None)).unwrap();
    files::write(&schemas, &render_files(&model, Lang::JsonSchema, None)).unwrap();
    let events = dir.join("events.jsonl");
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

/// The shop, its relay's envelopes in `events.jsonl`, and the model of
/// everything in the manifest.
async fn shop_with_events(label: &str) -> (Shop, deed_generate::Model, PathBuf, PathBuf) {
    let s = shop().await;
    let lines = relay_events(&s).await;
    let model =
        observe(&s.db.deed_client().await, &s.manifest, &choose(&s.manifest, None).unwrap())
            .await
            .unwrap();
    let dir = out_dir(label);
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    (s, model, dir, events)
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

/// A fixture template with the generated type names put in.
fn template(path: &str, names: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(fixture(path)).unwrap();
    for (from, to) in names {
        text = text.replace(from, to);
    }
    text
}

/// The generated type names the Go and Rust probes are written with.
fn type_names(s: &Shop) -> Vec<(&'static str, String)> {
    let event = pascal(&[&s.catalog, "product_changed"]);
    vec![
        ("__PRODUCTS__", pascal(&[&s.catalog, "products", "v1"])),
        ("__LISTING__", pascal(&[&s.catalog, "listing", "v1"])),
        ("__EVENT_TYPE__", deed_generate::render::rust::constant(&event)),
        ("__EVENT__", event),
    ]
}

/// What a Go or Rust probe prints after reading both views and parsing
/// every event: each operation, numeric's digits kept, the LEFT JOIN's
/// miss as nothing.
fn probe_read_and_parsed(ok: bool, said: &str) {
    assert!(ok, "{said}");
    assert!(said.contains(r#""ops":["delete","insert","truncate","update"]"#), "{said}");
    assert!(said.contains(r#""price":"4.00""#), "numeric keeps its digits: {said}");
    assert!(said.contains(r#""vendor_name":null"#), "the LEFT JOIN's miss is no value: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typescript_package_compiles_and_validates_real_events() {
    let (s, model, dir, events) = shop_with_events("typescript").await;
    let pkg = dir.join("ts");
    files::write(&pkg, &render_files(&model, Lang::TypeScript, None)).unwrap();
    let (ok, said) = run(Command::new("tsc").arg("-p").arg(&pkg));
    assert!(ok, "tsc -p on the generated package (tsc comes from scripts/setup): {said}");
    let event = pascal(&[&s.catalog, "product_changed"]);
    let (ok, said) = run(Command::new("node")
        .arg(fixture("typescript/validate.mjs"))
        .arg(pkg.join("dist/index.js"))
        .arg(&events)
        .arg(&event));
    assert!(ok, "{said}");
    assert!(said.contains(r#""ops":["delete","insert","truncate","update"]"#), "{said}");
    assert!(said.contains("expected a value (the column is NOT NULL)"), "{said}");

    // Strict tsc accepts a correct use and refuses nullable columns used
    // as if they could not be NULL.
    let products = pascal(&[&s.catalog, "products", "v1"]);
    let listing = pascal(&[&s.catalog, "listing", "v1"]);
    let tsc = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("import type {{ {products}, {listing}, {event} }} from \"./ts/src/index.js\";\n{body}"),
        )
        .unwrap();
        run(Command::new("tsc")
            .args(["--strict", "--noEmit", "--target", "es2020", "--module", "es2020"])
            .args(["--moduleResolution", "node"])
            .arg(&path))
    };
    let (ok, said) = tsc(
        "good.ts",
        &format!(
            "export function f(p: {products}, l: {listing}, e: {event}): number {{\n  \
             const row = e.op === \"insert\" || e.op === \"update\" ? e.payload.id : 0;\n  \
             return p.name.length + (p.note ?? \"\").length + l.name.length + (l.vendor_name ?? \"\").length + row;\n}}\n"
        ),
    );
    assert!(ok, "tsc --strict on a correct use: {said}");
    for (name, body) in [
        ("note.ts", format!("export const f = (p: {products}): number => p.note.length;\n")),
        ("join.ts", format!("export const f = (l: {listing}): number => l.vendor_name.length;\n")),
        ("payload.ts", format!("export const f = (e: {event}): number => e.payload.id;\n")),
    ] {
        let (ok, said) = tsc(name, &body);
        assert!(!ok && said.contains("possibly 'null'"), "tsc must refuse {name}: {said}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_go_module_reads_the_views_with_pgx_and_parses_real_events() {
    let (s, model, dir, events) = shop_with_events("go").await;
    let gopath = dir.join("gopath");
    let module = gopath.join("src/deedmodels");
    files::write(&module, &render_files(&model, Lang::Go, None)).unwrap();
    let names = type_names(&s);
    let names: Vec<(&str, &str)> = names.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let probe = gopath.join("src/probe");
    std::fs::create_dir_all(&probe).unwrap();
    std::fs::write(probe.join("main.go"), template("go/main.go.in", &names)).unwrap();
    // GOPATH mode, with pgx v4 from Debian's golang-github-jackc-pgx-v4-dev.
    let go = |args: &[&str], at: &Path| {
        run(Command::new("go")
            .args(args)
            .current_dir(at)
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
            .env("GOCACHE", dir.join("gocache")))
    };
    let (ok, said) = go(&["vet", "."], &module);
    assert!(ok, "go vet on the generated module (go comes from scripts/setup): {said}");
    let (ok, said) = run(Command::new("gofmt").arg("-l").arg(&module));
    assert!(ok && said.trim().is_empty(), "gofmt would change: {said}");
    let (ok, said) = go(&["build", "-o", "probe", "."], &probe);
    assert!(ok, "go build: {said}");
    let (ok, said) =
        run(Command::new(probe.join("probe")).arg(s.db.conninfo_as(&s.orders_login)).arg(&events));
    probe_read_and_parsed(ok, &said);

    // A nullable column is a pointer: using it as a value does not compile.
    let bad = gopath.join("src/bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("main.go"),
        format!(
            "package main\n\nimport \"deedmodels\"\n\nfunc main() {{\n\tvar l deedmodels.{}\n\tvar s string = l.VendorName\n\t_ = s\n}}\n",
            names[1].1
        ),
    )
    .unwrap();
    let (ok, said) = go(&["build", "-o", "bad", "."], &bad);
    assert!(
        !ok && said.contains("*string"),
        "go must refuse a nullable column used as a value: {said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_crate_reads_the_views_with_sqlx_and_parses_real_events() {
    let (s, model, dir, events) = shop_with_events("rust").await;
    let krate = dir.join("rust");
    files::write(&krate, &render_files(&model, Lang::Rust, None)).unwrap();
    let names = type_names(&s);
    let names: Vec<(&str, &str)> = names.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let probe = dir.join("probe");
    std::fs::create_dir_all(probe.join("src")).unwrap();
    std::fs::write(
        probe.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n[dependencies]\n\
         deed-models = { path = \"../rust\" }\nserde_json = \"1\"\n\
         sqlx = { version = \"0.8\", default-features = false, features = [\"runtime-tokio\", \"postgres\"] }\n\
         tokio = { version = \"1\", features = [\"macros\", \"rt\"] }\n",
    )
    .unwrap();
    std::fs::write(probe.join("src/main.rs"), template("rust/main.rs.in", &names)).unwrap();
    // Kept between runs, so only the first builds sqlx.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-rust");
    let cargo = |args: &[&str]| {
        run(Command::new(env!("CARGO"))
            .args(args)
            .current_dir(&probe)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS"))
    };
    // The crate passes rustfmt as it is (its generated module is skipped).
    let (ok, said) = run(Command::new("rustfmt")
        .args(["--check", "--edition", "2021"])
        .arg(krate.join("src/lib.rs")));
    assert!(ok, "rustfmt --check: {said}");
    let (ok, said) = cargo(&["build", "-q"]);
    assert!(ok, "cargo build of the generated crate with sqlx (from crates.io): {said}");
    let (ok, said) = run(Command::new(target.join("debug/probe"))
        .arg(s.db.conninfo_as(&s.orders_login))
        .arg(&events));
    probe_read_and_parsed(ok, &said);

    // A nullable column is an Option: using it as a value does not compile.
    std::fs::write(
        probe.join("src/main.rs"),
        format!("fn main() {{\n    let f = |l: deed_models::{}| -> String {{ l.vendor_name }};\n    let _ = f;\n}}\n", names[1].1),
    )
    .unwrap();
    let (ok, said) = cargo(&["check", "-q"]);
    assert!(
        !ok && said.contains("Option<String>"),
        "rustc must refuse an Option used as a value: {said}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asyncapi_documents_are_valid_and_describe_real_events() {
    let (_s, model, dir, events) = shop_with_events("asyncapi").await;
    let docs = dir.join("asyncapi");
    files::write(&docs, &render_files(&model, Lang::AsyncApi, None)).unwrap();
    let (ok, root) = run(Command::new("npm").args(["root", "-g"]));
    assert!(ok, "npm root -g: {root}");
    let spec = Path::new(root.trim()).join("@asyncapi/specs/schemas/3.0.0.json");
    assert!(
        spec.exists(),
        "{} is missing: run scripts/setup (it installs @asyncapi/specs)",
        spec.display()
    );
    let (ok, said) = run(Command::new("python3")
        .arg(fixture("asyncapi/validate.py"))
        .arg(&docs)
        .arg(&spec)
        .arg(&events));
    assert!(ok, "{said}");
    assert!(said.contains(r#""ops": ["delete", "insert", "truncate", "update"]"#), "{said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_null_is_checked_against_the_data_at_apply_and_types_the_column() {
    let s = shop().await;
    let admin = s.db.client().await;
    admin
        .batch_execute(
            "INSERT INTO public.vendors VALUES (1, 'acme');
             INSERT INTO public.products (id, name, price, vendor_id) VALUES (1, 'pen', 1, 1), (2, 'ink', 2, NULL);",
        )
        .await
        .unwrap();
    let stated = s.text.replace(
        "LEFT JOIN public.vendors v ON v.id = p.vendor_id\"\n",
        "LEFT JOIN public.vendors v ON v.id = p.vendor_id\"\nnot_null = [\"vendor_name\"]\n",
    );
    assert_ne!(stated, s.text);
    let manifest = Manifest::parse(Path::new("deed.toml"), &stated, &|_| None).unwrap();
    // One product has no vendor: the statement is false, apply refuses.
    let refused = deed_contracts::apply(&s.db.deed_client().await, &manifest, Date::today(), &[])
        .await
        .err()
        .expect("a NULL in a not_null column must refuse the apply");
    let said = refused.to_string();
    assert!(
        said.contains("nothing was changed")
            && said.contains("vendor_name is never NULL, but 1 rows")
            && said.contains("deed.toml:"),
        "{said}"
    );
    // A column the query's view does not have is refused too.
    let wrong = stated.replace("not_null = [\"vendor_name\"]", "not_null = [\"vendor\"]");
    let wrong = Manifest::parse(Path::new("deed.toml"), &wrong, &|_| None).unwrap();
    let said = deed_contracts::apply(&s.db.deed_client().await, &wrong, Date::today(), &[])
        .await
        .err()
        .expect("not_null naming a column the view lacks")
        .to_string();
    assert!(said.contains("not_null names vendor, which"), "{said}");
    // Listed columns are checked when the manifest is read, located.
    let listed = s.text.replace(
        "\"created_at\", \"data\"]\n",
        "\"created_at\", \"data\"]\nnot_null = [\"vendor_id\"]\n",
    );
    assert_ne!(listed, s.text);
    let said = Manifest::parse(Path::new("deed.toml"), &listed, &|_| None).unwrap_err().to_string();
    assert!(
        said.contains("not_null names vendor_id, which is not one of the contract's columns"),
        "{said}"
    );

    // True once the data says so: applied, and the generated column is
    // no longer optional.
    admin.batch_execute("UPDATE public.products SET vendor_id = 1").await.unwrap();
    deed_contracts::apply(&s.db.deed_client().await, &manifest, Date::today(), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let model =
        observe(&s.db.deed_client().await, &manifest, &choose(&manifest, Some(&s.orders)).unwrap())
            .await
            .unwrap();
    let listing = model.contracts.iter().find(|c| c.name == "listing").unwrap();
    let vendor = listing.columns.iter().find(|c| c.name == "vendor_name").unwrap();
    assert!(vendor.not_null && vendor.why.contains("not_null"), "{vendor:?}");
    let products = model.contracts.iter().find(|c| c.name == "products").unwrap();
    assert!(!products.columns.iter().find(|c| c.name == "note").unwrap().not_null);
}

/// Every package carries the queries it runs (`deed-queries.sql`), so
/// `deed check --consumer` checks them beside the application's own SQL:
/// they pass while the consumer declares what they read, and a committed
/// package that reads a version the consumer no longer declares is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_packages_queries_pass_the_consumer_check() {
    let s = shop().await;
    let model = observe(
        &s.db.deed_client().await,
        &s.manifest,
        &choose(&s.manifest, Some(&s.orders)).unwrap(),
    )
    .await
    .unwrap();
    let dir = out_dir("consumer");
    for (lang, name) in
        [(Lang::Python, "python"), (Lang::TypeScript, "ts"), (Lang::Rust, "rust"), (Lang::Go, "go")]
    {
        files::write(&dir.join(name), &render_files(&model, lang, Some(&s.orders))).unwrap();
    }
    let placeholders = deed_sql::Placeholders::default();
    let o = deed_check::check_consumer(&s.manifest, &s.orders, &dir, placeholders)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((o.files, o.statements), (4, 8), "{o:?}");
    assert!(o.violations.is_empty(), "{:?}", o.violations);

    // The consumer stops declaring the listing: its committed models'
    // reads of it are found, in every language.
    let text = s.text.replace(
        &format!("reads = [\"{0}.products.v1\", \"{0}.listing.v1\"]", s.catalog),
        &format!("reads = [\"{0}.products.v1\"]", s.catalog),
    );
    assert_ne!(text, s.text);
    let fewer = Manifest::parse(Path::new("deed.toml"), &text, &|_| None).unwrap();
    let o = deed_check::check_consumer(&fewer, &s.orders, &dir, placeholders)
        .unwrap_or_else(|e| panic!("{e}"));
    let found: Vec<String> = o.violations.iter().map(|v| v.file.clone()).collect();
    assert_eq!(found.len(), 4, "{:?}", o.violations);
    assert!(
        o.violations.iter().all(|v| v.relation.to_string().ends_with("listing_v1")),
        "{:?}",
        o.violations
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
