//! `POST /api/v1/ingest/{unit_id}/{channel}`: the HTTP push source's front door (`channel` is a
//! standard channel or a vendor profile's name).

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use alerts::SubmitError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use ingest::http_push::{self, PushError, SOURCE};
use ingest::profile::VendorError;
use ingest::standard::ProfileError;

fn to_api(e: PushError) -> ApiError {
    let message = e.to_string();
    match e {
        PushError::UnknownChannel(_) => ApiError::not_found("unknown_channel", message),
        PushError::Payload(ProfileError::MalformedJson(_)) => {
            ApiError::bad_request("malformed_json", message)
        }
        PushError::Payload(ProfileError::Invalid(_)) => {
            ApiError::bad_request("invalid_payload", message)
        }
        PushError::Vendor(VendorError::MalformedJson { .. }) => {
            ApiError::bad_request("malformed_json", message)
        }
        PushError::Vendor(e) => ApiError::bad_request(e.reason(), message),
        PushError::Submit(SubmitError::UnknownUnit(_)) => {
            ApiError::not_found("unknown_unit", message)
        }
        PushError::Submit(SubmitError::Full(_)) => ApiError::unavailable("outbox_full", message, 1),
        PushError::Submit(SubmitError::DiskLow(_)) => ApiError::unavailable("disk_low", message, 5),
        PushError::Submit(SubmitError::Unavailable(_)) => {
            ApiError::unavailable("unavailable", message, 1)
        }
    }
}

/// Accepts one push; answers 202 only once its events are durably committed.
pub async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((unit, channel)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = state.pipeline.metrics();
    let early = |reason: &str, e: ApiError| {
        metrics.ingested(SOURCE);
        metrics.rejected(SOURCE, reason);
        e.into_response()
    };
    let who: Principal = match state.auth.get().authenticate(&headers) {
        Ok(p) => p,
        Err(e) => return early("unauthorized", e),
    };
    if let Err(e) = who.require_ingest() {
        return early("forbidden", e);
    }
    let body = match body {
        Ok(b) => b,
        Err(r) => {
            let e = ApiError::from_body(r, state.max_body);
            let reason = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "unreadable_body"
            };
            return early(reason, e);
        }
    };
    // a pusher's retry with the same Idempotency-Key gets the same event ids
    let idempotency = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty());
    match http_push::accept(
        &state.pipeline,
        &state.profiles.get(),
        &unit,
        &channel,
        &body,
        idempotency,
    )
    .await
    {
        Ok(s) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "accepted": true,
                "events": s.events,
                "deduplicated": s.deduplicated,
            })),
        )
            .into_response(),
        Err(e) => to_api(e).into_response(),
    }
}
