//! Operator endpoints on the outbox (admin scope): stats, dead letters, replay. The
//! `gateway outbox …` commands use them while the gateway runs.

use super::auth::Principal;
use super::error::{json_body, ApiError};
use super::events::{page, MAX_LIMIT};
use super::AppState;
use alerts::outbox::{ListQuery, Op, Outcome};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// `GET /api/v1/outbox/stats`
pub async fn stats(State(state): State<AppState>, who: Principal) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let stats = state
        .pipeline
        .outbox()
        .store()
        .stats()
        .map_err(ApiError::storage)?;
    Ok(Json(json!(stats)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadParams {
    township: Option<String>,
    limit: Option<usize>,
    after: Option<Uuid>,
}

/// `GET /api/v1/outbox/dead-letters?township=&limit=&after=`
pub async fn dead_letters(
    State(state): State<AppState>,
    who: Principal,
    Query(p): Query<DeadParams>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let limit = p.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    let query = ListQuery {
        township: p.township,
        after: p.after,
        limit,
        dead_only: true,
        ..Default::default()
    };
    page(&state, query).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    ids: Vec<Uuid>,
    township: Option<String>,
    #[serde(default)]
    all: bool,
}

/// `POST /api/v1/outbox/replay` `{"ids": [...]}` or `{"all": true, "township": "…"}`
pub async fn replay(
    State(state): State<AppState>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let b: ReplayBody = json_body(body, state.max_body)?;
    if b.ids.is_empty() && !b.all {
        return Err(ApiError::bad_request(
            "invalid_body",
            "give `ids` or `\"all\": true`",
        ));
    }
    match state
        .pipeline
        .outbox()
        .request(Op::Replay {
            ids: b.ids,
            township: b.township,
        })
        .await
    {
        Ok(Outcome::Replayed(t)) => Ok(Json(json!({"replayed": t.len()}))),
        Ok(_) => Ok(Json(json!({"replayed": 0}))),
        Err(e) => Err(ApiError::storage(e)),
    }
}

/// `GET /api/v1/outbox/backup`: a consistent copy of the outbox as of now (a redb file), taken
/// while the gateway keeps running — written next to the outbox, streamed, and gone once sent
/// (`gateway outbox backup --to FILE` saves it).
pub async fn backup(
    State(state): State<AppState>,
    who: Principal,
) -> Result<axum::response::Response, ApiError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    who.require_admin()?;
    let store = state.pipeline.outbox().store().clone();
    let dir = store
        .path()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(format!("backup-{}.redb", Uuid::now_v7()));
    let file = tokio::task::spawn_blocking(move || {
        let made = store.backup_to(&path);
        let opened = made.map(|_| std::fs::File::open(&path));
        // unlinked at once: the open file is streamed, and nothing is left behind
        let _ = std::fs::remove_file(&path);
        opened
    })
    .await
    .expect("backup task")
    .map_err(ApiError::storage)?
    .map_err(|e| ApiError::storage(alerts::outbox::StoreError::from_io(e)))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}
