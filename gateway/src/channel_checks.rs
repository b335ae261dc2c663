//! Picture checks of GB/T 28181 channels: every `[gb28181] vqd_interval_s` each online channel's
//! picture is pulled (INVITE, one keyframe, BYE — [`gb28181::Server::picture`]), measured on a
//! decoder thread within the pool's sample budget, and judged by the same picture state as an
//! RTSP camera's (baseline, confirmation); confirmed changes go to the pipeline as
//! `camera.quality`, learned baselines are kept with the uptime log, and a failing channel is not
//! counted intact.

use crate::video::VideoServices;
use alerts::camera::{CameraObservation, Observed};
use alerts::Pipeline;
use cameras::rtsp::picture::{measure_access_unit, PictureState, VqdConfig};
use cameras::video::keyframe::VideoCodec;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Pictures pulled at once by the checks (snapshots and evidence keep the rest of the
/// platform's streams).
const AT_ONCE: usize = 4;

struct Channel {
    picture: PictureState,
    next_at: Instant,
    busy: bool,
}

/// The checks' state, per channel.
pub struct ChannelChecks {
    video: VideoServices,
    platform: Arc<gb28181::Server>,
    pipeline: Arc<Pipeline>,
    vqd: VqdConfig,
    interval: Duration,
    channels: Mutex<HashMap<String, Channel>>,
    observed: Mutex<Vec<CameraObservation>>,
}

impl ChannelChecks {
    /// Checks every online channel once per `interval`.
    pub fn new(
        video: VideoServices,
        platform: Arc<gb28181::Server>,
        pipeline: Arc<Pipeline>,
        vqd: VqdConfig,
        interval: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            video,
            platform,
            pipeline,
            vqd,
            interval,
            channels: Mutex::default(),
            observed: Mutex::default(),
        })
    }

    /// Ticks every second until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {}
            }
            self.start_due();
            let seen = std::mem::take(&mut *self.observed.lock());
            if !seen.is_empty() && self.pipeline.observe_cameras(seen.clone()).await.is_err() {
                // the outbox cannot take them now: next tick
                self.observed.lock().extend(seen);
            }
        }
    }

    /// A channel's latest picture check (`None`: not sampled yet).
    pub fn picture(&self, id: &str) -> Option<cameras::rtsp::picture::PictureView> {
        self.channels.lock().get(id).and_then(|c| c.picture.view())
    }

    /// The channel's baseline is learned again from its next samples; `false` when baselines
    /// are off.
    pub fn relearn(&self, id: &str) -> bool {
        let mut channels = self.channels.lock();
        channels
            .entry(id.to_string())
            .or_insert_with(|| self.fresh(id, Instant::now()))
            .picture
            .relearn()
    }

    /// Starts the samples that are due (first ones spread over one interval).
    fn start_due(self: &Arc<Self>) {
        let online = self.platform.online_channels();
        let now = Instant::now();
        let mut due = Vec::new();
        {
            let mut channels = self.channels.lock();
            let busy = channels.values().filter(|c| c.busy).count();
            for id in online {
                let c = channels
                    .entry(id.clone())
                    .or_insert_with(|| self.fresh(&id, now));
                if !c.busy && c.next_at <= now && busy + due.len() < AT_ONCE {
                    c.busy = true;
                    c.next_at = now + self.interval;
                    due.push(id);
                }
            }
        }
        for id in due {
            tokio::spawn(self.clone().sample(id));
        }
    }

    /// A channel seen for the first time: its kept baseline, its first sample within an
    /// interval.
    fn fresh(&self, id: &str, now: Instant) -> Channel {
        let mut picture = PictureState::new(self.vqd.confirm, self.vqd.baseline_samples);
        if let Some(kept) = self
            .pipeline
            .camera_baselines(std::iter::once(id))
            .remove(id)
        {
            picture.resume_baseline(&kept);
        }
        // spread by the id's hash: the same channel keeps its place in the interval
        let spread = self.interval.as_millis().max(1) as u64;
        let h = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            id.hash(&mut h);
            h.finish()
        };
        Channel {
            picture,
            next_at: now + Duration::from_millis(h % spread),
            busy: false,
        }
    }

    /// One sample: the picture pulled, measured in the pool, judged.
    async fn sample(self: Arc<Self>, id: String) {
        let measured = self.measure(&id).await;
        let mut channels = self.channels.lock();
        let Some(c) = channels.get_mut(&id) else {
            return;
        };
        c.busy = false;
        let Some((at, result)) = measured else { return };
        let verdict = c.picture.take_sample(at, result, &self.vqd.thresholds);
        let mut seen = self.observed.lock();
        for kept in c.picture.take_kept() {
            seen.push(CameraObservation {
                camera: id.clone(),
                what: Observed::Baseline(kept),
            });
        }
        if let Some(v) = verdict {
            tracing::info!(camera = %id, failing = ?v.failing, "GB/T 28181 channel picture changed");
            self.platform
                .set_picture_failing(&id, !v.failing.is_empty());
            seen.push(CameraObservation {
                camera: id.clone(),
                what: Observed::Picture(v),
            });
        }
    }

    /// The channel's picture measured: `None` when there was none, or the pool's budget is
    /// spent (the sample is skipped, as for RTSP cameras).
    async fn measure(
        &self,
        id: &str,
    ) -> Option<(
        chrono::DateTime<chrono::Utc>,
        Result<(cameras::video::vqd::Measures, cameras::video::vqd::Thumb), String>,
    )> {
        let picture = match self.platform.picture_within(id, Duration::ZERO).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(camera = %id, error = %e, "GB/T 28181 channel picture not pulled");
                return None;
            }
        };
        let codec = match picture.codec {
            gb28181::media::Codec::H264 => VideoCodec::H264,
            gb28181::media::Codec::H265 => VideoCodec::H265,
        };
        let previous = self
            .channels
            .lock()
            .get(id)
            .and_then(|c| c.picture.last_thumb());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let data = picture.data.clone();
        let job = move || {
            let _ = tx.send(measure_access_unit(codec, &data, previous.as_ref()));
        };
        self.video.pool.sample(job).ok()?;
        let result = rx.await.ok()?;
        let age = chrono::Duration::from_std(picture.at.elapsed()).unwrap_or_default();
        Some((self.pipeline.clock().now() - age, result))
    }
}
