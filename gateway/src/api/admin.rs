//! Operator endpoints on the running gateway: config reload (admin), and who a token is.

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

/// `GET /api/v1/whoami`: the calling token's name and scope (any valid token) — what the
/// console shows and which steps it offers; the server enforces the scope anyway.
pub async fn whoami(State(state): State<AppState>, who: Principal) -> Json<serde_json::Value> {
    use crate::config::Scope;
    let (scope, code) = match &who.scope {
        Scope::Admin => ("admin", None),
        Scope::Ingest => ("ingest", None),
        Scope::Township(t) => ("township", Some(t.as_str())),
        Scope::Department(d) => ("department", Some(d.as_str())),
    };
    // the gateway's time zone: a console shows days and times as the county counts them
    let offset = state.pipeline.offset().to_string();
    Json(json!({"name": who.name, "scope": scope, "code": code, "utc_offset": offset}))
}
