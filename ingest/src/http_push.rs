//! The HTTP push source: platforms (NB-IoT fire-sensor clouds, panel bridges) `POST` standard
//! profile payloads to `/api/v1/ingest/{unit_id}/{channel}`, or a vendor's payload to
//! `/api/v1/ingest/{unit_id}/{profile}`.
//!
//! Authentication, body-size limits and the HTTP framing belong to the gateway's API; this
//! module decides what a request means and submits it.

use crate::accept::{accept as accept_message, payload_key, sender_key, AcceptError, Message};
use crate::profile::Profiles;
use alerts::signal::Protocol;
use alerts::{Pipeline, Submitted};

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "http";

/// Why a push was not accepted.
pub type PushError = AcceptError;

/// Handles one push: counts it, decodes it, submits it; `Ok` only once committed. `channel`
/// is a standard channel or the name of a vendor profile (whose payload it then is). A push
/// that comes again — with the same `idempotency_key` (24 h), or else the same body (2 min) —
/// commits nothing and gets the ids its events got the first time.
pub async fn accept(
    pipeline: &Pipeline,
    profiles: &Profiles,
    unit_id: &str,
    channel: &str,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> Result<Submitted, PushError> {
    let message = match profiles.by_name(channel) {
        Some(profile) => Message::Vendor {
            profile,
            unit_id: Some(unit_id),
        },
        None => Message::Standard { unit_id, channel },
    };
    let key = match idempotency_key {
        Some(k) => sender_key(SOURCE, unit_id, k),
        None => payload_key(SOURCE, &message, body),
    };
    accept_message(pipeline, SOURCE, Protocol::Http, message, body, key).await
}
