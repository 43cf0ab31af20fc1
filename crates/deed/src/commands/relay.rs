use deed_text::plural;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Result, bail};
use deed_relay::{Metrics, RelayOptions, RelayReport};
use tokio::sync::watch;

use crate::cli::{Cli, LogFormat, RelayArgs, Retention, TailArgs};
use crate::context;
use crate::exit::Outcome;

pub(super) fn init_logs(format: Option<LogFormat>) {
    init_logs_at(format, "info,async_nats=warn,tokio_postgres=warn,rustls=warn");
}

/// [`init_logs`] with another default filter (`DEED_LOG` still wins).
pub(super) fn init_logs_at(format: Option<LogFormat>, default: &str) {
    let json = match format {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) => false,
        None => !std::io::stderr().is_terminal(),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
    // A sink that cannot be named is bad input, found before anything else.
    let sink = deed_bus::Bus::parse(&args.to).map_err(|e| anyhow::anyhow!("--to {e}"))?.kind();
    let shutdown = shutdown_signal();
    let metrics = std::sync::Arc::new(Metrics::default());
    if let Some(addr) = args.metrics {
        let endpoints = super::metrics_http::Endpoints::new(
            metrics.registry(&args.service, sink),
            metrics.clone(),
            |m: &Metrics| &m.liveness,
        );
        let bound = super::metrics_http::serve(addr, endpoints).await?;
        tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    }
    let mut total = RelayReport::default();
    let mut moved_from: Option<String> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        // Read again after a move: the split wrote the service's database.
        let manifest = context::required_manifest(cli)?;
        let url = context::required_url(cli, Some(&manifest))?;
        let env = |name: &str| std::env::var(name).ok();
        let sides = match deed_relay::locate::locate(&url, &manifest, &args.service, &env).await {
            Ok(s) if moved_from.as_deref() != Some(s.live.as_str()) => s,
            // The split that moved the writes has not recorded it yet.
            other if moved_from.is_some() => {
                if let Err(e) = other {
                    tracing::debug!(error = %e, "waiting for the split to record the move");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // A daemon may start before its database (systemd, Kubernetes):
            // it waits, as it does when the database goes away later. A
            // bounded run fails at once.
            Err(e) if !args.until_idle && unreachable(&e) => {
                tracing::warn!(
                    service = %args.service,
                    error = %deed_text::excerpt(&e.to_string(), 300),
                    retry_in_ms = backoff.as_millis() as u64,
                    "cannot reach the database yet; retrying"
                );
                metrics.liveness.retrying(&format!(
                    "cannot reach the database yet: {}",
                    deed_text::excerpt(&e.to_string(), 300)
                ));
                let mut stop = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(Outcome::Clean),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            other => other?,
        };
        backoff = Duration::from_millis(100);
        if let Some(earlier) = &sides.earlier {
            let mut o = options(&manifest, args, earlier, &shutdown, &metrics)?;
            o.until_idle = true;
            match deed_relay::run(o).await {
                Ok(r) => {
                    add(&mut total, &r);
                    // Drained: the slot there has nothing more to give.
                    let shared_side = earlier == &url;
                    let spec = deed_relay::CaptureSpec::from_manifest(&manifest, &args.service)?;
                    if deed_relay::locate::retire_earlier(&url, earlier, &spec, shared_side).await?
                    {
                        tracing::info!(service = %args.service, "dropped the drained capture slot on the side the writes left");
                    }
                }
                // Nothing was ever captured there.
                Err(deed_relay::RelayError::NoSlot { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(service = %args.service, from = %sides.describe(), "reading capture");
        let mut opts = options(&manifest, args, &sides.live, &shutdown, &metrics)?;
        opts.until_idle = args.until_idle;
        let report = deed_relay::run(opts).await?;
        add(&mut total, &report);
        if report.moved && !*shutdown.borrow() {
            moved_from = Some(sides.live.clone());
            continue;
        }
        break;
    }
    tracing::info!(
        events = total.events,
        duplicates = total.duplicates,
        dead_letters = total.dead_letters,
        transactions = total.transactions,
        "relay stopped"
    );
    if args.until_idle {
        context::emit(
            None,
            &format!(
                "deed relay: delivered {} from {} ({}, {})\n",
                plural(total.events, "event", "events"),
                plural(total.transactions, "transaction", "transactions"),
                plural(total.duplicates, "duplicate", "duplicates"),
                plural(total.dead_letters, "dead letter", "dead letters")
            ),
        )?;
    }
    Ok(Outcome::Clean)
}

fn options(
    manifest: &deed_manifest::Manifest,
    args: &RelayArgs,
    url: &str,
    shutdown: &watch::Receiver<bool>,
    metrics: &std::sync::Arc<Metrics>,
) -> Result<RelayOptions> {
    let mut opts = RelayOptions::new(manifest.clone(), &args.service, url, &args.to);
    opts.chunk = args.batch.max(1);
    opts.shutdown = shutdown.clone();
    opts.metrics = metrics.clone();
    opts.stream = stream_settings(args)?;
    opts.auth = args.nats.auth();
    if args.webhook_attempts == 0 {
        bail!("--webhook-attempts 0: give at least 1");
    }
    opts.webhook = deed_relay::sink::WebhookSettings {
        attempts: args.webhook_attempts,
        timeout: args.webhook_timeout.get().max(Duration::from_millis(1)),
        dead_letters: args.webhook_dead_letters.clone(),
        ca: args.webhook_ca.clone(),
        ..Default::default()
    };
    Ok(opts)
}

/// A database that does not answer (down, starting, unreachable), which
/// waiting may fix; not a bad URL, a query the server refused, or a login
/// it refused (no such role, NOLOGIN, a wrong password): someone must fix
/// those, and waiting would hide them.
fn unreachable(e: &deed_relay::RelayError) -> bool {
    match e {
        deed_relay::RelayError::Database(e @ deed_pg::PgError::Connect { .. }) => !e.is_refusal(),
        _ => false,
    }
}

fn stream_settings(args: &RelayArgs) -> Result<deed_relay::sink::StreamSettings> {
    let retention = match args.stream_retention {
        Retention::Limits => deed_relay::sink::settings::RetentionPolicy::Limits,
        Retention::Interest => deed_relay::sink::settings::RetentionPolicy::Interest,
    };
    let kafka = args.to.starts_with("kafka");
    if args.stream_replicas == 0 || (args.stream_replicas > 5 && !kafka) {
        bail!("--stream-replicas {}: JetStream keeps 1 to 5 copies", args.stream_replicas);
    }
    if args.partitions == 0 || args.partitions > 10_000 {
        bail!("--partitions {}: give 1 to 10000", args.partitions);
    }
    let max_age = args.stream_max_age.get();
    let duplicate_window = args.duplicate_window.get();
    let nats = matches!(deed_bus::Bus::parse(&args.to), Ok(deed_bus::Bus::Nats(_)));
    if nats && !max_age.is_zero() && duplicate_window > max_age {
        bail!("--duplicate-window is longer than --stream-max-age: JetStream refuses that");
    }
    Ok(deed_relay::sink::StreamSettings {
        replicas: args.stream_replicas,
        partitions: args.partitions,
        retention,
        max_age,
        duplicate_window,
    })
}

fn add(total: &mut RelayReport, r: &RelayReport) {
    total.events += r.events;
    total.duplicates += r.duplicates;
    total.dead_letters += r.dead_letters;
    total.transactions += r.transactions;
}

pub async fn tail(args: &TailArgs) -> Result<Outcome> {
    // Events go to stdout; only what goes wrong (a cluster not answering
    // yet) to stderr.
    init_logs_at(Some(LogFormat::Text), "warn,async_nats=error");
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
    let bus = deed_bus::Bus::parse(&args.from).map_err(|e| anyhow::anyhow!("--from {e}"))?;
    if let deed_bus::Bus::Webhook(url) = &bus {
        bail!("--from {}", url.not_a_source());
    }
    let auth = args.nats.auth();
    let parse = |raw: &[u8]| print(deed_relay::tail::parse(raw));
    deed_relay::tail::tail_bus(&bus, &auth, service, event, !args.new, args.limit, idle, parse)
        .await?;
    Ok(Outcome::Clean)
}
