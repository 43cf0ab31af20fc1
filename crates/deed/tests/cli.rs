//! The `deed` binary as users and CI call it: exit codes, located errors,
//! and the rendered reports.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{code, stderr, stdout};

const MANIFEST: &str = r#"version = 1

[services.catalog]
owns = ["public.products", "public.vendors"]
logins = ["catalog_svc"]

[[services.catalog.contracts]]
name = "products"
version = 1
from = "public.products"
columns = ["id", "name", "price_cents"]

[services.orders]
owns = ["public.orders", "public.order_items"]
logins = ["orders_svc"]

[services.fulfillment]
owns = ["public.shipments"]
logins = ["fulfillment_svc"]
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let p = Project { dir: tempfile::tempdir().unwrap() };
        p.write("deed.toml", MANIFEST);
        p.write(
            "orders/queries.sql",
            "-- orders reads the catalog directly\nSELECT * FROM products WHERE id = $1;\n\
             INSERT INTO orders (user_id, status) VALUES ($1, 'placed');\n",
        );
        p.write(
            "fulfillment/.sqlx/query-5f1d.json",
            r#"{"db_name":"PostgreSQL","query":"UPDATE orders SET status = 'shipped' WHERE id = $1","describe":{},"hash":"5f1d"}"#,
        );
        p.write("fulfillment/ship.sql", "SELECT o.id, p.name FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id;\n");
        p.write("catalog/own.sql", "UPDATE products SET price_cents = 1 WHERE id = 2;\n");
        p
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn deed(&self, args: &[&str]) -> Output {
        self.deed_stdin(args, None)
    }

    fn deed_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = support::deed(self.dir.path())
            .args(args)
            .env_remove("DATABASE_URL")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }
}

const SHIPPED_SQL: [&str; 6] =
    ["--from-sql", "orders", "--service", "orders", "--from-sql", "fulfillment"];

fn audit_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["audit"];
    args.extend(SHIPPED_SQL);
    args.extend(["--service", "fulfillment", "--from-sql", "catalog", "--service", "catalog"]);
    args.extend(extra);
    args
}

#[test]
fn violations_exit_1_and_render_as_a_table() {
    let p = Project::new();
    let out = p.deed(&audit_args(&[]));
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    insta::assert_snapshot!(
        "audit_table",
        stdout(&out).replace(&p.dir.path().display().to_string(), "<dir>")
    );
}

#[test]
fn no_violations_exit_0() {
    let p = Project::new();
    let out = p.deed(&["audit", "--from-sql", "catalog", "--service", "catalog"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("No findings"));
}

#[test]
fn json_has_the_documented_shape() {
    let p = Project::new();
    let out = p.deed(&audit_args(&["--format", "json"]));
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let accesses = v["accesses"].as_array().unwrap();
    let star = accesses
        .iter()
        .find(|a| a["service"] == "orders" && a["relation"] == "public.products")
        .expect("orders reads products");
    assert_eq!(star["access"], "read");
    assert_eq!(star["calls"], 1);
    assert_eq!(star["select_star"], true);
    for a in accesses {
        for key in ["service", "relation", "access", "calls", "select_star"] {
            assert!(a.get(key).is_some(), "access without {key}: {a}");
        }
        assert!(a["relation"].as_str().unwrap().contains('.'), "not schema-qualified: {a}");
    }
    let violations = v["violations"].as_array().unwrap();
    let rules: Vec<String> = violations
        .iter()
        .map(|x| {
            format!(
                "{} {} {}",
                x["rule"].as_str().unwrap(),
                x["service"].as_str().unwrap(),
                x["relation"].as_str().unwrap()
            )
        })
        .collect();
    insta::assert_snapshot!(rules.join("\n"), @r"
    foreign-write fulfillment public.orders
    foreign-read fulfillment public.order_items
    foreign-read fulfillment public.orders
    foreign-read fulfillment public.products
    foreign-read orders public.products
    select-star orders public.products
    multiple-writers fulfillment public.orders
    ");
    for x in violations {
        assert!(x["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn markdown_for_pull_requests() {
    let p = Project::new();
    let out = p.deed(&audit_args(&["--format", "markdown"]));
    assert_eq!(code(&out), 1);
    insta::assert_snapshot!(
        "audit_markdown",
        stdout(&out).replace(&p.dir.path().display().to_string(), "<dir>")
    );
}

#[test]
fn html_is_one_self_contained_page_with_a_graph() {
    let p = Project::new();
    let out = p.deed(&audit_args(&["--format", "html", "--output", "audit.html"]));
    assert_eq!(code(&out), 1);
    let html = std::fs::read_to_string(p.path("audit.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<svg") && html.contains("</svg>"));
    assert!(!html.contains("<script src") && !html.contains("<link "), "must not load anything");
    for needle in ["foreign-write", "select-star", "public.order_items", "fulfillment"] {
        assert!(html.contains(needle), "missing {needle}");
    }
}

#[test]
fn malformed_manifest_is_located() {
    let p = Project::new();
    p.write("deed.toml", "version = 1\n[services.orders]\nowns = [\"public.orders\"]\nreads = [\"catalog.products.v9\"]\n");
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("deed.toml:4:10: unknown contract version catalog.products.v9"), "{err}");
    p.write("deed.toml", "version = 1\n[services.orders]\nowns = [\"public.orders\"\n");
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("deed.toml:3:"), "{}", stderr(&out));
}

#[test]
fn explicit_missing_manifest_is_an_error() {
    let p = Project::new();
    let out = p.deed(&[
        "audit",
        "--manifest",
        "nope.toml",
        "--from-sql",
        "orders",
        "--service",
        "orders",
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nope.toml:1:1: cannot read the manifest"), "{}", stderr(&out));
}

#[test]
fn invalid_sql_is_located() {
    let p = Project::new();
    p.write("orders/bad.sql", "SELECT 1;\n\nSELECT id FROM orders WHERE AND status = 'x';\n");
    // Located, and the rest audited; an error with --strict.
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert!(code(&out) <= 1, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("bad.sql:3:29: syntax error at or near \"AND\""),
        "{}",
        stdout(&out)
    );
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders", "--strict"]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("--strict: 1 statement could not be read"), "{err}");
}

#[test]
fn non_utf8_inputs_are_located() {
    let p = Project::new();
    p.write("orders/latin1.sql", b"SELECT 1;\nSELECT 'caf\xe9';\n");
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("latin1.sql:2:12: not valid UTF-8"), "{}", stderr(&out));

    p.write("deed.toml", b"version = 1\n# caf\xe9\n");
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("deed.toml:2:6: the manifest is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
}

/// A csvlog line as PostgreSQL 15 writes it (26 fields).
fn csv_line(user: &str, app: &str, message: &str) -> String {
    format!(
        "2026-11-21 10:00:00.000 UTC,\"{user}\",\"shop\",123,\"127.0.0.1:5000\",6543a.1,1,\"SELECT\",2026-11-21 10:00:00 UTC,3/4,0,LOG,00000,\"{}\",,,,,,,,,\"{app}\",client backend,,0\n",
        message.replace('"', "\"\"")
    )
}

#[test]
fn logs_plain_gzip_and_stdin() {
    let p = Project::new();
    let mut log = String::new();
    for i in 0..50 {
        log.push_str(&csv_line(
            "orders_svc",
            "",
            &format!("statement: SELECT * FROM products WHERE id = {i}"),
        ));
        log.push_str(&csv_line(
            "etl",
            "nightly",
            &format!(
                "duration: 0.1 ms  execute <unnamed>: UPDATE orders SET status = 'x' WHERE id = {i}"
            ),
        ));
        log.push_str(&csv_line("orders_svc", "", "connection authorized: user=orders_svc"));
    }
    p.write("pg.csv", &log);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(log.as_bytes()).unwrap();
    p.write("pg.csv.gz", gz.finish().unwrap());
    let plain = p.deed(&["audit", "--from-log", "pg.csv", "--format", "json"]);
    let zipped = p.deed(&["audit", "--from-log", "pg.csv.gz", "--format", "json"]);
    let piped =
        p.deed_stdin(&["audit", "--from-log", "-", "--format", "json"], Some(log.as_bytes()));
    for out in [&plain, &zipped, &piped] {
        assert_eq!(code(out), 1, "{}", stderr(out));
    }
    let accesses = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["accesses"].clone()
    };
    assert_eq!(accesses(&plain), accesses(&zipped));
    assert_eq!(accesses(&plain), accesses(&piped));
    let v: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    let etl = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["service"] == "unknown:etl" && a["access"] == "write")
        .unwrap();
    assert_eq!(etl["calls"], 50);
    assert_eq!(v["distinct_statements"], 2);
}

#[test]
fn corrupt_log_lines_are_located() {
    let p = Project::new();
    let mut log = csv_line("orders_svc", "", "statement: SELECT 1");
    log.push_str("this is not a csvlog line\n");
    p.write("bad.csv", &log);
    let out = p.deed(&["audit", "--from-log", "bad.csv"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("bad.csv:2: not a PostgreSQL csvlog row: 1 fields"),
        "{}",
        stderr(&out)
    );

    p.write("bad.json", "{\"user\":\"a\",\"message\":\"statement: SELECT 1\"}\n{\"user\": oops}\n");
    let out = p.deed(&["audit", "--from-log", "bad.json"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("bad.json:2:10: not a jsonlog entry"), "{}", stderr(&out));

    let mut bytes = csv_line("orders_svc", "", "statement: SELECT 1").into_bytes();
    bytes.extend_from_slice(
        &csv_line("orders_svc", "", "statement: SELECT 'caf?'")
            .into_bytes()
            .iter()
            .map(|&b| if b == b'?' { 0xe9 } else { b })
            .collect::<Vec<_>>(),
    );
    p.write("latin1.csv", bytes);
    let out = p.deed(&["audit", "--from-log", "latin1.csv"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("latin1.csv:2:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("UTF-8"), "{}", stderr(&out));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(log.as_bytes()).unwrap();
    let mut truncated = gz.finish().unwrap();
    truncated.truncate(truncated.len() / 2);
    p.write("cut.csv.gz", truncated);
    let out = p.deed(&["audit", "--from-log", "cut.csv.gz"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn no_source_is_a_usage_error() {
    let p = Project::new();
    let out = p.deed(&["audit"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("choose at least one source"), "{}", stderr(&out));
}

/// Durations, sizes and choices are read where the arguments are: a bad
/// one is a usage error naming its flag, before anything is connected to.
#[test]
fn bad_durations_sizes_and_choices_are_usage_errors() {
    let p = Project::new();
    for (args, says) in [
        (&["status", "--max-lag", "5x"][..], "--max-lag"),
        (&["status", "--max-retained-wal", "2XB"], "write a size such as"),
        (&["status", "--max-compare-age", "99999999999999999999999d"], "write a duration such as"),
        (&["cutover", "orders.products", "--max-age=-1h"], "--max-age"),
        (
            &["relay", "--service", "catalog", "--stream-retention", "forever"],
            "[possible values: limits, interest]",
        ),
        (&["split", "catalog", "--status", "--rollback"], "cannot be used with"),
        (&["split", "catalog", "--finish", "--cutover"], "cannot be used with"),
        (&["audit", "--from-log", "x.csv", "--max-line-bytes", "lots"], "--max-line-bytes"),
    ] {
        let out = p.deed(args);
        assert_eq!(code(&out), 2, "deed {args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "deed {args:?}: {}", stderr(&out));
    }
    // Zero is a size, but not a limit.
    let out = p.deed(&["audit", "--from-log", "x.csv", "--max-line-bytes", "0"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--max-line-bytes 0: give a size above zero"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn init_proposes_a_valid_manifest_and_never_overwrites_silently() {
    let p = Project::new();
    let mut log = String::new();
    for i in 0..3 {
        log.push_str(&csv_line(
            "catalog_svc",
            "",
            &format!("statement: UPDATE products SET price_cents = {i} WHERE id = 1"),
        ));
        log.push_str(&csv_line(
            "orders_svc",
            "",
            "statement: SELECT id, name FROM products WHERE id = 1",
        ));
        log.push_str(&csv_line(
            "orders_svc",
            "",
            "statement: INSERT INTO orders (user_id) VALUES (1)",
        ));
        log.push_str(&csv_line(
            "fulfillment_svc",
            "",
            "statement: UPDATE orders SET status = 's' WHERE id = 1",
        ));
    }
    p.write("pg.csv", &log);
    std::fs::remove_file(p.path("deed.toml")).unwrap();
    let out = p.deed(&["init", "--from-log", "pg.csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let proposal = stdout(&out);
    insta::assert_snapshot!(
        "init_proposal",
        proposal.replace(&p.dir.path().display().to_string(), "<dir>")
    );
    deed_manifest::Manifest::parse(Path::new("proposal.toml"), &proposal, &|_| {
        Some("postgres://x".into())
    })
    .unwrap_or_else(|e| panic!("the proposal is not a valid manifest:\n{e}\n{proposal}"));
    // Uncommenting a proposed contract, as the comment says, keeps it valid.
    let uncommented: Vec<String> = proposal
        .lines()
        .map(|l| {
            let t = l.strip_prefix("# ").unwrap_or(l);
            let key = ["[[services.", "name = ", "version = ", "from = ", "columns = "];
            if l.starts_with("# ") && key.iter().any(|k| t.starts_with(k)) {
                t.split("   #").next().unwrap().to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let uncommented = uncommented.join("\n");
    assert!(uncommented.contains("[[services.catalog.contracts]]"), "{uncommented}");
    deed_manifest::Manifest::parse(Path::new("proposal.toml"), &uncommented, &|_| {
        Some("postgres://x".into())
    })
    .unwrap_or_else(|e| panic!("uncommented, the proposal is invalid:\n{e}\n{uncommented}"));

    let out = p.deed(&["init", "--from-log", "pg.csv", "--write"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(p.path("deed.toml")).unwrap(), proposal);
    p.write("deed.toml", "# mine\n");
    let out = p.deed(&["init", "--from-log", "pg.csv", "--write"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("already exists; pass --force"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(p.path("deed.toml")).unwrap(), "# mine\n");
    let out = p.deed(&["init", "--from-log", "pg.csv", "--write", "--force"]);
    assert_eq!(code(&out), 0);
    assert_eq!(std::fs::read_to_string(p.path("deed.toml")).unwrap(), proposal);
}

/// A psql script as pg_dump or a hand-written migration has it: a
/// byte-order mark, meta-commands, variables, COPY data, and one statement
/// the parser rejects. Everything else is audited; the bad one is a
/// located warning, or an error with --strict.
#[test]
fn psql_scripts_are_read_as_psql_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("sql");
    std::fs::create_dir(&sql).unwrap();
    std::fs::write(
        sql.join("dump.sql"),
        "\u{feff}\\restrict abc123\n\\set ON_ERROR_STOP on\nSET search_path = sales;\n\
         COPY orders (id, total) FROM stdin;\n1\t10\n2\t20\n\\.\n\
         SELECT name FROM customers WHERE id = :'cust';\n\
         SELEC broken;\n\
         \\copy invoices to 'x.csv'\n\
         INSERT INTO public.audit_log (msg) VALUES (%(msg)s);\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args =
            vec!["audit", "--from-sql", "sql", "--service", "billing", "--format", "json"];
        args.extend(extra);
        support::deed(dir.path()).args(&args).env_remove("DATABASE_URL").output().unwrap()
    };
    let out = run(&[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<String> = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["relation"].as_str().unwrap(), a["access"].as_str().unwrap()))
        .collect();
    seen.sort();
    assert_eq!(seen, ["public.audit_log write", "sales.customers read", "sales.orders write"]);
    assert_eq!(
        v["sources"][0]["warnings"],
        serde_json::json!(["sql/dump.sql:9:1: syntax error at or near \"SELEC\""])
    );
    let out = run(&["--strict"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
}

/// The SQL of Python and Go services, placeholders as their drivers write
/// them: audited and checked like any other.
#[test]
fn driver_placeholders_are_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let py = dir.path().join("py");
    let go = dir.path().join("go");
    std::fs::create_dir_all(&py).unwrap();
    std::fs::create_dir_all(&go).unwrap();
    std::fs::write(
        py.join("queries.sql"),
        "SELECT id, email FROM users WHERE id = %(user_id)s;\n\
         UPDATE orders SET status = %s WHERE id = %s;\n\
         SELECT total FROM orders WHERE id = :order_id AND data ? 'gift';\n",
    )
    .unwrap();
    std::fs::write(
        go.join("queries.sql"),
        "SELECT name FROM products WHERE id = ? AND vendor = ?;\n",
    )
    .unwrap();
    let out = support::deed(dir.path())
        .args([
            "audit",
            "--from-sql",
            "py",
            "--service",
            "orders",
            "--from-sql",
            "go",
            "--service",
            "catalog",
            "--placeholders",
            "auto",
            "--placeholders",
            "qmark",
            "--format",
            "json",
        ])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(code(&out) <= 1, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<String> = v["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["service"].as_str().unwrap(),
                a["relation"].as_str().unwrap(),
                a["access"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "catalog public.products read",
            "orders public.orders read",
            "orders public.orders write",
            "orders public.users read"
        ]
    );
    let warnings: Vec<&serde_json::Value> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["warnings"].as_array().unwrap())
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// `deed init > deed.toml` that fails leaves an empty file: it neither
/// blocks `init --write` nor reads as a broken manifest without saying so;
/// a proposal from SQL files, which name no role, marks the logins to fill.
#[test]
fn an_empty_manifest_is_taken_for_what_it_is() {
    let p = Project::new();
    p.write("deed.toml", "\n");
    let out = p.deed(&["plan"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("the manifest is empty"), "{}", stderr(&out));
    assert!(stderr(&out).contains("deed init --write"), "{}", stderr(&out));
    std::fs::create_dir(p.path("sql")).unwrap();
    p.write("sql/q.sql", "UPDATE products SET price_cents = 1 WHERE id = 1;\n");
    let out = p.deed(&["init", "--from-sql", "sql", "--service", "catalog", "--write"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let written = std::fs::read_to_string(p.path("deed.toml")).unwrap();
    assert!(written.contains("[services.catalog]"), "{written}");
    assert!(written.contains("logins = []  # TO FILL"), "{written}");
}

/// An unknown key holding a secret is named, never its value: not in the
/// quoted line, not in the message, whatever the error (plain, inline
/// table, dotted, multi-line string).
#[test]
fn a_secret_in_the_manifest_is_never_echoed() {
    let p = Project::new();
    let cases = [
        ("password = \"hunter2-plain\"", "deed.toml:4:1"),
        ("db = { user = \"u\", passwd = \"hunter2-inline\" }", "deed.toml:4:1"),
        ("api_token = 'hunter2-literal'", "deed.toml:4:1"),
        ("secret = \"\"\"\nhunter2-multi\n\"\"\"", "deed.toml:4:1"),
        ("logins = [\"a\"]\nlogins.api_key = \"hunter2-dotted\"", "deed.toml:"),
    ];
    for (extra, at) in cases {
        let text =
            MANIFEST.replacen("[services.catalog]\n", &format!("[services.catalog]\n{extra}\n"), 1);
        p.write("deed.toml", text);
        let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
        assert_eq!(code(&out), 2, "{extra}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(at), "{extra}: {err}");
        assert!(!err.contains("hunter2"), "{extra}: the secret was printed:\n{err}");
    }
}

/// A megabytes-long line in any input is quoted by a window of it, and
/// a million bad entries by a page of problems.
#[test]
fn huge_bad_input_is_quoted_briefly() {
    let p = Project::new();
    let long = MANIFEST.replacen(
        "[services.catalog]\n",
        &format!("[services.catalog]\ndescription = \"{}\n", "x".repeat(5 << 20)),
        1,
    );
    p.write("deed.toml", long);
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("deed.toml:4:"), "{}", stderr(&out));
    assert!(out.stderr.len() < 2000, "{} bytes of stderr", out.stderr.len());

    let many = MANIFEST.replacen(
        "owns = [\"public.products\", \"public.vendors\"]",
        &format!("owns = [{}\"public.products\"]", "\"bad\", ".repeat(200_000)),
        1,
    );
    p.write("deed.toml", many);
    let out = p.deed(&["audit", "--from-sql", "orders", "--service", "orders"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("more problems not shown"), "{}", &stderr(&out)[..500]);
    assert!(out.stderr.len() < 100_000, "{} bytes of stderr", out.stderr.len());

    p.write("deed.toml", MANIFEST);
    p.write("big/q.sql", format!("SELECT {} FROM;\n", "y".repeat(900 << 10)));
    let out = p.deed(&["audit", "--from-sql", "big", "--service", "orders"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("did not parse"), "{shown}");
    assert!(out.stdout.len() + out.stderr.len() < 4000, "{} bytes shown", shown.len());
}

/// Every input error names its file, and its line where it has one.
#[test]
fn input_errors_name_their_file() {
    let p = Project::new();
    let mut log = String::new();
    for i in 0..3000 {
        log.push_str(&csv_line(
            "orders_svc",
            "",
            &format!("statement: SELECT {i} * 7919 % 104729"),
        ));
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(log.as_bytes()).unwrap();
    let mut cut = gz.finish().unwrap();
    cut.truncate(cut.len() * 2 / 3);
    p.write("cut.csv.gz", cut);
    let out = p.deed(&["audit", "--from-log", "cut.csv.gz"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("cut.csv.gz:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    std::fs::create_dir_all(p.path("zero")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", p.path("zero/a.sql")).unwrap();
    let out = p.deed(&["audit", "--from-sql", "zero", "--service", "orders"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("zero/a.sql"), "{}", stderr(&out));

    std::fs::create_dir_all(p.path("pipe")).unwrap();
    let fifo = p.path("pipe/b.sql");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let out = p.deed(&["audit", "--from-sql", "pipe", "--service", "orders"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("pipe/b.sql: not a regular file"), "{}", stderr(&out));
}

/// `deed man` writes a page per command from the clap definitions, which
/// `man` renders (`man deed-split` after the documented install), and
/// `deed completions` prints a script each shell loads.
#[test]
fn man_pages_and_completions_come_from_the_arguments() {
    let p = Project::new();
    let out = p.deed(&["man", "--out", "man1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for page in ["deed.1", "deed-split.1", "deed-generate.1", "deed-contract-bump.1"] {
        assert!(p.path("man1").join(page).is_file(), "{page}: {}", stdout(&out));
    }
    let shown = Command::new("man")
        .arg("-l")
        .arg(p.path("man1/deed-split.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man (Debian's man-db) renders the page");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    assert!(text.contains("deed-split") && text.contains("--rollback"), "{text}");

    let out = p.deed(&["completions", "bash"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = stdout(&out);
    assert!(script.contains("_deed()") && script.contains("generate"), "{script}");
    let checked = Command::new("bash").arg("-n").arg("-c").arg(&script).output().unwrap();
    assert!(checked.status.success(), "bash -n: {}", String::from_utf8_lossy(&checked.stderr));
}
