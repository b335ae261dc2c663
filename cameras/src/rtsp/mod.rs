//! Cameras over RTSP: one supervised task per camera keeps a retina session playing (describe →
//! setup → play; frames measured from the RTP packets, only keyframes reassembled, reads in
//! batches), every step and every frame wait under a timeout, reconnecting with exponential
//! backoff and jitter. A one-second tick evaluates each camera's [`health::Health`], runs the
//! picture checks ([`picture`]) and hands what it saw to the pipeline as
//! [`alerts::camera::CameraObservation`]s — states entered (the uptime log), state changes
//! (`camera.offline`, `camera.online`, `camera.stalled`, `camera.degraded`), picture verdicts
//! (`camera.quality`) and ONVIF notifications. The pipeline words and commits the events.
//! Every time comes from the pipeline's clock.
//!
//! Credentials go to retina through `SessionOptions::creds`; they never appear in URLs, logs,
//! metrics, API answers or errors (failure reasons are short codes; details are retina's
//! messages, which carry no credentials).

pub mod health;
mod metrics;
pub mod onvif;
pub mod picture;
mod session;
mod set;
pub mod snapshot;
mod tick;
mod watched;

use crate::video::pool::DecoderPool;
use alerts::registry::Registry;
use alerts::{Clock, Pipeline};
use chrono::{DateTime, Utc};
use health::{HealthConfig, State};
pub use metrics::CameraMetrics;
use parking_lot::Mutex;
use serde::Serialize;
pub use set::CameraChange;
use set::{CameraSet, Running};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
pub use watched::Watched;

/// How RTP travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtpTransport {
    /// Interleaved in the RTSP TCP connection (the default: works through NAT and firewalls).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

/// Settings of the camera source.
#[derive(Debug, Clone)]
pub struct RtspConfig {
    /// RTP transport.
    pub transport: RtpTransport,
    /// Limit on each RTSP step (connect + DESCRIBE, SETUP, PLAY).
    pub step_timeout: Duration,
    /// First reconnect delay.
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Longest rest of a session whose socket has nothing buffered, so that reads come in
    /// batches of frames (zero: wake up for every frame). The rest is shorter for fast
    /// streams: about 64 KiB per read.
    pub read_batch: Duration,
    /// Health thresholds.
    pub health: HealthConfig,
    /// Picture checks.
    pub vqd: picture::VqdConfig,
    /// How often the cameras are evaluated (a second; tests on a manual clock tick faster).
    pub tick: Duration,
}

impl Default for RtspConfig {
    fn default() -> Self {
        Self {
            transport: RtpTransport::Tcp,
            step_timeout: Duration::from_secs(10),
            reconnect_initial: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            read_batch: Duration::from_millis(250),
            health: HealthConfig::default(),
            vqd: picture::VqdConfig::default(),
            tick: Duration::from_secs(1),
        }
    }
}

/// What the stream is, from its parameters (SPS).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    /// RFC 6381 codec string (`avc1.4d001e`).
    pub codec: Option<String>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
}

/// A camera, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraView {
    /// Registry id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Township code.
    pub township: String,
    /// `online`, `stalled`, `degraded`, `offline` or `unknown`.
    pub state: State,
    /// Since when.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub since: DateTime<Utc>,
    /// Whether a session is playing.
    pub connected: bool,
    /// Measured over the last seconds.
    #[serde(flatten)]
    pub measured: health::Measured,
    /// Stream parameters.
    #[serde(flatten)]
    pub info: StreamInfo,
    /// Frames received.
    pub frames_total: u64,
    /// Bytes received.
    pub bytes_total: u64,
    /// RTP packets lost.
    pub lost_packets_total: u64,
    /// Reconnections.
    pub reconnects: u64,
    /// The last frame's arrival.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub last_frame_at: Option<DateTime<Utc>>,
    /// The last failure's reason (`refused`, `timeout`, `unauthorized`, …).
    pub last_error: Option<String>,
    /// The last failure in detail.
    pub last_error_detail: Option<String>,
    /// State changes held back by the event budget.
    pub suppressed_transitions: u64,
    /// The latest picture check.
    pub picture: Option<picture::PictureView>,
}

/// Every watched camera, for the API and the tick; a config reload changes them
/// ([`Cameras::update`]).
pub struct Cameras {
    set: alerts::live::Live<CameraSet>,
    /// For cameras a reload adds.
    health: HealthConfig,
    vqd: picture::VqdConfig,
    clock: Arc<dyn Clock>,
    /// The sessions, once [`start`] ran.
    running: Mutex<Option<Running>>,
}

pub use alerts::camera_tally::TownshipCount;

impl Cameras {
    /// Every camera of the registry, not yet watched; times come from `clock`.
    pub fn new(registry: &Registry, config: &RtspConfig, clock: Arc<dyn Clock>) -> Self {
        let mut registered: Vec<_> = registry.cameras().filter(|c| c.gb28181.is_none()).collect();
        registered.sort_by(|a, b| a.id.cmp(&b.id));
        let mut set = CameraSet::default();
        for c in registered {
            let w = Watched::new(c.clone(), config.health, &config.vqd, clock.clone());
            set.order.push(c.id.clone());
            set.by_id.insert(c.id.clone(), Arc::new(Mutex::new(w)));
        }
        Cameras {
            set: alerts::live::Live::new(Arc::new(set)),
            health: config.health,
            vqd: config.vqd.clone(),
            clock,
            running: Mutex::new(None),
        }
    }

    /// Every camera, ordered by id (a stable order for the API).
    pub fn list(&self) -> Vec<CameraView> {
        let set = self.set.get();
        set.order
            .iter()
            .filter_map(|id| set.by_id.get(id))
            .map(|w| w.lock().view())
            .collect()
    }

    /// One camera.
    pub fn get(&self, id: &str) -> Option<CameraView> {
        Some(self.set.get().by_id.get(id)?.lock().view())
    }

    /// Forgets a camera's picture baseline and learns it again from its next samples (the view
    /// was moved on purpose). `None`: no such camera; `Some(false)`: baselines are off.
    pub fn relearn(&self, id: &str) -> Option<bool> {
        let set = self.set.get();
        let mut w = set.by_id.get(id)?.lock();
        Some(w.picture.relearn())
    }
}

/// Starts watching `cameras`: a session task per camera and the tick that hands what they
/// see to the pipeline. Runs until `stop` turns true.
pub async fn start(
    cameras: Arc<Cameras>,
    config: RtspConfig,
    pipeline: Arc<Pipeline>,
    pool: DecoderPool,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    // after a restart: the township already heard each camera's last state (no repeat)
    let set = cameras.set.get();
    set.resume(&pipeline, &set.order).await;
    let metrics = CameraMetrics::new(&pipeline.metrics().registry, &pipeline.metrics().cameras);
    let config = Arc::new(config);
    let mut running = Running {
        config: config.clone(),
        group: Arc::new(retina::client::SessionGroup::default()),
        metrics: metrics.clone(),
        stop: stop.clone(),
        sessions: HashMap::new(),
    };
    for id in &set.order {
        running.spawn(id, set.by_id[id].clone());
    }
    *cameras.running.lock() = Some(running);
    let tick = tick::Ticker::new(cameras.clone(), metrics, config.vqd.clone(), pool);
    tokio::spawn(async move {
        tick.run(pipeline, config.tick, stop).await;
        let tasks = cameras.running.lock().take().map(|r| r.sessions);
        for (_, t) in tasks.into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    })
}
