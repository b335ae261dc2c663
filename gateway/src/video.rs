//! The camera source's pictures for the rest of the gateway: snapshots for the API, and
//! evidence for the pipeline's fire→video linkage ([`EvidenceSource`]) saved under
//! `data_dir/evidence` and pruned by retention.

use alerts::event::Evidence;
use alerts::pipeline::EvidenceSource;
use cameras::rtsp::snapshot::{Snapshot, SnapshotOptions};
use cameras::rtsp::Cameras;
use cameras::video::evidence::EvidenceStore;
use cameras::video::pool::DecoderPool;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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
        let (cam, jpeg, at) = (
            camera.to_string(),
            snap.jpeg.clone(),
            snap.captured_at.timestamp_millis(),
        );
        let name = tokio::task::spawn_blocking(move || store.save(&cam, &jpeg, at))
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

impl EvidenceSource for VideoServices {
    fn snapshot(
        &self,
        camera: &str,
        until: Instant,
    ) -> BoxFuture<'static, Result<Evidence, String>> {
        let (video, camera) = (self.clone(), camera.to_string());
        Box::pin(async move {
            let snap = video
                .cameras
                .snapshot(&camera, &video.pool, &video.options, until)
                .await
                .map_err(|e| e.to_string())?;
            video.save(&camera, &snap).await
        })
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
