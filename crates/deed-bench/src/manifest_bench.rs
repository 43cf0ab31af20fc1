//! Validation time of a large manifest: `services` services, each owning
//! three tables with two logins, an application, a contract, a state event
//! and an exception, reading and consuming its neighbour's. Reported as
//! the median of `runs` parses, against the time to parse the same text as
//! plain TOML (the floor).

use crate::stats::median;
use std::path::Path;
use std::time::Instant;

use deed_manifest::Manifest;

pub fn generate(services: usize) -> String {
    let mut t = String::from("version = 1\n[database]\nurl = \"postgres://localhost/shop\"\n");
    for i in 0..services {
        let next = (i + 1) % services;
        t.push_str(&format!(
            r#"
[services.s{i}]
owns = ["public.t{i}_a", "public.t{i}_b", "public.t{i}_c"]
logins = ["s{i}_svc", "s{i}_batch"]
applications = ["s{i}-api"]
reads = ["s{next}.items.v1"]
consumes = ["s{next}.item_changed"]
[[services.s{i}.contracts]]
name = "items"
version = 1
from = "public.t{i}_a"
columns = ["id", "name"]
[[services.s{i}.events]]
name = "item_changed"
from = "public.t{i}_a"
key = ["id"]
contract = "items.v1"
[[services.s{i}.exceptions]]
relation = "public.t{next}_b"
reason = "moving to contracts"
"#
        ));
    }
    t
}

pub fn run(services: usize, runs: usize) -> anyhow::Result<()> {
    let text = generate(services);
    let mut validate = Vec::new();
    let mut toml_only = Vec::new();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let _: toml::Table = toml::from_str(&text)?;
        toml_only.push(start.elapsed());
        let start = Instant::now();
        let m = Manifest::parse(Path::new("deed.toml"), &text, &|_| None)
            .map_err(|e| anyhow::anyhow!("the generated manifest is invalid: {e}"))?;
        validate.push(start.elapsed());
        assert_eq!(m.services.len(), services);
    }
    println!(
        "manifest of {services} services ({} KiB): deed validates it in {:.0} ms (median of {}); parsing the TOML alone takes {:.0} ms",
        text.len() >> 10,
        median(&validate).as_secs_f64() * 1e3,
        runs.max(1),
        median(&toml_only).as_secs_f64() * 1e3,
    );
    Ok(())
}
