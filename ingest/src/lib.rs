//! Fire sources: each translates what devices send into [`alerts::FireSignal`]s and submits
//! them to the [`alerts::Pipeline`], acknowledging the device only after the pipeline's
//! durable commit. No FFmpeg here: the cameras are the `cameras` crate's.
//!
//! * [`standard`] — the standard fire-telemetry JSON profile (channels `status`, `analog`,
//!   `operation`, `heartbeat`), shared by MQTT and HTTP push.
//! * [`accept`] — the path every standard-profile message takes, whatever its transport.
//! * [`http_push`] — the HTTP push source (`POST /api/v1/ingest/{unit}/{channel}`); the
//!   gateway's API routes requests to it.
//! * [`mqtt`] — the MQTT source: persistent session, PUBACK only after the commit.
//! * [`gb26875`] — GB/T 26875.3 over TCP: the codec (no I/O) and the server.
//! * [`retry`] — the reconnect pause the sources share.

pub mod accept;
pub mod gb26875;
pub mod http_push;
pub mod mqtt;
pub mod profile;
pub mod retry;
pub mod standard;
