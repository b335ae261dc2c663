//! The closed loop's actions: `POST /api/v1/events/{id}/sign|assign|accept|feedback|close|reopen`.
//!
//! Each answers 200 with the event as it now stands (a repeat of what was done changes nothing
//! and answers the same), 409 with `error.state` when the step does not apply in the case's
//! stage, 403 when the caller's scope may not take it, 404 for an event it may not see.

use super::auth::Principal;
use super::error::{json_body, ApiError};
use super::events::{load, view};
use super::AppState;
use alerts::case::{Action, Actor, Refusal, Verdict};
use alerts::pipeline::ActError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// The body of every action; which fields apply depends on the action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    by: String,
    /// `assign`: the department.
    #[serde(default)]
    to: Option<String>,
    /// `feedback`: the verdict.
    #[serde(default)]
    verdict: Option<String>,
    /// `feedback`: the note (`result` in wave-1 clients).
    #[serde(default, alias = "result")]
    note: Option<String>,
    /// `reopen`: why.
    #[serde(default)]
    reason: Option<String>,
}

fn text_field(name: &str, value: Option<&str>, max: usize) -> Result<String, ApiError> {
    let v = value.unwrap_or("").trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("`{name}` must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

fn feedback_action(b: &StepBody) -> Result<Action, ApiError> {
    let verdict = b
        .verdict
        .as_deref()
        .map(|v| {
            Verdict::parse(v).ok_or_else(|| {
                ApiError::bad_request("invalid_verdict", format!("unknown verdict `{v}`"))
            })
        })
        .transpose()?;
    let note = match (&b.note, verdict) {
        (None, Some(_)) => String::new(),
        (note, _) => text_field("note", note.as_deref(), 2000)?,
    };
    Ok(Action::Feedback { verdict, note })
}

/// What was asked, from the route's action name and the body.
fn action(name: &str, b: &StepBody) -> Result<Action, ApiError> {
    Ok(match name {
        "sign" => Action::Sign,
        "assign" => Action::Assign {
            to: text_field("to", b.to.as_deref(), 64)?,
        },
        "accept" => Action::Accept,
        "feedback" => feedback_action(b)?,
        "close" => Action::Close,
        _ => Action::Reopen {
            reason: text_field("reason", b.reason.as_deref(), 2000)?,
        },
    })
}

fn refused(r: Refusal) -> ApiError {
    let message = r.to_string();
    match r {
        Refusal::AlreadySigned(_) => {
            ApiError::conflict("already_signed", format!("event was {message}"))
        }
        Refusal::Invalid { stage, .. } => ApiError {
            state: Some(stage.as_str()),
            ..ApiError::conflict("invalid_transition", message)
        },
        Refusal::NotSigned(_) => ApiError {
            state: Some("open"),
            ..ApiError::conflict("not_signed", message)
        },
        Refusal::NotAllowed(_) => ApiError::forbidden(message),
        Refusal::BadVerdict { .. } => ApiError::bad_request("invalid_verdict", message),
    }
}

fn act_error(e: ActError, id: &str) -> ApiError {
    match e {
        ActError::NotFound => ApiError::not_found("event_not_found", format!("no event `{id}`")),
        ActError::NotACase(_) => ApiError::conflict("not_a_case", e.to_string()),
        ActError::Refused(r) => refused(r),
        ActError::BadDepartment(m) => ApiError::bad_request("unknown_department", m),
        ActError::Storage(e) => ApiError::storage(e),
    }
}

/// Applies the step `name` to event `id` for `who`.
async fn step(
    state: AppState,
    who: Principal,
    id: String,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let stored = load(&state, &who, &id)?;
    let b: StepBody = json_body(body, state.max_body)?;
    let by = text_field("by", Some(&b.by), 64)?;
    let action = action(name, &b)?;
    let actor = Actor {
        by,
        token: Some(who.name.clone()),
        role: who.role(),
    };
    let acted = state
        .pipeline
        .act(stored.id, action, actor)
        .await
        .map_err(|e| act_error(e, &id))?;
    Ok(Json(view(&acted.stored)))
}

macro_rules! step_route {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub async fn $name(
            State(state): State<AppState>,
            who: Principal,
            Path(id): Path<String>,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Json<Value>, ApiError> {
            step(state, who, id, stringify!($name), body).await
        }
    };
}

step_route!(
    /// `POST …/sign` `{"by"}` — 签收; the first wins, another person gets 409 naming who signed.
    sign
);
step_route!(
    /// `POST …/assign` `{"by", "to"}` — 交办 to a department (after signing).
    assign
);
step_route!(
    /// `POST …/accept` `{"by"}` — the department accepts its assignment.
    accept
);
step_route!(
    /// `POST …/feedback` `{"by", "verdict"?, "note"?}` — a verdict makes the case handled.
    feedback
);
step_route!(
    /// `POST …/close` `{"by"}` — 办结 a handled case.
    close
);
step_route!(
    /// `POST …/reopen` `{"by", "reason"}` — reopen a closed case.
    reopen
);
