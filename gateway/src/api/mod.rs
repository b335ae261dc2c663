//! The HTTP API (axum). See the README's API section for every route.
//!
//! `Authorization: Bearer <token>`; scopes `admin`, `ingest`, `township:<code>`,
//! `department:<code>`. Missing or
//! unknown token → 401; a token outside its scope → 403 (404 for a single event, so ids of
//! other townships do not leak); malformed body → 400 naming the problem.

pub mod admin;
pub mod auth;
pub mod cameras;
pub mod cases;
pub mod console;
pub mod devices;
pub mod error;
pub mod events;
pub mod gb28181;
pub mod ingest;
pub mod openapi;
pub mod outbox;
pub mod paging;
pub mod report_cache;
pub mod reports;
pub mod routes;
pub mod snapshots;
pub mod units;

use alerts::time;
use alerts::Pipeline;
use auth::{Auth, Principal};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use error::ApiError;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The pipeline (registry, outbox, metrics).
    pub pipeline: Arc<Pipeline>,
    /// Vendor profiles, for pushes of vendor payloads.
    pub profiles: Arc<alerts::live::Live<::ingest::profile::Profiles>>,
    /// Config reload (`POST /api/v1/admin/reload`).
    pub reloader: Arc<crate::reload::Reloader>,
    /// The GB/T 26875.3 server's handle (`None` when it does not run).
    pub gb26875: Option<::ingest::gb26875::server::Gb26875Handle>,
    /// The GB/T 28181 platform (`None` when it does not run).
    pub gb28181: Option<Arc<::gb28181::Server>>,
    /// The GB/T 28181 channels' picture checks (`None` when they do not run).
    pub channel_checks: Option<Arc<crate::channel_checks::ChannelChecks>>,
    /// Watched cameras (`None` when the camera source does not run).
    pub cameras: Option<Arc<::cameras::rtsp::Cameras>>,
    /// Snapshots and evidence (`None` when the camera source does not run).
    pub video: Option<crate::video::VideoServices>,
    /// Token table.
    pub auth: Arc<alerts::live::Live<Auth>>,
    /// Set once the gateway is serving; cleared when it shuts down.
    pub ready: Arc<AtomicBool>,
    /// `/metrics` without a token.
    pub metrics_public: bool,
    /// Largest request body.
    pub max_body: usize,
    /// The assessment's weights.
    pub assessment: Arc<alerts::assessment::Weights>,
    /// Assessments computed recently.
    pub assessments: Arc<report_cache::ReportCache<alerts::assessment::Report>>,
    /// Where the weekly reports are.
    pub reports_dir: std::path::PathBuf,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body;
    routes::register(Router::new())
        .fallback(|| async { ApiError::not_found("not_found", "no such route") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(error::envelope))
        .with_state(state)
}

/// `GET /healthz`: the process is alive. No auth.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: serving, and the outbox can commit; 503 while starting or stopping, if the
/// outbox writer has stopped, its disk is nearly full (`[outbox] min_free_mb`) or failing — with
/// the reason. No auth.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let outbox = state.pipeline.outbox();
    let disk = outbox.health();
    let storage_error = disk.is_failing().then(|| disk.failure()).flatten();
    let ready = state.ready.load(Ordering::Relaxed)
        && outbox.is_alive()
        && !disk.is_low()
        && storage_error.is_none();
    let free_mb = (disk.free_bytes() != u64::MAX).then_some(disk.free_bytes() >> 20);
    let body = json!({
        "ready": ready,
        "outbox_writer": if outbox.is_alive() { "running" } else { "stopped" },
        "outbox_pending": outbox.pending(),
        "outbox_full": outbox.is_full(),
        "disk_free_mb": free_mb,
        "disk_low": disk.is_low(),
        "outbox_storage": match &storage_error {
            None => json!("ok"),
            Some(reason) => json!({"failing": reason}),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format (admin token required unless `metrics_public`).
pub(super) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !state.metrics_public {
        state.auth.get().authenticate(&headers)?.require_admin()?;
    }
    let text = state.pipeline.metrics().render();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /api/v1/townships`: the townships the caller may see, with their queue, case and
/// registry counts.
pub(super) async fn townships(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    who.townships()?;
    let registry = state.pipeline.registry();
    let stats = state
        .pipeline
        .outbox()
        .store()
        .stats()
        .map_err(ApiError::storage)?;
    let mut units = std::collections::HashMap::<&str, usize>::new();
    for u in registry.units() {
        *units.entry(u.township.as_str()).or_default() += 1;
    }
    let mut cameras = std::collections::HashMap::<&str, usize>::new();
    for c in registry.cameras() {
        *cameras.entry(c.township.as_str()).or_default() += 1;
    }
    let watched = state.pipeline.metrics().cameras.township_counts();
    let cases = state
        .pipeline
        .outbox()
        .store()
        .case_counts()
        .map_err(ApiError::storage)?;
    let per_township = |counts: &std::collections::BTreeMap<(String, String), u64>, code: &str| {
        counts
            .iter()
            .filter(|((t, _), _)| t == code)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let ratio = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let list: Vec<_> = registry
        .townships()
        .iter()
        .filter(|t| who.can_see(&t.code))
        .map(|t| {
            let (online, registered) = state.pipeline.units_online(&t.code);
            let cams = cameras.get(t.code.as_str()).copied().unwrap_or(0);
            let c = watched.get(&t.code).copied().unwrap_or_default();
            json!({
                "cameras_online": c.online,
                "camera_online_ratio": ratio(c.online, cams),
                "cameras_intact": c.intact,
                "camera_integrity_ratio": ratio(c.intact, cams),
                "units_online": online,
                "unit_online_ratio": ratio(online, registered),
                "code": t.code,
                "name": t.name,
                "webhook": t.webhook.is_some(),
                "cases_open": per_township(&cases.open, &t.code),
                "cases_overdue": per_township(&cases.overdue, &t.code),
                "pending_deliveries": stats.pending_by_township.get(&t.code).copied().unwrap_or(0),
                "oldest_pending_at": time::format_opt(stats.oldest_pending_by_township.get(&t.code)),
                "units_registered": units.get(t.code.as_str()).copied().unwrap_or(0),
                "cameras_registered": cameras.get(t.code.as_str()).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(Json(json!({"townships": list})))
}
