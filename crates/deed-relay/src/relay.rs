//! The relay loop: lead, read the slot, deliver, confirm, repeat.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deed_manifest::Manifest;
use tokio::sync::watch;

use crate::error::RelayError;
use crate::leader::{lead, try_lead};
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::sink::Sink;
use crate::source::Source;
use crate::spec::CaptureSpec;
use crate::stream::{Flushed, Stream};

pub struct RelayOptions {
    pub manifest: Manifest,
    pub service: String,
    pub database_url: String,
    pub sink_url: String,
    /// Deliver everything committed when the relay started, then return.
    pub until_idle: bool,
    /// Events handed to the sink at a time.
    pub chunk: usize,
    /// How long to wait when the slot is empty.
    pub poll: Duration,
    /// How often a standby relay checks whether it may take over.
    pub standby_poll: Duration,
    pub metrics: Arc<Metrics>,
    /// Log a warning (once a minute) while the slot retains more WAL.
    pub warn_retained_bytes: i64,
    /// Becomes true on SIGTERM: finish the batch in hand and stop.
    pub shutdown: watch::Receiver<bool>,
    /// The JetStream stream's settings, when it is created.
    pub stream: crate::sink::StreamSettings,
    /// How to sign in to NATS.
    pub auth: deed_bus::NatsAuth,
    /// How to post to a webhook.
    pub webhook: crate::sink::WebhookSettings,
}

impl RelayOptions {
    pub fn new(
        manifest: Manifest,
        service: &str,
        database_url: &str,
        sink_url: &str,
    ) -> RelayOptions {
        RelayOptions {
            manifest,
            service: service.to_string(),
            database_url: database_url.to_string(),
            sink_url: sink_url.to_string(),
            until_idle: false,
            chunk: 1000,
            poll: Duration::from_millis(10),
            standby_poll: Duration::from_millis(250),
            metrics: Arc::new(Metrics::default()),
            warn_retained_bytes: 1 << 30,
            shutdown: watch::channel(false).1,
            stream: crate::sink::StreamSettings::default(),
            auth: deed_bus::NatsAuth::default(),
            webhook: crate::sink::WebhookSettings::default(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RelayReport {
    pub events: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
    pub transactions: u64,
    /// Stopped because `deed split` moved the service's writes to another
    /// database: everything before the move is delivered; the rest comes
    /// from there.
    pub moved: bool,
}

fn now_pg_micros() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    unix - 946_684_800_000_000
}

/// Runs until idle (with `until_idle`), until shutdown, or until an error
/// that retrying cannot fix. Transient failures (the sink or the database
/// unreachable) are retried with backoff, and every retry is counted.
pub async fn run(opts: RelayOptions) -> Result<RelayReport, RelayError> {
    let spec = CaptureSpec::from_manifest(&opts.manifest, &opts.service)?;
    let mut report = RelayReport::default();
    let mut backoff = Duration::from_millis(100);
    let mut presence = Presence::default();
    loop {
        match session(&opts, &spec, &mut report, &mut backoff, &mut presence).await {
            Ok(()) => return Ok(report),
            Err(e @ (RelayError::Setup(_) | RelayError::NoSlot { .. })) => return Err(e),
            // A privilege or a credential refused: someone must grant or
            // fix it, and retrying would only hide that.
            Err(RelayError::Database(e)) if e.is_refusal() => return Err(RelayError::Database(e)),
            Err(e) if opts.until_idle => return Err(e),
            Err(e) => {
                opts.metrics.errors.fetch_add(1, Ordering::Relaxed);
                opts.metrics.leader.store(0, Ordering::Relaxed);
                opts.metrics.liveness.retrying(&e.to_string());
                tracing::warn!(service = %opts.service, error = %e, retry_in_ms = backoff.as_millis() as u64, "relay interrupted; retrying");
                presence.failing(&opts.database_url, &opts.service).await;
                let mut shutdown = opts.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut shutdown) => return Ok(report),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn session(
    opts: &RelayOptions,
    spec: &CaptureSpec,
    report: &mut RelayReport,
    backoff: &mut Duration,
    presence: &mut Presence,
) -> Result<(), RelayError> {
    let m = &opts.metrics;
    let source = Source::connect(&opts.database_url, spec.clone()).await?;
    let spec = source.spec();
    if opts.until_idle {
        // A relay killed a moment ago may still hold the lock until its
        // server session notices; give it a few seconds before refusing.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !try_lead(source.client(), &spec.service).await? {
            if Instant::now() >= deadline {
                return Err(RelayError::Setup(format!(
                    "another relay is delivering {}'s events; it delivers these too",
                    spec.service
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        m.liveness.standby("connected; another relay of the service may be delivering, and this one takes over when it stops");
        let mut shutdown = opts.shutdown.clone();
        tokio::select! {
            r = lead(source.client(), &spec.service, opts.standby_poll) => r?,
            _ = stopped(&mut shutdown) => return Ok(()),
        }
    }
    m.leader.store(1, Ordering::Relaxed);
    m.liveness.working();
    let sink =
        Sink::connect_to(&opts.sink_url, &spec.service, &opts.stream, &opts.auth, &opts.webhook)
            .await?;
    tracing::info!(service = %spec.service, slot = %spec.slot, "delivering");
    // A bounded run ends at the WAL inserted when it started, including
    // commits not yet flushed (with `synchronous_commit = off`).
    let target = if opts.until_idle { Some(source.current_lsn().await?) } else { None };
    let mut watch = Watch::new(report.events);
    let mut stream = Stream::start(&opts.database_url, spec, sink, target).await?;
    let mut shutdown = opts.shutdown.clone();
    loop {
        m.liveness.working();
        if *shutdown.borrow() {
            tracing::info!(service = %spec.service, "shutting down after the last confirmed batch");
            stream.stop().await;
            return Ok(());
        }
        // Cancelling a delivery on shutdown is safe: what it did not
        // confirm is delivered again next time, with the same ids.
        let flushed = tokio::select! {
            r = stream.next(opts.chunk, Duration::from_millis(500)) => r?,
            _ = stopped(&mut shutdown) => None,
        };
        // Reading and delivering work again.
        presence.clear();
        let events = match flushed {
            Some(f) if f.moved || f.finished => {
                record(opts, report, backoff, &f);
                stream.stop().await;
                if f.moved {
                    tracing::info!(service = %spec.service, "the service's writes moved to another database: its events continue from there");
                    report.moved = true;
                }
                return Ok(());
            }
            Some(f) => {
                m.batches.fetch_add(1, Ordering::Relaxed);
                record(opts, report, backoff, &f);
                f.events
            }
            None => {
                m.lag_millis.store(0, Ordering::Relaxed);
                0
            }
        };
        watch.observe(opts, spec, &source, report, events).await?;
    }
}

fn record(opts: &RelayOptions, report: &mut RelayReport, backoff: &mut Duration, f: &Flushed) {
    let (delivered, events) = (&f.delivered, f.events);
    let m = &opts.metrics;
    report.transactions += f.transactions;
    let now = now_pg_micros();
    if let Some(commit) = f.last {
        m.lag_millis.store(((now - commit.commit_ts) / 1000).max(0), Ordering::Relaxed);
        *backoff = Duration::from_millis(100);
    }
    // Every event of the batch counted at its oldest commit's age: an
    // upper bound for each.
    if let Some(ts) = f.oldest_commit_ts.filter(|_| events > 0) {
        m.ack_latency.observe(((now - ts) / 1000).max(0) as u64, events as u64);
    }
    report.events += events as u64;
    report.duplicates += delivered.duplicates;
    report.dead_letters += delivered.dead_letters;
    m.events.fetch_add(events as u64, Ordering::Relaxed);
    m.duplicates.fetch_add(delivered.duplicates, Ordering::Relaxed);
    m.dead_letters.fetch_add(delivered.dead_letters, Ordering::Relaxed);
}

/// Slot statistics once a second, a progress line every five, and a
/// warning when the slot keeps too much WAL.
struct Watch {
    last_stats: Option<Instant>,
    last_progress: Instant,
    progress_events: u64,
    events_since_stats: usize,
    bytes_per_event: f64,
    last_warning: Option<Instant>,
    last_lag: i64,
}

impl Watch {
    fn new(events: u64) -> Watch {
        Watch {
            last_stats: None,
            last_progress: Instant::now(),
            progress_events: events,
            events_since_stats: 0,
            bytes_per_event: 200.0,
            last_warning: None,
            last_lag: 0,
        }
    }

    async fn observe(
        &mut self,
        opts: &RelayOptions,
        spec: &CaptureSpec,
        source: &Source,
        report: &RelayReport,
        events: usize,
    ) -> Result<(), RelayError> {
        let m = &opts.metrics;
        self.events_since_stats += events;
        if self.last_stats.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            let stats = source.stats().await?;
            // Bytes of WAL per event, from how far the lag moved.
            let moved = self.last_lag - stats.lag_bytes;
            if self.events_since_stats > 0 && moved > 0 {
                self.bytes_per_event = 0.8 * self.bytes_per_event
                    + 0.2 * (moved as f64 / self.events_since_stats as f64);
            }
            self.last_lag = stats.lag_bytes;
            self.events_since_stats = 0;
            self.last_stats = Some(Instant::now());
            if stats.retained_bytes > opts.warn_retained_bytes
                && self.last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
            {
                tracing::warn!(
                    service = %spec.service,
                    retained_wal_bytes = stats.retained_bytes,
                    lag_bytes = stats.lag_bytes,
                    "the slot keeps a lot of WAL on the server's disk: the relay is falling behind"
                );
                self.last_warning = Some(Instant::now());
            }
            m.lag_bytes.store(stats.lag_bytes, Ordering::Relaxed);
            m.retained_bytes.store(stats.retained_bytes, Ordering::Relaxed);
            m.lag_events.store(
                (stats.lag_bytes as f64 / self.bytes_per_event.max(1.0)) as i64,
                Ordering::Relaxed,
            );
        }
        if self.last_progress.elapsed() >= Duration::from_secs(5) {
            let secs = self.last_progress.elapsed().as_secs_f64();
            let rate = (report.events - self.progress_events) as f64 / secs;
            m.rate_milli.store((rate * 1000.0) as u64, Ordering::Relaxed);
            tracing::info!(
                service = %spec.service,
                events = report.events,
                per_second = rate.round() as u64,
                duplicates = report.duplicates,
                lag_bytes = m.lag_bytes.load(Ordering::Relaxed),
                retained_wal_bytes = m.retained_bytes.load(Ordering::Relaxed),
                "progress"
            );
            self.last_progress = Instant::now();
            self.progress_events = report.events;
        }
        Ok(())
    }
}

/// Resolves when shutdown is asked for. A relay whose options were built
/// without a sender (`RelayOptions::new`) can never be asked, and must not
/// mistake the closed channel for a request.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
