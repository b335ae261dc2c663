//! JPEG snapshots of a camera's latest keyframe: decoded and encoded on the decoder pool,
//! cached briefly (several viewers, or an alarm and a viewer, share one encode).

use super::Cameras;
use crate::video::decode;
use crate::video::pool::{DecoderPool, Priority};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How snapshots are made.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotOptions {
    /// Scale down to at most this width (`None`: the stream's size).
    pub max_width: Option<u32>,
    /// JPEG quality, FFmpeg's qscale: 2 (best) … 31.
    pub quality: u8,
    /// How long an encoded snapshot is served again.
    pub cache: Duration,
    /// A keyframe older than this is not a current picture.
    pub max_age: Duration,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            max_width: Some(1280),
            quality: 5,
            cache: Duration::from_secs(1),
            max_age: Duration::from_secs(10),
        }
    }
}

/// The width of the thumbnail made with every snapshot (the camera wall's pictures).
pub const THUMB_WIDTH: u32 = 320;

/// How long a thumbnail is served again before a newer one is made: a wall paged through by
/// several operators decodes each camera at most once in this time.
pub const THUMB_MAX_AGE: Duration = Duration::from_secs(30);

/// A thumbnail of a camera's picture.
#[derive(Debug, Clone)]
pub struct Thumb {
    /// The JPEG, at most [`THUMB_WIDTH`] wide.
    pub jpeg: Bytes,
    /// When the keyframe it shows arrived.
    pub captured_at: DateTime<Utc>,
    /// When it was made.
    pub(crate) made: Instant,
}

/// A JPEG snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The JPEG.
    pub jpeg: Bytes,
    /// The same picture at most [`THUMB_WIDTH`] wide, made from the same decode.
    pub thumb: Bytes,
    /// When the keyframe it shows arrived.
    pub captured_at: DateTime<Utc>,
    /// The keyframe's number.
    seq: u64,
    made: Instant,
}

impl Snapshot {
    /// Its thumbnail, as kept for the camera wall.
    fn thumbnail(&self) -> Thumb {
        Thumb {
            jpeg: self.thumb.clone(),
            captured_at: self.captured_at,
            made: self.made,
        }
    }
}

/// Why there is no snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No such camera.
    #[error("no camera `{0}`")]
    UnknownCamera(String),
    /// The camera has given no recent picture.
    #[error("camera `{camera}` has no current picture ({why})")]
    NoPicture {
        /// The camera.
        camera: String,
        /// `offline`, `no keyframe yet`, …
        why: String,
    },
    /// The decoder pool is saturated.
    #[error("the decoder pool is busy; try again")]
    Busy,
    /// The keyframe did not decode.
    #[error("camera `{camera}`: {error}")]
    Video {
        /// The camera.
        camera: String,
        /// What went wrong.
        error: String,
    },
}

/// A camera's encode in progress: when it ends — or is given up — the keyframe is free for
/// another encode, and whoever waits for it is woken.
struct Encoding<'w> {
    watched: &'w parking_lot::Mutex<super::watched::Watched>,
    seq: u64,
}

impl Drop for Encoding<'_> {
    fn drop(&mut self) {
        let mut w = self.watched.lock();
        if w.encoding == Some(self.seq) {
            w.encoding = None;
        }
        w.encoded.notify_waiters();
    }
}

impl Cameras {
    /// A JPEG of camera `id`'s latest keyframe. When it has none younger than
    /// `options.max_age` and its session is up, waits for the next one until `until`.
    pub async fn snapshot(
        &self,
        id: &str,
        pool: &DecoderPool,
        options: &SnapshotOptions,
        until: Instant,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        self.snapshot_as(id, pool, options, until, Priority::Urgent)
            .await
    }

    /// A thumbnail of camera `id` for viewing: the last one while it is younger than
    /// [`THUMB_MAX_AGE`] (no decode), or a new snapshot's, decoded after urgent work.
    pub async fn thumbnail(
        &self,
        id: &str,
        pool: &DecoderPool,
        options: &SnapshotOptions,
        until: Instant,
    ) -> Result<Thumb, SnapshotError> {
        {
            let watched = self.watched(id)?;
            let w = watched.lock();
            let kept = w
                .thumb
                .clone()
                .filter(|t| t.made.elapsed() <= THUMB_MAX_AGE);
            if let Some(t) = kept.filter(|_| w.connected) {
                return Ok(t);
            }
        }
        let s = self
            .snapshot_as(id, pool, options, until, Priority::View)
            .await?;
        Ok(s.thumbnail())
    }

    fn watched(
        &self,
        id: &str,
    ) -> Result<Arc<parking_lot::Mutex<super::watched::Watched>>, SnapshotError> {
        self.set
            .get()
            .by_id
            .get(id)
            .cloned()
            .ok_or_else(|| SnapshotError::UnknownCamera(id.to_string()))
    }

    async fn snapshot_as(
        &self,
        id: &str,
        pool: &DecoderPool,
        options: &SnapshotOptions,
        until: Instant,
        priority: Priority,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        let watched = self.watched(id)?;
        let no_picture = |why: &str| SnapshotError::NoPicture {
            camera: id.to_string(),
            why: why.to_string(),
        };
        let max_age = chrono::Duration::from_std(options.max_age).unwrap_or(chrono::Duration::MAX);
        let (ready, encoded) = {
            let w = watched.lock();
            (w.keyframe_ready.clone(), w.encoded.clone())
        };
        let keyframe = loop {
            // armed before the look, so a keyframe kept (or an encode ended) in between still
            // wakes this wait
            let (new_keyframe, encode_done) = (ready.notified(), encoded.notified());
            tokio::pin!(new_keyframe, encode_done);
            new_keyframe.as_mut().enable();
            encode_done.as_mut().enable();
            {
                let mut w = watched.lock();
                if !w.connected {
                    return Err(no_picture("offline"));
                }
                let now = w.now();
                let fresh = w.keyframe.clone().filter(|k| now - k.at <= max_age);
                if let Some(k) = fresh {
                    if let Some(s) = w
                        .snapshot
                        .clone()
                        .filter(|s| s.seq == k.seq && s.made.elapsed() <= options.cache)
                    {
                        return Ok(s);
                    }
                    // one encode per keyframe: a request for the one being encoded waits for it
                    if w.encoding != Some(k.seq) {
                        w.encoding = Some(k.seq);
                        break k;
                    }
                }
            }
            let woken = tokio::time::timeout_at(until, async {
                tokio::select! {
                    _ = &mut new_keyframe => {}
                    _ = &mut encode_done => {}
                }
            });
            if woken.await.is_err() {
                return Err(no_picture("no keyframe in time"));
            }
        };
        // released however this ends (done, failed, or the request given up half-way)
        let _encoding = Encoding {
            watched: &watched,
            seq: keyframe.seq,
        };
        let result = self.encode(id, &keyframe, pool, options, priority).await;
        if let Ok(snap) = &result {
            let mut w = watched.lock();
            w.thumb = Some(snap.thumbnail());
            w.snapshot = Some(snap.clone());
        }
        result
    }

    /// Decodes a keyframe and encodes it as a JPEG on the pool.
    async fn encode(
        &self,
        id: &str,
        keyframe: &Arc<crate::video::Keyframe>,
        pool: &DecoderPool,
        options: &SnapshotOptions,
        priority: Priority,
    ) -> Result<Arc<Snapshot>, SnapshotError> {
        let (max_width, quality) = (options.max_width, options.quality);
        let kf = keyframe.clone();
        let encoded = pool
            .run_as(priority, move || {
                let d = decode::decode(&kf)?;
                let full = decode::jpeg(&d, max_width, quality)?;
                let thumb = decode::jpeg(&d, Some(THUMB_WIDTH), quality)?;
                Ok::<_, crate::video::VideoError>((full, thumb))
            })
            .await
            .map_err(|_| SnapshotError::Busy)?
            .map_err(|e| SnapshotError::Video {
                camera: id.to_string(),
                error: e.to_string(),
            })?;
        let (full, thumb) = encoded;
        Ok(Arc::new(Snapshot {
            jpeg: Bytes::from(full.data),
            thumb: Bytes::from(thumb.data),
            captured_at: keyframe.at,
            seq: keyframe.seq,
            made: Instant::now(),
        }))
    }
}
