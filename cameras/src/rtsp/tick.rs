//! The camera tick: every second, each camera's health, picture checks and ONVIF notifications
//! are evaluated at the clock's `now`, the gauges refreshed, and what changed handed to the
//! pipeline as observations.

use super::metrics::CameraMetrics;
use super::picture::{self, VqdConfig};
use super::{Cameras, State, TownshipCount, Watched};
use crate::video::pool::DecoderPool;
use crate::video::vqd::Check;
use alerts::camera::{CameraObservation, Observed, OnvifNotice};
use alerts::Pipeline;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Raised ONVIF notifications of one kind at most this often per camera (a busy street keeps
/// a motion detector triggered; the township needs to know, not to be flooded).
const ONVIF_COOLDOWN_S: i64 = 60;

/// Evaluates the cameras.
pub(super) struct Ticker {
    cameras: Arc<Cameras>,
    metrics: CameraMetrics,
    vqd: VqdConfig,
    pool: DecoderPool,
}

/// One tick's tally for the gauges.
#[derive(Default)]
struct Tally {
    by_township: HashMap<String, TownshipCount>,
    failing: [i64; Check::ALL.len()],
}

impl Ticker {
    pub(super) fn new(
        cameras: Arc<Cameras>,
        metrics: CameraMetrics,
        vqd: VqdConfig,
        pool: DecoderPool,
    ) -> Self {
        Self {
            cameras,
            metrics,
            vqd,
            pool,
        }
    }

    /// Ticks every `every` until `stop` turns true, handing each tick's observations to the
    /// pipeline; logs once when the outbox starts refusing them and once when it takes them
    /// again.
    pub(super) async fn run(
        self,
        pipeline: Arc<Pipeline>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refused = false;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    pipeline.cameras_stopped().await;
                    return;
                }
                _ = tick.tick() => {}
            }
            let observations = self.observe(pipeline.clock().now());
            match pipeline.observe_cameras(observations).await {
                Ok(n) if refused => {
                    refused = false;
                    tracing::info!(committed = n, "camera events committed again");
                }
                Ok(_) => {}
                Err(e) if !refused => {
                    refused = true;
                    tracing::warn!(error = %e, "camera events wait: the outbox cannot take them now");
                }
                Err(_) => {}
            }
        }
    }

    /// Evaluates every camera at `now`; refreshes the gauges; returns what changed.
    pub(super) fn observe(&self, now: DateTime<Utc>) -> Vec<CameraObservation> {
        let mut seen = Vec::new();
        let mut tally = Tally::default();
        let set = self.cameras.set.get();
        for id in &set.order {
            let watched = &set.by_id[id];
            let mut w = watched.lock();
            self.camera(watched, &mut w, now, &mut tally, &mut seen);
        }
        self.gauges(tally);
        seen
    }

    /// One camera's tick.
    fn camera(
        &self,
        watched: &Arc<Mutex<Watched>>,
        w: &mut Watched,
        now: DateTime<Utc>,
        tally: &mut Tally,
        seen: &mut Vec<CameraObservation>,
    ) {
        // an Arc, not the id: most ticks of most cameras observe nothing
        let camera = w.camera.clone();
        let mut saw = |what| {
            seen.push(CameraObservation {
                camera: camera.id.clone(),
                what,
            })
        };
        let onvif = &self.metrics.onvif;
        let due = w.onvif_due(now, ONVIF_COOLDOWN_S, |kind, result| {
            onvif.with_label_values(&[kind, result]).inc()
        });
        for (e, at) in due {
            saw(Observed::Onvif(OnvifNotice {
                kind: e.kind,
                topic: e.topic,
                at,
            }));
        }
        let quality = picture::tick(watched, w, now, &self.vqd, &self.pool, &self.metrics);
        for kept in w.picture.take_kept() {
            saw(Observed::Baseline(kept));
        }
        if let Some(q) = quality {
            tracing::info!(
                camera = %camera.id,
                failing = ?q.change.failing.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "camera picture changed"
            );
            saw(Observed::Picture(q.verdict()));
        }
        for c in w.picture.reported() {
            tally.failing[Check::ALL.iter().position(|&x| x == c).unwrap_or(0)] += 1;
        }
        let before = w.health.state().0;
        let transition = w.health.tick(now);
        let (state, since) = w.health.state();
        if state != before {
            saw(Observed::Entered { state, since });
        }
        let count = match tally.by_township.get_mut(&camera.township) {
            Some(c) => c,
            None => tally
                .by_township
                .entry(camera.township.clone())
                .or_default(),
        };
        count.watched += 1;
        count.online += usize::from(state == State::Online);
        count.intact += usize::from(state == State::Online && w.picture.is_clear());
        self.metrics
            .up
            .with_label_values(&[camera.id.as_str(), camera.township.as_str()])
            .set(i64::from(state == State::Online));
        if let Some(t) = transition {
            self.metrics
                .transitions
                .with_label_values(&[t.to.as_str()])
                .inc();
            tracing::info!(
                camera = %camera.id, from = t.from.as_str(), to = t.to.as_str(),
                reason = t.reason.as_deref().unwrap_or(""), "camera state changed"
            );
            saw(Observed::Changed(t));
        }
    }

    fn gauges(&self, tally: Tally) {
        let m = &self.metrics;
        m.tally.report("rtsp", tally.by_township);
        for (c, n) in Check::ALL.iter().zip(tally.failing) {
            m.picture_failing.with_label_values(&[c.as_str()]).set(n);
        }
    }
}
