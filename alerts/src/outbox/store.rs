//! The outbox's database: a redb file in `data_dir`, written in atomic, fsynced transactions.
//!
//! Tables:
//!
//! | table | key | value | role |
//! |---|---|---|---|
//! | `events` | event id (u128, UUIDv7: time-ordered) | the event's JSON, byte for byte the webhook body | the record |
//! | `state` | event id | [`EventState`] as JSON | delivery, sign-off, feedback |
//! | `pending` | (township, seq) | (event id, commit time ms) | each township's delivery queue, in commit order |
//! | `dead` | event id | township | the dead-letter list |
//! | `meta` | name | u64 | sequence and counters |
//! | `units` | unit id | [`UnitState`] as JSON | unit liveness snapshot (restart-safe online status) |
//!
//! Every call to [`Store::apply`] is one write transaction with immediate durability: either all
//! of its operations are on disk when it returns, or none is.

use crate::liveness::UnitState;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

const EVENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
const STATE: TableDefinition<u128, &[u8]> = TableDefinition::new("state");
const PENDING: TableDefinition<(&str, u64), (u128, i64)> = TableDefinition::new("pending");
const DEAD: TableDefinition<u128, &str> = TableDefinition::new("dead");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const UNITS: TableDefinition<&str, &[u8]> = TableDefinition::new("units");
/// Camera state changes: (camera, unix ms) → state code (see [`CameraMark`]).
const CAMERA_LOG: TableDefinition<(&str, i64), u8> = TableDefinition::new("camera_log");
/// When the camera source was last known to be watching (unix ms), in `meta`.
const CAMERA_ALIVE: &str = "camera_alive_ms";

const NEXT_SEQ: &str = "next_seq";
const PENDING_COUNT: &str = "pending";
const DEAD_COUNT: &str = "dead";

/// A storage failure (disk full, I/O error, corruption).
#[derive(Debug, thiserror::Error)]
#[error("outbox storage: {0}")]
pub struct StoreError(#[from] redb::Error);

impl StoreError {
    /// Whether the file is held by another process (a running gateway).
    pub fn is_locked(&self) -> bool {
        matches!(self.0, redb::Error::DatabaseAlreadyOpen)
    }
}

macro_rules! store_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.into())
            }
        }
    )*};
}
store_error_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

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
}

/// One operation of a write transaction.
#[derive(Debug, Clone)]
pub enum Op {
    /// Commit new events (all or none, and only if the outbox has room for all).
    Commit(Vec<NewEvent>),
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
    /// Sign an event.
    Sign {
        /// Event id.
        id: Uuid,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add feedback to a signed event.
    Feedback {
        /// Event id.
        id: Uuid,
        /// Who.
        by: String,
        /// What was done.
        result: String,
        /// When.
        at: DateTime<Utc>,
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
        /// Unix ms.
        alive_ms: i64,
    },
    /// Delete delivered (and unrouted) events committed before `before`, at most `limit`.
    Purge {
        /// Cut-off.
        before: DateTime<Utc>,
        /// Maximum number of events to delete in this transaction.
        limit: usize,
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

/// A camera's log over a window: the state before it, and the changes within.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameraLog {
    /// The last change before the window (the state at its start).
    pub before: Option<(i64, u8)>,
    /// Changes within the window, in time order.
    pub within: Vec<(i64, u8)>,
}

/// Each camera's last logged change: camera id → (unix ms, state code).
pub type LastMarks = HashMap<String, (i64, u8)>;

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
    /// The event was signed already.
    AlreadySigned(SignOff),
    /// Feedback needs a sign-off first.
    NotSigned,
    /// Events replayed (township codes, to wake their workers).
    Replayed(Vec<String>),
    /// Events purged.
    Purged(usize),
}

/// A pending delivery.
#[derive(Debug, Clone)]
pub struct PendingItem {
    /// Queue position.
    pub seq: u64,
    /// Event id.
    pub id: Uuid,
    /// When it was committed (ms since the epoch).
    pub committed_at_ms: i64,
    /// Its kind.
    pub kind: String,
    /// Its JSON.
    pub body: Bytes,
}

/// A stored event with its state.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Event id.
    pub id: Uuid,
    /// Its JSON.
    pub body: Bytes,
    /// Its state.
    pub state: EventState,
}

/// Filter for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this township.
    pub township: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only events after this id.
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: usize,
    /// Only dead letters.
    pub dead_only: bool,
}

/// The default page cache of the outbox database.
pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

/// Most events a filtered [`Store::list`] looks at per call.
pub const MAX_SCAN: usize = 50_000;

/// One page of [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The events.
    pub events: Vec<Stored>,
    /// Where to continue (`after`), or `None` at the end.
    pub next: Option<Uuid>,
}

/// Counts for operators.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Events stored (any status).
    pub events: u64,
    /// Pending deliveries.
    pub pending: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Pending deliveries per township.
    pub pending_by_township: BTreeMap<String, u64>,
    /// Commit time of the oldest pending delivery per township.
    pub oldest_pending_by_township: BTreeMap<String, DateTime<Utc>>,
    /// Next sequence number.
    pub next_seq: u64,
}

/// The outbox database.
pub struct Store {
    db: Database,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (or creates) the outbox file with the default cache; fails fast if another process
    /// has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the outbox file with a page cache of at most `cache_bytes`: the
    /// gateway's memory stays bounded however many events wait on disk.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)?;
        let txn = db.begin_write()?;
        {
            // create every table so that readers never meet a missing one
            txn.open_table(EVENTS)?;
            txn.open_table(STATE)?;
            txn.open_table(PENDING)?;
            txn.open_table(DEAD)?;
            txn.open_table(META)?;
            txn.open_table(UNITS)?;
            txn.open_table(CAMERA_LOG)?;
        }
        txn.commit()?;
        Ok(Self { db })
    }

    /// Applies operations in one durable transaction; the outcome of each, in order.
    pub fn apply(&self, ops: &[Op], max_pending: u64) -> Result<Vec<Outcome>, StoreError> {
        self.apply_with(ops, max_pending, true)
    }

    /// Applies operations in one transaction. With `durable` the transaction (and every
    /// non-durable one before it) is on disk when this returns; without, it is visible to
    /// readers at once and reaches the disk with the next durable transaction.
    pub fn apply_with(
        &self,
        ops: &[Op],
        max_pending: u64,
        durable: bool,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })?;
        let outcomes = {
            let mut t = Tables::open(&txn)?;
            let mut outcomes = Vec::with_capacity(ops.len());
            for op in ops {
                outcomes.push(t.apply(op, max_pending)?);
            }
            t.flush_counters()?;
            outcomes
        };
        txn.commit()?;
        Ok(outcomes)
    }

    /// Starts a commit and abandons it half-way, as a crash would. Test support only.
    #[doc(hidden)]
    pub fn abandon(&self, ops: &[Op]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            for op in ops {
                t.apply(op, u64::MAX)?;
            }
            t.flush_counters()?;
        }
        drop(txn);
        Ok(())
    }

    /// Up to `limit` pending deliveries of a township after queue position `after`, in order.
    pub fn pending(
        &self,
        township: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let txn = self.db.begin_read()?;
        let pending = txn.open_table(PENDING)?;
        let events = txn.open_table(EVENTS)?;
        let state = txn.open_table(STATE)?;
        let start = after.map(|s| s.saturating_add(1)).unwrap_or(0);
        let mut out = Vec::new();
        for entry in pending.range((township, start)..=(township, u64::MAX))? {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let (_, seq) = key.value();
            let (id, committed_at_ms) = value.value();
            let Some(body) = events.get(id)? else {
                continue;
            };
            let kind = match state.get(id)? {
                Some(s) => decode_state(id, s.value())
                    .map(|s| s.kind)
                    .unwrap_or_default(),
                None => String::new(),
            };
            out.push(PendingItem {
                seq,
                id: Uuid::from_u128(id),
                committed_at_ms,
                kind,
                body: Bytes::copy_from_slice(body.value()),
            });
        }
        Ok(out)
    }

    /// One event with its state.
    pub fn get(&self, id: Uuid) -> Result<Option<Stored>, StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let state = txn.open_table(STATE)?;
        let key = id.as_u128();
        let (Some(body), Some(st)) = (events.get(key)?, state.get(key)?) else {
            return Ok(None);
        };
        Ok(decode_state(key, st.value()).map(|state| Stored {
            id,
            body: Bytes::copy_from_slice(body.value()),
            state,
        }))
    }

    /// Events in id (≈ time) order after `query.after`, filtered.
    ///
    /// A filtered scan looks at no more than [`MAX_SCAN`] events per call: a page can come back
    /// short with a `next` cursor to continue from. `next` is `None` only at the end.
    pub fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let txn = self.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let state = txn.open_table(STATE)?;
        let start = query
            .after
            .map(|a| a.as_u128().saturating_add(1))
            .unwrap_or(0);
        let mut page = Page::default();
        let mut last = None;
        let ids: Box<dyn Iterator<Item = Result<u128, StoreError>>> = if query.dead_only {
            let dead = txn.open_table(DEAD)?;
            Box::new(
                dead.range(start..)?
                    .map(|e| e.map(|(k, _)| k.value()).map_err(StoreError::from)),
            )
        } else {
            Box::new(
                state
                    .range(start..)?
                    .map(|e| e.map(|(k, _)| k.value()).map_err(StoreError::from)),
            )
        };
        for (scanned, id) in ids.enumerate() {
            let id = id?;
            if page.events.len() >= query.limit.max(1) || scanned >= MAX_SCAN {
                page.next = last.map(Uuid::from_u128);
                return Ok(page);
            }
            last = Some(id);
            let Some(st) = state.get(id)? else { continue };
            let Some(st) = decode_state(id, st.value()) else {
                continue;
            };
            if query.kind.as_deref().is_some_and(|k| k != st.kind)
                || query.township.as_deref().is_some_and(|t| t != st.township)
                || (query.dead_only && st.delivery != DeliveryStatus::Dead)
            {
                continue;
            }
            if let Some(body) = events.get(id)? {
                page.events.push(Stored {
                    id: Uuid::from_u128(id),
                    body: Bytes::copy_from_slice(body.value()),
                    state: st,
                });
            }
        }
        Ok(page)
    }

    /// The last unit liveness snapshot (entries that do not decode are skipped).
    pub fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        let txn = self.db.begin_read()?;
        let units = txn.open_table(UNITS)?;
        let mut out = HashMap::new();
        for entry in units.iter()? {
            let (k, v) = entry?;
            if let Ok(state) = serde_json::from_slice(v.value()) {
                out.insert(k.value().to_string(), state);
            }
        }
        Ok(out)
    }

    /// A camera's state changes in `[from_ms, to_ms)` and the one before.
    pub fn camera_log(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<CameraLog, StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(CAMERA_LOG)?;
        let before = match log
            .range((camera, i64::MIN)..(camera, from_ms))?
            .next_back()
        {
            Some(e) => {
                let (k, v) = e?;
                Some((k.value().1, v.value()))
            }
            None => None,
        };
        let mut within = Vec::new();
        for e in log.range((camera, from_ms)..(camera, to_ms.max(from_ms)))? {
            let (k, v) = e?;
            within.push((k.value().1, v.value()));
        }
        Ok(CameraLog { before, within })
    }

    /// The last logged state of each of `cameras`, and when the camera source was last
    /// watching. One lookup per camera: the log keeps every change ever made, and reading it
    /// whole at start-up would grow with the gateway's age.
    pub fn camera_last<'c>(
        &self,
        cameras: impl IntoIterator<Item = &'c str>,
    ) -> Result<(LastMarks, Option<i64>), StoreError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(CAMERA_LOG)?;
        let meta = txn.open_table(META)?;
        let mut last = HashMap::new();
        for camera in cameras {
            if let Some(e) = log
                .range((camera, i64::MIN)..=(camera, i64::MAX))?
                .next_back()
            {
                let (k, v) = e?;
                last.insert(camera.to_string(), (k.value().1, v.value()));
            }
        }
        let alive = meta.get(CAMERA_ALIVE)?.map(|v| v.value() as i64);
        Ok((last, alive))
    }

    /// Counts for operators.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let pending = txn.open_table(PENDING)?;
        let events = txn.open_table(EVENTS)?;
        let get = |k: &str| -> Result<u64, StoreError> {
            Ok(meta.get(k)?.map(|v| v.value()).unwrap_or(0))
        };
        let mut stats = Stats {
            events: events.len()?,
            pending: get(PENDING_COUNT)?,
            dead_letters: get(DEAD_COUNT)?,
            next_seq: get(NEXT_SEQ)?,
            ..Stats::default()
        };
        for entry in meta.range(PENDING_PREFIX..)? {
            let (k, v) = entry?;
            let Some(code) = k.value().strip_prefix(PENDING_PREFIX) else {
                break;
            };
            if v.value() == 0 {
                continue;
            }
            stats
                .pending_by_township
                .insert(code.to_string(), v.value());
            if let Some(first) = pending.range((code, 0)..=(code, u64::MAX))?.next() {
                let ms = first?.1.value().1;
                if let Some(t) = DateTime::from_timestamp_millis(ms) {
                    stats.oldest_pending_by_township.insert(code.to_string(), t);
                }
            }
        }
        Ok(stats)
    }
}

const PENDING_PREFIX: &str = "pending/";

/// State rows that did not decode since the process started.
static CORRUPT_ROWS: AtomicU64 = AtomicU64::new(0);

/// How many stored state rows did not decode (a damaged file, a foreign writer) since the
/// process started; such a row is skipped, never a panic.
pub fn corrupt_rows() -> u64 {
    CORRUPT_ROWS.load(Ordering::Relaxed)
}

/// A state row, or `None` (counted, logged) when it does not decode.
fn decode_state(id: u128, bytes: &[u8]) -> Option<EventState> {
    match serde_json::from_slice(bytes) {
        Ok(state) => Some(state),
        Err(e) => {
            CORRUPT_ROWS.fetch_add(1, Ordering::Relaxed);
            tracing::error!(event = %Uuid::from_u128(id), error = %e, "outbox state row does not decode; skipped");
            None
        }
    }
}

fn encode_state(state: &EventState) -> Vec<u8> {
    serde_json::to_vec(state).expect("state serializes")
}

struct Tables<'t> {
    txn: &'t redb::WriteTransaction,
    events: redb::Table<'t, u128, &'static [u8]>,
    state: redb::Table<'t, u128, &'static [u8]>,
    pending: redb::Table<'t, (&'static str, u64), (u128, i64)>,
    dead: redb::Table<'t, u128, &'static str>,
    meta: redb::Table<'t, &'static str, u64>,
    units: redb::Table<'t, &'static str, &'static [u8]>,
    /// Counters read and changed in this transaction, written once at its end.
    counters: BTreeMap<String, u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            txn,
            events: txn.open_table(EVENTS)?,
            state: txn.open_table(STATE)?,
            pending: txn.open_table(PENDING)?,
            dead: txn.open_table(DEAD)?,
            meta: txn.open_table(META)?,
            units: txn.open_table(UNITS)?,
            counters: BTreeMap::new(),
        })
    }

    fn counter(&mut self, key: &str) -> Result<u64, StoreError> {
        if let Some(v) = self.counters.get(key) {
            return Ok(*v);
        }
        let v = self.meta.get(key)?.map(|v| v.value()).unwrap_or(0);
        self.counters.insert(key.to_string(), v);
        Ok(v)
    }

    fn add(&mut self, key: &str, delta: i64) -> Result<(), StoreError> {
        let v = self.counter(key)?.saturating_add_signed(delta);
        self.counters.insert(key.to_string(), v);
        Ok(())
    }

    fn flush_counters(&mut self) -> Result<(), StoreError> {
        for (k, v) in std::mem::take(&mut self.counters) {
            self.meta.insert(k.as_str(), v)?;
        }
        Ok(())
    }

    fn add_pending(&mut self, township: &str, delta: i64) -> Result<(), StoreError> {
        self.add(PENDING_COUNT, delta)?;
        self.add(&format!("{PENDING_PREFIX}{township}"), delta)
    }

    fn next_seq(&mut self) -> Result<u64, StoreError> {
        let seq = self.counter(NEXT_SEQ)?;
        self.counters.insert(NEXT_SEQ.to_string(), seq + 1);
        Ok(seq)
    }

    fn state(&self, id: u128) -> Result<Option<EventState>, StoreError> {
        Ok(self
            .state
            .get(id)?
            .and_then(|s| decode_state(id, s.value())))
    }

    fn put_state(&mut self, id: u128, state: &EventState) -> Result<(), StoreError> {
        self.state.insert(id, encode_state(state).as_slice())?;
        Ok(())
    }

    /// Removes a pending entry if it is still there (a late mark after a replay is a no-op).
    fn take_pending(&mut self, township: &str, seq: u64, id: u128) -> Result<bool, StoreError> {
        let present = matches!(self.pending.get((township, seq))?, Some(v) if v.value().0 == id);
        if present {
            self.pending.remove((township, seq))?;
            self.add_pending(township, -1)?;
        }
        Ok(present)
    }

    fn apply(&mut self, op: &Op, max_pending: u64) -> Result<Outcome, StoreError> {
        match op {
            Op::Commit(events) => {
                let pending = self.counter(PENDING_COUNT)?;
                let adding = events.iter().filter(|e| e.deliver).count() as u64;
                if adding > 0 && pending + adding > max_pending {
                    return Ok(Outcome::Full {
                        pending,
                        max: max_pending,
                    });
                }
                let now = Utc::now();
                let mut committed = Vec::with_capacity(events.len());
                for e in events {
                    let id = e.id.as_u128();
                    let seq = self.next_seq()?;
                    self.events.insert(id, e.body.as_ref())?;
                    let delivery = if e.deliver {
                        self.pending
                            .insert((e.township.as_str(), seq), (id, now.timestamp_millis()))?;
                        self.add_pending(&e.township, 1)?;
                        DeliveryStatus::Pending
                    } else {
                        DeliveryStatus::Unrouted
                    };
                    let state = EventState {
                        township: e.township.clone(),
                        kind: e.kind.clone(),
                        seq,
                        committed_at: now,
                        delivery,
                        attempts: 0,
                        delivered_at: None,
                        last_error: None,
                        last_status: None,
                        signed: None,
                        feedback: Vec::new(),
                    };
                    self.put_state(id, &state)?;
                    committed.push(Committed { id: e.id, seq });
                }
                Ok(Outcome::Committed(committed))
            }
            Op::Delivered {
                id,
                township,
                seq,
                at,
            } => {
                let id = id.as_u128();
                if !self.take_pending(township, *seq, id)? {
                    return Ok(Outcome::NotFound);
                }
                if let Some(mut st) = self.state(id)? {
                    st.delivery = DeliveryStatus::Delivered;
                    st.delivered_at = Some(*at);
                    self.put_state(id, &st)?;
                }
                Ok(Outcome::Done)
            }
            Op::Failed { id, error, status } => {
                let id = id.as_u128();
                let Some(mut st) = self.state(id)? else {
                    return Ok(Outcome::NotFound);
                };
                st.attempts = st.attempts.saturating_add(1);
                st.last_error = Some(error.clone());
                st.last_status = *status;
                self.put_state(id, &st)?;
                Ok(Outcome::Done)
            }
            Op::Dead {
                id,
                township,
                seq,
                error,
                status,
            } => {
                let id = id.as_u128();
                if !self.take_pending(township, *seq, id)? {
                    return Ok(Outcome::NotFound);
                }
                if let Some(mut st) = self.state(id)? {
                    st.delivery = DeliveryStatus::Dead;
                    st.attempts = st.attempts.saturating_add(1);
                    st.last_error = Some(error.clone());
                    st.last_status = *status;
                    self.put_state(id, &st)?;
                }
                self.dead.insert(id, township.as_str())?;
                self.add(DEAD_COUNT, 1)?;
                Ok(Outcome::Done)
            }
            Op::Replay { ids, township } => {
                let mut candidates: Vec<(u128, String)> = Vec::new();
                if ids.is_empty() {
                    for entry in self.dead.iter()? {
                        let (k, v) = entry?;
                        if township.as_deref().is_none_or(|t| t == v.value()) {
                            candidates.push((k.value(), v.value().to_string()));
                        }
                    }
                } else {
                    for id in ids {
                        let key = id.as_u128();
                        if let Some(t) = self.dead.get(key)? {
                            candidates.push((key, t.value().to_string()));
                        }
                    }
                }
                let now = Utc::now();
                let mut townships = Vec::new();
                for (id, t) in candidates {
                    self.dead.remove(id)?;
                    self.add(DEAD_COUNT, -1)?;
                    let seq = self.next_seq()?;
                    self.pending
                        .insert((t.as_str(), seq), (id, now.timestamp_millis()))?;
                    self.add_pending(&t, 1)?;
                    if let Some(mut st) = self.state(id)? {
                        st.delivery = DeliveryStatus::Pending;
                        st.seq = seq;
                        st.attempts = 0;
                        self.put_state(id, &st)?;
                    }
                    townships.push(t);
                }
                Ok(Outcome::Replayed(townships))
            }
            Op::Sign { id, by, at } => {
                let id = id.as_u128();
                let Some(mut st) = self.state(id)? else {
                    return Ok(Outcome::NotFound);
                };
                if let Some(signed) = st.signed {
                    return Ok(Outcome::AlreadySigned(signed));
                }
                st.signed = Some(SignOff {
                    by: by.clone(),
                    at: *at,
                });
                self.put_state(id, &st)?;
                Ok(Outcome::Done)
            }
            Op::Feedback { id, by, result, at } => {
                let id = id.as_u128();
                let Some(mut st) = self.state(id)? else {
                    return Ok(Outcome::NotFound);
                };
                if st.signed.is_none() {
                    return Ok(Outcome::NotSigned);
                }
                st.feedback.push(Feedback {
                    by: by.clone(),
                    result: result.clone(),
                    at: *at,
                });
                self.put_state(id, &st)?;
                Ok(Outcome::Done)
            }
            Op::Flush => Ok(Outcome::Done),
            Op::Evidence { id, evidence } => {
                let key = id.as_u128();
                let Some(body) = self.events.get(key)? else {
                    return Ok(Outcome::NotFound);
                };
                let Ok(mut event) = serde_json::from_slice::<crate::event::Event>(body.value())
                else {
                    return Ok(Outcome::NotFound);
                };
                drop(body);
                event.evidence.extend(evidence.iter().cloned());
                let json = serde_json::to_vec(&event).expect("event serializes");
                self.events.insert(key, json.as_slice())?;
                Ok(Outcome::Done)
            }
            Op::CameraLog { marks, alive_ms } => {
                if !marks.is_empty() {
                    let mut log = self.txn.open_table(CAMERA_LOG)?;
                    for m in marks {
                        log.insert((m.camera.as_str(), m.at_ms), m.state)?;
                    }
                }
                self.meta.insert(CAMERA_ALIVE, (*alive_ms).max(0) as u64)?;
                Ok(Outcome::Done)
            }
            Op::UnitStates(states) => {
                for (unit, state) in states {
                    let json = serde_json::to_vec(state).expect("unit state serializes");
                    self.units.insert(unit.as_str(), json.as_slice())?;
                }
                Ok(Outcome::Done)
            }
            Op::Purge { before, limit } => {
                let mut victims = Vec::new();
                for (scanned, entry) in self.events.iter()?.enumerate() {
                    let id = entry?.0.value();
                    if victims.len() >= *limit || scanned >= limit.saturating_mul(4) {
                        break;
                    }
                    let Some(st) = self.state.get(id)? else {
                        continue;
                    };
                    let Some(st) = decode_state(id, st.value()) else {
                        continue;
                    };
                    if st.committed_at >= *before {
                        break;
                    }
                    if matches!(
                        st.delivery,
                        DeliveryStatus::Delivered | DeliveryStatus::Unrouted
                    ) {
                        victims.push(id);
                    }
                }
                for id in &victims {
                    self.events.remove(*id)?;
                    self.state.remove(*id)?;
                }
                Ok(Outcome::Purged(victims.len()))
            }
        }
    }
}
