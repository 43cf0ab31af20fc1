use anyhow::{Context, Result, bail};

use super::audit::request;
use crate::cli::{Cli, InitArgs};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &InitArgs) -> Result<Outcome> {
    let path = context::manifest_path(cli);
    // An empty file is what a failed `deed init > deed.toml` leaves.
    let blank = std::fs::read(&path).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace));
    if args.write && path.exists() && !blank && !args.force {
        bail!(
            "{} already exists; pass --force to replace it, or leave out --write to print the proposal",
            path.display()
        );
    }
    // The proposal comes from raw traffic: no manifest attributes it.
    let url = cli.database_url.clone().or_else(|| std::env::var("DATABASE_URL").ok());
    let req = request(&args.sources, None, url)?;
    let outcome = deed_audit::run(&req).await?;
    let origin: Vec<String> =
        outcome.catalogue.sources.iter().map(|s| format!("{} {}", s.kind, s.detail)).collect();
    let proposal = deed_audit::init::propose(&outcome.catalogue, &origin.join(", "));
    if args.write {
        std::fs::write(&path, &proposal).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    } else {
        context::emit(None, &proposal)?;
    }
    Ok(Outcome::Clean)
}
