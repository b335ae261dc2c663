//! Events: list, get, and the live SSE stream (the closed-loop actions are in `cases.rs`).

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::config::Scope;
use alerts::case::sla::SlaStage;
use alerts::case::Stage;
use alerts::outbox::{ListQuery, LiveEvent, Stored};
use alerts::registry::department_route;
use alerts::time;
use alerts::Kind;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
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
                "committed_at": time::format(&st.committed_at),
                "attempts": st.attempts,
                "delivered_at": time::format_opt(st.delivered_at.as_ref()),
                "last_error": st.last_error,
                "last_status": st.last_status,
            }),
        );
        if let Some(route) = &st.route {
            m.insert("route".into(), json!(route));
        }
        if let Some(case) = &st.case {
            m.insert("state".into(), json!(case.stage));
            m.insert("signed".into(), json!(case.signed));
            // wave-1 clients read the note as `result`
            let feedback: Vec<Value> = case
                .feedback
                .iter()
                .map(|f| {
                    let mut v = json!(f);
                    v["result"] = json!(f.note);
                    v
                })
                .collect();
            m.insert("feedback".into(), Value::Array(feedback));
            m.insert("case".into(), json!(case));
            if let Some(sla) = &case.sla {
                let due = |st| time::format_opt(sla.due(st).as_ref());
                m.insert(
                    "due".into(),
                    json!({
                        "sign": due(SlaStage::Sign),
                        "handle": due(SlaStage::Handle),
                        "close": due(SlaStage::Close),
                        "next": time::format_opt(case.next_due().as_ref()),
                        "overdue": case.overdue_stages(),
                    }),
                );
            }
        }
    }
    v
}

/// Filters common to the list and the stream.
struct Filter {
    township: Option<String>,
    kind: Option<Kind>,
    stage: Option<Stage>,
    overdue: bool,
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
    who.require_events()?;
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
        None => match &who.scope {
            Scope::Township(t) => Some(t.clone()),
            _ => None,
        },
    };
    let kind = params
        .get("kind")
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<Kind>())
        .transpose()
        .map_err(|e| ApiError::bad_request("unknown_kind", e.to_string()))?;
    let state = params.get("state").filter(|s| !s.is_empty());
    let overdue = state.is_some_and(|s| s == "overdue");
    let stage = state
        .filter(|_| !overdue)
        .map(|s| {
            Stage::parse(s).ok_or_else(|| {
                let known: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(
                    "unknown_state",
                    format!(
                        "unknown state `{s}` (expected: {}, overdue)",
                        known.join(", ")
                    ),
                )
            })
        })
        .transpose()?;
    Ok(Filter {
        township,
        kind,
        stage,
        overdue,
    })
}

/// `GET /api/v1/events?township=&kind=&state=&sort=&due_before=&limit=&after=`
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let f = filter(
        &state,
        &who,
        &params,
        &[
            "township",
            "kind",
            "state",
            "sort",
            "due_before",
            "limit",
            "after",
        ],
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
        stage: f.stage,
        overdue_only: f.overdue,
        due_before: params
            .get("due_before")
            .filter(|t| !t.is_empty())
            .map(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|_| {
                        ApiError::bad_request(
                            "invalid_time",
                            "`due_before` must be an RFC 3339 time",
                        )
                    })
            })
            .transpose()?,
        by_due: match params.get("sort").map(String::as_str) {
            None | Some("") | Some("id") => false,
            Some("due") => true,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_sort",
                    format!("`sort` must be `id` or `due`, not `{other}`"),
                ))
            }
        },
        department: match &who.scope {
            Scope::Department(d) => Some(d.clone()),
            _ => None,
        },
        own_queue_only: matches!(who.scope, Scope::Township(_)),
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
pub(super) fn load(state: &AppState, who: &Principal, id: &str) -> Result<Stored, ApiError> {
    who.require_events()?;
    let not_found = || ApiError::not_found("event_not_found", format!("no event `{id}`"));
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let stored = state
        .pipeline
        .outbox()
        .store()
        .get(id)
        .map_err(ApiError::storage)?
        .ok_or_else(not_found)?;
    if !who.can_see_event(&stored.state) {
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
                let visible = live_visible(&who, &ev)
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

/// Whether a live event is for this caller (as [`Principal::can_see_event`]; a department
/// follows its own queue).
fn live_visible(who: &Principal, ev: &LiveEvent) -> bool {
    match &who.scope {
        Scope::Admin => true,
        Scope::Township(t) => *t == ev.township && ev.route.is_none(),
        Scope::Department(d) => ev.route.as_deref() == Some(department_route(d).as_str()),
        Scope::Ingest => false,
    }
}
