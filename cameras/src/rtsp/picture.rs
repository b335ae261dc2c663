//! Picture checks for the camera source: every `interval` a streaming camera's newest keyframe
//! goes to the decoder pool; the result comes back into the camera's state and the next tick
//! turns confirmed changes into `camera.quality` events.

use super::metrics::CameraMetrics;
use super::Watched;
use crate::video::pool::{DecoderPool, Refused};
use crate::video::quality::{Quality, QualityChange};
use crate::video::vqd::{self, Check, Measures, Thresholds, Thumb};
use crate::video::{decode, Keyframe};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the picture checks.
#[derive(Debug, Clone, Copy)]
pub struct VqdConfig {
    /// How often each camera is sampled (`None`: never, unless a camera sets its own).
    pub interval: Option<Duration>,
    /// Consecutive samples that raise or clear a check.
    pub confirm: u32,
    /// Thresholds.
    pub thresholds: Thresholds,
}

impl Default for VqdConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(60)),
            confirm: 2,
            thresholds: Thresholds::default(),
        }
    }
}

/// The latest sample, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PictureView {
    /// When the sampled keyframe arrived.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub sampled_at: DateTime<Utc>,
    /// Measured values.
    pub measured: Measures,
    /// Checks this sample failed.
    pub failing_now: Vec<Check>,
    /// Checks reported (confirmed).
    pub failing: Vec<Check>,
}

/// A finished sample: its measures and thumbnail, or why it failed.
type SampleResult = Result<(Measures, Thumb), String>;

/// One camera's picture-check state.
#[derive(Debug)]
pub struct PictureState {
    quality: Quality,
    thumb: Option<Thumb>,
    sampled_seq: u64,
    next_at: Option<DateTime<Utc>>,
    in_flight: bool,
    done: Option<(DateTime<Utc>, SampleResult)>,
    last: Option<PictureView>,
}

impl PictureState {
    /// A fresh state.
    pub fn new(confirm: u32) -> Self {
        Self {
            quality: Quality::new(confirm),
            thumb: None,
            sampled_seq: 0,
            next_at: None,
            in_flight: false,
            done: None,
            last: None,
        }
    }

    /// The latest sample.
    pub fn view(&self) -> Option<PictureView> {
        self.last.clone()
    }

    /// Whether no check is reported.
    pub fn is_clear(&self) -> bool {
        self.quality.is_clear()
    }

    /// The checks reported.
    pub fn reported(&self) -> impl Iterator<Item = Check> + '_ {
        self.quality.reported()
    }
}

/// A change worth an event.
pub struct PictureChange {
    /// What changed.
    pub change: QualityChange,
    /// The sample that changed it.
    pub measured: Measures,
    /// When its keyframe arrived.
    pub at: DateTime<Utc>,
}

/// Called every tick with the camera locked: takes a finished sample (returning a change to
/// report), and queues the next one when it is due.
pub(crate) fn tick(
    watched: &Arc<Mutex<Watched>>,
    w: &mut Watched,
    now: DateTime<Utc>,
    config: &VqdConfig,
    pool: &DecoderPool,
    metrics: &CameraMetrics,
) -> Option<PictureChange> {
    let thresholds = config.thresholds;
    let mut reported = None;
    if let Some((at, result)) = w.picture.done.take() {
        match result {
            Ok((measured, thumb)) => {
                metrics.vqd_samples.with_label_values(&["ok"]).inc();
                let failing_now = vqd::failing(&measured, &thresholds);
                w.picture.thumb = Some(thumb);
                let change = w.picture.quality.sample(&failing_now);
                w.picture.last = Some(PictureView {
                    sampled_at: at,
                    measured,
                    failing_now,
                    failing: w.picture.quality.reported().collect(),
                });
                reported = change.map(|change| PictureChange {
                    change,
                    measured,
                    at,
                });
            }
            Err(e) => {
                metrics.vqd_samples.with_label_values(&["failed"]).inc();
                tracing::debug!(camera = %w.camera.id, error = %e, "picture sample failed");
            }
        }
    }
    let interval = match w.camera.vqd_interval_s {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => config.interval,
    };
    let Some(interval) = interval else {
        return reported;
    };
    if !w.connected {
        // a new session starts afresh: no comparison across the gap
        w.picture.quality.interrupt();
        w.picture.thumb = None;
        return reported;
    }
    let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    let next_at = *w.picture.next_at.get_or_insert_with(|| {
        // the first samples of many cameras spread over one interval
        let ms = interval.num_milliseconds().max(1);
        now + chrono::Duration::milliseconds(rand::random::<i64>().rem_euclid(ms))
    });
    let Some(kf) = w.keyframe.clone() else {
        return reported;
    };
    if w.picture.in_flight || now < next_at || kf.seq <= w.picture.sampled_seq {
        return reported;
    }
    w.picture.next_at = Some(now + interval);
    let seq = kf.seq;
    let previous = w.picture.thumb.clone();
    let job_watched = watched.clone();
    let seconds = metrics.vqd_seconds.clone();
    let job = move || {
        let started = Instant::now();
        let result = sample(&kf, previous.as_ref());
        seconds.observe(started.elapsed().as_secs_f64());
        let mut w = job_watched.lock();
        w.picture.in_flight = false;
        w.picture.done = Some((kf.at, result));
    };
    match pool.sample(job) {
        Ok(()) => {
            w.picture.in_flight = true;
            w.picture.sampled_seq = seq;
        }
        Err(Refused::OverBudget) => metrics
            .vqd_samples
            .with_label_values(&["skipped_budget"])
            .inc(),
        Err(Refused::Busy) => metrics
            .vqd_samples
            .with_label_values(&["skipped_busy"])
            .inc(),
    }
    reported
}

fn sample(kf: &Keyframe, previous: Option<&Thumb>) -> SampleResult {
    let decoded = decode::decode(kf).map_err(|e| e.to_string())?;
    let picture = decode::picture(&decoded).map_err(|e| e.to_string())?;
    Ok(vqd::measure(&picture, previous))
}
