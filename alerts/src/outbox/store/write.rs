//! How each operation changes the tables, inside one write transaction.

use super::cases::close_on_delivery;
use super::evidence::evidence_of;
use super::ops::{CameraMark, Committed, NewEvent, Op, Outcome};
use super::schema::PatrolRecord;
use super::schema::{
    decode_state, encode_state, DeliveryStatus, EventState, CAMERA_ALIVE, CAMERA_BASELINES,
    CAMERA_LOG, DEAD, DEAD_COUNT, DUE, EVENTS, META, NEXT_SEQ, OPEN_CASES, OPEN_PAIRS, PATROLS,
    PENDING, PENDING_COUNT, PENDING_PREFIX, PICTURE_LOG, STATE, UNITS, UNIT_LOG,
};
use super::StoreError;
use crate::case::Case;
use crate::event::Evidence;
use crate::liveness::UnitState;
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) struct Tables<'t> {
    pub(super) txn: &'t redb::WriteTransaction,
    pub(super) events: redb::Table<'t, u128, &'static [u8]>,
    state: redb::Table<'t, u128, &'static [u8]>,
    pending: redb::Table<'t, (&'static str, u64), (u128, i64)>,
    dead: redb::Table<'t, u128, &'static str>,
    meta: redb::Table<'t, &'static str, u64>,
    units: redb::Table<'t, &'static str, &'static [u8]>,
    pub(super) open_pairs: redb::Table<'t, (&'static str, u128), ()>,
    pub(super) open_cases: redb::Table<'t, u128, ()>,
    pub(super) due: redb::Table<'t, (i64, u128), ()>,
    /// Counters read and changed in this transaction, written once at its end.
    counters: BTreeMap<String, u64>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            txn,
            events: txn.open_table(EVENTS)?,
            state: txn.open_table(STATE)?,
            pending: txn.open_table(PENDING)?,
            dead: txn.open_table(DEAD)?,
            meta: txn.open_table(META)?,
            units: txn.open_table(UNITS)?,
            open_pairs: txn.open_table(OPEN_PAIRS)?,
            open_cases: txn.open_table(OPEN_CASES)?,
            due: txn.open_table(DUE)?,
            counters: BTreeMap::new(),
        })
    }

    pub(super) fn counter(&mut self, key: &str) -> Result<u64, StoreError> {
        if let Some(v) = self.counters.get(key) {
            return Ok(*v);
        }
        let v = self.meta.get(key)?.map(|v| v.value()).unwrap_or(0);
        self.counters.insert(key.to_string(), v);
        Ok(v)
    }

    pub(super) fn add(&mut self, key: &str, delta: i64) -> Result<(), StoreError> {
        let v = self.counter(key)?.saturating_add_signed(delta);
        self.counters.insert(key.to_string(), v);
        Ok(())
    }

    pub(super) fn flush_counters(&mut self) -> Result<(), StoreError> {
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

    pub(super) fn state(&self, id: u128) -> Result<Option<EventState>, StoreError> {
        Ok(self
            .state
            .get(id)?
            .and_then(|s| decode_state(id, s.value())))
    }

    /// Every event id with a state row.
    pub(super) fn state_ids(&self) -> Result<Vec<u128>, StoreError> {
        let mut ids = Vec::new();
        for entry in self.state.iter()? {
            ids.push(entry?.0.value());
        }
        Ok(ids)
    }

    pub(super) fn put_state(&mut self, id: u128, state: &EventState) -> Result<(), StoreError> {
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

    /// Applies one operation.
    pub(super) fn apply(&mut self, op: &Op, max_pending: u64) -> Result<Outcome, StoreError> {
        match op {
            Op::Commit(events) => self.commit(events, max_pending),
            Op::CommitMessage { key, own, events } => {
                self.commit_message(key, own, events, max_pending)
            }
            Op::Delivered {
                id,
                township,
                seq,
                at,
            } => self.delivered(id.as_u128(), township, *seq, *at),
            Op::Failed { id, error, status } => self.failed(id.as_u128(), error, *status),
            Op::Dead {
                id,
                township,
                seq,
                error,
                status,
            } => self.dead(id.as_u128(), township, *seq, error, *status),
            Op::Replay { ids, township } => self.replay(ids, township.as_deref()),
            Op::Act {
                id,
                action,
                actor,
                at,
                expect_history,
                notices,
            } => self.act(*id, action, actor, *at, *expect_history, notices),
            Op::Remind {
                id,
                reminders,
                at,
                notices,
            } => self.remind(*id, reminders, *at, notices),
            Op::Flush => Ok(Outcome::Done),
            Op::Evidence { id, evidence } => self.evidence(id.as_u128(), evidence),
            Op::CameraLog {
                marks,
                pictures,
                baselines,
                alive_ms,
            } => self.camera_log(marks, pictures, baselines, *alive_ms),
            Op::UnitStates(states) => self.unit_states(states),
            Op::Patrol {
                unit,
                sent_ms,
                timeout_min,
                answered_ms,
            } => {
                let record = PatrolRecord {
                    timeout_min: *timeout_min,
                    answered_ms: *answered_ms,
                };
                let json = serde_json::to_vec(&record).expect("patrol record serializes");
                self.txn
                    .open_table(PATROLS)?
                    .insert((unit.as_str(), *sent_ms), json.as_slice())?;
                Ok(Outcome::Done)
            }
            Op::Purge {
                before,
                limit,
                after,
            } => self.purge(*before, *limit, *after),
        }
    }

    /// New events: stored, and queued for their township when delivered — all or, past
    /// `max_pending`, none.
    pub(super) fn commit(
        &mut self,
        events: &[NewEvent],
        max_pending: u64,
    ) -> Result<Outcome, StoreError> {
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
            committed.push(self.insert_event(e, now)?);
        }
        Ok(Outcome::Committed(committed))
    }

    /// Stores one new event, queues it, opens its ticket and closes those it resolves.
    pub(super) fn insert_event(
        &mut self,
        e: &NewEvent,
        now: DateTime<Utc>,
    ) -> Result<Committed, StoreError> {
        let id = e.id.as_u128();
        let seq = self.next_seq()?;
        self.events.insert(id, e.body.as_ref())?;
        // notices about an alarm (event.assigned, event.evidence) carry its snapshots at
        // commit; an alarm gets its own later (Op::Evidence) — no other body is looked at
        if matches!(e.kind.as_str(), "event.assigned" | "event.evidence") {
            self.refer(id, &evidence_of(&e.body))?;
        }
        let queue = e.route.as_deref().unwrap_or(&e.township);
        let delivery = if e.deliver {
            self.pending
                .insert((queue, seq), (id, now.timestamp_millis()))?;
            self.add_pending(queue, 1)?;
            DeliveryStatus::Pending
        } else {
            DeliveryStatus::Unrouted
        };
        let mut state = EventState {
            township: e.township.clone(),
            kind: e.kind.clone(),
            seq,
            committed_at: now,
            delivery,
            attempts: 0,
            delivered_at: None,
            last_error: None,
            last_status: None,
            route: e.route.clone(),
            case: e.case.clone(),
            close_on_delivery: e.close_on_delivery,
            legacy_signed: None,
            legacy_feedback: Vec::new(),
        };
        if !e.deliver && e.close_on_delivery {
            close_on_delivery(&mut state, now);
        }
        self.save_case(id, None, &state)?;
        self.put_state(id, &state)?;
        for r in &e.resolves {
            self.recover(r, e.id, now)?;
        }
        Ok(Committed { id: e.id, seq })
    }

    /// The township took the event: off its queue.
    fn delivered(
        &mut self,
        id: u128,
        township: &str,
        seq: u64,
        at: DateTime<Utc>,
    ) -> Result<Outcome, StoreError> {
        if !self.take_pending(township, seq, id)? {
            return Ok(Outcome::NotFound);
        }
        if let Some(mut st) = self.state(id)? {
            st.delivery = DeliveryStatus::Delivered;
            st.delivered_at = Some(at);
            // the successful attempt counts too: delivered on the first try is 1
            st.attempts = st.attempts.saturating_add(1);
            if st.close_on_delivery {
                let before = st.case.clone();
                close_on_delivery(&mut st, at);
                self.save_case(id, before.as_ref(), &st)?;
            }
            self.put_state(id, &st)?;
        }
        Ok(Outcome::Done)
    }

    /// An attempt failed; the event stays queued.
    fn failed(
        &mut self,
        id: u128,
        error: &str,
        status: Option<u16>,
    ) -> Result<Outcome, StoreError> {
        let Some(mut st) = self.state(id)? else {
            return Ok(Outcome::NotFound);
        };
        st.attempts = st.attempts.saturating_add(1);
        st.last_error = Some(error.to_string());
        st.last_status = status;
        self.put_state(id, &st)?;
        Ok(Outcome::Done)
    }

    /// The township refused the event for good: off its queue, into the dead letters.
    fn dead(
        &mut self,
        id: u128,
        township: &str,
        seq: u64,
        error: &str,
        status: Option<u16>,
    ) -> Result<Outcome, StoreError> {
        if !self.take_pending(township, seq, id)? {
            return Ok(Outcome::NotFound);
        }
        if let Some(mut st) = self.state(id)? {
            st.delivery = DeliveryStatus::Dead;
            st.attempts = st.attempts.saturating_add(1);
            st.last_error = Some(error.to_string());
            st.last_status = status;
            self.put_state(id, &st)?;
        }
        self.dead.insert(id, township)?;
        self.add(DEAD_COUNT, 1)?;
        Ok(Outcome::Done)
    }

    /// Dead letters (these, or all of a township, or all) back at the end of their queues.
    fn replay(&mut self, ids: &[Uuid], township: Option<&str>) -> Result<Outcome, StoreError> {
        let mut candidates: Vec<(u128, String)> = Vec::new();
        if ids.is_empty() {
            for entry in self.dead.iter()? {
                let (k, v) = entry?;
                if township.is_none_or(|t| t == v.value()) {
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

    /// Evidence added to a stored body (the one change a body undergoes; docs/events.md).
    fn evidence(&mut self, key: u128, evidence: &[Evidence]) -> Result<Outcome, StoreError> {
        let Some(body) = self.events.get(key)? else {
            return Ok(Outcome::NotFound);
        };
        let Ok(mut event) = serde_json::from_slice::<crate::event::Event>(body.value()) else {
            return Ok(Outcome::NotFound);
        };
        drop(body);
        self.refer(key, evidence)?;
        event.evidence.extend(evidence.iter().cloned());
        let json = serde_json::to_vec(&event).expect("event serializes");
        self.events.insert(key, json.as_slice())?;
        Ok(Outcome::Done)
    }

    /// Camera state changes for uptime, and the moment the cameras were last watched.
    fn camera_log(
        &mut self,
        marks: &[CameraMark],
        pictures: &[CameraMark],
        baselines: &[(String, Option<Vec<u8>>)],
        alive_ms: i64,
    ) -> Result<Outcome, StoreError> {
        for (table, marks) in [(CAMERA_LOG, marks), (PICTURE_LOG, pictures)] {
            if !marks.is_empty() {
                let mut log = self.txn.open_table(table)?;
                for m in marks {
                    log.insert((m.camera.as_str(), m.at_ms), m.state)?;
                }
            }
        }
        if !baselines.is_empty() {
            let mut kept = self.txn.open_table(CAMERA_BASELINES)?;
            for (camera, baseline) in baselines {
                match baseline {
                    Some(b) => kept.insert(camera.as_str(), b.as_slice())?,
                    None => kept.remove(camera.as_str())?,
                };
            }
        }
        self.meta.insert(CAMERA_ALIVE, alive_ms.max(0) as u64)?;
        Ok(Outcome::Done)
    }

    /// The unit liveness snapshot.
    fn unit_states(&mut self, states: &[(String, UnitState)]) -> Result<Outcome, StoreError> {
        let mut log = self.txn.open_table(UNIT_LOG)?;
        for (unit, state) in states {
            // a change since the last snapshot goes to the unit log (for 联网率 over time)
            let before: Option<UnitState> = self
                .units
                .get(unit.as_str())?
                .and_then(|v| serde_json::from_slice(v.value()).ok());
            if before.is_none_or(|b| b.online != state.online || b.since != state.since) {
                // never heard from: unknown, not offline
                let code = match (state.online, state.last_seen) {
                    (true, _) => 1,
                    (false, Some(_)) => 4,
                    (false, None) => 0,
                };
                log.insert((unit.as_str(), state.since.timestamp_millis()), code)?;
            }
            let json = serde_json::to_vec(state).expect("unit state serializes");
            self.units.insert(unit.as_str(), json.as_slice())?;
        }
        Ok(Outcome::Done)
    }

    /// Delivered (or unrouted) events committed before `before`, at most `limit`, oldest
    /// first.
    fn purge(
        &mut self,
        before: DateTime<Utc>,
        limit: usize,
        after: Option<Uuid>,
    ) -> Result<Outcome, StoreError> {
        // messages past the longest redelivery window are forgotten as the purge goes
        self.forget_messages(Utc::now() - super::messages::MESSAGE_MEMORY, limit)?;
        let mut victims = Vec::new();
        let start = after.map_or(0, |a| a.as_u128().saturating_add(1));
        let mut next = None;
        for (scanned, entry) in self.events.range(start..)?.enumerate() {
            let id = entry?.0.value();
            if victims.len() >= limit || scanned >= limit.saturating_mul(4) {
                // more to look at: the next call goes on from here (cases still open stay
                // behind, never scanned again and again)
                next = Some(Uuid::from_u128(id.saturating_sub(1)));
                break;
            }
            let Some(st) = self.state.get(id)? else {
                continue;
            };
            let Some(st) = decode_state(id, st.value()) else {
                continue;
            };
            if st.committed_at >= before {
                break;
            }
            let done = matches!(
                st.delivery,
                DeliveryStatus::Delivered | DeliveryStatus::Unrouted
            );
            if done && !st.case.as_ref().is_some_and(Case::is_open) {
                victims.push(id);
            }
        }
        for id in &victims {
            let evidence = match self.events.remove(*id)? {
                Some(body) => evidence_of(body.value()),
                None => Vec::new(),
            };
            self.unrefer(*id, &evidence)?;
            self.state.remove(*id)?;
        }
        Ok(Outcome::Purged {
            purged: victims.len(),
            next,
        })
    }
}
