//! The path every standard-profile message takes, whatever its transport: count it, decode it,
//! submit it, count how it ended. Sources differ only in how they answer their device.

use crate::standard::{self, Channel, ProfileError};
use alerts::signal::{Protocol, UnknownName};
use alerts::{FireSignal, Pipeline, SubmitError, Submitted};

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
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

impl AcceptError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            AcceptError::UnknownChannel(_) => "unknown_channel",
            AcceptError::Payload(e) => e.reason(),
            AcceptError::Submit(e) => e.reason(),
        }
    }

    /// Whether trying the same message again later can succeed (outbox full or unavailable);
    /// otherwise the message itself is at fault and is discarded, counted.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AcceptError::Submit(SubmitError::Full(_) | SubmitError::Unavailable(_))
        )
    }
}

/// Decodes a message for a registered unit into a signal (counts nothing).
pub fn decode(
    pipeline: &Pipeline,
    protocol: Protocol,
    unit_id: &str,
    channel: &str,
    body: &[u8],
) -> Result<FireSignal, AcceptError> {
    let channel: Channel = channel.parse().map_err(AcceptError::UnknownChannel)?;
    if pipeline.registry().unit(unit_id).is_none() {
        pipeline.note_unknown_unit(unit_id, protocol);
        return Err(AcceptError::Submit(SubmitError::UnknownUnit(
            unit_id.to_string(),
        )));
    }
    standard::parse(unit_id, protocol, channel, body).map_err(AcceptError::Payload)
}

/// Handles one message: counts it under `source`, decodes it, submits it; `Ok` only once its
/// events are committed.
pub async fn accept(
    pipeline: &Pipeline,
    source: &'static str,
    protocol: Protocol,
    unit_id: &str,
    channel: &str,
    body: &[u8],
) -> Result<Submitted, AcceptError> {
    let metrics = pipeline.metrics();
    metrics.ingested(source);
    let result = async {
        let signal = decode(pipeline, protocol, unit_id, channel, body)?;
        pipeline.submit(signal).await.map_err(AcceptError::Submit)
    }
    .await;
    if let Err(e) = &result {
        metrics.rejected(source, e.reason());
        tracing::debug!(source, unit = unit_id, reason = e.reason(), error = %e, "message rejected");
    }
    result
}
