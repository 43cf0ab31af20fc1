use anyhow::{Result, bail};

use crate::cli::{Cli, Format};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli) -> Result<Outcome> {
    let manifest = context::manifest(cli)?;
    let url = context::required_url(cli, manifest.as_ref())?;
    let client = deed_pg::connect(&url).await?;
    let observed = deed_doctor::observe(&client, manifest.as_ref()).await?;
    let checks = deed_doctor::checks(&observed, manifest.as_ref());
    let text = match cli.format {
        Format::Json => deed_doctor::json(&checks),
        Format::Table | Format::Markdown => deed_doctor::table(&checks),
        Format::Html => {
            bail!("--format html is available for `deed audit`; use table or json here")
        }
    };
    context::emit(None, &text)?;
    let failed = checks.iter().any(|c| c.level == deed_doctor::Level::Fail);
    Ok(if failed { Outcome::Findings } else { Outcome::Clean })
}
