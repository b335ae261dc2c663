//! The watched cameras and their sessions, as a config reload changes them: a camera added gets
//! a session, a camera removed loses its own, a camera whose entry changed (URL, credentials,
//! name, township…) is watched afresh — and every other camera's session goes on untouched.

use super::{session, CameraMetrics, Cameras, RtspConfig, Watched};
use alerts::registry::{Camera, Registry};
use alerts::Pipeline;
use parking_lot::Mutex;
use retina::client::SessionGroup;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The watched cameras at one moment; a reload replaces it whole.
#[derive(Default)]
pub(crate) struct CameraSet {
    /// Ids in order (a stable order for the API and the tick).
    pub(crate) order: Vec<String>,
    /// Each camera's state.
    pub(crate) by_id: HashMap<String, Arc<Mutex<Watched>>>,
}

impl CameraSet {
    /// The cameras `ids` start from the state their township last heard (no repeat), with
    /// the picture baselines they had learned.
    pub(crate) async fn resume(&self, pipeline: &Pipeline, ids: &[String]) {
        let resumed = pipeline
            .resume_cameras(ids.iter().map(String::as_str))
            .await;
        for (id, state) in resumed {
            if let Some(w) = self.by_id.get(&id) {
                w.lock().health.resume(state);
            }
        }
        for (id, kept) in pipeline.camera_baselines(ids.iter().map(String::as_str)) {
            if let Some(w) = self.by_id.get(&id) {
                w.lock().picture.resume_baseline(&kept);
            }
        }
    }
}

/// What the sessions share, and each camera's session task.
pub(crate) struct Running {
    pub(crate) config: Arc<RtspConfig>,
    pub(crate) group: Arc<SessionGroup>,
    pub(crate) metrics: CameraMetrics,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) sessions: HashMap<String, JoinHandle<()>>,
}

impl Running {
    /// Starts watching one camera.
    pub(crate) fn spawn(&mut self, id: &str, watched: Arc<Mutex<Watched>>) {
        let task = tokio::spawn(session::supervise(
            watched,
            self.config.clone(),
            self.group.clone(),
            self.metrics.clone(),
            self.stop.clone(),
        ));
        if let Some(old) = self.sessions.insert(id.to_string(), task) {
            old.abort();
        }
    }

    /// Stops watching one camera (its connection is closed).
    fn end(&mut self, camera: &Camera) {
        if let Some(task) = self.sessions.remove(&camera.id) {
            task.abort();
        }
        let labels = [camera.id.as_str(), camera.township.as_str()];
        let _ = self.metrics.up.remove_label_values(&labels);
    }
}

/// How a reload changed the cameras.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CameraChange {
    /// Cameras now watched that were not.
    pub cameras_added: Vec<String>,
    /// Cameras no longer watched.
    pub cameras_removed: Vec<String>,
    /// Cameras watched afresh because their entry changed.
    pub cameras_changed: Vec<String>,
}

impl Cameras {
    /// Takes the cameras of `registry` (the registry now in the pipeline): sessions start for
    /// new cameras and stop for removed ones; a changed camera is watched afresh, resuming the
    /// state its township last heard. Unchanged cameras are not touched.
    pub async fn update(&self, registry: &Registry, pipeline: &Pipeline) -> CameraChange {
        let old = self.set.get();
        let mut change = CameraChange::default();
        let mut next = CameraSet::default();
        let mut fresh = Vec::new();
        // GB/T 28181 channels are watched through their devices, not over RTSP
        let mut cameras: Vec<&Arc<Camera>> =
            registry.cameras().filter(|c| c.gb28181.is_none()).collect();
        cameras.sort_by(|a, b| a.id.cmp(&b.id));
        for c in cameras {
            // entries compared whole, credentials included
            let kept = old.by_id.get(&c.id).filter(|w| *w.lock().camera == **c);
            let watched = match kept {
                Some(w) => w.clone(),
                None => {
                    match old.by_id.contains_key(&c.id) {
                        true => change.cameras_changed.push(c.id.clone()),
                        false => change.cameras_added.push(c.id.clone()),
                    }
                    let w = Watched::new(c.clone(), self.health, &self.vqd, self.clock.clone());
                    let w = Arc::new(Mutex::new(w));
                    fresh.push((c.id.clone(), w.clone()));
                    w
                }
            };
            next.order.push(c.id.clone());
            next.by_id.insert(c.id.clone(), watched);
        }
        next.resume(pipeline, &change.cameras_changed).await;
        let mut ended = Vec::new();
        for (id, w) in &old.by_id {
            let camera = w.lock().camera.clone();
            match next.by_id.get(id) {
                None => change.cameras_removed.push(id.clone()),
                Some(n) if !Arc::ptr_eq(n, w) => {}
                Some(_) => continue,
            }
            ended.push(camera);
        }
        change.cameras_removed.sort();
        self.set.replace(Arc::new(next));
        if let Some(running) = self.running.lock().as_mut() {
            for camera in &ended {
                running.end(camera);
            }
            for (id, w) in fresh {
                running.spawn(&id, w);
            }
        }
        change
    }
}
