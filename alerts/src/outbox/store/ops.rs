//! The operations a write transaction applies, and what each came to.

use crate::case::pairs::{self, Pair};
use crate::case::sla::Reminder;
use crate::case::{Action, Actor, Applied, Case, Refusal};
use crate::event::{Event, Severity};
use crate::liveness::UnitState;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An event to commit.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Its id.
    pub id: Uuid,
    /// Its township code.
    pub township: String,
    /// Its kind.
    pub kind: String,
    /// Its JSON (the webhook body).
    pub body: Bytes,
    /// Whether to queue it for webhook delivery.
    pub deliver: bool,
    /// The delivery queue when not the township's own (`dept:<code>`, `city`).
    pub route: Option<String>,
    /// Its case, as it starts (open, or assigned by a dispatch rule); `None` for notices.
    pub case: Option<Case>,
    /// Close its case once delivered (info events).
    pub close_on_delivery: bool,
    /// Open tickets this event ends (a pair closing itself): each is closed as recovered.
    pub resolves: Vec<Resolve>,
}

/// An open ticket a recovering event closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolve {
    /// The ticket (event id).
    pub id: Uuid,
    /// How long the outage lasted (from the ticket's event to the recovering one, in the
    /// events' own times); `None`: the time between their commits.
    pub outage_s: Option<i64>,
}

impl NewEvent {
    /// An event as committed by default: to its township's queue when `deliver`, opening its
    /// case (with its pair key) unless it is a notice, closing info events once delivered, and
    /// closing the tickets it resolves.
    pub fn of(e: &Event, deliver: bool) -> NewEvent {
        let kind = e.kind.as_str();
        let case = Case::new(kind).map(|mut c| {
            if let Some(Pair::Opens(key)) = pairs::pair(e) {
                c.pair = Some(key);
            }
            c
        });
        NewEvent {
            id: e.id,
            township: e.township.code.clone(),
            kind: kind.to_string(),
            body: Bytes::from(serde_json::to_vec(e).expect("events serialize")),
            deliver,
            route: None,
            close_on_delivery: case.is_some() && e.severity == Severity::Info,
            case,
            resolves: e
                .resolves
                .iter()
                .map(|&id| Resolve { id, outage_s: None })
                .collect(),
        }
    }
}

/// One operation of a write transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Commit new events (all or none, and only if the outbox has room for all).
    Commit(Vec<NewEvent>),
    /// Commit a message's events, unless the message was committed within its window (a
    /// redelivery): then nothing is written and the first commit's ids are the outcome.
    CommitMessage {
        /// What identifies the message.
        key: super::messages::MessageKey,
        /// The ids a redelivery is answered with (the message's own events).
        own: Vec<Uuid>,
        /// The events.
        events: Vec<NewEvent>,
    },
    /// A 2xx was received for a pending event.
    Delivered {
        /// Event id.
        id: Uuid,
        /// Its township.
        township: String,
        /// Its queue position.
        seq: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// A delivery attempt failed and will be retried.
    Failed {
        /// Event id.
        id: Uuid,
        /// What went wrong (no secrets: status line or error kind).
        error: String,
        /// HTTP status, if one came back.
        status: Option<u16>,
    },
    /// A delivery was refused for good: move the event to the dead letters.
    Dead {
        /// Event id.
        id: Uuid,
        /// Its township.
        township: String,
        /// Its queue position.
        seq: u64,
        /// What went wrong.
        error: String,
        /// HTTP status.
        status: Option<u16>,
    },
    /// Put dead letters back at the end of their townships' queues (all when `ids` is empty,
    /// optionally only one township's).
    Replay {
        /// Events to replay; empty = every dead letter (of `township`, if given).
        ids: Vec<Uuid>,
        /// Restrict to one township.
        township: Option<String>,
    },
    /// A step of the closed loop on one event, with the notices it sends — all or nothing.
    Act {
        /// Event id.
        id: Uuid,
        /// What is done.
        action: Action,
        /// By whom.
        actor: Actor,
        /// When.
        at: DateTime<Utc>,
        /// The length of the case's history the action was decided on: if it changed
        /// meanwhile the outcome is [`Outcome::Stale`] and nothing is written.
        expect_history: usize,
        /// Notices committed with the step (`event.updated`, `event.assigned`).
        notices: Vec<NewEvent>,
    },
    /// Reminders (督办) on a late case, with their `event.overdue` notices — applied only if
    /// they are still exactly the ones due.
    Remind {
        /// Event id.
        id: Uuid,
        /// The reminders, as decided on the case at `at`.
        reminders: Vec<Reminder>,
        /// When.
        at: DateTime<Utc>,
        /// `event.overdue` for the township and the city.
        notices: Vec<NewEvent>,
    },
    /// A patrol check sent (no answer yet) or answered.
    Patrol {
        /// Unit id.
        unit: String,
        /// When it was sent (unix ms): the record's key.
        sent_ms: i64,
        /// Minutes the device had to answer.
        timeout_min: u8,
        /// When it was answered (unix ms).
        answered_ms: Option<i64>,
    },
    /// Make every earlier non-durable change durable (an empty durable transaction).
    Flush,
    /// Attach evidence to a stored event (its body changes; a pending delivery sends the new
    /// body).
    Evidence {
        /// Event id.
        id: Uuid,
        /// What to add.
        evidence: Vec<crate::event::Evidence>,
    },
    /// Replace the unit liveness snapshot.
    UnitStates(Vec<(String, UnitState)>),
    /// Record camera state changes and that the camera source was watching at `alive_ms`.
    CameraLog {
        /// The changes.
        marks: Vec<CameraMark>,
        /// Picture verdicts (state 1: a check failing, 0: clear), for integrity (完好率).
        pictures: Vec<CameraMark>,
        /// Picture baselines learned (`Some`) or forgotten (`None`), per camera.
        baselines: Vec<(String, Option<Vec<u8>>)>,
        /// Unix ms.
        alive_ms: i64,
    },
    /// Delete delivered (and unrouted) events committed before `before`, at most `limit`.
    Purge {
        /// Cut-off.
        before: DateTime<Utc>,
        /// Maximum number of events to delete in this transaction.
        limit: usize,
        /// Go on after this event (the last call's `next`); `None`: from the oldest.
        after: Option<Uuid>,
    },
}

impl Op {
    /// Whether the operation must be on disk before it is answered. Delivery marks need not
    /// be: losing one in a crash only means one more delivery with the same `Idempotency-Key`,
    /// so they ride along with the next durable transaction (or the periodic flush). Camera
    /// log marks neither: a crash loses at most the last second of uptime accounting.
    pub fn needs_durability(&self) -> bool {
        !matches!(
            self,
            Op::Delivered { .. }
                | Op::Failed { .. }
                | Op::Dead { .. }
                | Op::Flush
                | Op::CameraLog { .. }
                | Op::Patrol { .. }
        )
    }
}

/// A camera's state from a moment on, as logged for uptime accounting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraMark {
    /// Camera id.
    pub camera: String,
    /// Unix ms.
    pub at_ms: i64,
    /// State code: 0 unknown, 1 online, 2 stalled, 3 degraded, 4 offline.
    pub state: u8,
}

/// A committed event's place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Event id.
    pub id: Uuid,
    /// Queue position.
    pub seq: u64,
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Events committed, in order.
    Committed(Vec<Committed>),
    /// A redelivered message: nothing committed; the ids its events got the first time.
    Repeated(Vec<Uuid>),
    /// Not committed: the outbox holds `pending` of at most `max` pending events.
    Full {
        /// Pending now.
        pending: u64,
        /// The limit.
        max: u64,
    },
    /// Done.
    Done,
    /// No such event (or, for delivery marks, no longer pending).
    NotFound,
    /// A closed-loop step was applied (or repeated what was done).
    Acted(Applied),
    /// A closed-loop step was refused.
    Refused(Refusal),
    /// The case changed since the step was decided: decide again.
    Stale,
    /// The event is a notice, not a case.
    NotACase,
    /// Events replayed (township codes, to wake their workers).
    Replayed(Vec<String>),
    /// Events purged, and where to go on from (`None`: the scan reached the cut-off).
    Purged {
        /// How many.
        purged: usize,
        /// The cursor for the next call's `after`.
        next: Option<Uuid>,
    },
}
