//! Wiring: open the outbox, start delivery workers and the API, shut down cleanly.

use crate::api::{self, auth::Auth, AppState};
use crate::config::Config;
use crate::video::VideoServices;
use alerts::dedup::Dedup;
use alerts::delivery::{self, Holds};
use alerts::linkage::Linkage;
use alerts::liveness::Liveness;
use alerts::outbox::{Op, Outbox};
use alerts::pipeline::VideoLinkage;
use alerts::quarantine::Quarantine;
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
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let Config {
        data_dir,
        registry,
        api: api_config,
        outbox: outbox_config,
        delivery: delivery_config,
        mqtt,
        rtsp,
        profiles,
        gb26875,
        ..
    } = config;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data_dir `{}`", data_dir.display()))?;
    let metrics = Metrics::new();
    let path = data_dir.join("outbox.redb");
    let outbox = Outbox::open(
        &path,
        registry.townships().iter().map(|t| t.code.clone()),
        outbox_config,
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
    })?;
    let registry = Arc::new(registry);
    let restored = outbox.store().unit_states().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the unit liveness snapshot; starting with every unit offline");
        Default::default()
    });
    let liveness = Liveness::new(
        registry.units().map(|u| {
            let timeout = u
                .heartbeat_timeout_s
                .map(Duration::from_secs)
                .unwrap_or(config.health.unit_offline_after);
            (u.id.clone(), timeout)
        }),
        &restored,
        chrono::Utc::now(),
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let holds = Arc::new(Holds::default());
    // the cameras first: the pipeline's video linkage takes its pictures from them
    let rtsp = rtsp.filter(|_| registry.camera_count() > 0);
    let video = rtsp.as_ref().map(|r| VideoServices {
        cameras: Arc::new(Cameras::new(&registry, r, clock.clone())),
        pool: DecoderPool::new(config.video.pool),
        options: config.video.snapshots,
        evidence: EvidenceStore::new(data_dir.join("evidence"), config.video.evidence),
    });
    let mut pipeline = Pipeline::new(
        registry.clone(),
        outbox.clone(),
        Trackers {
            dedup: Dedup::new(config.dedup_window, DEDUP_MAX_ENTRIES),
            liveness,
            linkage: Linkage::new(config.linkage_window),
            thresholds: Thresholds::new(config.thresholds.clone()),
            quarantine: config
                .quarantine_unknown_units
                .then(|| Quarantine::new(QUARANTINE_MAX)),
        },
        clock,
        config.offset,
        metrics.clone(),
    );
    if let Some(v) = video
        .as_ref()
        .filter(|_| !config.video.linkage_kinds.is_empty())
    {
        pipeline = pipeline.with_video_linkage(VideoLinkage {
            source: Arc::new(v.clone()),
            holds: holds.clone(),
            deadline: config.video.linkage_deadline,
            kinds: config.video.linkage_kinds.clone(),
        });
    }
    let pipeline = Arc::new(pipeline);
    let (stop_tx, stop_rx) = watch::channel(false);
    let workers = delivery::spawn_workers(
        &registry,
        &outbox,
        &delivery_config,
        &metrics,
        &holds,
        stop_rx.clone(),
    );
    tokio::spawn(purge_loop(
        outbox.clone(),
        config.retention,
        stop_rx.clone(),
    ));
    tokio::spawn(liveness_loop(pipeline.clone(), stop_rx.clone()));
    // A source that dies must not leave a gateway that looks healthy but ingests nothing:
    // it stops the gateway (non-zero exit), so that its supervisor restarts it.
    let source_failed = Arc::new(tokio::sync::Notify::new());
    let failed = Arc::new(AtomicBool::new(false));
    let rtsp_task = match (rtsp, &video) {
        (Some(r), Some(v)) => {
            tokio::spawn(crate::video::prune_loop(
                v.evidence.clone(),
                stop_rx.clone(),
            ));
            let (cameras, pool) = (v.cameras.clone(), v.pool.clone());
            Some(cameras::rtsp::start(cameras, r, pipeline.clone(), pool, stop_rx.clone()).await)
        }
        _ => None,
    };
    let cameras = video.as_ref().map(|v| v.cameras.clone());
    let (gb_handle, gb_task) = match gb26875 {
        Some(g) => {
            let listen = g.listen;
            let (addr, handle, task) =
                ingest::gb26875::server::spawn(g, pipeline.clone(), stop_rx.clone())
                    .await
                    .with_context(|| format!("cannot listen on {listen} for GB/T 26875.3"))?;
            tracing::info!(%addr, "GB/T 26875.3 server listening");
            (Some(handle), Some(task))
        }
        None => (None, None),
    };
    let mqtt_task = mqtt.map(|m| {
        let task = ingest::mqtt::spawn(m, pipeline.clone(), stop_rx.clone());
        let (notify, failed, stop) = (source_failed.clone(), failed.clone(), stop_rx);
        tokio::spawn(async move {
            let result = task.await;
            if !*stop.borrow() {
                match result {
                    Err(e) if e.is_panic() => {
                        tracing::error!("the MQTT source panicked; stopping the gateway")
                    }
                    _ => tracing::error!(
                        "the MQTT source stopped unexpectedly; stopping the gateway"
                    ),
                }
                failed.store(true, Ordering::SeqCst);
                notify.notify_one();
            }
        })
    });

    let ready = Arc::new(AtomicBool::new(false));
    let state = AppState {
        pipeline: pipeline.clone(),
        profiles: Arc::new(profiles),
        cameras: cameras.clone(),
        video: video.clone(),
        gb26875: gb_handle,
        auth: Arc::new(Auth::new(&api_config.tokens)),
        ready: ready.clone(),
        metrics_public: api_config.metrics_public,
        max_body: api_config.max_body_bytes,
    };
    let listener = tokio::net::TcpListener::bind(api_config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", api_config.listen))?;
    let addr = listener.local_addr()?;
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
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = source_failed.notified() => {}
        }
    };
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("API server")?;
    ready.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    if let Some(t) = mqtt_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    if let Some(t) = gb_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    if let Some(t) = rtsp_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
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
    if failed.load(Ordering::SeqCst) {
        anyhow::bail!("a source failed");
    }
    Ok(())
}

/// Every second: units silent past their timeout go offline, and alarms without linkage feedback
/// in their window are counted. Every 5 s: the liveness snapshot is saved (a restart restores it).
async fn liveness_loop(pipeline: Arc<Pipeline>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        pipeline.expire_linkage();
        if let Err(e) = pipeline.expire_units().await {
            tracing::warn!(error = %e, "unit.offline events wait: the outbox cannot take them now");
        }
        n += 1;
        if n.is_multiple_of(5) {
            if let Err(e) = pipeline.persist_liveness().await {
                tracing::warn!(error = %e, "saving unit liveness failed");
            }
        }
    }
}

/// Deletes delivered events older than the retention, a bounded batch every few minutes.
async fn purge_loop(outbox: Outbox, retention: Duration, mut stop: watch::Receiver<bool>) {
    let Ok(retention) = chrono::Duration::from_std(retention) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(300)) => {}
            _ = stop.changed() => return,
        }
        let before = chrono::Utc::now() - retention;
        match outbox
            .request(Op::Purge {
                before,
                limit: 10_000,
            })
            .await
        {
            Ok(alerts::outbox::Outcome::Purged(n)) if n > 0 => {
                tracing::info!(purged = n, "retention purge")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
    }
}
