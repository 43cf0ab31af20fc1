//! A csvlog the way a busy shared database writes one with
//! `log_min_duration_statement = 0`: several services' roles, a few hundred
//! statement shapes (simple and extended protocol), literals that vary on
//! every line, multi-line statements, and the usual non-statement noise
//! (connections, checkpoints, errors).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::rng::Rng;

const SERVICES: [(&str, &str); 6] = [
    ("catalog_svc", "catalog-api"),
    ("orders_svc", "orders-api"),
    ("fulfillment_svc", "fulfillment-worker"),
    ("users_svc", "users-api"),
    ("billing_svc", "billing"),
    ("reporting", "metabase"),
];

const WORDS: [&str; 12] = [
    "alpha", "bravo", "it's", "delta", "échelle", "foxtrot", "O'Brien", "hotel", "india", "juliet",
    "kilo", "lima",
];

pub struct Stats {
    pub bytes: u64,
    pub entries: u64,
    pub statements: u64,
    pub shapes: usize,
}

/// One statement shape: a template whose `{i}`, `{s}`, `{t}` and `{list}`
/// holes are filled with fresh literals on every use.
struct Shape {
    template: String,
    service: usize,
    extended: bool,
}

fn shapes(count: usize) -> Vec<Shape> {
    let mut out = Vec::with_capacity(count);
    let mut n = 0usize;
    while out.len() < count {
        let table =
            format!("t{:02}_{}", n % 40, ["orders", "items", "products", "users", "events"][n % 5]);
        let other = format!(
            "t{:02}_{}",
            (n + 7) % 40,
            ["orders", "items", "products", "users", "events"][(n + 2) % 5]
        );
        let col = format!("c{}", n % 9);
        let template = match (n / 40) % 8 {
            0 => format!("SELECT id, name, {col}, updated_at FROM {table} WHERE id = {{i}}"),
            1 => format!(
                "SELECT * FROM {table} WHERE {col} = '{{s}}' ORDER BY created_at DESC LIMIT {{i}}"
            ),
            2 => format!(
                "SELECT a.id, a.{col}, b.name\n  FROM {table} a\n  JOIN {other} b ON b.id = a.ref_id\n WHERE a.created_at > '{{t}}' AND b.status IN ({{list}})"
            ),
            3 => format!(
                "INSERT INTO {table} (name, {col}, status, created_at) VALUES ('{{s}}', {{i}}, 'new', '{{t}}') RETURNING id"
            ),
            4 => format!(
                "UPDATE {table} SET {col} = {col} + {{i}}, updated_at = now() WHERE id = {{i}} AND status <> '{{s}}'"
            ),
            5 => format!("DELETE FROM {table} WHERE created_at < '{{t}}' AND id IN ({{list}})"),
            6 => format!(
                "WITH recent AS (SELECT ref_id, count(*) AS n FROM {table} WHERE created_at > '{{t}}' GROUP BY ref_id)\nSELECT o.id, r.n FROM {other} o JOIN recent r ON r.ref_id = o.id WHERE o.{col} > {{i}}"
            ),
            _ => format!(
                "SELECT {col}, sum(amount_cents) AS total FROM {table} WHERE tenant_id = {{i}} AND kind = '{{s}}' GROUP BY {col} HAVING sum(amount_cents) > {{i}}"
            ),
        };
        out.push(Shape { template, service: n % SERVICES.len(), extended: n % 3 != 0 });
        n += 1;
    }
    out
}

fn fill(template: &str, rng: &mut Rng, out: &mut String) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').expect("closed hole");
        match &rest[open + 1..close] {
            "i" => out.push_str(&rng.below(1_000_000).to_string()),
            "s" => {
                let w = rng.pick(&WORDS).replace('\'', "''");
                out.push_str(&w);
                out.push_str(&rng.below(1000).to_string());
            }
            "t" => out.push_str(&format!(
                "2026-{:02}-{:02} {:02}:{:02}:00",
                1 + rng.below(12),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60)
            )),
            "list" => {
                let k = 1 + rng.below(6);
                for j in 0..k {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&rng.below(10_000).to_string());
                }
            }
            other => panic!("unknown hole {other}"),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
}

fn csv_quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

pub fn generate(
    path: &Path,
    target_bytes: u64,
    shape_count: usize,
    seed: u64,
) -> std::io::Result<Stats> {
    let shapes = shapes(shape_count);
    let mut rng = Rng::new(seed);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut stats = Stats { bytes: 0, entries: 0, statements: 0, shapes: shapes.len() };
    let mut line = String::with_capacity(4096);
    let mut sql = String::with_capacity(2048);
    let mut second: u64 = 0;
    while stats.bytes < target_bytes {
        line.clear();
        sql.clear();
        second += rng.below(3);
        let ts = format!(
            "2026-11-{:02} {:02}:{:02}:{:02}.{:03} UTC",
            1 + (second / 86_400) % 28,
            (second / 3600) % 24,
            (second / 60) % 60,
            second % 60,
            rng.below(1000)
        );
        let pid = 10_000 + rng.below(200);
        let roll = rng.below(100);
        let (user, app, message) = if roll < 3 {
            let (u, a) = *rng.pick(&SERVICES);
            (u, a, format!("connection authorized: user={u} database=shop application_name={a}"))
        } else if roll < 4 {
            (
                "",
                "",
                "checkpoint complete: wrote 1234 buffers (7.5%); 0 WAL file(s) added".to_string(),
            )
        } else {
            let shape = rng.pick(&shapes);
            let (u, a) = SERVICES[shape.service];
            fill(&shape.template, &mut rng, &mut sql);
            stats.statements += 1;
            let duration = format!("{}.{:03}", rng.below(40), rng.below(1000));
            let message = if shape.extended {
                format!("duration: {duration} ms  execute <unnamed>: {sql}")
            } else {
                format!("duration: {duration} ms  statement: {sql}")
            };
            (u, a, message)
        };
        line.push_str(&ts);
        line.push(',');
        csv_quote(user, &mut line);
        line.push_str(",\"shop\",");
        line.push_str(&pid.to_string());
        line.push_str(",\"10.0.0.7:51234\",6543a1b2.");
        line.push_str(&format!("{pid:x},{},", rng.below(100_000)));
        line.push_str("\"SELECT\",2026-11-01 00:00:00 UTC,3/1234,0,LOG,00000,");
        csv_quote(&message, &mut line);
        line.push_str(",,,,,,,,,");
        csv_quote(app, &mut line);
        line.push_str(",client backend,,0\n");
        w.write_all(line.as_bytes())?;
        stats.bytes += line.len() as u64;
        stats.entries += 1;
    }
    w.flush()?;
    Ok(stats)
}
