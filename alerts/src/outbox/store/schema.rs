//! What the outbox file holds: its tables, the meta keys, and the state kept beside each
//! event (delivery, sign-off, feedback).

use chrono::{DateTime, Utc};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub(super) const EVENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
pub(super) const STATE: TableDefinition<u128, &[u8]> = TableDefinition::new("state");
pub(super) const PENDING: TableDefinition<(&str, u64), (u128, i64)> =
    TableDefinition::new("pending");
pub(super) const DEAD: TableDefinition<u128, &str> = TableDefinition::new("dead");
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(super) const UNITS: TableDefinition<&str, &[u8]> = TableDefinition::new("units");
/// Camera state changes: (camera, unix ms) → state code (see [`CameraMark`]).
pub(super) const CAMERA_LOG: TableDefinition<(&str, i64), u8> = TableDefinition::new("camera_log");
/// When the camera source was last known to be watching (unix ms), in `meta`.
pub(super) const CAMERA_ALIVE: &str = "camera_alive_ms";

pub(super) const NEXT_SEQ: &str = "next_seq";
pub(super) const PENDING_COUNT: &str = "pending";
pub(super) const DEAD_COUNT: &str = "dead";

pub(super) const PENDING_PREFIX: &str = "pending/";

/// Where an event is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting in its township's queue.
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Refused for good (4xx other than 408/429); kept in the dead-letter list.
    Dead,
    /// The township has no webhook; the event is available through the API only.
    Unrouted,
}

/// A sign-off (签收).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// Who signed.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One feedback entry (信息反馈).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// Who reported.
    pub by: String,
    /// What was done.
    pub result: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The mutable state of an event, beside its immutable body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventState {
    /// Township code.
    pub township: String,
    /// Event kind (for filtering without parsing the body).
    pub kind: String,
    /// Position in the global commit order (a replay gives a new one).
    pub seq: u64,
    /// When it was committed.
    pub committed_at: DateTime<Utc>,
    /// Delivery status.
    pub delivery: DeliveryStatus,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last delivery error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last HTTP status received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// Sign-off, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignOff>,
    /// Feedback entries, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Feedback>,
}

/// State rows that did not decode since the process started.
static CORRUPT_ROWS: AtomicU64 = AtomicU64::new(0);

/// How many stored state rows did not decode (a damaged file, a foreign writer) since the
/// process started; such a row is skipped, never a panic.
pub fn corrupt_rows() -> u64 {
    CORRUPT_ROWS.load(Ordering::Relaxed)
}

/// A state row, or `None` (counted, logged) when it does not decode.
pub(super) fn decode_state(id: u128, bytes: &[u8]) -> Option<EventState> {
    match serde_json::from_slice(bytes) {
        Ok(state) => Some(state),
        Err(e) => {
            CORRUPT_ROWS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event = %Uuid::from_u128(id), error = %e, "outbox state row does not decode; skipped");
            None
        }
    }
}

pub(super) fn encode_state(state: &EventState) -> Vec<u8> {
    serde_json::to_vec(state).expect("state serializes")
}
