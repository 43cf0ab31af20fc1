use deed_text::plural;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use deed_relay::{Metrics, RelayOptions};
use tokio::sync::watch;

use crate::cli::{Cli, LogFormat, RelayArgs, TailArgs};
use crate::context;
use crate::exit::Outcome;

pub(super) fn init_logs(format: Option<LogFormat>) {
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEED_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,async_nats=warn,tokio_postgres=warn,rustls=warn")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Colour only for a person at a terminal.
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().with_ansi(color).try_init()
    };
}

/// SIGTERM and Ctrl-C ask the relay to finish its batch and stop.
pub(super) fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        let _ = tx.send(true);
    });
    rx
}

pub async fn run(cli: &Cli, args: &RelayArgs) -> Result<Outcome> {
    init_logs(args.log_format);
    let manifest = context::required_manifest(cli)?;
    let url = context::required_url(cli, Some(&manifest))?;
    let mut opts = RelayOptions::new(manifest, &args.service, &url, &args.to);
    opts.until_idle = args.until_idle;
    opts.batch = args.batch;
    opts.shutdown = shutdown_signal();
    let metrics = std::sync::Arc::new(Metrics::default());
    opts.metrics = metrics.clone();
    if let Some(addr) = args.metrics {
        let service = args.service.clone();
        let render = std::sync::Arc::new(move || metrics.render(&service));
        let bound = super::metrics_http::serve(addr, render).await?;
        tracing::info!(%bound, "serving metrics on /metrics");
    }
    let report = deed_relay::run(opts).await?;
    tracing::info!(
        events = report.events,
        duplicates = report.duplicates,
        dead_letters = report.dead_letters,
        transactions = report.transactions,
        "relay stopped"
    );
    if args.until_idle {
        context::emit(
            None,
            &format!(
                "deed relay: delivered {} from {} ({}, {})\n",
                plural(report.events, "event", "events"),
                plural(report.transactions, "transaction", "transactions"),
                plural(report.duplicates, "duplicate", "duplicates"),
                plural(report.dead_letters, "dead letter", "dead letters")
            ),
        )?;
    }
    Ok(Outcome::Clean)
}

pub async fn tail(args: &TailArgs) -> Result<Outcome> {
    let Some((service, event)) = args.event.split_once('.') else {
        bail!(
            "{:?}: write <service>.<event>, e.g. catalog.product_changed, or catalog.*",
            args.event
        );
    };
    let print = |v: serde_json::Value| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    };
    let idle = args.idle.map(Duration::from_secs_f64);
    if args.from.starts_with("postgres://") || args.from.starts_with("postgresql://") {
        let kind = if event == "*" { format!("{service}.*") } else { args.event.clone() };
        deed_relay::tail::tail_inbox(&args.from, &kind, args.limit, print).await?;
    } else {
        deed_relay::tail::tail_nats(&args.from, service, event, !args.new, args.limit, idle, print)
            .await?;
    }
    Ok(Outcome::Clean)
}
