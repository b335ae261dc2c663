//! The path every message takes, whatever its transport and profile: count it, decode it,
//! submit it, count how it ended. Sources differ only in how they find out what a message is
//! (topic, URL) and how they answer their device.

use crate::profile::{VendorError, VendorProfile};
use crate::standard::{self, Channel, ProfileError};
use alerts::outbox::MessageKey;
use alerts::registry::shown_id;
use alerts::signal::{Protocol, UnknownName};
use alerts::{FireSignal, Pipeline, SubmitError, Submitted};
use sha2::{Digest, Sha256};

/// What a message is, as its topic or URL tells.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// A standard-profile message on a channel.
    Standard {
        /// The unit.
        unit_id: &'a str,
        /// The channel's name (checked when decoding).
        channel: &'a str,
    },
    /// A vendor payload.
    Vendor {
        /// The profile that reads it.
        profile: &'a VendorProfile,
        /// The unit, when the topic or URL names it (otherwise the payload does).
        unit_id: Option<&'a str>,
    },
}

impl Message<'_> {
    /// The unit named before decoding, if any (for logs).
    pub fn unit(&self) -> Option<&str> {
        match self {
            Message::Standard { unit_id, .. } => Some(unit_id),
            Message::Vendor { unit_id, .. } => *unit_id,
        }
    }

    /// The channel or profile name (for logs).
    pub fn channel(&self) -> &str {
        match self {
            Message::Standard { channel, .. } => channel,
            Message::Vendor { profile, .. } => &profile.name,
        }
    }
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The channel is not one of the profile's.
    #[error("{0}")]
    UnknownChannel(UnknownName),
    /// The payload does not fit the channel.
    #[error("{0}")]
    Payload(ProfileError),
    /// The payload does not fit its vendor profile.
    #[error("{0}")]
    Vendor(VendorError),
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
            AcceptError::Vendor(e) => e.reason(),
            AcceptError::Submit(e) => e.reason(),
        }
    }

    /// Whether trying the same message again later can succeed (outbox full or unavailable);
    /// otherwise the message itself is at fault and is discarded, counted.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AcceptError::Submit(
                SubmitError::Full(_) | SubmitError::DiskLow(_) | SubmitError::Unavailable(_)
            )
        )
    }
}

/// A message decoded for a registered unit.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The unit.
    pub unit_id: String,
    /// Its signals (a standard message holds one; a vendor payload several, or none).
    pub signals: Vec<FireSignal>,
}

fn known_unit(pipeline: &Pipeline, unit_id: &str, protocol: Protocol) -> Result<(), AcceptError> {
    if pipeline.registry().unit(unit_id).is_none() {
        pipeline.note_unknown_unit(unit_id, protocol);
        return Err(AcceptError::Submit(SubmitError::UnknownUnit(
            alerts::registry::shown_id(unit_id),
        )));
    }
    Ok(())
}

/// Decodes a message of a registered unit into signals (counts nothing).
pub fn decode(
    pipeline: &Pipeline,
    protocol: Protocol,
    message: Message<'_>,
    body: &[u8],
) -> Result<Decoded, AcceptError> {
    match message {
        Message::Standard { unit_id, channel } => {
            let channel: Channel = channel.parse().map_err(AcceptError::UnknownChannel)?;
            known_unit(pipeline, unit_id, protocol)?;
            let signal =
                standard::parse(unit_id, protocol, channel, body).map_err(AcceptError::Payload)?;
            Ok(Decoded {
                unit_id: unit_id.to_string(),
                signals: vec![signal],
            })
        }
        Message::Vendor { profile, unit_id } => {
            if let Some(u) = unit_id {
                known_unit(pipeline, u, protocol)?;
            }
            let d = profile
                .decode(protocol, unit_id, body)
                .map_err(AcceptError::Vendor)?;
            if unit_id.is_none() {
                known_unit(pipeline, &d.unit_id, protocol)?;
            }
            Ok(Decoded {
                unit_id: d.unit_id,
                signals: d.signals,
            })
        }
    }
}

/// How long a message is recognised when it comes again with the same payload (a redelivery
/// after a crash comes within seconds; a device's later identical report is a new message).
pub const PAYLOAD_WINDOW: chrono::Duration = chrono::Duration::seconds(120);

/// How long a pusher's own `Idempotency-Key` is honoured.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// What identifies a message by its payload: the source, what its topic or URL said, and a
/// digest of the bytes.
pub fn payload_key(source: &str, message: &Message<'_>, body: &[u8]) -> MessageKey {
    let digest = Sha256::digest(body);
    MessageKey {
        key: format!(
            "{source}:{}:{}:{}",
            shown_id(message.unit().unwrap_or("-")),
            shown_id(message.channel()),
            hex::encode(&digest[..16])
        ),
        window_ms: PAYLOAD_WINDOW.num_milliseconds(),
    }
}

/// What identifies a message by the key its sender gave it (`Idempotency-Key`).
pub fn sender_key(source: &str, unit: &str, key: &str) -> MessageKey {
    MessageKey {
        key: format!("{source}:{}:key:{}", shown_id(unit), shown_id(key)),
        window_ms: IDEMPOTENCY_WINDOW.num_milliseconds(),
    }
}

/// Submits what a message decoded to; `Ok` once its events are committed — or, for a
/// message already committed under `key`, with the ids its events got then.
pub async fn submit(
    pipeline: &Pipeline,
    protocol: Protocol,
    decoded: &Decoded,
    key: Option<MessageKey>,
) -> Result<Submitted, AcceptError> {
    pipeline
        .submit_message(&decoded.unit_id, protocol, &decoded.signals, key)
        .await
        .map_err(AcceptError::Submit)
}

/// Handles one message: counts it under `source`, decodes it, submits it; `Ok` only once its
/// events are committed.
pub async fn accept(
    pipeline: &Pipeline,
    source: &'static str,
    protocol: Protocol,
    message: Message<'_>,
    body: &[u8],
    key: MessageKey,
) -> Result<Submitted, AcceptError> {
    let metrics = pipeline.metrics();
    metrics.ingested(source);
    let result = async {
        let decoded = decode(pipeline, protocol, message, body)?;
        submit(pipeline, protocol, &decoded, Some(key)).await
    }
    .await;
    if let Err(e) = &result {
        metrics.rejected(source, e.reason());
        tracing::debug!(
            source,
            unit = message.unit(),
            channel = message.channel(),
            reason = e.reason(),
            error = %e,
            "message rejected"
        );
    }
    result
}
