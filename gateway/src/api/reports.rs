//! `GET /api/v1/reports/assessment?from=&to=&township=&format=json|csv|xlsx|html` — the
//! assessment (考核) of a window. Admin tokens see every township and the departments; a
//! township token sees its own row (with its rank among all) and its own false-alarm units.

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::config::Scope;
use crate::report::{render, Format};
use crate::weekly::{file_name, valid_file};
use alerts::assessment::{assess, Report};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest window a report may cover.
pub const MAX_WINDOW_DAYS: i64 = 400;

/// Query parameters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessmentQuery {
    from: Option<String>,
    to: Option<String>,
    township: Option<String>,
    format: Option<String>,
}

fn time(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(
                        "invalid_time",
                        format!("`{name}` must be an RFC 3339 time like 2026-11-23T00:00:00+08:00"),
                    )
                })
        })
        .transpose()
}

/// The window asked for (default: the 7 days to now).
pub fn window(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = time("to", to)?.unwrap_or_else(Utc::now);
    let from = time("from", from)?.unwrap_or(to - Duration::days(7));
    if from >= to || to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::bad_request(
            "invalid_window",
            format!("`from` must be before `to`, at most {MAX_WINDOW_DAYS} days apart"),
        ));
    }
    Ok((from, to))
}

/// `GET /api/v1/reports/assessment`
pub async fn assessment(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<AssessmentQuery>,
) -> Result<Response, ApiError> {
    let only = match (&who.scope, q.township.as_deref().filter(|t| !t.is_empty())) {
        (Scope::Admin, t) => t.map(String::from),
        (Scope::Township(own), None) => Some(own.clone()),
        (Scope::Township(own), Some(t)) if t == own => Some(own.clone()),
        (_, _) => {
            return Err(ApiError::forbidden(format!(
                "token `{}` cannot read this assessment",
                who.name
            )))
        }
    };
    if let Some(t) = &only {
        if state.pipeline.registry().township(t).is_none() {
            return Err(ApiError::bad_request(
                "unknown_township",
                format!("township `{t}` does not exist"),
            ));
        }
    }
    let format: Format = q
        .format
        .as_deref()
        .unwrap_or("json")
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_format", e))?;
    let (from, to) = window(q.from.as_deref(), q.to.as_deref())?;
    let admin = matches!(who.scope, Scope::Admin);
    // the same window asked for again within a minute is answered from the cache (up to now:
    // as of when it was computed)
    let key = (from, time("to", q.to.as_deref())?);
    let (store, registry, weights) = (
        state.pipeline.outbox().store().clone(),
        state.pipeline.registry().clone(),
        state.assessment.clone(),
    );
    let full = state
        .assessments
        .get_or(key, || async move {
            tokio::task::spawn_blocking(move || assess(&store, &registry, from, to, &weights, None))
                .await
                .expect("assessment task")
        })
        .await
        .map_err(ApiError::storage)?;
    let report = narrow((*full).clone(), only.as_deref(), admin);
    let (from, to) = (report.from, report.to);
    let body = render(&report, format, state.pipeline.offset()).map_err(ApiError::storage)?;
    let name = format!(
        "assessment-{}-{}.{}",
        from.format("%Y%m%d"),
        to.format("%Y%m%d"),
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/reports` — the weekly reports on disk (admin): name, window, files.
pub async fn list(State(state): State<AppState>, who: Principal) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    let dir = state.reports_dir.clone();
    let reports = tokio::task::spawn_blocking(move || weekly_reports(&dir))
        .await
        .expect("list task");
    Ok(Json(json!({ "reports": reports })))
}

fn weekly_reports(dir: &std::path::Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| valid_file(n) == Some(Format::Json))
        .collect();
    names.sort();
    names
        .iter()
        .rev()
        .filter_map(|json_name| {
            let week = json_name.strip_prefix("weekly-")?.strip_suffix(".json")?;
            let report: Value =
                serde_json::from_slice(&std::fs::read(dir.join(json_name)).ok()?).ok()?;
            let files: serde_json::Map<String, Value> = [Format::Xlsx, Format::Html, Format::Json]
                .into_iter()
                .map(|f| {
                    (
                        f.extension().to_string(),
                        json!(format!("/api/v1/reports/{}", file_name(week, f))),
                    )
                })
                .collect();
            Some(json!({"name": week, "from": report["from"], "to": report["to"], "files": files}))
        })
        .collect()
}

/// `GET /api/v1/reports/{file}` — one weekly report file (admin).
pub async fn file(
    State(state): State<AppState>,
    who: Principal,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    who.require_admin()?;
    let not_found = || ApiError::not_found("report_not_found", format!("no report `{name}`"));
    let format = valid_file(&name).ok_or_else(not_found)?;
    let bytes = tokio::fs::read(state.reports_dir.join(&name))
        .await
        .map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// One township's view of the full report (its rank stays its rank among all).
pub fn narrow(mut r: Report, township: Option<&str>, admin: bool) -> Report {
    if let Some(t) = township {
        r.townships.retain(|x| x.code == t);
        r.false_alarm_units.retain(|u| u.township == t);
    }
    if !admin {
        r.departments.clear();
    }
    r
}
