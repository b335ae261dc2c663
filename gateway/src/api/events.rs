//! Events: list, get, sign (签收), feedback, and the live SSE stream.

use super::auth::Principal;
use super::error::{json_body, ApiError};
use super::AppState;
use alerts::outbox::{ListQuery, Op, Outcome, Stored};
use alerts::Kind;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

/// Default and largest page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page size.
pub const MAX_LIMIT: usize = 1000;

/// An event as the API shows it: the delivered event plus its delivery and sign-off state.
pub fn view(stored: &Stored) -> Value {
    let mut v: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
    let st = &stored.state;
    if let Value::Object(m) = &mut v {
        m.insert(
            "delivery".into(),
            json!({
                "status": st.delivery,
                "committed_at": st.committed_at,
                "attempts": st.attempts,
                "delivered_at": st.delivered_at,
                "last_error": st.last_error,
                "last_status": st.last_status,
            }),
        );
        m.insert("signed".into(), json!(st.signed));
        m.insert("feedback".into(), json!(st.feedback));
    }
    v
}

/// Filters common to the list and the stream.
struct Filter {
    township: Option<String>,
    kind: Option<Kind>,
}

fn filter(
    state: &AppState,
    who: &Principal,
    params: &HashMap<String, String>,
    allowed: &[&str],
) -> Result<Filter, ApiError> {
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!(
                "unknown query parameter `{unknown}` (expected: {})",
                allowed.join(", ")
            ),
        ));
    }
    let visible = who.townships()?;
    let township = match params.get("township").filter(|t| !t.is_empty()) {
        Some(t) => {
            if state.pipeline.registry().township(t).is_none() {
                return Err(ApiError::bad_request(
                    "unknown_township",
                    format!("township `{t}` does not exist"),
                ));
            }
            who.require_township(t)?;
            Some(t.clone())
        }
        None => visible.and_then(|v| v.into_iter().next()),
    };
    let kind = params
        .get("kind")
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<Kind>())
        .transpose()
        .map_err(|e| ApiError::bad_request("unknown_kind", e.to_string()))?;
    Ok(Filter { township, kind })
}

/// `GET /api/v1/events?township=&kind=&limit=&after=`
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let f = filter(
        &state,
        &who,
        &params,
        &["township", "kind", "limit", "after"],
    )?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_limit",
                    format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
                ))
            }
        },
    };
    let after = params
        .get("after")
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<Uuid>())
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_cursor", "`after` must be an event id"))?;
    let query = ListQuery {
        township: f.township,
        kind: f.kind.map(|k| k.as_str().to_string()),
        after,
        limit,
        dead_only: false,
    };
    page(&state, query).await
}

/// One page of events as `{"events": [...], "next": cursor|null}` (reads off the async threads).
pub async fn page(state: &AppState, query: ListQuery) -> Result<Json<Value>, ApiError> {
    let store = state.pipeline.outbox().store().clone();
    let page = tokio::task::spawn_blocking(move || store.list(&query))
        .await
        .expect("list task")
        .map_err(ApiError::storage)?;
    Ok(Json(json!({
        "events": page.events.iter().map(view).collect::<Vec<_>>(),
        "next": page.next.map(|n| n.to_string()),
    })))
}

/// Loads an event the caller may see; 404 otherwise (so ids of other townships do not leak).
fn load(state: &AppState, who: &Principal, id: &str) -> Result<Stored, ApiError> {
    who.townships()?;
    let not_found = || ApiError::not_found("event_not_found", format!("no event `{id}`"));
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let stored = state
        .pipeline
        .outbox()
        .store()
        .get(id)
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    if !who.can_see(&stored.state.township) {
        return Err(not_found());
    }
    Ok(stored)
}

/// `GET /api/v1/events/{id}`
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&load(&state, &who, &id)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    by: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    by: String,
    result: String,
}

fn text_field(name: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("`{name}` must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// Applies a sign-off or feedback and answers with the event as it now stands.
async fn act(state: AppState, who: Principal, id: String, op: Op) -> Result<Json<Value>, ApiError> {
    let outcome = state
        .pipeline
        .outbox()
        .request(op)
        .await
        .map_err(ApiError::storage)?;
    match outcome {
        Outcome::Done => get(State(state), who, Path(id)).await,
        Outcome::AlreadySigned(s) => Err(ApiError::conflict(
            "already_signed",
            format!("event was signed by `{}` at {}", s.by, s.at.to_rfc3339()),
        )),
        Outcome::NotSigned => Err(ApiError::conflict(
            "not_signed",
            "sign the event before giving feedback",
        )),
        _ => Err(ApiError::not_found(
            "event_not_found",
            format!("no event `{id}`"),
        )),
    }
}

/// `POST /api/v1/events/{id}/sign` `{"by": "name"}` — the first sign-off wins; a second is 409.
pub async fn sign(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let stored = load(&state, &who, &id)?;
    let b: SignBody = json_body(body, state.max_body)?;
    let by = text_field("by", &b.by, 64)?;
    let op = Op::Sign {
        id: stored.id,
        by,
        at: chrono::Utc::now(),
    };
    act(state, who, id, op).await
}

/// `POST /api/v1/events/{id}/feedback` `{"by": "…", "result": "…"}` — after sign-off.
pub async fn feedback(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let stored = load(&state, &who, &id)?;
    let b: FeedbackBody = json_body(body, state.max_body)?;
    let by = text_field("by", &b.by, 64)?;
    let result = text_field("result", &b.result, 2000)?;
    let op = Op::Feedback {
        id: stored.id,
        by,
        result,
        at: chrono::Utc::now(),
    };
    act(state, who, id, op).await
}

/// `GET /api/v1/events/stream?township=&kind=` — committed events as Server-Sent Events
/// (`event:` the kind, `id:` the event id, `data:` the event JSON). A subscriber too slow to keep
/// up receives an `event: lagged` with the number of events it missed, and can catch up with
/// `GET /api/v1/events?after=<last id>`.
pub async fn stream(
    State(state): State<AppState>,
    who: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let f = filter(&state, &who, &params, &["township", "kind"])?;
    let rx = state.pipeline.outbox().subscribe();
    let kind = f.kind.map(|k| k.as_str().to_string());
    let township = f.township;
    let events = BroadcastStream::new(rx).filter_map(move |item| {
        let out = match item {
            Ok(ev) => {
                let visible = who.can_see(&ev.township)
                    && township.as_deref().is_none_or(|t| t == ev.township)
                    && kind.as_deref().is_none_or(|k| k == ev.kind);
                visible.then(|| {
                    SseEvent::default()
                        .event(ev.kind.as_str())
                        .id(ev.id.to_string())
                        .data(String::from_utf8_lossy(&ev.body))
                })
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(
                SseEvent::default()
                    .event("lagged")
                    .data(json!({"missed": n}).to_string()),
            ),
        };
        futures::future::ready(out.map(Ok))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
