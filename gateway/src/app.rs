//! Wiring: open the outbox, start delivery workers and the API, shut down cleanly.

use crate::api::{self, auth::Auth, AppState};
use crate::config::Config;
use crate::reload::{CameraSource, Reloader, Targets};
use crate::video::VideoServices;
use alerts::dedup::Dedup;
use alerts::delivery::{self, Holds};
use alerts::linkage::Linkage;
use alerts::live::Live;
use alerts::liveness::Liveness;
use alerts::outage::Outage;
use alerts::outbox::{Op, Outbox};
use alerts::pipeline::VideoLinkage;
use alerts::quarantine::Quarantine;
use alerts::registry::Registry;
use alerts::threshold::Thresholds;
use alerts::{Clock, Metrics, Pipeline, SystemClock, Trackers};
use anyhow::Context as _;
use cameras::rtsp::Cameras;
use cameras::video::evidence::EvidenceStore;
use cameras::video::pool::DecoderPool;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How many unknown units the quarantine list holds at most.
const QUARANTINE_MAX: usize = 10_000;

/// How many components the dedup table remembers at most.
const DEDUP_MAX_ENTRIES: usize = 1_000_000;

/// Runs the gateway until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
    };
    serve(config, shutdown, |_| {}).await
}

/// Runs the gateway until `shutdown` completes; `on_ready` gets the bound API address.
pub async fn serve(
    mut config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    alerts::time::set_offset(config.offset);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data_dir `{}`", data_dir.display()))?;
    let metrics = Metrics::new();
    build_info(&metrics);
    let outbox = open_outbox(&config, &metrics)?;
    let fixed = crate::reload::Fixed::of(&config);
    let registry = Arc::new(std::mem::take(&mut config.registry));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let holds = Arc::new(Holds::default());
    // the cameras first: the pipeline's video linkage takes its pictures from them
    let CameraSetup {
        rtsp,
        video,
        vqd,
        rtsp_enabled,
    } = CameraSetup::of(&mut config, &registry, &clock, &data_dir);
    let rtsp_running = rtsp.is_some();
    let linkage = video.as_ref().map(|v| (v, &holds));
    let pipeline = Arc::new(pipeline(
        &config, &registry, &outbox, &metrics, clock, linkage,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = delivery::spawn_workers(
        pipeline.live_registry(),
        &outbox,
        &config.delivery,
        &metrics,
        &holds,
        stop_rx.clone(),
    );
    spawn_upkeep(&config, &pipeline, &outbox, &stop_rx);
    // one handle on the vendor profiles for HTTP push and MQTT, which a reload replaces
    let profiles = Arc::new(Live::new(Arc::new(std::mem::take(&mut config.profiles))));
    if let Some(m) = config.mqtt.as_mut() {
        m.profiles = profiles.clone();
    }
    let mut sources = Sources::start(&mut config, rtsp, &video, &pipeline, &stop_rx).await?;
    let channel_checks = match (&video, &sources.gb28181) {
        (Some(v), Some(p)) => start_channel_checks(v, p, &pipeline, vqd, &stop_rx),
        _ => None,
    };
    let ready = Arc::new(AtomicBool::new(false));
    let auth = Arc::new(Live::new(Arc::new(Auth::new(&config.api.tokens))));
    let tls = config.api.tls.as_ref().map(|t| serve_tls(t, &metrics));
    let targets = Targets {
        pipeline: pipeline.clone(),
        auth: auth.clone(),
        profiles: profiles.clone(),
        cameras: match &video {
            Some(v) if rtsp_running => CameraSource::Running(v.cameras.clone()),
            _ if rtsp_enabled => CameraSource::NotStarted,
            _ => CameraSource::Disabled,
        },
        tls: tls.as_ref().map(|t| t.config.clone()),
        gb28181: sources.gb28181.clone(),
    };
    let reloader = Arc::new(Reloader::new(config.path.clone(), fixed, targets));
    tokio::spawn(reloader.clone().on_sighup(stop_rx.clone()));
    let state = AppState {
        pipeline: pipeline.clone(),
        profiles,
        reloader,
        cameras: video.as_ref().map(|v| v.cameras.clone()),
        video: video.clone(),
        gb26875: sources.gb26875.take(),
        gb28181: sources.gb28181.take(),
        channel_checks,
        auth,
        ready: ready.clone(),
        metrics_public: config.api.metrics_public,
        assessment: Arc::new(config.assessment.clone()),
        assessments: Default::default(),
        reports_dir: config.reports_dir(),
        max_body: config.api.max_body_bytes,
    };
    for w in &config.warnings {
        tracing::warn!("config: {w}");
    }
    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.api.listen))?;
    let addr = listener.local_addr()?;
    record_api_addr(&config.api_addr_path(), addr);
    ready.store(true, Ordering::Relaxed);
    tracing::info!(
        %addr,
        townships = registry.townships().len(),
        units = registry.unit_count(),
        cameras = registry.camera_count(),
        pending = outbox.pending(),
        data_dir = %data_dir.display(),
        "gateway ready"
    );
    on_ready(addr);
    let source_failed = sources.failed.clone();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = source_failed.notified() => {}
        }
    };
    let limits = Arc::new(crate::server::ServeLimits {
        header_timeout: config.api.header_timeout,
        request_timeout: config.api.request_timeout,
        max_connections: config.api.max_connections,
        max_body: config.api.max_body_bytes,
    });
    let (bounded, counted) = (limits.clone(), metrics.clone());
    let router = api::router(state).layer(axum::middleware::from_fn(move |req, next| {
        crate::server::bounded(bounded.clone(), counted.clone(), req, next)
    }));
    let router = crate::server::conventions(router, &config.api.cors_origins);
    crate::server::serve(listener, router, (*limits).clone(), tls, shutdown).await;
    ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    sources.stop().await;
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(5), w).await;
    }
    if let Err(e) = pipeline.persist_liveness().await {
        tracing::error!(error = %e, "saving unit liveness failed");
    }
    if let Err(e) = outbox.flush().await {
        tracing::error!(error = %e, "final outbox flush failed");
    }
    tracing::info!(pending = outbox.pending(), "gateway stopped");
    if sources.has_failed() {
        anyhow::bail!("a source failed");
    }
    Ok(())
}

/// The camera side as configured: the RTSP source (when it has cameras), the decoder pool and
/// snapshots (when RTSP or GB/T 28181 cameras run), and the picture checks' settings.
struct CameraSetup {
    rtsp: Option<cameras::rtsp::RtspConfig>,
    video: Option<VideoServices>,
    vqd: cameras::rtsp::picture::VqdConfig,
    rtsp_enabled: bool,
}

impl CameraSetup {
    fn of(
        config: &mut Config,
        registry: &Registry,
        clock: &Arc<dyn Clock>,
        data_dir: &std::path::Path,
    ) -> Self {
        let rtsp_enabled = config.rtsp.is_some();
        // the picture checks' settings, for GB/T 28181 channels too
        let vqd = config
            .rtsp
            .as_ref()
            .map(|r| r.vqd.clone())
            .unwrap_or_default();
        let rtsp = config.rtsp.take().filter(|_| registry.camera_count() > 0);
        // the decoder pool serves GB/T 28181 channels' pictures too
        let video = (rtsp.is_some() || config.gb28181.is_some()).then(|| VideoServices {
            cameras: Arc::new(Cameras::new(
                registry,
                &rtsp.clone().unwrap_or_default(),
                clock.clone(),
            )),
            pool: DecoderPool::new(config.video.pool),
            options: config.video.snapshots,
            evidence: EvidenceStore::new(data_dir.join("evidence"), config.video.evidence),
            gb28181: Default::default(),
        });
        Self {
            rtsp,
            video,
            vqd,
            rtsp_enabled,
        }
    }
}

/// The loops that keep the gateway's records: outbox purge, unit liveness, supervision of the
/// closed loop, the weekly report.
fn spawn_upkeep(
    config: &Config,
    pipeline: &Arc<Pipeline>,
    outbox: &Outbox,
    stop: &watch::Receiver<bool>,
) {
    tokio::spawn(purge_loop(outbox.clone(), config.retention, stop.clone()));
    tokio::spawn(liveness_loop(pipeline.clone(), stop.clone()));
    tokio::spawn(supervision_loop(pipeline.clone(), stop.clone()));
    if let Some(schedule) = config.weekly.clone() {
        let weekly = crate::weekly::WeeklyReports {
            pipeline: pipeline.clone(),
            dir: config.reports_dir(),
            schedule,
            weights: config.assessment.clone(),
        };
        tokio::spawn(weekly.run(stop.clone()));
    }
}

/// The picture checks of GB/T 28181 channels, when `[gb28181] vqd_interval_s` asks for them.
fn start_channel_checks(
    video: &VideoServices,
    platform: &Arc<gb28181::Server>,
    pipeline: &Arc<Pipeline>,
    vqd: cameras::rtsp::picture::VqdConfig,
    stop: &watch::Receiver<bool>,
) -> Option<Arc<crate::channel_checks::ChannelChecks>> {
    let every = platform.picture_interval()?;
    let checks = crate::channel_checks::ChannelChecks::new(
        video.clone(),
        platform.clone(),
        pipeline.clone(),
        vqd,
        every,
    );
    tokio::spawn(checks.clone().run(stop.clone()));
    Some(checks)
}

/// The API's TLS: its configuration behind a handle a reload replaces, and the failure count.
fn serve_tls(tls: &crate::tls::ApiTls, metrics: &Metrics) -> crate::server::ServeTls {
    let failures = prometheus::IntCounter::new(
        "gateway_api_tls_handshake_failures_total",
        "API connections closed because their TLS handshake failed or took too long",
    )
    .expect("metric");
    let _ = metrics.registry.register(Box::new(failures.clone()));
    crate::server::ServeTls {
        config: Arc::new(Live::new(tls.server.clone())),
        failures,
    }
}

/// Records the API's bound address for the `outbox` commands (temporary file, then rename: a
/// reader never sees half of it). A failure is logged: only those commands depend on it.
fn record_api_addr(path: &std::path::Path, addr: SocketAddr) {
    let tmp = path.with_extension("addr.tmp");
    let written =
        std::fs::write(&tmp, format!("{addr}\n")).and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot record the API address");
    }
}

/// Opens the outbox file (refused when another gateway has it).
fn open_outbox(config: &Config, metrics: &Metrics) -> anyhow::Result<Outbox> {
    let path = config.outbox_path();
    Outbox::open(
        &path,
        config
            .registry
            .destinations()
            .iter()
            .map(|t| t.code.clone()),
        config.outbox.clone(),
        metrics.clone(),
    )
    .map_err(|e| {
        if e.is_locked() {
            anyhow::anyhow!(
                "outbox `{}` is in use by another gateway process",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot open outbox `{}`: {e}", path.display())
        }
    })
}

/// The pipeline: its trackers (unit liveness restored from the outbox) and, with cameras, the
/// fire→video linkage.
fn pipeline(
    config: &Config,
    registry: &Arc<Registry>,
    outbox: &Outbox,
    metrics: &Metrics,
    clock: Arc<dyn Clock>,
    video: Option<(&VideoServices, &Arc<Holds>)>,
) -> Pipeline {
    let restored = outbox.store().unit_states().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the unit liveness snapshot; starting with every unit offline");
        Default::default()
    });
    let timeouts = registry.units().map(|u| {
        let timeout = u
            .heartbeat_timeout_s
            .map(Duration::from_secs)
            .unwrap_or(config.health.unit_offline_after);
        (u.id.clone(), timeout)
    });
    let trackers = Trackers {
        dedup: Dedup::new(config.dedup_window, DEDUP_MAX_ENTRIES),
        liveness: Liveness::new(timeouts, &restored, clock.now()),
        linkage: Linkage::new(config.linkage_window),
        thresholds: Thresholds::new(config.thresholds.clone()),
        quarantine: config
            .quarantine_unknown_units
            .then(|| Quarantine::new(QUARANTINE_MAX)),
    };
    let pipeline = Pipeline::new(
        registry.clone(),
        outbox.clone(),
        trackers,
        clock,
        config.offset,
        metrics.clone(),
    )
    .with_cases(config.cases.clone());
    match video.filter(|_| !config.video.linkage_kinds.is_empty()) {
        Some((v, holds)) => pipeline.with_video_linkage(VideoLinkage {
            source: Arc::new(v.clone()),
            holds: holds.clone(),
            deadline: config.video.linkage_deadline,
            kinds: config.video.linkage_kinds.clone(),
        }),
        None => pipeline,
    }
}

/// The running sources. A source that dies must not leave a gateway that looks healthy but
/// ingests nothing: it stops the gateway (non-zero exit), so that its supervisor restarts it.
struct Sources {
    /// Each source's task and how long a clean stop may take it, in stopping order.
    tasks: Vec<(tokio::task::JoinHandle<()>, Duration)>,
    gb26875: Option<ingest::gb26875::server::Gb26875Handle>,
    gb28181: Option<Arc<gb28181::Server>>,
    /// Notified when a source died.
    failed: Arc<tokio::sync::Notify>,
    has_failed: Arc<AtomicBool>,
}

impl Sources {
    /// Starts the cameras, the GB/T 26875.3 server and the MQTT source, as configured.
    async fn start(
        config: &mut Config,
        rtsp: Option<cameras::rtsp::RtspConfig>,
        video: &Option<VideoServices>,
        pipeline: &Arc<Pipeline>,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut sources = Sources {
            tasks: Vec::new(),
            gb26875: None,
            gb28181: None,
            failed: Arc::new(tokio::sync::Notify::new()),
            has_failed: Arc::new(AtomicBool::new(false)),
        };
        let rtsp_task = match (rtsp, video) {
            (Some(r), Some(v)) => {
                tokio::spawn(crate::video::prune_loop(v.evidence.clone(), stop.clone()));
                let (cameras, pool) = (v.cameras.clone(), v.pool.clone());
                Some(cameras::rtsp::start(cameras, r, pipeline.clone(), pool, stop.clone()).await)
            }
            _ => None,
        };
        let mut gb_task = None;
        if let Some(g) = config.gb26875.take() {
            let listen = g.listen;
            let (addr, handle, task) =
                ingest::gb26875::server::spawn(g, pipeline.clone(), stop.clone())
                    .await
                    .with_context(|| format!("cannot listen on {listen} for GB/T 26875.3"))?;
            tracing::info!(%addr, "GB/T 26875.3 server listening");
            sources.gb26875 = Some(handle);
            gb_task = Some(task);
        }
        if let Some(g) = config.gb28181.take() {
            let (udp, tcp) = (g.transport.udp, g.transport.tcp);
            let (server, task) =
                gb28181::Server::start(g, pipeline.clone(), Duration::from_secs(1), stop.clone())
                    .await
                    .with_context(|| {
                        format!("cannot listen on {udp:?} (UDP) / {tcp:?} (TCP) for GB/T 28181")
                    })?;
            if let Some(addr) = server.udp_addr() {
                tracing::info!(%addr, "GB/T 28181 platform listening (UDP)");
            }
            if let Some(addr) = server.tcp_addr() {
                tracing::info!(%addr, "GB/T 28181 platform listening (TCP)");
            }
            if let Some(v) = video {
                let _ = v.gb28181.set(server.clone());
            }
            sources.gb28181 = Some(server);
            sources.tasks.push((task, Duration::from_secs(5)));
        }
        if let Some(mut m) = config.mqtt.take() {
            m.socket_dir = Some(config.data_dir.clone());
            let task = ingest::mqtt::spawn(m, pipeline.clone(), stop.clone());
            let watcher = sources.watch("MQTT", task, stop.clone());
            sources.tasks.push((watcher, Duration::from_secs(10)));
        }
        sources
            .tasks
            .extend(gb_task.map(|t| (t, Duration::from_secs(5))));
        sources
            .tasks
            .extend(rtsp_task.map(|t| (t, Duration::from_secs(5))));
        Ok(sources)
    }

    /// Waits for `task`; if it ends while the gateway is not stopping, the gateway stops.
    fn watch(
        &self,
        name: &'static str,
        task: tokio::task::JoinHandle<()>,
        stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let (notify, failed) = (self.failed.clone(), self.has_failed.clone());
        tokio::spawn(async move {
            let result = task.await;
            if *stop.borrow() {
                return;
            }
            match result {
                Err(e) if e.is_panic() => {
                    tracing::error!("the {name} source panicked; stopping the gateway")
                }
                _ => {
                    tracing::error!("the {name} source stopped unexpectedly; stopping the gateway")
                }
            }
            failed.store(true, Ordering::SeqCst);
            notify.notify_one();
        })
    }

    /// Waits for each source to stop, within its time.
    async fn stop(&mut self) {
        for (task, within) in self.tasks.drain(..) {
            let _ = tokio::time::timeout(within, task).await;
        }
    }

    /// Whether a source died.
    fn has_failed(&self) -> bool {
        self.has_failed.load(Ordering::SeqCst)
    }
}

/// Every second: units silent past their timeout go offline, and alarms without linkage feedback
/// in their window are counted. Every 5 s: the liveness snapshot is saved (a restart restores it).
async fn liveness_loop(pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    let (expiring, saving) = (Outage::new(), Outage::new());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        pipeline.expire_linkage();
        if let Err(e) = pipeline.expire_units().await {
            if expiring.failed() {
                tracing::warn!(error = %e, "unit.offline events wait: the outbox cannot take them now");
            }
        } else if expiring.recovered() {
            tracing::info!("unit.offline events are committed again");
        }
        n += 1;
        if n.is_multiple_of(5) {
            if let Err(e) = pipeline.persist_liveness().await {
                if saving.failed() {
                    tracing::warn!(error = %e, "saving unit liveness failed; tried again every 5 s");
                }
            } else if saving.recovered() {
                tracing::info!("unit liveness saved again");
            }
        }
    }
}

/// Supervision (督办): every second, the reminders of late stages (one log line per outage of
/// the outbox, not per tick).
async fn supervision_loop(pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match pipeline.supervise().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("supervision reminders resumed");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "supervision reminders wait: the outbox cannot take them now");
            }
            Err(_) => {}
        }
    }
}

/// Deletes delivered, closed events older than the retention, a bounded batch every few
/// minutes — going on where the last batch stopped, so that cases still open at the head of
/// the outbox are stepped over, not scanned again each time.
async fn purge_loop(outbox: Outbox, retention: Duration, mut stop: watch::Receiver<bool>) {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        return;
    };
    let mut after = None;
    loop {
        let pause = if after.is_some() { 1 } else { 300 };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(pause)) => {}
            _ = stop.changed() => return,
        }
        let before = chrono::Utc::now() - retention;
        let op = Op::Purge {
            before,
            limit: 10_000,
            after,
        };
        match outbox.request(op).await {
            Ok(alerts::outbox::Outcome::Purged { purged, next }) => {
                if purged > 0 {
                    tracing::info!(purged, "retention purge");
                }
                after = next;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
    }
}

/// The commit the binary was built from (`build.rs`).
pub const COMMIT: &str = env!("GATEWAY_COMMIT");

/// `gateway_build_info{version,commit} 1`: which build runs where.
fn build_info(metrics: &Metrics) {
    let info = alerts::metrics::register(
        &metrics.registry,
        prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "gateway_build_info",
                "The running build: 1, labelled with its version and commit",
            ),
            &["version", "commit"],
        ),
    );
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), COMMIT])
        .set(1);
}
