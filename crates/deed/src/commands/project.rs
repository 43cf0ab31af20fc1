//! `deed project`: runs a service's projections.

use std::sync::Arc;

use anyhow::{Result, bail};
use deed_project::{Metrics, ProjectOptions};

use super::relay::{init_logs, shutdown_signal};
use crate::cli::{Cli, Format, ProjectArgs};
use crate::context;
use crate::exit::Outcome;

pub async fn run(cli: &Cli, args: &ProjectArgs) -> Result<Outcome> {
    init_logs(args.log_format);
    let manifest = context::required_manifest(cli)?;
    let shared = context::required_url(cli, Some(&manifest))?;
    let Some(service) = manifest.service(&args.service) else {
        bail!("the manifest has no service {:?}", args.service);
    };
    let env = |name: &str| std::env::var(name).ok();
    let own = manifest.service_database_url(service, &env)?;
    if args.batch == 0 || args.chunk == 0 {
        bail!("--batch and --chunk must be at least 1");
    }
    let target = own.unwrap_or_else(|| shared.clone());
    let mut opts = ProjectOptions::new(manifest, &args.service, &shared, &target);
    opts.from = args.from.clone();
    opts.auth = args.nats.auth();
    opts.until_idle = args.until_idle;
    opts.batch = args.batch;
    opts.chunk = args.chunk;
    opts.backfill = args.backfill.clone();
    opts.retry_dead = args.retry_dead;
    opts.shutdown = shutdown_signal();
    let metrics = Arc::new(Metrics::default());
    opts.metrics = metrics.clone();
    if let Some(addr) = args.metrics {
        let endpoints = super::metrics_http::Endpoints::new(
            metrics.registry(&args.service),
            metrics.clone(),
            |m: &Metrics| &m.liveness,
        );
        let bound = super::metrics_http::serve(addr, endpoints).await?;
        tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    }
    let report = deed_project::run(opts).await?;
    for p in &report.projections {
        tracing::info!(
            projection = %p.name,
            applied = p.applied,
            skipped = p.skipped,
            dead_letters = p.dead_letters,
            backfilled_rows = p.backfilled_rows,
            position = %p.position,
            "projector stopped"
        );
    }
    let text = match cli.format {
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        _ => report.render(),
    };
    context::emit(None, &text)?;
    let waiting = report.projections.iter().any(|p| p.dead_letters_waiting > 0);
    Ok(if waiting { Outcome::Findings } else { Outcome::Clean })
}
