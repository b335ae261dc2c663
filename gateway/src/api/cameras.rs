//! Cameras and their health: `GET /api/v1/cameras`, `GET /api/v1/cameras/{id}`.
//!
//! Registered cameras the caller may see, with state, since when, measured fps, bitrate,
//! keyframe interval, loss, resolution and codec, reconnects and the last failure's reason.
//! Credentials are never part of an answer (the view is built from the health, not the config).

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Query of `GET /api/v1/cameras`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamerasQuery {
    township: Option<String>,
    state: Option<String>,
}

const STATES: &[&str] = &["online", "stalled", "degraded", "offline", "unknown"];

/// `GET /api/v1/cameras?township=&state=`.
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<CamerasQuery>,
) -> Result<Json<Value>, ApiError> {
    who.townships()?;
    if let Some(t) = &q.township {
        if !who.can_see(t) {
            return Err(ApiError::forbidden(format!(
                "token `{}` cannot see township `{t}`",
                who.name
            )));
        }
    }
    if let Some(s) = &q.state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("`state`: `{s}` is not one of {}", STATES.join(", ")),
            ));
        }
    }
    let list: Vec<Value> = state
        .cameras
        .as_ref()
        .map(|c| c.list())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| who.can_see(&c.township))
        .filter(|c| q.township.as_deref().is_none_or(|t| t == c.township))
        .filter(|c| q.state.as_deref().is_none_or(|s| s == c.state.as_str()))
        .map(|c| json!(c))
        .collect();
    Ok(Json(json!({"cameras": list})))
}

/// `GET /api/v1/cameras/{id}` — 404 for cameras of other townships.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.townships()?;
    match state.cameras.as_ref().and_then(|c| c.get(&id)) {
        Some(c) if who.can_see(&c.township) => Ok(Json(json!(c))),
        _ => Err(ApiError::not_found(
            "camera_not_found",
            format!("no camera `{id}`"),
        )),
    }
}
