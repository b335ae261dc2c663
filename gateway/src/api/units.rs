//! Units and their connectivity: `GET /api/v1/units`, `GET /api/v1/units/{id}`.

use super::auth::Principal;
use super::error::ApiError;
use super::AppState;
use alerts::registry::Unit;
use alerts::time;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn view(state: &AppState, unit: &Unit) -> Value {
    let live = state.pipeline.unit_state(&unit.id);
    // the last patrol check (查岗) sent to its GB/T 26875.3 device, kept in memory
    let patrol = state
        .gb26875
        .as_ref()
        .filter(|_| unit.gb26875_address.is_some())
        .and_then(|gb| gb.last_patrol(&unit.id).ok().flatten());
    json!({
        "id": unit.id,
        "name": unit.name,
        "township": unit.township,
        "online": live.is_some_and(|l| l.online),
        "since": live.map(|l| time::format(&l.since)),
        "last_seen": live.and_then(|l| time::format_opt(l.last_seen.as_ref())),
        "heartbeat_timeout_s": unit.heartbeat_timeout_s,
        "gb26875_address": unit.gb26875_address,
        "cameras": unit.cameras,
        "last_patrol": patrol,
        "address": unit.place.address,
        "location": unit.place.location,
        // personal data: this view is for the unit's township (and admins) only
        "contacts": unit.contacts.block(),
    })
}

/// Query of `GET /api/v1/units`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsQuery {
    township: Option<String>,
    online: Option<bool>,
    limit: Option<usize>,
    after: Option<String>,
}

/// `GET /api/v1/units?township=&online=&limit=&after=` — registered units the caller may see,
/// by id, a page at a time ([`super::paging`]).
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<UnitsQuery>,
) -> Result<Json<Value>, ApiError> {
    who.require_filter(q.township.as_deref())?;
    let registry = state.pipeline.registry();
    let mut units: Vec<&std::sync::Arc<Unit>> = registry
        .units()
        .filter(|u| who.can_see(&u.township))
        .filter(|u| q.township.as_deref().is_none_or(|t| t == u.township))
        .collect();
    units.sort_by(|a, b| a.id.cmp(&b.id));
    let online = |u: &&std::sync::Arc<Unit>| {
        let up = state.pipeline.unit_state(&u.id).is_some_and(|l| l.online);
        q.online.is_none_or(|o| o == up)
    };
    let matching = units.into_iter().filter(online);
    let (units, next) = super::paging::page(matching, |u| &u.id, q.after.as_deref(), q.limit)?;
    let list: Vec<Value> = units.into_iter().map(|u| view(&state, u)).collect();
    Ok(Json(json!({"units": list, "next": next})))
}

/// A unit the caller may see; 404 (not 403) for another township's, so ids do not leak.
pub(super) fn visible_unit(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<std::sync::Arc<Unit>, ApiError> {
    who.townships()?;
    match state.pipeline.registry().unit(id) {
        Some(u) if who.can_see(&u.township) => Ok(u.clone()),
        _ => Err(ApiError::not_found(
            "unit_not_found",
            format!("no unit `{id}`"),
        )),
    }
}

/// `GET /api/v1/units/{id}` — 404 for units of other townships.
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let u = visible_unit(&state, &who, &id)?;
    Ok(Json(view(&state, &u)))
}

/// `GET /api/v1/quarantine` (admin): unknown units that keep sending, most recent first.
pub async fn quarantine(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Value>, ApiError> {
    who.require_admin()?;
    Ok(Json(match state.pipeline.quarantined() {
        Some(list) => json!({"enabled": true, "units": list}),
        None => json!({"enabled": false, "units": []}),
    }))
}
