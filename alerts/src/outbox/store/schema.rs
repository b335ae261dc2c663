//! What the outbox file holds: its tables, the meta keys, and the state kept beside each
//! event (delivery, sign-off, feedback).

use crate::case::{Case, Feedback, SignOff, Stage};
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
/// Open tickets by pair key (see [`crate::case::pairs`]): (key, event id) → ().
pub(super) const OPEN_PAIRS: TableDefinition<(&str, u128), ()> = TableDefinition::new("open_pairs");
/// Cases not closed: event id → () (the events page's open and overdue lists read this, not
/// every event).
pub(super) const OPEN_CASES: TableDefinition<u128, ()> = TableDefinition::new("open_cases");
/// Supervised cases by when they next need a reminder: (unix ms, event id) → ().
pub(super) const DUE: TableDefinition<(i64, u128), ()> = TableDefinition::new("due");
/// Camera state changes: (camera, unix ms) → state code (see [`CameraMark`]).
pub(super) const CAMERA_LOG: TableDefinition<(&str, i64), u8> = TableDefinition::new("camera_log");
/// Picture verdicts: (camera, unix ms) → 1 a check failing, 0 clear (for 完好率 over time).
/// A camera's picture baseline (kept for the camera source, opaque to the outbox).
pub(super) const CAMERA_BASELINES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("camera_baselines");
pub(super) const PICTURE_LOG: TableDefinition<(&str, i64), u8> =
    TableDefinition::new("picture_log");
/// Unit liveness changes: (unit, unix ms) → 1 online, 4 offline, 0 never heard from (for
/// 联网率 over time).
pub(super) const UNIT_LOG: TableDefinition<(&str, i64), u8> = TableDefinition::new("unit_log");
/// Patrol checks (查岗): (unit, sent unix ms) → [`PatrolRecord`] as JSON.
pub(super) const PATROLS: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("patrols");
/// Evidence files by the events that carry them: ("<camera>/<file>", event id) → ().
pub(super) const EVIDENCE_REFS: TableDefinition<(&str, u128), ()> =
    TableDefinition::new("evidence_refs");
/// Messages committed, for redeliveries: digest of the key (128 bits) → (unix ms, the ids of its
/// events, 16 bytes each).
pub(super) const MESSAGES: TableDefinition<u128, (i64, &[u8])> = TableDefinition::new("messages");
/// The same by time, to forget them: (unix ms, key digest) → ().
pub(super) const MESSAGE_TIMES: TableDefinition<(i64, u128), ()> =
    TableDefinition::new("message_times");
/// When the camera source was last known to be watching (unix ms), in `meta`.
pub(super) const CAMERA_ALIVE: &str = "camera_alive_ms";

pub(super) const NEXT_SEQ: &str = "next_seq";
/// When the file was first opened by a gateway that records it (unix ms).
pub(super) const CREATED_MS: &str = "created_ms";
/// Set once the cases of the file have been indexed (see `Store::index_cases`).
pub(super) const CASES_INDEXED: &str = "cases_indexed";
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
    #[serde(serialize_with = "crate::time::serialize")]
    pub committed_at: DateTime<Utc>,
    /// Delivery status.
    pub delivery: DeliveryStatus,
    /// Delivery attempts made so far (failed ones, and the one that delivered it).
    pub attempts: u32,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last delivery error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The last HTTP status received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    /// The delivery queue, when not the township's own (`dept:<code>`, `city`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The closed loop; `None` for notices, which are not cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
    /// Close the case once delivered (info events).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub close_on_delivery: bool,
    /// Sign-off as stored before the closed loop (read once, moved into `case`).
    #[serde(default, rename = "signed", skip_serializing)]
    pub(super) legacy_signed: Option<SignOff>,
    /// Feedback as stored before the closed loop (read once, moved into `case`).
    #[serde(default, rename = "feedback", skip_serializing)]
    pub(super) legacy_feedback: Vec<Feedback>,
}

impl EventState {
    /// The delivery queue it is (or was) in: its route, else its township.
    pub fn queue(&self) -> &str {
        self.route.as_deref().unwrap_or(&self.township)
    }

    /// The sign-off, once signed.
    pub fn signed(&self) -> Option<&SignOff> {
        self.case.as_ref().and_then(|c| c.signed.as_ref())
    }

    /// Rows written before the closed loop carry sign-off and feedback beside the event:
    /// they become the case they describe.
    fn upgrade(&mut self) {
        if self.case.is_some() {
            return;
        }
        let Some(mut case) = Case::new(&self.kind) else {
            return;
        };
        case.signed = self.legacy_signed.take();
        case.feedback = std::mem::take(&mut self.legacy_feedback);
        if case.signed.is_some() {
            case.stage = Stage::Signed;
        }
        self.case = Some(case);
    }
}

/// A patrol check (查岗) sent to a unit's device, and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatrolRecord {
    /// Minutes the device had to answer.
    pub timeout_min: u8,
    /// When the answer came (unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_ms: Option<i64>,
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
    match serde_json::from_slice::<EventState>(bytes) {
        Ok(mut state) => {
            state.upgrade();
            Some(state)
        }
        Err(e) => {
            CORRUPT_ROWS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event = %Uuid::from_u128(id), error = %e, "outbox state row does not decode; skipped");
            None
        }
    }
}

/// A state row decoded as a lighter view `T` (no upgrade of old rows), or `None` (counted,
/// logged) when it does not decode.
pub(super) fn decode_as<T: serde::de::DeserializeOwned>(id: u128, bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
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
