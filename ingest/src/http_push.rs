//! The HTTP push source: platforms (NB-IoT fire-sensor clouds, panel bridges) `POST` standard
//! profile payloads to `/api/v1/ingest/{unit_id}/{channel}`.
//!
//! Authentication, body-size limits and the HTTP framing belong to the gateway's API; this
//! module decides what a request means, submits it, and counts every outcome.

use crate::standard::{self, Channel, ProfileError};
use alerts::signal::{Protocol, UnknownName};
use alerts::{Pipeline, SubmitError, Submitted};

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "http";

/// Why a push was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The channel is not one of the profile's.
    #[error("{0}")]
    UnknownChannel(UnknownName),
    /// The payload does not fit the channel.
    #[error("{0}")]
    Payload(ProfileError),
    /// The pipeline refused it (unknown unit, outbox full, storage failure).
    #[error("{0}")]
    Submit(SubmitError),
}

impl PushError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::UnknownChannel(_) => "unknown_channel",
            PushError::Payload(e) => e.reason(),
            PushError::Submit(e) => e.reason(),
        }
    }
}

/// Handles one push: counts it, decodes it, submits it; `Ok` only once committed.
pub async fn accept(
    pipeline: &Pipeline,
    unit_id: &str,
    channel: &str,
    body: &[u8],
) -> Result<Submitted, PushError> {
    let metrics = pipeline.metrics();
    metrics.ingested(SOURCE);
    let result = async {
        let channel: Channel = channel.parse().map_err(PushError::UnknownChannel)?;
        if pipeline.registry().unit(unit_id).is_none() {
            return Err(PushError::Submit(SubmitError::UnknownUnit(
                unit_id.to_string(),
            )));
        }
        let signal =
            standard::parse(unit_id, Protocol::Http, channel, body).map_err(PushError::Payload)?;
        pipeline.submit(signal).await.map_err(PushError::Submit)
    }
    .await;
    if let Err(e) = &result {
        metrics.rejected(SOURCE, e.reason());
        tracing::debug!(unit = unit_id, reason = e.reason(), error = %e, "push rejected");
    }
    result
}
