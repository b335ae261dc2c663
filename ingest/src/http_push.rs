//! The HTTP push source: platforms (NB-IoT fire-sensor clouds, panel bridges) `POST` standard
//! profile payloads to `/api/v1/ingest/{unit_id}/{channel}`.
//!
//! Authentication, body-size limits and the HTTP framing belong to the gateway's API; this
//! module decides what a request means and submits it.

use crate::accept::{accept as accept_message, AcceptError};
use alerts::signal::Protocol;
use alerts::{Pipeline, Submitted};

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "http";

/// Why a push was not accepted.
pub type PushError = AcceptError;

/// Handles one push: counts it, decodes it, submits it; `Ok` only once committed.
pub async fn accept(
    pipeline: &Pipeline,
    unit_id: &str,
    channel: &str,
    body: &[u8],
) -> Result<Submitted, PushError> {
    accept_message(pipeline, SOURCE, Protocol::Http, unit_id, channel, body).await
}
