//! Every route of the API, registered and described from one table: the router and the
//! OpenAPI document (`GET /api/v1/openapi.json`, [`super::openapi`]) cannot disagree.

use super::AppState;
use super::{
    admin, cameras, cases, console, devices, events, gb28181, ingest, outbox, reports, snapshots,
    units,
};
use axum::Router;

/// One route as the OpenAPI document describes it.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    /// `get` or `post`.
    pub method: &'static str,
    /// Path template (`/api/v1/events/{id}`).
    pub path: &'static str,
    /// Token scopes that may call it (`none`: no token).
    pub scopes: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Query parameters it reads.
    pub query: &'static [&'static str],
}

macro_rules! routes {
    ($( $method:ident $path:literal => $handler:path, $scopes:literal, $summary:literal, [$($q:literal),*]; )*) => {
        /// Registers every route of the table.
        pub fn register(router: Router<AppState>) -> Router<AppState> {
            router $( .route($path, axum::routing::$method($handler)) )*
        }

        /// The table.
        pub const ROUTES: &[RouteDoc] = &[ $( RouteDoc {
            method: stringify!($method),
            path: $path,
            scopes: $scopes,
            summary: $summary,
            query: &[$($q),*],
        } ),* ];
    };
}

routes! {
    get "/" => console::index, "none", "The operator console (a web page; it calls this API with the token signed in).", [];
    get "/assets/{file}" => console::asset, "none", "The console's scripts and styles, by digest-carrying name.", [];
    get "/healthz" => super::healthz, "none", "The process is alive.", [];
    get "/readyz" => super::readyz, "none", "Serving, and the outbox can commit (503 with the reason otherwise).", [];
    get "/metrics" => super::metrics, "none or admin", "Prometheus text format.", [];
    get "/api/v1/openapi.json" => super::openapi::document, "none", "This description of the API.", [];
    get "/api/v1/events" => events::list, "admin, township, department", "Events, oldest first, a page at a time.", ["township", "kind", "state", "sort", "due_before", "limit", "after"];
    get "/api/v1/events/stream" => events::stream, "admin, township", "Live events as Server-Sent Events.", ["township", "kind"];
    get "/api/v1/events/{id}" => events::get, "admin, township, department", "One event with its delivery and case.", [];
    post "/api/v1/events/{id}/sign" => cases::sign, "admin, township", "Sign for the event (签收).", [];
    post "/api/v1/events/{id}/assign" => cases::assign, "admin, township", "Assign it to a department (交办).", [];
    post "/api/v1/events/{id}/accept" => cases::accept, "admin, department", "The department accepts its assignment.", [];
    post "/api/v1/events/{id}/feedback" => cases::feedback, "admin, township, department", "Feedback, with a verdict or as a progress note (反馈).", [];
    post "/api/v1/events/{id}/close" => cases::close, "admin, township", "Close a handled case (办结).", [];
    post "/api/v1/events/{id}/reopen" => cases::reopen, "admin, township", "Reopen a closed case.", [];
    post "/api/v1/ingest/{unit}/{channel}" => ingest::push, "ingest, admin", "HTTP push of a unit's message.", [];
    get "/api/v1/reports" => reports::list, "admin", "The weekly reports made.", [];
    get "/api/v1/reports/assessment" => reports::assessment, "admin, township", "The assessment (考核) of a window.", ["from", "to", "township", "format"];
    get "/api/v1/reports/{file}" => reports::file, "admin", "One weekly report file.", [];
    get "/api/v1/cameras" => cameras::list, "admin, township", "Watched cameras, a page at a time.", ["township", "state", "picture", "limit", "after"];
    get "/api/v1/cameras/{id}" => cameras::get, "admin, township", "One camera with its latest picture check.", [];
    post "/api/v1/cameras/{id}/baseline/relearn" => cameras::relearn, "admin, township", "Forget the camera's picture baseline and learn it again (its view was moved on purpose).", [];
    get "/api/v1/cameras/{id}/snapshot.jpg" => snapshots::snapshot, "admin, township", "The latest keyframe as a JPEG (`width` ≤ 320: its thumbnail).", ["width"];
    get "/api/v1/snapshots/{camera}/{file}" => snapshots::evidence, "admin, township, department", "An evidence snapshot of an event.", [];
    get "/api/v1/cameras/{id}/availability" => cameras::availability, "admin, township", "A camera's uptime over a window.", ["from", "to"];
    get "/api/v1/townships/{code}/availability" => cameras::township_availability, "admin, township", "A township's cameras' uptime over a window.", ["from", "to"];
    post "/api/v1/units/{id}/patrol-check" => devices::patrol_check, "admin, township", "Send a patrol check (查岗) to the unit's device.", [];
    get "/api/v1/units/{id}/patrol-check" => devices::last_patrol, "admin, township", "The unit's last patrol check.", [];
    post "/api/v1/units/{id}/clock-sync" => devices::clock_sync, "admin, township", "Set the unit's device clock.", [];
    post "/api/v1/units/{id}/read" => devices::read, "admin, township", "Ask the unit's device for a reading.", [];
    get "/api/v1/units/{id}/read/{kind}" => devices::last_read, "admin, township", "The unit's last reading of a kind.", [];
    get "/api/v1/gb26875/devices" => devices::connected, "admin, township", "Connected GB/T 26875.3 devices.", [];
    get "/api/v1/gb28181/devices" => gb28181::list, "admin, township", "GB/T 28181 devices that registered.", [];
    get "/api/v1/gb28181/devices/{id}" => gb28181::one, "admin, township", "A GB/T 28181 device with its channels.", [];
    post "/api/v1/gb28181/devices/{id}/query" => gb28181::query, "admin", "Ask a GB/T 28181 device for its catalog, info or status now.", [];
    get "/api/v1/townships" => super::townships, "admin, township", "Townships with queues and rates (联网率, 在线率, 完好率).", [];
    get "/api/v1/units" => units::list, "admin, township", "Registered units, a page at a time.", ["township", "online", "limit", "after"];
    get "/api/v1/units/{id}" => units::get, "admin, township", "One unit.", [];
    get "/api/v1/quarantine" => units::quarantine, "admin", "Unknown units that keep sending.", [];
    get "/api/v1/outbox/stats" => outbox::stats, "admin", "Outbox counts.", [];
    get "/api/v1/outbox/dead-letters" => outbox::dead_letters, "admin", "Dead letters.", ["township", "limit", "after"];
    post "/api/v1/outbox/replay" => outbox::replay, "admin", "Replay dead letters.", [];
    get "/api/v1/outbox/backup" => outbox::backup, "admin", "A consistent copy of the outbox (a redb file).", [];
    get "/api/v1/whoami" => admin::whoami, "any", "The calling token's name and scope.", [];
    post "/api/v1/admin/reload" => admin::reload, "admin", "Read the config again and apply it.", [];
}
