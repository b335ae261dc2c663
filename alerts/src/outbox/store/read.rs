//! Reads: a township's queue, one event, pages of events, the unit snapshot, the camera log,
//! stats. Each is one read transaction; none blocks the writer.

use super::cases::{CASES_PREFIX, OVERDUE_PREFIX};
use super::schema::PatrolRecord;
use super::schema::{
    decode_as, decode_state, DeliveryStatus, EventState, CAMERA_ALIVE, CAMERA_BASELINES,
    CAMERA_LOG, DEAD, DEAD_COUNT, DUE, EVENTS, META, NEXT_SEQ, OPEN_CASES, OPEN_PAIRS, PATROLS,
    PENDING, PENDING_COUNT, PENDING_PREFIX, PICTURE_LOG, STATE, UNITS, UNIT_LOG,
};
use super::{Store, StoreError};
use crate::case::Stage;
use crate::liveness::UnitState;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Case counts from the writer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseCounts {
    /// Open (not closed) cases per (township, stage).
    pub open: BTreeMap<(String, String), u64>,
    /// Late stages (reminded, not done) per (township, `sign|handle|close`).
    pub overdue: BTreeMap<(String, String), u64>,
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
    /// Only cases in this stage.
    pub stage: Option<Stage>,
    /// Only what a department sees: events assigned to it and its own notices.
    pub department: Option<String>,
    /// Only cases with a late stage (reminded, not done).
    pub overdue_only: bool,
    /// In order of the next due time (supervised cases only) instead of id order.
    pub by_due: bool,
    /// Only cases whose next due time is at or before this.
    pub due_before: Option<DateTime<Utc>>,
    /// Leave out notices routed elsewhere (a department's or the city's copy): what a township
    /// sees.
    pub own_queue_only: bool,
}

impl ListQuery {
    /// Whether only cases that are not closed can pass the filter (a stage before closed, or
    /// late stages).
    fn open_only(&self) -> bool {
        self.overdue_only || self.stage.is_some_and(|s| s != Stage::Closed)
    }

    /// Whether an event's state passes the filter.
    pub fn matches(&self, st: &EventState) -> bool {
        let stage = st.case.as_ref().map(|c| c.stage);
        self.kind.as_deref().is_none_or(|k| k == st.kind)
            && self.township.as_deref().is_none_or(|t| t == st.township)
            && (!self.dead_only || st.delivery == DeliveryStatus::Dead)
            && self.stage.is_none_or(|s| stage == Some(s))
            && (!self.overdue_only
                || st
                    .case
                    .as_ref()
                    .is_some_and(|c| !c.overdue_stages().is_empty()))
            && self.due_before.is_none_or(|t| {
                st.case
                    .as_ref()
                    .and_then(|c| c.next_due())
                    .is_some_and(|d| d <= t)
            })
            && (!self.own_queue_only || st.route.is_none())
            && self.department.as_deref().is_none_or(|d| {
                st.case.as_ref().and_then(|c| c.assigned_to.as_deref()) == Some(d)
                    || st.route.as_deref().and_then(|r| r.strip_prefix("dept:")) == Some(d)
            })
    }
}

/// Where the API serves evidence files: an evidence `url` is this and `<camera>/<file>`.
pub const EVIDENCE_PREFIX: &str = "/api/v1/snapshots/";

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
    #[serde(serialize_with = "crate::time::map::serialize")]
    pub oldest_pending_by_township: BTreeMap<String, DateTime<Utc>>,
    /// Next sequence number.
    pub next_seq: u64,
}

impl Store {
    /// Up to `limit` pending deliveries of a township after queue position `after`, in order.
    pub fn pending(
        &self,
        township: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<PendingItem>, StoreError> {
        let txn = self.db()?.begin_read()?;
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
        let txn = self.db()?.begin_read()?;
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
        let txn = self.db()?.begin_read()?;
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
        } else if query.by_due {
            // continue after the cursor's place in the due order (its due time now)
            let from = match query.after {
                Some(a) => state
                    .get(a.as_u128())?
                    .and_then(|s| decode_state(a.as_u128(), s.value()))
                    .and_then(|s| s.case?.next_due())
                    .map_or((i64::MAX, u128::MAX), |d| {
                        (d.timestamp_millis(), a.as_u128().saturating_add(1))
                    }),
                None => (i64::MIN, 0),
            };
            let due = txn.open_table(DUE)?;
            Box::new(
                due.range(from..)?
                    .map(|e| e.map(|(k, _)| k.value().1).map_err(StoreError::from)),
            )
        } else if query.open_only() {
            // only cases not closed can match: their index, not every event
            let open = txn.open_table(OPEN_CASES)?;
            Box::new(
                open.range(start..)?
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
            if !query.matches(&st) {
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

    /// Up to `limit` supervised cases whose next reminder is due at or before `until`, the
    /// earliest first.
    pub fn due_until(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(DUE)?;
        let mut out = Vec::new();
        for entry in table.range(..=(until.timestamp_millis(), u128::MAX))? {
            if out.len() >= limit {
                break;
            }
            out.push(Uuid::from_u128(entry?.0.value().1));
        }
        Ok(out)
    }

    /// Open cases per (township, stage) and late stages per (township, `sign|handle|close`),
    /// from the counters the writer keeps.
    pub fn case_counts(&self) -> Result<CaseCounts, StoreError> {
        let txn = self.db()?.begin_read()?;
        let meta = txn.open_table(META)?;
        let mut counts = CaseCounts::default();
        for (prefix, into) in [
            (CASES_PREFIX, &mut counts.open),
            (OVERDUE_PREFIX, &mut counts.overdue),
        ] {
            for entry in meta.range(prefix..)? {
                let (k, v) = entry?;
                let Some(rest) = k.value().strip_prefix(prefix) else {
                    break;
                };
                if let Some((township, stage)) = rest.split_once('/') {
                    into.insert((township.to_string(), stage.to_string()), v.value());
                }
            }
        }
        Ok(counts)
    }

    /// Calls `f` with the state of every event received in `[from_ms, to_ms)` (by its id's
    /// timestamp: ids are UUIDv7), in id order, in one read transaction — streamed, never
    /// loaded whole — and its body when `wants_body` says so for that state (bodies are read
    /// only then). Rows that do not decode are skipped (and counted).
    ///
    /// The state is decoded as `T`: the full [`EventState`], or a lighter view with only the
    /// fields a reader needs (unknown fields are skipped, so it costs less to decode).
    pub fn scan_window<T: serde::de::DeserializeOwned>(
        &self,
        from_ms: i64,
        to_ms: i64,
        wants_body: impl Fn(&T) -> bool,
        mut f: impl FnMut(Uuid, &T, Option<&[u8]>),
    ) -> Result<(), StoreError> {
        let txn = self.db()?.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let state = txn.open_table(STATE)?;
        let bound = |ms: i64| u128::from(ms.max(0) as u64 & 0xFFFF_FFFF_FFFF) << 80;
        for entry in state.range(bound(from_ms)..bound(to_ms))? {
            let (k, v) = entry?;
            let id = k.value();
            let Some(st) = decode_as::<T>(id, v.value()) else {
                continue;
            };
            if wants_body(&st) {
                if let Some(body) = events.get(id)? {
                    f(Uuid::from_u128(id), &st, Some(body.value()));
                }
            } else {
                f(Uuid::from_u128(id), &st, None);
            }
        }
        Ok(())
    }

    /// A unit's patrol checks sent in `[from_ms, to_ms)`: (sent ms, record).
    pub fn patrols(
        &self,
        unit: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, PatrolRecord)>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(PATROLS)?;
        let mut out = Vec::new();
        for entry in table.range((unit, from_ms)..(unit, to_ms.max(from_ms)))? {
            let (k, v) = entry?;
            if let Ok(r) = serde_json::from_slice(v.value()) {
                out.push((k.value().1, r));
            }
        }
        Ok(out)
    }

    /// The open tickets under a pair key (see [`crate::case::pairs`]), oldest first.
    pub fn open_pairs(&self, key: &str) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(OPEN_PAIRS)?;
        let mut out = Vec::new();
        for entry in table.range((key, 0u128)..=(key, u128::MAX))? {
            out.push(Uuid::from_u128(entry?.0.value().1));
        }
        Ok(out)
    }

    /// The last unit liveness snapshot (entries that do not decode are skipped).
    pub fn unit_states(&self) -> Result<HashMap<String, UnitState>, StoreError> {
        let txn = self.db()?.begin_read()?;
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
        self.log_window(CAMERA_LOG, camera, from_ms, to_ms)
    }

    /// A camera's picture verdicts in `[from_ms, to_ms)` and the one before (1 failing, 0
    /// clear).
    pub fn picture_log(
        &self,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<CameraLog, StoreError> {
        self.log_window(PICTURE_LOG, camera, from_ms, to_ms)
    }

    /// A unit's liveness changes in `[from_ms, to_ms)` and the one before (1 online, 4
    /// offline).
    pub fn unit_log(&self, unit: &str, from_ms: i64, to_ms: i64) -> Result<CameraLog, StoreError> {
        self.log_window(UNIT_LOG, unit, from_ms, to_ms)
    }

    fn log_window(
        &self,
        table: redb::TableDefinition<(&str, i64), u8>,
        camera: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<CameraLog, StoreError> {
        let txn = self.db()?.begin_read()?;
        let log = txn.open_table(table)?;
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
        let txn = self.db()?.begin_read()?;
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

    /// The picture baselines kept for `cameras`.
    pub fn camera_baselines<'c>(
        &self,
        cameras: impl IntoIterator<Item = &'c str>,
    ) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        let txn = self.db()?.begin_read()?;
        let kept = txn.open_table(CAMERA_BASELINES)?;
        let mut out = HashMap::new();
        for camera in cameras {
            if let Some(v) = kept.get(camera)? {
                out.insert(camera.to_string(), v.value().to_vec());
            }
        }
        Ok(out)
    }

    /// Counts for operators.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let txn = self.db()?.begin_read()?;
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
