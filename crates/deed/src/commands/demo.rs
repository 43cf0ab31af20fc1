use anyhow::Result;

use crate::cli::{Cli, DemoArgs};
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &DemoArgs) -> Result<Outcome> {
    let options = deed_demo::DemoOptions {
        database_url: cli.database_url.clone(),
        keep: args.keep,
        html: args.html.clone(),
        deed_exe: std::env::current_exe().ok(),
        bus: match &args.nats {
            Some(url) => Some(url.clone()),
            None => deed_demo::bus_url(&args.bus)?,
        },
        full_plan: args.full_plan,
    };
    deed_demo::run(&options).await?;
    Ok(Outcome::Clean)
}
