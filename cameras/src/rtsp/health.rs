//! A camera's health, as a pure state machine: the session supervisor feeds it what happens
//! (session up or down, frames), a one-second tick evaluates it, and it answers with the
//! transitions worth an event.
//!
//! * `online` — a session is up and frames arrive;
//! * `stalled` — the session is up but no frame for `stall_after`;
//! * `degraded` — frames arrive, but for `degrade_after` the frame rate stayed well under the
//!   expected rate, or RTP loss was high, or keyframes were too far apart;
//! * `offline` — no working session for `offline_after` (with the last failure's reason).
//!
//! Debounced: short outages (under `offline_after`) and short dips (under `degrade_after`) raise
//! nothing. A camera's first state after the gateway starts raises no event when it is
//! `online` (bringing cameras under watch must not flood the townships). A flapping camera is
//! held to an event budget per hour; changes beyond it are counted and the state the township
//! last heard of is corrected once the budget allows.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::VecDeque;

pub use alerts::camera::CameraState as State;
pub use alerts::camera::StateChange as Transition;
pub use alerts::camera::StreamMeasures as Measured;

/// Thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthConfig {
    /// No working session this long → offline.
    pub offline_after: Duration,
    /// Session up but no frame this long → stalled.
    pub stall_after: Duration,
    /// A bad stream this long → degraded (and a good one this long → online again).
    pub degrade_after: Duration,
    /// Degraded when the frame rate is under this share of the expected rate.
    pub min_fps_ratio: f64,
    /// Degraded when more than this share of RTP packets is lost.
    pub max_loss_ratio: f64,
    /// Degraded when keyframes are further apart than this.
    pub max_keyframe_interval: Duration,
    /// State-change events per camera per hour, at most.
    pub events_per_hour: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            offline_after: Duration::seconds(30),
            stall_after: Duration::seconds(10),
            degrade_after: Duration::seconds(10),
            min_fps_ratio: 0.5,
            max_loss_ratio: 0.05,
            max_keyframe_interval: Duration::seconds(10),
            events_per_hour: 12,
        }
    }
}

/// Why a camera is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Degradation {
    /// Frame rate well under the expected.
    LowFps,
    /// RTP packets lost.
    RtpLoss,
    /// Keyframes too far apart.
    KeyframeInterval,
}

impl Degradation {
    /// The reason's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Degradation::LowFps => "low_fps",
            Degradation::RtpLoss => "rtp_loss",
            Degradation::KeyframeInterval => "keyframe_interval",
        }
    }
}

/// One second of frames.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: i64,
    frames: u32,
    bytes: u64,
    lost: u32,
}

/// Seconds of frames the rates are computed over.
const WINDOW_S: i64 = 5;

/// One camera's health.
#[derive(Debug, Clone)]
pub struct Health {
    config: HealthConfig,
    state: State,
    since: DateTime<Utc>,
    /// What the township last heard (`None`: nothing yet), and since when that state held.
    reported: Option<State>,
    reported_since: DateTime<Utc>,
    session_up: bool,
    /// When the camera last had a working session (or when watching began).
    last_good: DateTime<Utc>,
    last_error: Option<String>,
    last_frame: Option<DateTime<Utc>>,
    last_keyframe: Option<DateTime<Utc>>,
    keyframe_interval: Option<Duration>,
    buckets: VecDeque<Bucket>,
    sdp_fps: Option<f64>,
    best_fps: f64,
    /// Since when the stream has been bad (for the debounce), and why.
    bad_since: Option<(DateTime<Utc>, Degradation)>,
    good_since: Option<DateTime<Utc>>,
    tokens: f64,
    tokens_at: DateTime<Utc>,
    suppressed: u64,
}

impl Health {
    /// Starts watching at `now`.
    pub fn new(config: HealthConfig, now: DateTime<Utc>) -> Self {
        Self {
            config,
            state: State::Unknown,
            since: now,
            reported: None,
            reported_since: now,
            session_up: false,
            last_good: now,
            last_error: None,
            last_frame: None,
            last_keyframe: None,
            keyframe_interval: None,
            buckets: VecDeque::with_capacity(WINDOW_S as usize + 2),
            sdp_fps: None,
            best_fps: 0.0,
            bad_since: None,
            good_since: None,
            tokens: config.events_per_hour as f64,
            tokens_at: now,
            suppressed: 0,
        }
    }

    /// Resumes a state the township heard before a restart: an unchanged state after the
    /// restart raises no event.
    pub fn resume(&mut self, reported: State) {
        self.reported = Some(reported);
    }

    /// The current (debounced) state and since when.
    pub fn state(&self) -> (State, DateTime<Utc>) {
        (self.state, self.since)
    }

    /// The last session failure, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// When the last frame arrived.
    pub fn last_frame(&self) -> Option<DateTime<Utc>> {
        self.last_frame
    }

    /// State changes held back by the event budget so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// A session is playing; `sdp_fps` is the rate the SDP announces, if any.
    pub fn session_up(&mut self, now: DateTime<Utc>, sdp_fps: Option<f64>) {
        self.session_up = true;
        self.last_good = now;
        self.sdp_fps = sdp_fps.filter(|f| *f > 0.0);
        self.buckets.clear();
        self.bad_since = None;
        self.good_since = None;
        self.last_keyframe = None;
    }

    /// The session ended or an attempt failed, with the reason.
    pub fn session_down(&mut self, now: DateTime<Utc>, reason: &str) {
        if self.session_up {
            self.last_good = now;
        }
        self.session_up = false;
        self.last_error = Some(reason.to_string());
    }

    /// A frame arrived.
    pub fn frame(&mut self, now: DateTime<Utc>, bytes: usize, keyframe: bool, lost: u16) {
        self.last_frame = Some(now);
        self.last_good = now;
        let second = now.timestamp();
        match self.buckets.back_mut() {
            Some(b) if b.second == second => {
                b.frames += 1;
                b.bytes += bytes as u64;
                b.lost += lost as u32;
            }
            _ => {
                self.buckets.push_back(Bucket {
                    second,
                    frames: 1,
                    bytes: bytes as u64,
                    lost: lost as u32,
                });
                while self
                    .buckets
                    .front()
                    .is_some_and(|b| b.second < second - WINDOW_S)
                {
                    self.buckets.pop_front();
                }
            }
        }
        if keyframe {
            if let Some(prev) = self.last_keyframe {
                self.keyframe_interval = Some(now - prev);
            }
            self.last_keyframe = Some(now);
        }
    }

    /// The rates over the last complete seconds.
    pub fn measured(&self, now: DateTime<Utc>) -> Measured {
        let current = now.timestamp();
        // complete seconds only: [current - WINDOW_S, current)
        let (mut frames, mut bytes, mut lost) = (0u64, 0u64, 0u64);
        for b in &self.buckets {
            if b.second >= current - WINDOW_S && b.second < current {
                frames += b.frames as u64;
                bytes += b.bytes;
                lost += b.lost as u64;
            }
        }
        let secs = WINDOW_S as f64;
        let fps = frames as f64 / secs;
        // frames stand in for packets here: retina reports loss in packets, most frames of a
        // camera stream are a handful of packets, so this over-states loss a little at worst
        let loss_ratio = if frames + lost == 0 {
            0.0
        } else {
            lost as f64 / (frames + lost) as f64
        };
        Measured {
            fps: (fps * 10.0).round() / 10.0,
            expected_fps: self
                .sdp_fps
                .or((self.best_fps > 0.0).then_some(self.best_fps)),
            bitrate_kbps: (bytes as f64 * 8.0 / 1000.0 / secs).round(),
            loss_ratio: (loss_ratio * 1000.0).round() / 1000.0,
            keyframe_interval_s: self
                .keyframe_interval
                .map(|d| d.num_milliseconds() as f64 / 1000.0),
        }
    }

    fn degradation(&self, m: &Measured, now: DateTime<Utc>) -> Option<Degradation> {
        // a session younger than the window has no complete rate yet
        let window_full = self
            .buckets
            .front()
            .is_some_and(|b| b.second <= now.timestamp() - WINDOW_S);
        if !window_full {
            return None;
        }
        if let Some(expected) = m.expected_fps {
            if m.fps < expected * self.config.min_fps_ratio {
                return Some(Degradation::LowFps);
            }
        }
        if m.loss_ratio > self.config.max_loss_ratio {
            return Some(Degradation::RtpLoss);
        }
        let since_key = self.last_keyframe.map(|k| now - k);
        if self
            .keyframe_interval
            .is_some_and(|k| k > self.config.max_keyframe_interval)
            || since_key.is_some_and(|k| k > self.config.max_keyframe_interval)
        {
            return Some(Degradation::KeyframeInterval);
        }
        None
    }

    /// Evaluates the state at `now` (call it every second); a transition when the township
    /// should hear of one.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Option<Transition> {
        let m = self.measured(now);
        if self.session_up && self.sdp_fps.is_none() && m.fps > self.best_fps {
            self.best_fps = m.fps;
        }
        let mut reason = None;
        let target = if self.session_up {
            let stalled = self
                .last_frame
                .is_none_or(|f| now - f >= self.config.stall_after)
                && now - self.last_good >= self.config.stall_after;
            if stalled {
                Some(State::Stalled)
            } else if self.last_frame.is_none() {
                None // just started: wait for frames
            } else {
                match self.degradation(&m, now) {
                    Some(d) => {
                        self.good_since = None;
                        let (since, _) = *self.bad_since.get_or_insert((now, d));
                        reason = Some(d.as_str().to_string());
                        let lasting = now - since >= self.config.degrade_after;
                        Some(if lasting || self.state == State::Degraded {
                            State::Degraded
                        } else {
                            State::Online
                        })
                    }
                    None => {
                        self.bad_since = None;
                        let good = *self.good_since.get_or_insert(now);
                        let recovering = now - good < self.config.degrade_after;
                        Some(if self.state == State::Degraded && recovering {
                            State::Degraded
                        } else {
                            State::Online
                        })
                    }
                }
            }
        } else if now - self.last_good >= self.config.offline_after {
            reason = self.last_error.clone();
            Some(State::Offline)
        } else {
            None // a short outage: not yet offline
        };
        if let Some(t) = target {
            if t != self.state {
                self.state = t;
                // offline since the last working moment, stalled since the last frame
                self.since = match t {
                    State::Offline => self.last_good,
                    State::Stalled => self.last_frame.unwrap_or(self.last_good),
                    _ => now,
                };
            }
        }
        self.report(now, reason, m)
    }

    fn report(
        &mut self,
        now: DateTime<Utc>,
        reason: Option<String>,
        m: Measured,
    ) -> Option<Transition> {
        // the budget refills continuously
        let hours = (now - self.tokens_at).num_milliseconds() as f64 / 3_600_000.0;
        let cap = self.config.events_per_hour as f64;
        self.tokens = (self.tokens + hours * cap).min(cap);
        self.tokens_at = now;
        let state = self.state;
        if state == State::Unknown || self.reported == Some(state) {
            return None;
        }
        let from = self.reported.unwrap_or(State::Unknown);
        if self.reported.is_none() && state == State::Online {
            // the first look at a camera that streams: nothing to tell
            self.reported = Some(state);
            self.reported_since = self.since;
            return None;
        }
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1.0;
        let away = (state == State::Online && matches!(from, State::Offline | State::Stalled))
            .then(|| self.since - self.reported_since)
            .filter(|d| *d > Duration::zero());
        self.reported = Some(state);
        self.reported_since = self.since;
        Some(Transition {
            from,
            to: state,
            at: self.since,
            reason: reason.filter(|_| matches!(state, State::Offline | State::Degraded)),
            measured: m,
            away,
        })
    }
}

#[cfg(test)]
mod tests;
