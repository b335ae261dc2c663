//! Pictures: `GET /api/v1/cameras/{id}/snapshot.jpg` (the camera's latest keyframe as a JPEG),
//! scoped like the camera: another township's token gets 404, as for `GET /api/v1/cameras/{id}`;
//! and `GET /api/v1/snapshots/{camera}/{file}` (evidence attached to events), scoped by the
//! events that carry it: whoever may see one of them (its township, the department it is
//! assigned to) may see the picture, whichever township the camera is in.

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cameras::rtsp::snapshot::SnapshotError;
use std::time::Duration;

/// How long a snapshot request waits for a keyframe from a camera that is connected but has
/// not sent one recently.
const WAIT_FOR_KEYFRAME: Duration = Duration::from_secs(3);

fn camera_not_found(id: &str) -> ApiError {
    ApiError::not_found("camera_not_found", format!("no camera `{id}`"))
}

/// The camera's township, if the caller may see it.
fn visible_camera(state: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    who.townships()?;
    match state.pipeline.registry().camera(id) {
        Some(c) if who.can_see(&c.township) => Ok(()),
        _ => Err(camera_not_found(id)),
    }
}

/// Whether the caller may see an event that carries the evidence file `key`.
fn evidence_visible(state: &AppState, who: &Principal, key: &str) -> Result<bool, ApiError> {
    let store = state.pipeline.outbox().store();
    for id in store.evidence_refs(key).map_err(ApiError::storage)? {
        if let Some(e) = store.get(id).map_err(ApiError::storage)? {
            if who.can_see_event(&e.state) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Query of `snapshot.jpg`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    /// At most this wide: up to the thumbnail's width, the thumbnail made with the snapshot.
    width: Option<u32>,
}

/// `GET /api/v1/cameras/{id}/snapshot.jpg?width=` — `width` ≤ 320 answers a thumbnail: the last
/// one made while younger than 30 s, or a new snapshot's (decoded after urgent work, so a camera
/// wall paged through costs the decoder pool at most one decode per camera in 30 s and never
/// delays an alarm's evidence).
pub async fn snapshot(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<SnapshotQuery>,
) -> Result<Response, ApiError> {
    visible_camera(&state, &who, &id)?;
    let channel = state
        .pipeline
        .registry()
        .camera(&id)
        .is_some_and(|c| c.gb28181.is_some());
    if channel {
        return gb28181_snapshot(&state, &id, q.width).await;
    }
    let Some(video) = &state.video else {
        return Err(ApiError::unavailable(
            "cameras_not_watched",
            "the camera source is not running",
            60,
        ));
    };
    let until = tokio::time::Instant::now() + WAIT_FOR_KEYFRAME;
    let (cams, pool, options) = (&video.cameras, &video.pool, &video.options);
    let picture = match q.width {
        Some(w) if w <= cameras::rtsp::snapshot::THUMB_WIDTH => cams
            .thumbnail(&id, pool, options, until)
            .await
            .map(|t| (t.jpeg, t.captured_at)),
        _ => cams
            .snapshot(&id, pool, options, until)
            .await
            .map(|s| (s.jpeg.clone(), s.captured_at)),
    };
    match picture {
        Ok((jpeg, captured_at)) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg".to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
                (
                    header::HeaderName::from_static("x-captured-at"),
                    alerts::time::format(&captured_at),
                ),
            ],
            jpeg,
        )
            .into_response()),
        Err(SnapshotError::UnknownCamera(_)) => Err(camera_not_found(&id)),
        Err(e @ SnapshotError::NoPicture { .. }) => {
            Err(ApiError::unavailable("no_picture", e.to_string(), 5))
        }
        Err(e @ SnapshotError::Busy) => Err(ApiError::unavailable("busy", e.to_string(), 1)),
        Err(e @ SnapshotError::Video { .. }) => {
            Err(ApiError::unavailable("undecodable", e.to_string(), 5))
        }
    }
}

/// A GB/T 28181 channel's snapshot: its live stream pulled for one keyframe (INVITE … BYE),
/// decoded by the same pool as RTSP snapshots (a thumbnail after urgent work).
async fn gb28181_snapshot(
    state: &AppState,
    id: &str,
    width: Option<u32>,
) -> Result<Response, ApiError> {
    use crate::video::ChannelPictureError as E;
    let Some(video) = &state.video else {
        return Err(ApiError::unavailable(
            "cameras_not_watched",
            "the GB/T 28181 platform is not running",
            60,
        ));
    };
    let thumb = width.is_some_and(|w| w <= cameras::rtsp::snapshot::THUMB_WIDTH);
    let now = state.pipeline.clock().now();
    let (jpeg, captured_at) = video
        .channel_jpeg(id, thumb, now)
        .await
        .map_err(|e| match e {
            E::Picture(::gb28181::PictureError::Unknown(_)) => camera_not_found(id),
            E::Picture(::gb28181::PictureError::Busy) | E::Busy => {
                ApiError::unavailable("busy", e.to_string(), 1)
            }
            E::Undecodable(_) => ApiError::unavailable("undecodable", e.to_string(), 5),
            other => ApiError::unavailable("no_picture", other.to_string(), 5),
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (
                header::HeaderName::from_static("x-captured-at"),
                alerts::time::format(&captured_at),
            ),
        ],
        jpeg,
    )
        .into_response())
}

/// `GET /api/v1/snapshots/{camera}/{file}`.
pub async fn evidence(
    State(state): State<AppState>,
    who: Principal,
    Path((camera, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    who.require_events()?;
    let not_found = || {
        ApiError::not_found(
            "snapshot_not_found",
            format!("no snapshot `{camera}/{file}`"),
        )
    };
    if !evidence_visible(&state, &who, &format!("{camera}/{file}"))? {
        return Err(not_found());
    }
    let Some(video) = &state.video else {
        return Err(not_found());
    };
    let store = video.evidence.clone();
    let (c, f) = (camera.clone(), file.clone());
    let read = tokio::task::spawn_blocking(move || store.read(&c, &f))
        .await
        .map_err(ApiError::storage)?
        .map_err(ApiError::storage)?;
    match read {
        Some(jpeg) => Ok((
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
            ],
            jpeg,
        )
            .into_response()),
        None => Err(not_found()),
    }
}
