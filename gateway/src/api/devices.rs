//! GB/T 26875.3 devices from the center's side: patrol checks (查岗), clock sync, connected
//! devices.
//!
//! * `POST /api/v1/units/{id}/patrol-check` `{"timeout_min": 10}` — send a patrol check to the
//!   unit's device (admin, or the unit's township).
//! * `GET /api/v1/units/{id}/patrol-check` — the last one: sent, confirmed, answered, response
//!   time, operator.
//! * `POST /api/v1/units/{id}/clock-sync` — set the device's clock (also done on connect).
//! * `POST /api/v1/units/{id}/read` `{"type": 81}` — read from the device (81–88 UITD types;
//!   61–68 facility types with `"object": [system type, address, …]`); the reply is at
//!   `GET /api/v1/units/{id}/read/{type}`.
//! * `GET /api/v1/gb26875/devices` — connected devices (admin).

use super::auth::Principal;
use super::error::ApiError;
use super::units::visible_unit;
use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn handle(state: &AppState) -> Result<&::ingest::gb26875::server::Gb26875Handle, ApiError> {
    state.gb26875.as_ref().ok_or_else(|| {
        ApiError::conflict(
            "no_gb26875",
            "the GB/T 26875.3 server is not configured ([gb26875])",
        )
    })
}

fn command_error(e: ::ingest::gb26875::server::CommandError) -> ApiError {
    ApiError::conflict("device_unavailable", e.to_string())
}

/// Body of a patrol check.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PatrolBody {
    timeout_min: Option<u8>,
}

/// `POST /api/v1/units/{id}/patrol-check`.
pub async fn patrol_check(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Option<Json<PatrolBody>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible_unit(&state, &who, &id)?;
    let minutes = body.and_then(|b| b.0.timeout_min).unwrap_or(10);
    handle(&state)?
        .patrol_check(&id, minutes)
        .map_err(command_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"sent": true, "unit": id, "timeout_min": minutes})),
    ))
}

/// `GET /api/v1/units/{id}/patrol-check`.
pub async fn last_patrol(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    visible_unit(&state, &who, &id)?;
    match handle(&state)?.last_patrol(&id).map_err(command_error)? {
        Some(p) => Ok(Json(json!(p))),
        None => Err(ApiError::not_found(
            "no_patrol_check",
            format!("no patrol check was sent to unit `{id}`"),
        )),
    }
}

/// `POST /api/v1/units/{id}/clock-sync`.
pub async fn clock_sync(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible_unit(&state, &who, &id)?;
    handle(&state)?
        .sync_clock(&id, state.pipeline.offset())
        .map_err(command_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"sent": true, "unit": id})),
    ))
}

/// `GET /api/v1/gb26875/devices`.
pub async fn connected(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    Ok(Json(json!({"devices": handle(&state)?.connected()})))
}

/// Body of a read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    object: Vec<u8>,
}

/// `POST /api/v1/units/{id}/read` `{"type": 81}` (or `{"type": 61, "object": [1, 1]}`).
pub async fn read(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(body): Json<ReadBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    visible_unit(&state, &who, &id)?;
    use ::ingest::gb26875::server::ReadError;
    handle(&state)?
        .read(&id, body.kind, body.object)
        .map_err(|e| match e {
            ReadError::Device(d) => command_error(d),
            other => ApiError::bad_request("bad_read", other.to_string()),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"sent": true, "unit": id, "type": body.kind})),
    ))
}

/// `GET /api/v1/units/{id}/read/{type}` — the last read of that type and its reply.
pub async fn last_read(
    State(state): State<AppState>,
    who: Principal,
    Path((id, kind)): Path<(String, u8)>,
) -> Result<Json<Value>, ApiError> {
    visible_unit(&state, &who, &id)?;
    match handle(&state)?
        .last_read(&id, kind)
        .map_err(command_error)?
    {
        Some(r) => Ok(Json(json!(r))),
        None => Err(ApiError::not_found(
            "no_read",
            format!("no read of type {kind} was sent to unit `{id}`"),
        )),
    }
}
