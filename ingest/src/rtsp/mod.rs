//! Cameras over RTSP: one supervised task per camera keeps a retina session playing (describe →
//! setup → play; frames measured from the RTP packets, only keyframes reassembled, reads in
//! batches), every step and every frame wait under a timeout, reconnecting with exponential
//! backoff and jitter. A one-second tick evaluates each camera's [`health::Health`] and commits
//! the transitions worth an event (`camera.offline`, `camera.online`, `camera.stalled`,
//! `camera.degraded`), and runs the picture checks ([`picture`]: `camera.quality`).
//!
//! Credentials go to retina through `SessionOptions::creds`; they never appear in URLs, logs,
//! metrics, API answers or errors (failure reasons are short codes; details are retina's
//! messages, which carry no credentials).

pub mod availability;
pub mod health;
mod metrics;
pub mod onvif;
pub mod picture;
mod session;
pub mod snapshot;

use crate::video::pool::DecoderPool;
use crate::video::vqd::Check;
use crate::video::Keyframe;
use alerts::event::{CameraDetail, Kind};
use alerts::normalize::camera_event;
use alerts::outbox::{CameraMark, Op};
use alerts::registry::Camera;
use alerts::Pipeline;
use chrono::{DateTime, Utc};
use health::{Health, HealthConfig, State, Transition};
pub use metrics::CameraMetrics;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

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

/// One camera as watched: its health and its counters.
#[derive(Debug)]
pub struct Watched {
    /// The camera.
    pub camera: Arc<Camera>,
    /// Health.
    pub health: Health,
    /// Stream parameters.
    pub info: StreamInfo,
    /// Frames received.
    pub frames: u64,
    /// Bytes of frames received.
    pub bytes: u64,
    /// RTP packets lost.
    pub lost: u64,
    /// Sessions started after the first.
    pub reconnects: u64,
    /// Whether a session is playing now.
    pub connected: bool,
    /// The last failure in detail (no credentials).
    pub last_error_detail: Option<String>,
    /// ONVIF notifications received, waiting for the tick.
    pub onvif: Vec<(onvif::OnvifEvent, DateTime<Utc>)>,
    /// When each kind last raised an event (the cooldown).
    pub onvif_raised: HashMap<&'static str, DateTime<Utc>>,
    /// The latest complete keyframe.
    pub keyframe: Option<Arc<Keyframe>>,
    /// Keyframes rebuilt so far.
    pub keyframes: u64,
    /// Woken whenever a new keyframe is kept.
    pub keyframe_ready: Arc<tokio::sync::Notify>,
    /// Picture checks.
    pub picture: picture::PictureState,
    /// The last snapshot encoded (a cache).
    pub snapshot: Option<Arc<snapshot::Snapshot>>,
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

/// Every watched camera, for the API and the tick.
#[derive(Default)]
pub struct Cameras {
    order: Vec<String>,
    by_id: HashMap<String, Arc<Mutex<Watched>>>,
    /// Per township, as the last tick counted.
    counts: Mutex<HashMap<String, TownshipCount>>,
}

/// One township's cameras, as the last tick counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TownshipCount {
    /// Online.
    pub online: usize,
    /// Online with a clear picture (完好).
    pub intact: usize,
    /// Watched.
    pub watched: usize,
}

impl Cameras {
    fn view(w: &Watched, now: DateTime<Utc>) -> CameraView {
        let (state, since) = w.health.state();
        CameraView {
            id: w.camera.id.clone(),
            name: w.camera.name.clone(),
            township: w.camera.township.clone(),
            state,
            since,
            connected: w.connected,
            measured: w.health.measured(now),
            info: w.info.clone(),
            frames_total: w.frames,
            bytes_total: w.bytes,
            lost_packets_total: w.lost,
            reconnects: w.reconnects,
            last_frame_at: w.health.last_frame(),
            last_error: w.health.last_error().map(str::to_string),
            last_error_detail: w.last_error_detail.clone(),
            suppressed_transitions: w.health.suppressed(),
            picture: w.picture.view(),
        }
    }

    /// Every camera, ordered by id (a stable order for the API).
    pub fn list(&self) -> Vec<CameraView> {
        let now = Utc::now();
        self.order
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .map(|w| Self::view(&w.lock().expect("camera lock"), now))
            .collect()
    }

    /// Per township: cameras online, online with a clear picture, and watched — the counts
    /// of the last tick (the same that set the ratio gauges).
    pub fn township_counts(&self) -> HashMap<String, TownshipCount> {
        self.counts.lock().expect("counts lock").clone()
    }

    /// One camera.
    pub fn get(&self, id: &str) -> Option<CameraView> {
        let w = self.by_id.get(id)?;
        Some(Self::view(&w.lock().expect("camera lock"), Utc::now()))
    }
}

/// Starts watching every camera of the registry; runs until `stop` turns true.
pub fn spawn(
    config: RtspConfig,
    pipeline: Arc<Pipeline>,
    pool: DecoderPool,
    stop: watch::Receiver<bool>,
) -> (Arc<Cameras>, tokio::task::JoinHandle<()>) {
    let now = Utc::now();
    let mut cameras = Cameras::default();
    let mut registered: Vec<_> = pipeline.registry().cameras().collect();
    registered.sort_by(|a, b| a.id.cmp(&b.id));
    for c in registered {
        cameras.order.push(c.id.clone());
        cameras.by_id.insert(
            c.id.clone(),
            Arc::new(Mutex::new(Watched {
                camera: c.clone(),
                health: Health::new(config.health, now),
                info: StreamInfo::default(),
                frames: 0,
                bytes: 0,
                lost: 0,
                reconnects: 0,
                connected: false,
                last_error_detail: None,
                onvif: Vec::new(),
                onvif_raised: HashMap::new(),
                keyframe: None,
                keyframes: 0,
                keyframe_ready: Arc::new(tokio::sync::Notify::new()),
                picture: picture::PictureState::new(config.vqd.confirm),
                snapshot: None,
            })),
        );
    }
    // after a restart: the township already heard each camera's last state (no repeat), and
    // the time the gateway was not watching is unknown, not online
    let mut restart_marks = Vec::new();
    let ids = cameras.order.iter().map(String::as_str);
    match pipeline.outbox().store().camera_last(ids) {
        Ok((last, alive)) => {
            for (id, w) in &cameras.by_id {
                let Some(&(at, code)) = last.get(id) else {
                    continue;
                };
                let state = State::from_code(code);
                if state == State::Unknown {
                    continue;
                }
                w.lock().expect("camera lock").health.resume(state);
                restart_marks.push(CameraMark {
                    camera: id.clone(),
                    at_ms: alive.unwrap_or(at).max(at),
                    state: State::Unknown.code(),
                });
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the camera log; starting without it"),
    }
    let cameras = Arc::new(cameras);
    let metrics = CameraMetrics::new(&pipeline.metrics().registry);
    let group = Arc::new(retina::client::SessionGroup::default());
    let config = Arc::new(config);
    let mut tasks = Vec::new();
    for id in &cameras.order {
        let watched = cameras.by_id[id].clone();
        tasks.push(tokio::spawn(session::supervise(
            watched,
            config.clone(),
            group.clone(),
            metrics.clone(),
            stop.clone(),
        )));
    }
    let c = cameras.clone();
    let task = tokio::spawn(async move {
        let vqd = config.vqd;
        tick_loop(c, pipeline, metrics, (vqd, pool), stop, restart_marks).await;
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    });
    (cameras, task)
}

/// How often the camera source records that it is still watching when nothing changes (after
/// a crash, the time since the last record counts as unknown).
const ALIVE_EVERY: chrono::Duration = chrono::Duration::seconds(5);

/// Every second: evaluate each camera, commit what changed, refresh the gauges.
async fn tick_loop(
    cameras: Arc<Cameras>,
    pipeline: Arc<Pipeline>,
    metrics: CameraMetrics,
    (vqd, pool): (picture::VqdConfig, DecoderPool),
    mut stop: watch::Receiver<bool>,
    mut marks: Vec<CameraMark>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // events whose commit failed (outbox full): retried on the next ticks, in order
    let mut waiting: Vec<alerts::Event> = Vec::new();
    let mut alive_written = DateTime::<Utc>::MIN_UTC;
    loop {
        tokio::select! {
            _ = stop.changed() => {
                // the last moment watched: after a restart, the time since is unknown
                let alive_ms = Utc::now().timestamp_millis();
                pipeline.outbox().record(Op::CameraLog { marks, alive_ms }).await;
                return;
            }
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        let mut by_township: HashMap<String, TownshipCount> = HashMap::new();
        let mut failing = [0i64; Check::ALL.len()];
        for id in &cameras.order {
            let (transition, camera, state, onvif_events, quality, clear) = {
                let watched = &cameras.by_id[id];
                let mut w = watched.lock().expect("camera lock");
                let onvif_events = onvif_due(&mut w, now, &metrics);
                let quality = picture::tick(watched, &mut w, now, &vqd, &pool, &metrics);
                for c in w.picture.reported() {
                    failing[Check::ALL.iter().position(|&x| x == c).unwrap_or(0)] += 1;
                }
                let clear = w.picture.is_clear();
                let before = w.health.state().0;
                let t = w.health.tick(now);
                let (state, since) = w.health.state();
                if state != before {
                    marks.push(CameraMark {
                        camera: id.clone(),
                        at_ms: since.timestamp_millis(),
                        state: state.code(),
                    });
                }
                (t, w.camera.clone(), state, onvif_events, quality, clear)
            };
            for (e, at) in onvif_events {
                if let Some(event) = onvif_event(&pipeline, &camera, &e, at) {
                    waiting.push(event);
                }
            }
            if let Some(q) = quality {
                tracing::info!(
                    camera = %camera.id,
                    failing = ?q.change.failing.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                    "camera picture changed"
                );
                if let Some(event) = quality_event(&pipeline, &camera, &q) {
                    waiting.push(event);
                }
            }
            if !by_township.contains_key(&camera.township) {
                by_township.insert(camera.township.clone(), TownshipCount::default());
            }
            let e = by_township.get_mut(&camera.township).expect("inserted");
            e.watched += 1;
            e.online += usize::from(state == State::Online);
            e.intact += usize::from(state == State::Online && clear);
            metrics
                .up
                .with_label_values(&[camera.id.as_str(), camera.township.as_str()])
                .set(i64::from(state == State::Online));
            if let Some(t) = transition {
                metrics
                    .transitions
                    .with_label_values(&[t.to.as_str()])
                    .inc();
                tracing::info!(
                    camera = %camera.id, from = t.from.as_str(), to = t.to.as_str(),
                    reason = t.reason.as_deref().unwrap_or(""), "camera state changed"
                );
                if let Some(e) = event(&pipeline, &camera, &t) {
                    waiting.push(e);
                }
            }
        }
        let ratio = |n: usize, total: usize| {
            if total == 0 {
                0.0
            } else {
                n as f64 / total as f64
            }
        };
        for (township, c) in &by_township {
            metrics
                .online_ratio
                .with_label_values(&[township.as_str()])
                .set(ratio(c.online, c.watched));
            metrics
                .integrity_ratio
                .with_label_values(&[township.as_str()])
                .set(ratio(c.intact, c.watched));
        }
        *cameras.counts.lock().expect("counts lock") = by_township;
        for (c, n) in Check::ALL.iter().zip(failing) {
            metrics
                .picture_failing
                .with_label_values(&[c.as_str()])
                .set(n);
        }
        // the uptime log rides along with the outbox's next write (durable within a second);
        // with nothing changed only the "still watching" mark is due, every few seconds — a
        // write every second would keep an idle gateway's disk syncing forever
        if !marks.is_empty() || now - alive_written >= ALIVE_EVERY {
            alive_written = now;
            pipeline
                .outbox()
                .record(Op::CameraLog {
                    marks: std::mem::take(&mut marks),
                    alive_ms: now.timestamp_millis(),
                })
                .await;
        }
        while let Some(e) = waiting.first() {
            let deliver = pipeline
                .registry()
                .township(&e.township.code)
                .is_some_and(|t| t.webhook.is_some());
            match pipeline
                .outbox()
                .commit(std::slice::from_ref(e), deliver)
                .await
            {
                Ok(_) => {
                    waiting.remove(0);
                }
                Err(err) => {
                    tracing::warn!(error = %err, waiting = waiting.len(), "camera events wait: the outbox cannot take them now");
                    break;
                }
            }
        }
    }
}

/// Raised ONVIF notifications of one kind at most this often per camera (a busy street keeps
/// a motion detector triggered; the township needs to know, not to be flooded).
const ONVIF_COOLDOWN_S: i64 = 60;

/// The ONVIF notifications that should become events now; the rest are counted.
fn onvif_due(
    w: &mut Watched,
    now: DateTime<Utc>,
    metrics: &CameraMetrics,
) -> Vec<(onvif::OnvifEvent, DateTime<Utc>)> {
    let mut due = Vec::new();
    for (e, at) in std::mem::take(&mut w.onvif) {
        let kind = match e.kind {
            onvif::OnvifKind::Motion => "motion",
            onvif::OnvifKind::Tamper => "tamper",
        };
        let cooling = w
            .onvif_raised
            .get(kind)
            .is_some_and(|last| (now - *last).num_seconds() < ONVIF_COOLDOWN_S);
        let result = if cooling { "suppressed" } else { "raised" };
        metrics.onvif.with_label_values(&[kind, result]).inc();
        if !cooling {
            w.onvif_raised.insert(kind, now);
            due.push((e, at));
        }
    }
    due
}

/// The `camera.motion` / `camera.tamper` event of an ONVIF notification.
fn onvif_event(
    pipeline: &Pipeline,
    camera: &Camera,
    e: &onvif::OnvifEvent,
    at: DateTime<Utc>,
) -> Option<alerts::Event> {
    let township = pipeline.registry().township(&camera.township)?;
    let (kind, what) = match e.kind {
        onvif::OnvifKind::Motion => (Kind::CameraMotion, "移动侦测 (ONVIF)"),
        onvif::OnvifKind::Tamper => (Kind::CameraTamper, "遮挡/移位/失焦 (ONVIF)"),
    };
    let mut measured = serde_json::Map::new();
    measured.insert(
        "onvif_topic".into(),
        serde_json::Value::from(e.topic.clone()),
    );
    let offset = pipeline.offset();
    Some(camera_event(
        camera,
        township,
        kind,
        CameraDetail {
            state: "online".into(),
            reason: Some(e.topic.clone()),
            measured,
            failing_checks: Vec::new(),
            cleared_checks: Vec::new(),
        },
        at.with_timezone(&offset),
        Utc::now().with_timezone(&offset),
        what,
    ))
}

/// The `camera.quality` event of a confirmed picture change.
fn quality_event(
    pipeline: &Pipeline,
    camera: &Camera,
    q: &picture::PictureChange,
) -> Option<alerts::Event> {
    let township = pipeline.registry().township(&camera.township)?;
    let measured = match serde_json::to_value(q.measured) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let names = |cs: &[Check]| cs.iter().map(|c| c.as_str().to_string()).collect();
    let labels = |cs: &[Check]| cs.iter().map(|c| c.label()).collect::<Vec<_>>().join("、");
    let what = if q.change.failing.is_empty() {
        format!("图像恢复正常 ({})", labels(&q.change.cleared))
    } else {
        labels(&q.change.failing)
    };
    let offset = pipeline.offset();
    Some(camera_event(
        camera,
        township,
        Kind::CameraQuality,
        CameraDetail {
            state: "online".into(),
            reason: q.change.failing.is_empty().then(|| "cleared".to_string()),
            measured,
            failing_checks: names(&q.change.failing),
            cleared_checks: names(&q.change.cleared),
        },
        q.at.with_timezone(&offset),
        Utc::now().with_timezone(&offset),
        &what,
    ))
}

/// The event of a transition.
fn event(pipeline: &Pipeline, camera: &Camera, t: &Transition) -> Option<alerts::Event> {
    let township = pipeline.registry().township(&camera.township)?;
    let kind = match t.to {
        State::Online => Kind::CameraOnline,
        State::Offline => Kind::CameraOffline,
        State::Stalled => Kind::CameraStalled,
        State::Degraded => Kind::CameraDegraded,
        State::Unknown => return None,
    };
    let mut measured = serde_json::Map::new();
    let m = &t.measured;
    let num = |v: f64| serde_json::Value::from(v);
    match t.to {
        State::Online | State::Degraded => {
            measured.insert("fps".into(), num(m.fps));
            if let Some(e) = m.expected_fps {
                measured.insert("expected_fps".into(), num(e));
            }
            measured.insert("bitrate_kbps".into(), num(m.bitrate_kbps));
            measured.insert("loss_ratio".into(), num(m.loss_ratio));
            if let Some(k) = m.keyframe_interval_s {
                measured.insert("keyframe_interval_s".into(), num(k));
            }
        }
        _ => {}
    }
    if let Some(away) = t.away {
        measured.insert("away_s".into(), serde_json::Value::from(away.num_seconds()));
    }
    let offset = pipeline.offset();
    let what = match (t.to, &t.reason) {
        (State::Offline, Some(r)) => format!("无法连接 ({r})"),
        (State::Offline, None) => "无法连接".to_string(),
        (State::Stalled, _) => "会话在线但无视频帧".to_string(),
        (State::Degraded, Some(r)) => format!("{} ({r})", m.fps),
        (State::Online, _) => match t.away {
            Some(a) => format!("中断 {} 秒后恢复", a.num_seconds()),
            None => "恢复正常".to_string(),
        },
        _ => String::new(),
    };
    Some(camera_event(
        camera,
        township,
        kind,
        CameraDetail {
            state: t.to.as_str().to_string(),
            reason: t.reason.clone(),
            measured,
            failing_checks: Vec::new(),
            cleared_checks: Vec::new(),
        },
        t.at.with_timezone(&offset),
        Utc::now().with_timezone(&offset),
        &what,
    ))
}
