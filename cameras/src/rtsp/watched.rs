//! One camera as watched: what its session task reports (sessions up and down, frames,
//! keyframes, ONVIF notifications) and what the tick, the API and snapshots read — behind one
//! lock per camera. Every time comes from the source's clock.

use super::health::{Health, HealthConfig, Measured, State};
use super::onvif::{OnvifEvent, OnvifKind};
use super::picture::{self, PictureState};
use super::snapshot::{Snapshot, Thumb, THUMB_MAX_AGE};
use super::{CameraView, StreamInfo};
use crate::video::Keyframe;
use alerts::registry::Camera;
use alerts::Clock;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Counters since watching began.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    /// Frames received.
    pub frames: u64,
    /// Bytes of frames received.
    pub bytes: u64,
    /// RTP packets lost.
    pub lost: u64,
    /// Sessions started after the first.
    pub reconnects: u64,
    /// Keyframes rebuilt.
    pub keyframes: u64,
}

/// One camera as watched.
pub struct Watched {
    pub(crate) camera: Arc<Camera>,
    clock: Arc<dyn Clock>,
    pub(crate) health: Health,
    info: StreamInfo,
    counters: Counters,
    sessions: u64,
    /// Whether a session is playing now.
    pub(crate) connected: bool,
    last_error_detail: Option<String>,
    /// ONVIF notifications received, waiting for the tick.
    onvif: Vec<(OnvifEvent, DateTime<Utc>)>,
    /// When each kind last raised an event (the cooldown).
    onvif_raised: HashMap<&'static str, DateTime<Utc>>,
    /// The latest complete keyframe.
    pub(crate) keyframe: Option<Arc<Keyframe>>,
    /// Woken whenever a new keyframe is kept.
    pub(crate) keyframe_ready: Arc<tokio::sync::Notify>,
    /// Picture checks.
    pub(crate) picture: PictureState,
    /// The snapshot of the latest keyframe, once encoded (a cache; dropped with its keyframe).
    pub(crate) snapshot: Option<Arc<Snapshot>>,
    /// The last thumbnail, served to the camera wall for [`THUMB_MAX_AGE`].
    pub(crate) thumb: Option<Thumb>,
    /// The keyframe (seq) being encoded now: others asking for it wait for that encode.
    pub(crate) encoding: Option<u64>,
    /// Woken when an encode ends (done or failed).
    pub(crate) encoded: Arc<tokio::sync::Notify>,
}

impl Watched {
    /// Starts watching `camera` now.
    pub(crate) fn new(
        camera: Arc<Camera>,
        health: HealthConfig,
        vqd: &picture::VqdConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            health: Health::new(health, clock.now()),
            camera,
            clock,
            info: StreamInfo::default(),
            counters: Counters::default(),
            sessions: 0,
            connected: false,
            last_error_detail: None,
            onvif: Vec::new(),
            onvif_raised: HashMap::new(),
            keyframe: None,
            keyframe_ready: Arc::new(tokio::sync::Notify::new()),
            picture: PictureState::new(vqd.confirm, vqd.baseline_samples),
            snapshot: None,
            thumb: None,
            encoding: None,
            encoded: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The source's time now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A session plays; `sdp_fps` is the rate its SDP announces.
    pub(crate) fn session_up(&mut self, sdp_fps: Option<f64>, info: Option<StreamInfo>) {
        self.connected = true;
        self.sessions += 1;
        if self.sessions > 1 {
            self.counters.reconnects += 1;
        }
        let now = self.now();
        self.health.session_up(now, sdp_fps);
        if let Some(info) = info {
            self.info = info;
        }
    }

    /// Sessions after the first.
    pub(crate) fn reconnects(&self) -> u64 {
        self.counters.reconnects
    }

    /// The session ended: `reason` is a short code, `detail` retina's message.
    pub(crate) fn session_down(&mut self, reason: &'static str, detail: String) {
        self.connected = false;
        // no picture is current any more: nothing kept for it
        self.snapshot = None;
        self.thumb = None;
        let now = self.now();
        self.health.session_down(now, reason);
        self.last_error_detail = Some(detail);
    }

    /// A frame arrived (`rebuilt`: the keyframe it completed, Annex B with its codec).
    pub(crate) fn frame(
        &mut self,
        bytes: usize,
        key: bool,
        lost: u32,
        rebuilt: Option<(crate::video::VideoCodec, bytes::Bytes)>,
    ) {
        let now = self.now();
        if let Some((codec, data)) = rebuilt {
            self.counters.keyframes += 1;
            self.keyframe = Some(Arc::new(Keyframe {
                codec,
                data,
                at: now,
                seq: self.counters.keyframes,
            }));
            self.keyframe_ready.notify_waiters();
            // a snapshot is only served for the keyframe it shows; a thumbnail for a while:
            // what is kept per camera stays one small picture at most
            self.snapshot = None;
            self.thumb = self
                .thumb
                .take()
                .filter(|t| t.made.elapsed() <= THUMB_MAX_AGE);
        }
        self.counters.frames += 1;
        self.counters.bytes += bytes as u64;
        self.counters.lost += u64::from(lost);
        let lost = lost.min(u32::from(u16::MAX)) as u16;
        self.health.frame(now, bytes, key, lost);
    }

    /// ONVIF notifications of the kinds this camera raises, waiting for the tick.
    pub(crate) fn onvif(&mut self, events: Vec<OnvifEvent>) {
        let now = self.now();
        for e in events {
            let wanted = match e.kind {
                OnvifKind::Motion => self.camera.motion_events,
                OnvifKind::Tamper => self.camera.tamper_events,
            };
            if wanted && e.active {
                self.onvif.push((e, now));
            }
        }
    }

    /// The ONVIF notifications that should become events now (at most one per kind per
    /// `cooldown_s`); each is counted as `raised` or `suppressed` through `count`.
    pub(crate) fn onvif_due(
        &mut self,
        now: DateTime<Utc>,
        cooldown_s: i64,
        mut count: impl FnMut(&'static str, &'static str),
    ) -> Vec<(OnvifEvent, DateTime<Utc>)> {
        let mut due = Vec::new();
        for (e, at) in std::mem::take(&mut self.onvif) {
            let kind = match e.kind {
                OnvifKind::Motion => "motion",
                OnvifKind::Tamper => "tamper",
            };
            let cooling = self
                .onvif_raised
                .get(kind)
                .is_some_and(|last| (now - *last).num_seconds() < cooldown_s);
            count(kind, if cooling { "suppressed" } else { "raised" });
            if !cooling {
                self.onvif_raised.insert(kind, now);
                due.push((e, at));
            }
        }
        due
    }

    /// The camera as the API shows it.
    pub(crate) fn view(&self) -> CameraView {
        let (state, since): (State, _) = self.health.state();
        let measured: Measured = self.health.measured(self.now());
        CameraView {
            id: self.camera.id.clone(),
            name: self.camera.name.clone(),
            township: self.camera.township.clone(),
            state,
            since,
            connected: self.connected,
            measured,
            info: self.info.clone(),
            frames_total: self.counters.frames,
            bytes_total: self.counters.bytes,
            lost_packets_total: self.counters.lost,
            reconnects: self.counters.reconnects,
            last_frame_at: self.health.last_frame(),
            last_error: self.health.last_error().map(str::to_string),
            last_error_detail: self.last_error_detail.clone(),
            suppressed_transitions: self.health.suppressed(),
            picture: self.picture.view(),
        }
    }
}
