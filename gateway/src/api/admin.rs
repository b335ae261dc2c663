//! Operator endpoints on the running gateway (admin scope): config reload.

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::reload::ReloadError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// `POST /api/v1/admin/reload`: reads the config file and its registries again and applies
/// them (as SIGHUP does). 200 with what changed; 422 `config_invalid` or 409
/// `restart_required` with `error.errors` — the running config is kept.
pub async fn reload(State(state): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    who.require_admin()?;
    let response = match state.reloader.reload().await {
        Ok(done) => (
            StatusCode::OK,
            Json(json!({"result": "ok", "reloaded": done})),
        ),
        Err(e) => {
            let (status, code, errors) = match &e {
                ReloadError::Invalid(errors) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "config_invalid", errors)
                }
                ReloadError::NeedsRestart(parts) => {
                    (StatusCode::CONFLICT, "restart_required", parts)
                }
            };
            let message = format!("{e}; the running configuration is kept");
            let body = json!({"error": {"code": code, "message": message, "errors": errors}});
            (status, Json(body))
        }
    };
    Ok(response.into_response())
}
