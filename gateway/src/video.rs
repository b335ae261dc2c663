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
    /// The GB/T 28181 platform, once started: its channels' pictures are pulled through it.
    pub gb28181: Arc<std::sync::OnceLock<Arc<gb28181::Server>>>,
}

/// Why a GB/T 28181 channel has no JPEG.
#[derive(Debug, thiserror::Error)]
pub enum ChannelPictureError {
    /// No picture came.
    #[error("{0}")]
    Picture(#[from] gb28181::PictureError),
    /// The decoder pool is full.
    #[error("the decoder pool is busy")]
    Busy,
    /// The keyframe did not decode.
    #[error("{0}")]
    Undecodable(String),
    /// The platform is not running.
    #[error("the GB/T 28181 platform is not running")]
    NotRunning,
}

impl VideoServices {
    /// The URL an evidence file is served at.
    pub fn evidence_url(camera: &str, name: &str) -> String {
        format!("/api/v1/snapshots/{camera}/{name}")
    }

    /// A snapshot saved as evidence.
    async fn save(&self, camera: &str, snap: &Snapshot) -> Result<Evidence, String> {
        self.save_jpeg(camera, snap.jpeg.clone(), snap.captured_at)
            .await
    }

    /// A JPEG saved as evidence.
    async fn save_jpeg(
        &self,
        camera: &str,
        jpeg: bytes::Bytes,
        captured_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Evidence, String> {
        let store = self.evidence.clone();
        let (cam, at) = (camera.to_string(), captured_at.timestamp_millis());
        let name = tokio::task::spawn_blocking(move || store.save(&cam, &jpeg, at))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot save evidence: {e}"))?;
        Ok(Evidence {
            kind: "snapshot".into(),
            camera: camera.to_string(),
            url: Self::evidence_url(camera, &name),
            captured_at: captured_at.fixed_offset(),
        })
    }
}

impl VideoServices {
    /// A GB/T 28181 channel's picture as a JPEG (a thumbnail when `thumb`): one keyframe of its
    /// live stream, decoded in the pool (urgent, or a view after urgent work); with the time
    /// the keyframe came.
    pub async fn channel_jpeg(
        &self,
        id: &str,
        thumb: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<u8>, chrono::DateTime<chrono::Utc>), ChannelPictureError> {
        use cameras::video::{decode, keyframe::VideoCodec, pool::Priority};
        let platform = self.gb28181.get().ok_or(ChannelPictureError::NotRunning)?;
        let picture = platform.picture(id).await?;
        let codec = match picture.codec {
            gb28181::media::Codec::H264 => VideoCodec::H264,
            gb28181::media::Codec::H265 => VideoCodec::H265,
        };
        let (max_width, priority) = match thumb {
            true => (Some(cameras::rtsp::snapshot::THUMB_WIDTH), Priority::View),
            false => (self.options.max_width, Priority::Urgent),
        };
        let quality = self.options.quality;
        let data = picture.data.clone();
        let jpeg = self
            .pool
            .run_as(priority, move || {
                let d = decode::decode_bytes(codec, &data)?;
                decode::jpeg(&d, max_width, quality)
            })
            .await
            .map_err(|_| ChannelPictureError::Busy)?
            .map_err(|e| ChannelPictureError::Undecodable(e.to_string()))?;
        let age = chrono::Duration::from_std(picture.at.elapsed()).unwrap_or_default();
        Ok((jpeg.data, now - age))
    }

    /// Whether `camera` is a GB/T 28181 channel the platform knows.
    fn is_channel(&self, camera: &str) -> bool {
        self.gb28181.get().is_some_and(|p| p.has_channel(camera))
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
            if video.is_channel(&camera) {
                let now = chrono::Utc::now();
                let pulled =
                    tokio::time::timeout_at(until, video.channel_jpeg(&camera, false, now));
                let (jpeg, at) = pulled
                    .await
                    .map_err(|_| "no picture before the deadline".to_string())?
                    .map_err(|e| e.to_string())?;
                return video.save_jpeg(&camera, jpeg.into(), at).await;
            }
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
