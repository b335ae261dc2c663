//! Cameras through the door: a camera source hands over what it observed each tick; the
//! pipeline writes the uptime log, words the events and commits them — in order, retried on
//! the next ticks while the outbox cannot take them.

use super::{Pipeline, SubmitError};
use crate::camera::{CameraObservation, CameraState, DeviceAlarm, Observed};
use crate::event::Event;
use crate::normalize::{camera_event, device_alarm_event, CameraContext};
use crate::outbox::{CameraMark, MessageKey, Op};
use crate::registry::Camera;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};
use uuid::Uuid;

/// How often the uptime log records that the cameras are still watched when nothing changes
/// (after a crash, the time since the last record counts as unknown).
const ALIVE_EVERY: Duration = Duration::seconds(5);

/// Camera events waiting for the outbox at most; beyond it the oldest are dropped and counted
/// (`gateway_ingest_rejected_total{source="rtsp",reason="backlog_full"}`). Each camera raises
/// a dozen events an hour at most (its flap budget), so this is hours of a full outbox.
const MAX_BACKLOG: usize = 100_000;

/// What the camera door keeps between ticks.
pub(super) struct CameraDoor {
    /// Uptime log marks not yet written.
    marks: Vec<CameraMark>,
    /// Picture log marks not yet written (state 1: failing, 0: clear).
    pictures: Vec<CameraMark>,
    /// Picture baselines learned or forgotten, not yet written.
    baselines: Vec<(String, Option<Vec<u8>>)>,
    /// When the log was last written.
    written: DateTime<Utc>,
    /// Events the outbox could not take yet, oldest first.
    backlog: VecDeque<Event>,
}

impl Default for CameraDoor {
    fn default() -> Self {
        Self {
            marks: Vec::new(),
            pictures: Vec::new(),
            baselines: Vec::new(),
            written: DateTime::<Utc>::MIN_UTC,
            backlog: VecDeque::new(),
        }
    }
}

impl Pipeline {
    /// Where the uptime log left each camera before this start, for a source that resumes
    /// watching: the township already heard that state (no repeat). The time the gateway was
    /// not watching is logged as unknown, never as online.
    pub async fn resume_cameras<'c>(
        &self,
        cameras: impl Iterator<Item = &'c str>,
    ) -> HashMap<String, CameraState> {
        let (last, alive) = match self.outbox.store().camera_last(cameras) {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the camera log; starting without it");
                return HashMap::new();
            }
        };
        let mut door = self.cameras.lock().await;
        let mut resumed = HashMap::new();
        for (id, (at, code)) in last {
            let state = CameraState::from_code(code);
            if state == CameraState::Unknown {
                continue;
            }
            door.marks.push(CameraMark {
                camera: id.clone(),
                at_ms: alive.unwrap_or(at).max(at),
                state: CameraState::Unknown.code(),
            });
            resumed.insert(id, state);
        }
        resumed
    }

    /// Takes one tick's observations: states entered go to the uptime log (durable within a
    /// second, riding along with the outbox's next write); the rest become `camera.*` events,
    /// committed after any that still wait, in order. Returns how many events were committed;
    /// an error says the outbox cannot take them now (they wait for the next call).
    pub async fn observe_cameras(
        &self,
        observations: Vec<CameraObservation>,
    ) -> Result<usize, SubmitError> {
        let now = self.clock.now();
        let received_at = now.with_timezone(&self.offset);
        let mut door = self.cameras.lock().await;
        let registry = self.registry();
        for o in observations {
            let Some(camera) = registry.camera(&o.camera) else {
                continue;
            };
            if let Observed::Entered { state, since } = &o.what {
                door.marks.push(CameraMark {
                    camera: camera.id.clone(),
                    at_ms: since.timestamp_millis(),
                    state: state.code(),
                });
            }
            if let Observed::Picture(v) = &o.what {
                door.pictures.push(CameraMark {
                    camera: camera.id.clone(),
                    at_ms: v.at.timestamp_millis(),
                    state: u8::from(!v.failing.is_empty()),
                });
            }
            if let Observed::Baseline(b) = &o.what {
                door.baselines.push((camera.id.clone(), b.clone()));
            }
            let Some(township) = registry.township(&camera.township) else {
                continue;
            };
            let ctx = CameraContext {
                camera,
                township,
                received_at,
            };
            if let Some(event) = camera_event(&o.what, &ctx, Uuid::now_v7()) {
                door.backlog.push_back(event);
            }
        }
        self.bound_backlog(&mut door.backlog);
        // with nothing changed only the "still watching" mark is due, every few seconds — a
        // write every second would keep an idle gateway's disk syncing forever
        let changed =
            !door.marks.is_empty() || !door.pictures.is_empty() || !door.baselines.is_empty();
        if changed || now - door.written >= ALIVE_EVERY {
            door.written = now;
            self.log_cameras(&mut door, now).await;
        }
        self.commit_backlog(&mut door.backlog).await
    }

    /// The camera source stops watching: the last moment watched is logged (after a restart,
    /// the time since counts as unknown).
    pub async fn cameras_stopped(&self) {
        let mut door = self.cameras.lock().await;
        self.log_cameras(&mut door, self.clock.now()).await;
    }

    /// The picture baselines kept for `cameras` (a camera source resuming does not learn them
    /// again).
    pub fn camera_baselines<'c>(
        &self,
        cameras: impl Iterator<Item = &'c str>,
    ) -> HashMap<String, Vec<u8>> {
        self.outbox
            .store()
            .camera_baselines(cameras)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the picture baselines; learning them again");
                HashMap::new()
            })
    }

    /// Writes what the door holds for the logs, and the moment the cameras were last watched.
    async fn log_cameras(&self, door: &mut CameraDoor, alive: DateTime<Utc>) {
        let op = Op::CameraLog {
            marks: std::mem::take(&mut door.marks),
            pictures: std::mem::take(&mut door.pictures),
            baselines: std::mem::take(&mut door.baselines),
            alive_ms: alive.timestamp_millis(),
        };
        self.outbox.record(op).await;
    }

    fn bound_backlog(&self, backlog: &mut VecDeque<Event>) {
        let over = backlog.len().saturating_sub(MAX_BACKLOG);
        if over > 0 {
            backlog.drain(..over);
            self.metrics
                .ingest_rejected_total
                .with_label_values(&["rtsp", "backlog_full"])
                .inc_by(over as u64);
            tracing::error!(
                dropped = over,
                "camera events dropped: the outbox has refused them for too long"
            );
        }
    }

    /// Commits the waiting events in one transaction; on failure they stay for the next call.
    /// A device's alarm about `camera` (a channel, or a device standing for itself): worded
    /// and committed at once, remembered under `key` — the same alarm again within the key's
    /// window (sent again after a crash, or repeated by the device) commits nothing, is counted
    /// as deduplicated and answers with the first event's id. Returns the id and whether the
    /// alarm was a repeat.
    pub async fn camera_alarm(
        &self,
        camera: &Camera,
        alarm: &DeviceAlarm,
        key: MessageKey,
    ) -> Result<(Uuid, bool), SubmitError> {
        let registry = self.registry();
        let township = registry
            .township(&camera.township)
            .ok_or_else(|| SubmitError::UnknownUnit(crate::registry::shown_id(&camera.id)))?;
        let received_at = self.clock.now().with_timezone(&self.offset);
        let ctx = CameraContext {
            camera,
            township,
            received_at,
        };
        let mut events = vec![device_alarm_event(alarm, &ctx, Uuid::now_v7())];
        let own = vec![events[0].id];
        let receipt = self
            .commit_keyed(&mut events, Some((key, own.clone())))
            .await?;
        match receipt.repeated {
            Some(first) => {
                self.metrics
                    .events_deduplicated_total
                    .with_label_values(&["gb28181"])
                    .inc();
                Ok((first.first().copied().unwrap_or(own[0]), true))
            }
            None => Ok((own[0], false)),
        }
    }

    async fn commit_backlog(&self, backlog: &mut VecDeque<Event>) -> Result<usize, SubmitError> {
        if backlog.is_empty() {
            return Ok(0);
        }
        match self.commit(backlog.make_contiguous()).await {
            Ok(receipt) => {
                backlog.clear();
                Ok(receipt.committed.len())
            }
            Err(e) => Err(e.into()),
        }
    }
}
