//! Picture checks for the camera source: every `interval` a streaming camera's newest keyframe
//! goes to the decoder pool; the result comes back into the camera's state and the next tick
//! turns confirmed changes into `camera.quality` events.

use super::metrics::CameraMetrics;
use super::Watched;
use crate::video::baseline::{Baseline, Learner};
use crate::video::pool::{DecoderPool, Refused};
use crate::video::quality::{Quality, QualityChange};
use crate::video::vqd::{self, Check, Measures, Thresholds, Thumb};
use crate::video::{decode, Keyframe};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the picture checks.
#[derive(Debug, Clone)]
pub struct VqdConfig {
    /// How often each camera is sampled (`None`: never, unless a camera sets its own).
    pub interval: Option<Duration>,
    /// Consecutive samples that raise or clear a check.
    pub confirm: u32,
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Named threshold sets, for the cameras whose `vqd_profile` names one.
    pub profiles: Arc<HashMap<String, Thresholds>>,
    /// Usable samples a camera's baseline is learned from (0: no baselines, only the
    /// thresholds).
    pub baseline_samples: usize,
}

impl Default for VqdConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(60)),
            confirm: 2,
            thresholds: Thresholds::default(),
            profiles: Arc::default(),
            baseline_samples: 10,
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
    /// The camera's baseline: `learning` (with `baseline_progress` samples of
    /// `baseline_needed`), `learned`, or `off`.
    pub baseline: &'static str,
    /// Usable samples learned from so far.
    pub baseline_progress: usize,
    /// Usable samples the baseline needs.
    pub baseline_needed: usize,
    /// Once learned: whether the view held still while it was (`false`: `scene_changed` is
    /// not judged for this camera — it kept moving, or turned between presets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_steady: Option<bool>,
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
    /// The camera's own normal, once learned.
    baseline: Option<Baseline>,
    /// Learning it (`None`: learned, or baselines are off).
    learner: Option<Learner>,
    /// Baselines learned or forgotten, for the pipeline to keep.
    to_keep: Vec<Option<Baseline>>,
    /// Samples a baseline is learned from (0: baselines are off).
    baseline_samples: usize,
}

impl PictureState {
    /// A fresh state, learning its baseline from `baseline_samples` samples (0: none).
    pub fn new(confirm: u32, baseline_samples: usize) -> Self {
        Self {
            baseline: None,
            learner: (baseline_samples > 0).then(|| Learner::new(baseline_samples)),
            to_keep: Vec::new(),
            baseline_samples,
            quality: Quality::new(confirm),
            thumb: None,
            sampled_seq: 0,
            next_at: None,
            in_flight: false,
            done: None,
            last: None,
        }
    }

    /// The latest sample, with the baseline as it is now.
    pub fn view(&self) -> Option<PictureView> {
        let mut v = self.last.clone()?;
        (v.baseline, v.baseline_progress, v.baseline_needed) = self.baseline_status();
        v.view_steady = self.baseline.as_ref().map(Baseline::judges_view);
        Some(v)
    }

    /// Whether no check is reported.
    pub fn is_clear(&self) -> bool {
        self.quality.is_clear()
    }

    /// The checks reported.
    pub fn reported(&self) -> impl Iterator<Item = Check> + '_ {
        self.quality.reported()
    }

    /// Takes up a baseline kept from before a restart (a kept baseline that does not read is
    /// learned again).
    pub fn resume_baseline(&mut self, kept: &[u8]) {
        if self.learner.is_none() {
            return;
        }
        match serde_json::from_slice(kept) {
            Ok(b) => {
                self.baseline = Some(b);
                self.learner = None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "a kept picture baseline does not read; learning it again")
            }
        }
    }

    /// Forgets the baseline and learns it again from the next samples (the view was moved on
    /// purpose, or the camera was replaced). `false` when baselines are off.
    pub fn relearn(&mut self) -> bool {
        if self.baseline_samples == 0 {
            return false;
        }
        self.baseline = None;
        self.learner = Some(Learner::new(self.baseline_samples));
        self.to_keep.push(None);
        true
    }

    /// Baselines learned or forgotten since the last call, serialized for the pipeline.
    pub fn take_kept(&mut self) -> Vec<Option<Vec<u8>>> {
        self.to_keep
            .drain(..)
            .map(|b| b.map(|b| serde_json::to_vec(&b).expect("a baseline serializes")))
            .collect()
    }

    fn baseline_status(&self) -> (&'static str, usize, usize) {
        match (&self.baseline, &self.learner) {
            (Some(b), _) => ("learned", b.samples as usize, b.samples as usize),
            (None, Some(l)) => ("learning", l.progress(), l.needed()),
            (None, None) => ("off", 0, 0),
        }
    }

    /// A finished sample: compared with the baseline (or taught to the learner), judged, and
    /// its confirmed change returned.
    fn judge(
        &mut self,
        at: DateTime<Utc>,
        mut measured: Measures,
        thumb: Thumb,
        t: &Thresholds,
    ) -> Option<QualityChange> {
        if let Some(b) = &self.baseline {
            match b.compare(&measured, &thumb, t) {
                Some(v) => measured.set_versus(&v),
                // another picture size: the baseline no longer applies
                None => {
                    self.relearn();
                }
            }
        }
        let failing_now = vqd::failing(&measured, self.baseline.as_ref(), t);
        if let Some(l) = &mut self.learner {
            if let Some(b) = l.add(&measured, &thumb, t) {
                self.to_keep.push(Some(b.clone()));
                self.baseline = Some(b);
                self.learner = None;
            }
        }
        self.thumb = Some(thumb);
        let change = self.quality.sample(&failing_now);
        let (baseline, baseline_progress, baseline_needed) = self.baseline_status();
        self.last = Some(PictureView {
            sampled_at: at,
            measured,
            failing_now,
            failing: self.quality.reported().collect(),
            baseline,
            baseline_progress,
            baseline_needed,
            view_steady: self.baseline.as_ref().map(Baseline::judges_view),
        });
        change
    }
}

impl PictureState {
    /// Judges a sample taken outside a session (a GB/T 28181 channel's pulled keyframe,
    /// measured by [`measure_access_unit`] on a decoder thread); the confirmed change, if any, as
    /// the pipeline's verdict.
    pub fn take_sample(
        &mut self,
        at: DateTime<Utc>,
        result: Result<(Measures, Thumb), String>,
        t: &Thresholds,
    ) -> Option<alerts::camera::PictureVerdict> {
        let (measured, thumb) = result.ok()?;
        let change = self.judge(at, measured, thumb, t)?;
        let measured = self.last.as_ref().map_or(measured, |l| l.measured);
        Some(
            PictureChange {
                change,
                measured,
                at,
            }
            .verdict(),
        )
    }

    /// The last sample's thumbnail (what the next sample is compared with for `frozen`).
    pub fn last_thumb(&self) -> Option<Thumb> {
        self.thumb.clone()
    }
}

/// Decodes and measures one Annex B access unit (on a decoder thread), compared with the
/// previous sample's thumbnail.
pub fn measure_access_unit(
    codec: crate::video::keyframe::VideoCodec,
    data: &[u8],
    previous: Option<&Thumb>,
) -> Result<(Measures, Thumb), String> {
    let decoded = decode::decode_bytes(codec, data).map_err(|e| e.to_string())?;
    let picture = decode::picture(&decoded).map_err(|e| e.to_string())?;
    Ok(vqd::measure(&picture, previous))
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

impl PictureChange {
    /// The observation of a confirmed picture change.
    pub fn verdict(&self) -> alerts::camera::PictureVerdict {
        let measured = match serde_json::to_value(self.measured) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        alerts::camera::PictureVerdict {
            failing: self.change.failing.clone(),
            cleared: self.change.cleared.clone(),
            measured,
            at: self.at,
        }
    }
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
    // the config check refuses a profile that is not defined
    let thresholds = w
        .camera
        .vqd_profile
        .as_ref()
        .and_then(|p| config.profiles.get(p))
        .copied()
        .unwrap_or(config.thresholds);
    let mut reported = None;
    if let Some((at, result)) = w.picture.done.take() {
        match result {
            Ok((measured, thumb)) => {
                metrics.vqd_samples.with_label_values(&["ok"]).inc();
                let change = w.picture.judge(at, measured, thumb, &thresholds);
                let measured = w.picture.last.as_ref().map_or(measured, |l| l.measured);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::vqd::tests::{picture, scene};

    fn sample(state: &mut PictureState, w: u32, h: u32) -> Option<QualityChange> {
        let (m, thumb) = vqd::measure(&picture(w, h, 128, 128, scene), None);
        state.judge(Utc::now(), m, thumb, &Thresholds::default())
    }

    #[test]
    fn a_baseline_is_learned_kept_resumed_and_learned_again_on_a_new_size() {
        let mut state = PictureState::new(2, 2);
        sample(&mut state, 640, 360);
        assert_eq!(state.baseline_status(), ("learning", 1, 2));
        assert!(state.take_kept().is_empty());
        sample(&mut state, 640, 360);
        assert_eq!(state.view().unwrap().baseline, "learned");
        let kept = state.take_kept();
        let [Some(bytes)] = kept.as_slice() else {
            panic!("one baseline to keep: {kept:?}")
        };
        sample(&mut state, 640, 360);
        let measured = state.view().unwrap().measured;
        assert_eq!(
            measured.covered_ratio,
            Some(0.0),
            "judged against it: {measured:?}"
        );

        // after a restart: taken up from the outbox, not learned again
        let mut resumed = PictureState::new(2, 2);
        resumed.resume_baseline(b"not a baseline");
        assert_eq!(resumed.baseline_status(), ("learning", 0, 2));
        resumed.resume_baseline(bytes);
        assert_eq!(resumed.baseline_status(), ("learned", 2, 2));

        // the stream changed size: the baseline no longer applies, and is forgotten
        sample(&mut resumed, 320, 240);
        assert_eq!(resumed.baseline_status(), ("learning", 1, 2));
        assert_eq!(resumed.take_kept(), vec![None]);
        assert!(!PictureState::new(2, 0).relearn(), "baselines off");
        assert_eq!(PictureState::new(2, 0).baseline_status(), ("off", 0, 0));
    }
}
