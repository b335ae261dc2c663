//! GB/T 28181 devices (cameras, NVRs, lower platforms that register to the gateway):
//!
//! * `GET /api/v1/gb28181/devices` — every device that registered: online, address, last
//!   keepalive, DeviceInfo, channel counts (admin; a township sees the devices with channels
//!   in it).
//! * `GET /api/v1/gb28181/devices/{id}` — one device with its channels (a township sees its own
//!   channels only).
//! * `POST /api/v1/gb28181/devices/{id}/query` `{"cmd": "Catalog"}` — ask the device now
//!   (`Catalog`, `DeviceInfo`, `DeviceStatus`); the answer updates the device (admin).

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

fn platform(state: &AppState) -> Result<&Arc<::gb28181::Server>, ApiError> {
    state.gb28181.as_ref().ok_or_else(|| {
        ApiError::conflict(
            "no_gb28181",
            "the GB/T 28181 platform is not configured ([gb28181])",
        )
    })
}

/// `GET /api/v1/gb28181/devices`.
pub async fn list(State(state): State<AppState>, who: Principal) -> Result<Json<Value>, ApiError> {
    let visible = who.townships()?;
    let devices = platform(&state)?.devices(visible.as_deref(), false);
    Ok(Json(json!({ "devices": devices })))
}

/// `GET /api/v1/gb28181/devices/{id}`.
pub async fn one(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let visible = who.townships()?;
    match platform(&state)?.device(&id, visible.as_deref()) {
        Some(d) => Ok(Json(json!(d))),
        None => Err(ApiError::not_found(
            "unknown_device",
            format!("no GB/T 28181 device `{}` registered", cut(&id)),
        )),
    }
}

/// Body of a query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    cmd: String,
}

/// `POST /api/v1/gb28181/devices/{id}/query`.
pub async fn query(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Json(body): Json<QueryBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.require_admin()?;
    let cmd = match body.cmd.as_str() {
        "Catalog" => "Catalog",
        "DeviceInfo" => "DeviceInfo",
        "DeviceStatus" => "DeviceStatus",
        _ => {
            return Err(ApiError::bad_request(
                "bad_query",
                "`cmd` is one of `Catalog`, `DeviceInfo`, `DeviceStatus`",
            ))
        }
    };
    if !platform(&state)?.ask_now(&id, cmd) {
        return Err(ApiError::not_found(
            "unknown_device",
            format!("no GB/T 28181 device `{}` registered", cut(&id)),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"sent": true, "device": id, "cmd": cmd})),
    ))
}

/// An id from the URL, cut for echoing.
fn cut(id: &str) -> String {
    id.chars().take(64).collect()
}
