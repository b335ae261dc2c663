//! Sources: each translates what devices send into [`alerts::FireSignal`]s (or camera
//! observations) and submits them to the [`alerts::Pipeline`], acknowledging the device only
//! after the pipeline's durable commit.
//!
//! * [`standard`] — the standard fire-telemetry JSON profile (channels `status`, `analog`,
//!   `operation`, `heartbeat`), shared by MQTT and HTTP push.
//! * [`http_push`] — the HTTP push source (`POST /api/v1/ingest/{unit}/{channel}`); the
//!   gateway's API routes requests to it.

pub mod http_push;
pub mod standard;
