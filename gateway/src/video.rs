//! Fire→video linkage: when a `fire.alarm` (or another configured kind) is committed for a unit
//! with cameras, snapshots of those cameras are taken, saved as evidence and attached to the
//! event before it is delivered — within the deadline. A camera that cannot give a picture in
//! time does not hold the alarm back: the event goes out without it, and when the picture comes
//! later (within [`LATE_WINDOW`]) it is attached to the stored event and sent to the township
//! as an `event.evidence` follow-up that refers to the alarm.

use alerts::event::{Event, Evidence, Kind};
use alerts::evidence::EvidenceHook;
use alerts::outbox::{Op, Outbox};
use alerts::registry::{Registry, Unit};
use ingest::rtsp::snapshot::{Snapshot, SnapshotOptions};
use ingest::rtsp::Cameras;
use ingest::video::evidence::EvidenceStore;
use ingest::video::pool::DecoderPool;
use prometheus::IntCounterVec;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;
use uuid::Uuid;

/// How long after the deadline a late snapshot is still sent as a follow-up.
pub const LATE_WINDOW: Duration = Duration::from_secs(30);

/// The decoder pool, snapshot settings and evidence directory, shared by the API and the
/// linkage.
#[derive(Clone)]
pub struct VideoServices {
    /// Watched cameras.
    pub cameras: Arc<Cameras>,
    /// Decoder threads.
    pub pool: DecoderPool,
    /// Snapshot settings.
    pub options: SnapshotOptions,
    /// Evidence files.
    pub evidence: EvidenceStore,
}

impl VideoServices {
    /// The URL an evidence file is served at.
    pub fn evidence_url(camera: &str, name: &str) -> String {
        format!("/api/v1/snapshots/{camera}/{name}")
    }

    /// A snapshot saved as evidence.
    async fn save(&self, camera: &str, snap: &Snapshot) -> Result<Evidence, String> {
        let store = self.evidence.clone();
        let (cam, jpeg) = (camera.to_string(), snap.jpeg.clone());
        let name = tokio::task::spawn_blocking(move || store.save(&cam, &jpeg))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot save evidence: {e}"))?;
        Ok(Evidence {
            kind: "snapshot".into(),
            camera: camera.to_string(),
            url: Self::evidence_url(camera, &name),
            captured_at: snap.captured_at.fixed_offset(),
        })
    }
}

/// The linkage: an [`EvidenceHook`] for the pipeline.
pub struct VideoLinkage {
    video: VideoServices,
    outbox: Outbox,
    registry: Arc<Registry>,
    offset: chrono::FixedOffset,
    deadline: Duration,
    kinds: Vec<Kind>,
    /// `gateway_linkage_video_total{result}`: per camera and event, `attached`, `late`, `missed`.
    results: IntCounterVec,
}

impl VideoLinkage {
    /// A linkage waiting at most `deadline` for snapshots of events of `kinds`.
    pub fn new(
        video: VideoServices,
        outbox: Outbox,
        registry: Arc<Registry>,
        offset: chrono::FixedOffset,
        (deadline, kinds): (Duration, Vec<Kind>),
        metrics: &prometheus::Registry,
    ) -> Arc<Self> {
        let results = IntCounterVec::new(
            prometheus::Opts::new(
                "gateway_linkage_video_total",
                "Snapshots for linked fire events, per camera: attached (before delivery), late (sent as a follow-up), missed",
            ),
            &["result"],
        )
        .expect("metric");
        let _ = metrics.register(Box::new(results.clone()));
        Arc::new(Self {
            video,
            outbox,
            registry,
            offset,
            deadline,
            kinds,
            results,
        })
    }
}

/// Wrapper so the hook can spawn tasks holding an `Arc` of the linkage.
pub struct Hook(pub Arc<VideoLinkage>);

impl EvidenceHook for Hook {
    fn prepare(&self, unit: &Unit, events: &[Event]) -> Option<oneshot::Sender<bool>> {
        let l = &self.0;
        let targets: Vec<(Event, Vec<String>)> = events
            .iter()
            .filter(|e| l.kinds.contains(&e.kind))
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
        let deadline = Instant::now() + l.deadline;
        for (e, _) in &targets {
            l.outbox.evidence().expect(e.id, deadline);
        }
        let (tx, rx) = oneshot::channel();
        tokio::spawn(l.clone().gather(targets, rx, deadline));
        Some(tx)
    }
}

impl VideoLinkage {
    async fn gather(
        self: Arc<Self>,
        targets: Vec<(Event, Vec<String>)>,
        committed: oneshot::Receiver<bool>,
        deadline: Instant,
    ) {
        let cameras: BTreeSet<String> = targets.iter().flat_map(|t| t.1.clone()).collect();
        let until = deadline + LATE_WINDOW;
        // every camera at once, running while the events are being committed
        let (tx, mut rx) = tokio::sync::mpsc::channel(cameras.len().max(1));
        for camera in &cameras {
            let (video, camera, tx) = (self.video.clone(), camera.clone(), tx.clone());
            tokio::spawn(async move {
                let r = video
                    .cameras
                    .snapshot(&camera, &video.pool, &video.options, until)
                    .await;
                let r = match r {
                    Ok(snap) => video.save(&camera, &snap).await,
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send((camera, r, Instant::now())).await;
            });
        }
        drop(tx);
        let ids: Vec<Uuid> = targets.iter().map(|t| t.0.id).collect();
        if committed.await != Ok(true) {
            for id in ids {
                self.outbox.evidence().settle(id);
            }
            return;
        }
        // on time: until the deadline or until every camera answered
        let mut on_time = Vec::new();
        let mut outstanding = cameras.len();
        while outstanding > 0 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some((camera, result, _))) => {
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
                self.results
                    .with_label_values(&["attached"])
                    .inc_by(mine.len() as u64);
                self.attach(event.id, mine).await;
            }
            self.outbox.evidence().settle(event.id);
        }
        // late: attached to the stored event and sent as a follow-up
        while outstanding > 0 {
            let Some((camera, result, _)) = rx.recv().await else {
                break;
            };
            outstanding -= 1;
            let ev = match result {
                Ok(ev) => ev,
                Err(why) => {
                    self.missed(&camera, &why, &targets);
                    continue;
                }
            };
            for (event, _) in targets.iter().filter(|t| t.1.contains(&camera)) {
                self.results.with_label_values(&["late"]).inc();
                self.attach(event.id, vec![ev.clone()]).await;
                self.follow_up(event, ev.clone()).await;
            }
        }
    }

    fn missed(&self, camera: &str, why: &str, targets: &[(Event, Vec<String>)]) {
        let n = targets
            .iter()
            .filter(|t| t.1.iter().any(|c| c == camera))
            .count();
        self.results.with_label_values(&["missed"]).inc_by(n as u64);
        tracing::info!(camera, reason = why, "no snapshot for a linked fire event");
    }

    async fn attach(&self, id: Uuid, evidence: Vec<Evidence>) {
        if let Err(e) = self.outbox.request(Op::Evidence { id, evidence }).await {
            tracing::warn!(event = %id, error = %e, "cannot attach evidence to the event");
        }
    }

    async fn follow_up(&self, original: &Event, evidence: Evidence) {
        let now = chrono::Utc::now().with_timezone(&self.offset);
        let mut e = original.clone();
        e.id = Uuid::now_v7();
        e.kind = Kind::EventEvidence;
        e.severity = Kind::EventEvidence.severity();
        e.title = format!("{}: {}", Kind::EventEvidence.label(), original.title);
        e.received_at = now;
        e.refers_to = Some(original.id);
        e.evidence = vec![evidence];
        let deliver = self
            .registry
            .township(&e.township.code)
            .is_some_and(|t| t.webhook.is_some());
        if let Err(err) = self.outbox.commit(std::slice::from_ref(&e), deliver).await {
            tracing::warn!(event = %original.id, error = %err, "cannot commit the evidence follow-up");
        }
    }
}

/// Every ten minutes (and at start): evidence files past their retention are deleted.
pub async fn prune_loop(store: EvidenceStore, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.prune(std::time::SystemTime::now())).await {
            Ok(Ok(p)) if p.files > 0 => tracing::info!(
                deleted = p.files,
                deleted_bytes = p.bytes,
                kept = p.kept_files,
                kept_bytes = p.kept_bytes,
                "evidence pruned"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning evidence failed"),
            _ => {}
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
    }
}
