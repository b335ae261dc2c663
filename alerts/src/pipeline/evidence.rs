//! Fire→video linkage: when a `fire.alarm` (or another configured kind) is committed for a unit
//! with cameras, snapshots of those cameras are taken while the commit runs, saved as evidence
//! and attached to the stored event before it is delivered — within the deadline. A camera that
//! cannot give a picture in time does not hold the alarm back: the event goes out without it,
//! and when the picture comes later (within [`LATE_WINDOW`]) it is attached to the stored event
//! and committed as an `event.evidence` follow-up that refers to the alarm.
//!
//! The pictures come from an [`EvidenceSource`] (the gateway's camera source); delivery holds
//! the events meanwhile ([`Holds`]).

use super::Pipeline;
use crate::clock::Clock;
use crate::delivery::Holds;
use crate::event::{Event, Evidence, Kind};
use crate::normalize::evidence_event;
use crate::outbox::{Op, Outbox};
use crate::registry::Unit;
use chrono::FixedOffset;
use futures::future::BoxFuture;
use prometheus::IntCounterVec;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

/// How long after the deadline a late snapshot is still sent as a follow-up.
pub const LATE_WINDOW: Duration = Duration::from_secs(30);

/// Takes the linkage's pictures.
pub trait EvidenceSource: Send + Sync + 'static {
    /// A snapshot of `camera`, saved as evidence — taken by `until` at the latest, else an
    /// error saying why not.
    fn snapshot(
        &self,
        camera: &str,
        until: Instant,
    ) -> BoxFuture<'static, Result<Evidence, String>>;
}

/// The linkage's settings.
pub struct VideoLinkage {
    /// Where pictures come from.
    pub source: Arc<dyn EvidenceSource>,
    /// The delivery holds (shared with the delivery workers).
    pub holds: Arc<Holds>,
    /// How long delivery waits for the pictures at most.
    pub deadline: Duration,
    /// The kinds that get pictures.
    pub kinds: Vec<Kind>,
}

/// The running linkage.
pub(super) struct Linker {
    config: VideoLinkage,
    outbox: Outbox,
    registry: Arc<crate::registry::LiveRegistry>,
    offset: FixedOffset,
    clock: Arc<dyn Clock>,
    /// `gateway_linkage_video_total{result}`.
    results: IntCounterVec,
}

/// An event that gets pictures, and the cameras they come from.
type Target = (Event, Vec<String>);

/// One camera's answer.
type Answer = (String, Result<Evidence, String>);

impl Linker {
    pub(super) fn new(pipeline: &Pipeline, config: VideoLinkage) -> Self {
        Self {
            config,
            outbox: pipeline.outbox.clone(),
            registry: pipeline.registry.clone(),
            offset: pipeline.offset,
            clock: pipeline.clock.clone(),
            results: pipeline.metrics.linkage_video_total.clone(),
        }
    }

    /// Called before `events` of `unit` are committed: starts the snapshots of the events
    /// that get pictures and holds them back from delivery. The pipeline sends `true` on the
    /// answer once they are committed, `false` (or drops it) when the commit failed.
    pub(super) fn prepare(
        self: &Arc<Self>,
        unit: &Unit,
        events: &[Event],
    ) -> Option<oneshot::Sender<bool>> {
        let targets: Vec<Target> = events
            .iter()
            .filter(|e| self.config.kinds.contains(&e.kind))
            .filter_map(|e| {
                let (system, component) = e
                    .fire
                    .as_ref()
                    .map_or((0, None), |f| (f.system_addr, f.component_addr));
                let cams = unit.cameras_for(system, component);
                (!cams.is_empty()).then(|| (e.clone(), cams.to_vec()))
            })
            .collect();
        if targets.is_empty() {
            return None;
        }
        let deadline = Instant::now() + self.config.deadline;
        for (e, _) in &targets {
            self.config.holds.expect(e.id, deadline);
        }
        let (tx, rx) = oneshot::channel();
        tokio::spawn(self.clone().gather(targets, rx, deadline));
        Some(tx)
    }

    async fn gather(
        self: Arc<Self>,
        targets: Vec<Target>,
        committed: oneshot::Receiver<bool>,
        deadline: Instant,
    ) {
        let (mut answers, mut outstanding) = self.snapshots(&targets, deadline + LATE_WINDOW);
        if committed.await != Ok(true) {
            for (e, _) in &targets {
                self.config.holds.settle(e.id);
            }
            return;
        }
        // on time: until the deadline or until every camera answered
        let mut on_time = Vec::new();
        while outstanding > 0 {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some((camera, result))) => {
                    outstanding -= 1;
                    match result {
                        Ok(ev) => on_time.push(ev),
                        Err(why) => self.missed(&camera, &why, &targets),
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        for (event, cams) in &targets {
            let mine: Vec<Evidence> = on_time
                .iter()
                .filter(|e| cams.contains(&e.camera))
                .cloned()
                .collect();
            if !mine.is_empty() {
                self.count("attached", mine.len());
                self.attach(event.id, mine).await;
            }
            self.config.holds.settle(event.id);
        }
        self.late(answers, outstanding, &targets).await;
    }

    /// Every camera at once, running while the events are being committed; the answers, and
    /// how many will come.
    fn snapshots(&self, targets: &[Target], until: Instant) -> (mpsc::Receiver<Answer>, usize) {
        let cameras: BTreeSet<&String> = targets.iter().flat_map(|t| &t.1).collect();
        let n = cameras.len();
        let (tx, rx) = mpsc::channel(n.max(1));
        for camera in cameras {
            let (tx, camera) = (tx.clone(), camera.clone());
            let taking = self.config.source.snapshot(&camera, until);
            tokio::spawn(async move {
                let _ = tx.send((camera, taking.await)).await;
            });
        }
        (rx, n)
    }

    /// Late pictures: attached to the stored event and committed as a follow-up.
    async fn late(
        &self,
        mut answers: mpsc::Receiver<Answer>,
        outstanding: usize,
        targets: &[Target],
    ) {
        for _ in 0..outstanding {
            let Some((camera, result)) = answers.recv().await else {
                break;
            };
            let ev = match result {
                Ok(ev) => ev,
                Err(why) => {
                    self.missed(&camera, &why, targets);
                    continue;
                }
            };
            for (event, _) in targets.iter().filter(|t| t.1.contains(&camera)) {
                self.count("late", 1);
                self.attach(event.id, vec![ev.clone()]).await;
                self.follow_up(event, ev.clone()).await;
            }
        }
    }

    fn count(&self, result: &str, n: usize) {
        self.results.with_label_values(&[result]).inc_by(n as u64);
    }

    fn missed(&self, camera: &str, why: &str, targets: &[Target]) {
        let n = targets
            .iter()
            .filter(|t| t.1.iter().any(|c| c == camera))
            .count();
        self.count("missed", n);
        tracing::info!(camera, reason = why, "no snapshot for a linked fire event");
    }

    /// Adds evidence to the stored event (see docs/events.md: the one change a stored body
    /// may undergo).
    async fn attach(&self, id: Uuid, evidence: Vec<Evidence>) {
        if let Err(e) = self.outbox.request(Op::Evidence { id, evidence }).await {
            tracing::warn!(event = %id, error = %e, "cannot attach evidence to the event");
        }
    }

    async fn follow_up(&self, original: &Event, evidence: Evidence) {
        let now = self.clock.now().with_timezone(&self.offset);
        let e = evidence_event(original, evidence, now, Uuid::now_v7());
        if let Err(err) = self
            .outbox
            .commit(
                &[e],
                self.registry.get().delivers_to(&original.township.code),
            )
            .await
        {
            tracing::warn!(event = %original.id, error = %err, "cannot commit the evidence follow-up");
        }
    }
}
