//! The gateway binary's library: configuration, wiring, HTTP API and operator commands.
//!
//! * [`config`] — TOML + CSV configuration, validated before anything runs.
//! * [`app`] — starts the outbox, delivery workers and API; shuts down cleanly.
//! * [`api`] — the HTTP API (axum): health, metrics, events, sign-off, SSE, ingest.
//! * [`reload`] — SIGHUP and `POST /api/v1/admin/reload`: the config read again, applied whole or not at all.
//! * [`channel_checks`] — picture checks of GB/T 28181 channels (pulled by INVITE).
//! * [`outbox_cmd`] — `gateway outbox stats|dead-letters|replay`.

pub mod api;
pub mod app;
pub mod channel_checks;
pub mod config;
pub mod outbox_cmd;
pub mod reload;
pub mod report;
pub mod report_cmd;
pub mod server;
pub mod tls;
pub mod video;
pub mod weekly;
