//! Cameras and their health: `GET /api/v1/cameras`, `GET /api/v1/cameras/{id}`, and uptime:
//! `GET /api/v1/cameras/{id}/availability`, `GET /api/v1/townships/{code}/availability`.
//!
//! Registered cameras the caller may see, with state, since when, measured fps, bitrate,
//! keyframe interval, loss, resolution and codec, reconnects and the last failure's reason.
//! Credentials are never part of an answer (the view is built from the health, not the config).

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use alerts::time;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Query of `GET /api/v1/cameras`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamerasQuery {
    township: Option<String>,
    state: Option<String>,
    picture: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

const STATES: &[&str] = &["online", "stalled", "degraded", "offline", "unknown"];

/// `GET /api/v1/cameras?township=&state=&picture=&limit=&after=` (`picture`: `failing` — a
/// picture check is reported — or `clear`), by id, a page at a time ([`super::paging`]).
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<CamerasQuery>,
) -> Result<Json<Value>, ApiError> {
    who.require_filter(q.township.as_deref())?;
    if let Some(s) = &q.state {
        if !STATES.contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("`state`: `{s}` is not one of {}", STATES.join(", ")),
            ));
        }
    }
    let failing = match q.picture.as_deref() {
        None => None,
        Some("failing") => Some(true),
        Some("clear") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_query",
                format!("`picture`: `{other}` is not `failing` or `clear`"),
            ))
        }
    };
    let visible = who.townships()?;
    let matching = listed(&state, visible.as_deref())
        .into_iter()
        .filter(|c| q.township.as_deref().is_none_or(|t| t == c.township))
        .filter(|c| q.state.as_deref().is_none_or(|s| s == c.state))
        .filter(|c| failing.is_none_or(|f| f == c.failing));
    let (cameras, next) = super::paging::page(matching, |c| &c.id, q.after.as_deref(), q.limit)?;
    let list: Vec<Value> = cameras
        .into_iter()
        .map(|c| with_place(&state, c.view(&state)))
        .collect();
    Ok(Json(json!({"cameras": list, "next": next})))
}

/// A camera in the list, whichever source watches it (its view is built for the page only).
struct Listed {
    id: String,
    township: String,
    state: &'static str,
    failing: bool,
    source: Source,
}

enum Source {
    Rtsp(Box<::cameras::rtsp::CameraView>),
    Channel(Box<::gb28181::server::ChannelView>),
}

impl Listed {
    /// What the API shows of it.
    fn view(self, state: &AppState) -> Value {
        match self.source {
            Source::Rtsp(c) => rtsp_view(&c),
            Source::Channel(c) => channel_view(state, *c, self.state),
        }
    }
}

/// The cameras of `visible` townships (`None`: all) — RTSP cameras and GB/T 28181 channels —
/// ordered by id.
fn listed(state: &AppState, visible: Option<&[String]>) -> Vec<Listed> {
    let sees = |t: &str| visible.is_none_or(|v| v.iter().any(|x| x == t));
    let mut all: Vec<Listed> = state
        .cameras
        .as_ref()
        .map(|c| c.list())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| sees(&c.township))
        .map(|c| Listed {
            failing: c.picture.as_ref().is_some_and(|p| !p.failing.is_empty()),
            state: c.state.as_str(),
            id: c.id.clone(),
            township: c.township.clone(),
            source: Source::Rtsp(Box::new(c)),
        })
        .collect();
    if let Some(platform) = &state.gb28181 {
        all.extend(
            platform
                .channels(visible)
                .into_iter()
                .map(|c| channel_listed(platform, c)),
        );
        all.sort_by(|a, b| a.id.cmp(&b.id));
    }
    all
}

/// An RTSP camera's view, saying so.
fn rtsp_view(c: &::cameras::rtsp::CameraView) -> Value {
    let mut v = json!(c);
    v["protocol"] = json!("rtsp");
    v
}

/// A GB/T 28181 channel in the list.
fn channel_listed(platform: &::gb28181::Server, c: ::gb28181::server::ChannelView) -> Listed {
    let state = c
        .state
        .unwrap_or(alerts::camera::CameraState::Unknown)
        .as_str();
    Listed {
        failing: platform.picture_failing(&c.id),
        state,
        id: c.id.clone(),
        township: c.township.clone().unwrap_or_default(),
        source: Source::Channel(Box::new(c)),
    }
}

/// A GB/T 28181 channel as a camera: its state (the device's and the catalog's together),
/// since when, its device, the catalog's word and the last picture check.
fn channel_view(state: &AppState, c: ::gb28181::server::ChannelView, camera_state: &str) -> Value {
    let picture = state
        .channel_checks
        .as_ref()
        .and_then(|checks| checks.picture(&c.id));
    json!({
        "id": c.id,
        "name": c.name.clone().unwrap_or_else(|| c.id.clone()),
        "township": c.township,
        "protocol": "gb28181",
        "state": camera_state,
        "since": c.since.as_ref().map(time::format),
        "device": c.device,
        "catalog_status": c.status,
        "last_error": c.reason,
        "suppressed_transitions": c.suppressed_transitions,
        "manufacturer": c.manufacturer,
        "model": c.model,
        "civil_code": c.civil_code,
        "picture": picture,
    })
}

/// A camera's view with its registry `address` and `location`.
fn with_place(state: &AppState, mut v: Value) -> Value {
    let place = v["id"]
        .as_str()
        .and_then(|id| {
            state
                .pipeline
                .registry()
                .camera(id)
                .map(|c| c.place.clone())
        })
        .unwrap_or_default();
    v["address"] = json!(place.address);
    v["location"] = json!(place.location);
    v
}

/// `GET /api/v1/cameras/{id}` — 404 for cameras of other townships.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.townships()?;
    if let Some(c) = state.cameras.as_ref().and_then(|c| c.get(&id)) {
        if who.can_see(&c.township) {
            return Ok(Json(with_place(&state, rtsp_view(&c))));
        }
    }
    let channel = state
        .gb28181
        .as_ref()
        .and_then(|p| Some((p, p.channel(&id)?)))
        .map(|(p, c)| channel_listed(p, c))
        .filter(|c| who.can_see(&c.township));
    match channel {
        Some(c) => Ok(Json(with_place(&state, c.view(&state)))),
        None => Err(ApiError::not_found(
            "camera_not_found",
            format!("no camera `{id}`"),
        )),
    }
}

/// `POST /api/v1/cameras/{id}/baseline/relearn` — the picture baseline is learned again from
/// the next samples; `scene_changed` clears once they are taken. 404 for cameras of other
/// townships, 409 when baselines are off.
pub async fn relearn(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    who.townships()?;
    let cameras = state.cameras.as_ref();
    let not_found = || ApiError::not_found("camera_not_found", format!("no camera `{id}`"));
    let township = match cameras.and_then(|c| c.get(&id)) {
        Some(c) => Some(c.township),
        None => state
            .gb28181
            .as_ref()
            .and_then(|p| p.channel(&id))
            .and_then(|c| c.township),
    };
    if !township.is_some_and(|t| who.can_see(&t)) {
        return Err(not_found());
    }
    let relearned = match (cameras.and_then(|c| c.relearn(&id)), &state.channel_checks) {
        (Some(r), _) => Some(r),
        (None, Some(checks)) => Some(checks.relearn(&id)),
        (None, None) => {
            return Err(ApiError::conflict(
                "picture_checks_off",
                "GB/T 28181 channels' picture checks are off ([gb28181] vqd_interval_s = 0)",
            ))
        }
    };
    match relearned {
        Some(true) => {
            tracing::info!(camera = %id, by = %who.name, "picture baseline to be learned again");
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"camera": id, "baseline": "learning"})),
            ))
        }
        Some(false) => Err(ApiError::conflict(
            "baselines_off",
            "picture baselines are off ([vqd] baseline_samples = 0)",
        )),
        None => Err(not_found()),
    }
}

/// Query of the availability endpoints: RFC 3339 times; default the last 24 hours.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    from: Option<String>,
    to: Option<String>,
}

use chrono::Utc;

fn window(q: &WindowQuery) -> Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>), ApiError> {
    let parse =
        |key: &str, v: &Option<String>| -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.with_timezone(&Utc))
                        .map_err(|e| {
                            ApiError::bad_request(
                                "bad_query",
                                format!("`{key}`: `{t}` is not an RFC 3339 time ({e})"),
                            )
                        })
                })
                .transpose()
        };
    let now = Utc::now();
    let to = parse("to", &q.to)?.unwrap_or(now).min(now);
    let from = parse("from", &q.from)?.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(ApiError::bad_request(
            "bad_query",
            "`from` must be before `to` (and before now)",
        ));
    }
    Ok((from, to))
}

fn breakdown(
    state: &AppState,
    camera: &str,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
) -> Result<alerts::availability::Breakdown, ApiError> {
    let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
    let log = state
        .pipeline
        .outbox()
        .store()
        .camera_log(camera, f, t)
        .map_err(ApiError::storage)?;
    Ok(alerts::availability::breakdown(&log, f, t))
}

/// `GET /api/v1/cameras/{id}/availability?from=&to=` — seconds in each state and the online
/// share of the known time.
pub async fn availability(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    who.townships()?;
    let camera = match state.pipeline.registry().camera(&id) {
        Some(c) if who.can_see(&c.township) => c.clone(),
        _ => {
            return Err(ApiError::not_found(
                "camera_not_found",
                format!("no camera `{id}`"),
            ))
        }
    };
    let (from, to) = window(&q)?;
    let b = breakdown(&state, &camera.id, from, to)?;
    Ok(Json(json!({
        "camera": camera.id,
        "township": camera.township,
        "from": time::format(&from),
        "to": time::format(&to),
        "availability": b.availability(),
        "seconds": b,
    })))
}

/// `GET /api/v1/townships/{code}/availability?from=&to=` — the township's cameras together,
/// and each camera's figure.
pub async fn township_availability(
    State(state): State<AppState>,
    who: Principal,
    Path(code): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, ApiError> {
    who.townships()?;
    if state.pipeline.registry().township(&code).is_none() || !who.can_see(&code) {
        return Err(ApiError::not_found(
            "township_not_found",
            format!("no township `{code}`"),
        ));
    }
    let (from, to) = window(&q)?;
    let mut total = alerts::availability::Breakdown::default();
    let mut cameras = Vec::new();
    let registry = state.pipeline.registry();
    let mut ids: Vec<&std::sync::Arc<alerts::registry::Camera>> =
        registry.cameras().filter(|c| c.township == code).collect();
    ids.sort_by(|a, b| a.id.cmp(&b.id));
    for c in ids {
        let b = breakdown(&state, &c.id, from, to)?;
        total.add(&b);
        cameras.push(json!({"camera": c.id, "availability": b.availability(), "seconds": b}));
    }
    Ok(Json(json!({
        "township": code,
        "from": time::format(&from),
        "to": time::format(&to),
        "availability": total.availability(),
        "seconds": total,
        "cameras": cameras,
    })))
}
