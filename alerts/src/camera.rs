//! The camera vocabulary: what the camera sources observe, in the core's own types — the
//! camera counterpart of [`crate::FireSignal`].
//!
//! A source (RTSP today, GB/T 28181 later) watches its cameras and hands the pipeline
//! [`CameraObservation`]s through [`crate::Pipeline::observe_cameras`]; the pipeline words them
//! into events ([`crate::normalize::camera`]), commits them and keeps the uptime log. The source
//! never builds an event or writes the outbox itself.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// A camera's state as watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// Not yet known (just started watching, or the gateway was not watching).
    Unknown,
    /// Streaming.
    Online,
    /// Session up, no frames.
    Stalled,
    /// Streaming badly.
    Degraded,
    /// No working session.
    Offline,
}

impl CameraState {
    /// The code in the uptime log.
    pub fn code(self) -> u8 {
        match self {
            CameraState::Unknown => 0,
            CameraState::Online => 1,
            CameraState::Stalled => 2,
            CameraState::Degraded => 3,
            CameraState::Offline => 4,
        }
    }

    /// The state of a code (unknown codes: `Unknown`).
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => CameraState::Online,
            2 => CameraState::Stalled,
            3 => CameraState::Degraded,
            4 => CameraState::Offline,
            _ => CameraState::Unknown,
        }
    }

    /// The name in events, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Unknown => "unknown",
            CameraState::Online => "online",
            CameraState::Stalled => "stalled",
            CameraState::Degraded => "degraded",
            CameraState::Offline => "offline",
        }
    }
}

/// What a stream measures (over the last few seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamMeasures {
    /// Frames per second.
    pub fps: f64,
    /// What the stream should deliver (SDP, else the best observed), when known.
    pub expected_fps: Option<f64>,
    /// Bitrate, kbit/s.
    pub bitrate_kbps: f64,
    /// Share of RTP packets lost.
    pub loss_ratio: f64,
    /// Time between the last two keyframes, seconds.
    pub keyframe_interval_s: Option<f64>,
}

/// A state change the township should hear of (debounced and held to the flap budget by the
/// source's health state machine).
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// From (as the township last heard).
    pub from: CameraState,
    /// To.
    pub to: CameraState,
    /// Since when the camera is in `to`.
    pub at: DateTime<Utc>,
    /// Why (offline: the failure; degraded: the degradation).
    pub reason: Option<String>,
    /// The numbers at the time.
    pub measured: StreamMeasures,
    /// For `online` after `offline` or `stalled`: how long it was away.
    pub away: Option<Duration>,
}

/// A picture check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PictureCheck {
    /// Signal loss: dark and flat (a covered lens, a dead sensor, a blank encoder input).
    Black,
    /// Too dark to see (but not black).
    Underexposed,
    /// Washed out.
    Overexposed,
    /// Almost no contrast over the whole picture (fog, a dirty dome, a grey encoder input).
    LowContrast,
    /// A large uniform region hides most of the scene (something in front of the lens).
    Occluded,
    /// Out of focus: the strong edges are wide, or the detail fell far below the camera's own.
    Blurred,
    /// Nothing changed since the previous sample although frames keep coming.
    Frozen,
    /// The colours are shifted as a whole (a failed IR-cut filter, a bad cable).
    ColorCast,
    /// The view no longer matches the camera's own baseline: turned, moved or something large
    /// put in front of it (画面偏移).
    SceneChanged,
}

impl PictureCheck {
    /// The name in events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            PictureCheck::Black => "black",
            PictureCheck::Underexposed => "underexposed",
            PictureCheck::Overexposed => "overexposed",
            PictureCheck::LowContrast => "low_contrast",
            PictureCheck::Occluded => "occluded",
            PictureCheck::Blurred => "blurred",
            PictureCheck::Frozen => "frozen",
            PictureCheck::ColorCast => "color_cast",
            PictureCheck::SceneChanged => "scene_changed",
        }
    }

    /// Every check.
    pub const ALL: [PictureCheck; 9] = [
        PictureCheck::Black,
        PictureCheck::Underexposed,
        PictureCheck::Overexposed,
        PictureCheck::LowContrast,
        PictureCheck::Occluded,
        PictureCheck::Blurred,
        PictureCheck::Frozen,
        PictureCheck::ColorCast,
        PictureCheck::SceneChanged,
    ];
}

/// A confirmed change of a camera's picture checks.
#[derive(Debug, Clone, PartialEq)]
pub struct PictureVerdict {
    /// Checks failing now (empty: the picture is clear again).
    pub failing: Vec<PictureCheck>,
    /// Checks that pass again.
    pub cleared: Vec<PictureCheck>,
    /// The sample's measured values, by name.
    pub measured: serde_json::Map<String, serde_json::Value>,
    /// When the sampled keyframe arrived.
    pub at: DateTime<Utc>,
}

/// What an ONVIF notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnvifKind {
    /// Motion detected.
    Motion,
    /// The view was tampered with (covered, moved, defocused).
    Tamper,
}

/// An ONVIF notification worth an event (the source applies its cooldown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnvifNotice {
    /// Motion or tamper.
    pub kind: OnvifKind,
    /// The topic as sent.
    pub topic: String,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// An alarm a camera or its NVR reported (GB/T 28181 Alarm notify), as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceAlarm {
    /// The device that sent it.
    pub device: String,
    /// `AlarmMethod`.
    pub method: Option<String>,
    /// `AlarmType`.
    pub alarm_type: Option<String>,
    /// `AlarmPriority`.
    pub priority: Option<u8>,
    /// `AlarmTime`, in the gateway's zone (devices send local time without one).
    pub at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// `AlarmDescription`.
    pub description: Option<String>,
}

/// Something a camera source saw about one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraObservation {
    /// The camera's registry id.
    pub camera: String,
    /// What was seen.
    pub what: Observed,
}

/// What a camera source saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// The watched state changed (written to the uptime log; the township hears only of
    /// [`Observed::Changed`]).
    Entered {
        /// The new state.
        state: CameraState,
        /// Since when.
        since: DateTime<Utc>,
    },
    /// A state change worth an event: `camera.online|offline|stalled|degraded`.
    Changed(StateChange),
    /// Picture checks raised or cleared: `camera.quality`.
    Picture(PictureVerdict),
    /// An ONVIF notification: `camera.motion` or `camera.tamper`.
    Onvif(OnvifNotice),
    /// The picture baseline was learned (`Some`, opaque to the pipeline) or forgotten
    /// (`None`): kept with the uptime log, so that a restart does not learn it again.
    Baseline(Option<Vec<u8>>),
}
