use anyhow::{Result, bail};

use crate::cli::{Cli, DoctorArgs, Format};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &DoctorArgs) -> Result<Outcome> {
    let manifest = context::manifest(cli)?;
    // A bus that cannot be named is bad input, found before anything else.
    let buses = args
        .buses
        .iter()
        .map(|b| deed_bus::Bus::parse(b).map_err(|e| anyhow::anyhow!("--bus {e}")))
        .collect::<Result<Vec<_>>>()?;
    let url = context::required_url(cli, manifest.as_ref())?;
    let client = deed_pg::connect(&url).await?;
    let observed = deed_doctor::observe(&client, manifest.as_ref()).await?;
    let mut checks = deed_doctor::checks(&observed, manifest.as_ref());
    // The services whose events a bus should hold: those that capture.
    let capturing: Vec<String> = manifest
        .iter()
        .flat_map(|m| m.services.iter())
        .filter(|s| !s.events.is_empty())
        .map(|s| s.name.clone())
        .collect();
    let auth = args.nats.auth();
    for bus in &buses {
        let seen = deed_doctor::observe_bus(bus, &auth, &capturing).await;
        checks.extend(deed_doctor::bus_checks(&seen));
    }
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
