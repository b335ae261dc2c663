//! `GET /api/v1/reports/assessment?from=&to=&township=&format=json|csv|xlsx|html` — the
//! assessment (考核) of a window. Admin tokens see every township and the departments; a
//! township token sees its own row (with its rank among all) and its own false-alarm units.

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use crate::config::Scope;
use crate::report::{render, Format};
use alerts::assessment::{assess, Report};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

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
    let (store, registry, weights) = (
        state.pipeline.outbox().store().clone(),
        state.pipeline.registry().clone(),
        state.assessment.clone(),
    );
    let report = tokio::task::spawn_blocking(move || {
        assess(&store, &registry, from, to, &weights, None)
            .map(|r| narrow(r, only.as_deref(), admin))
    })
    .await
    .expect("assessment task")
    .map_err(ApiError::storage)?;
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
