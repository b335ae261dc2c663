//! How the closed loop changes the tables: steps, recoveries, reminders — and the indexes kept
//! in step with every case (open tickets by pair key, cases by next due time, counts per township
//! and stage).

use super::ops::{NewEvent, Outcome, Resolve};
use super::schema::EventState;
use super::write::Tables;
use super::StoreError;
use crate::case::sla::Reminder;
use crate::case::{Action, Actor, Applied, Case};
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use uuid::Uuid;

/// Meta counter of cases in a stage: `cases/<township>/<stage>` (closed ones are not counted).
pub(super) const CASES_PREFIX: &str = "cases/";
/// Meta counter of late stages: `overdue/<township>/<sign|handle|close>`.
pub(super) const OVERDUE_PREFIX: &str = "overdue/";

/// Closes an info event's case once it is delivered (or at once when it is not delivered).
pub(super) fn close_on_delivery(state: &mut EventState, at: DateTime<Utc>) {
    if let Some(case) = state.case.as_mut() {
        let _ = case.apply(&Action::CloseOnDelivery, &Actor::gateway("gateway"), at);
    }
}

/// The counters a case contributes to.
fn counted(case: Option<&Case>, township: &str) -> Vec<String> {
    let Some(case) = case.filter(|c| c.is_open()) else {
        return Vec::new();
    };
    let mut keys = vec![format!("{CASES_PREFIX}{township}/{}", case.stage)];
    for s in case.overdue_stages() {
        keys.push(format!("{OVERDUE_PREFIX}{township}/{s}"));
    }
    keys
}

impl Tables<'_> {
    /// Keeps the indexes and counters in step with a case that was `before` and is now in `st`.
    pub(super) fn save_case(
        &mut self,
        id: u128,
        before: Option<&Case>,
        st: &EventState,
    ) -> Result<(), StoreError> {
        let after = st.case.as_ref();
        if let Some(key) = after.and_then(|c| c.pair.as_deref()) {
            if after.is_some_and(Case::is_open) {
                self.open_pairs.insert((key, id), ())?;
            } else {
                self.open_pairs.remove((key, id))?;
            }
        }
        match (
            before.is_some_and(Case::is_open),
            after.is_some_and(Case::is_open),
        ) {
            (false, true) => {
                self.open_cases.insert(id, ())?;
            }
            (true, false) => {
                self.open_cases.remove(id)?;
            }
            _ => {}
        }
        let old_due = before.and_then(Case::next_due);
        let new_due = after.and_then(Case::next_due);
        if old_due != new_due {
            if let Some(d) = old_due {
                self.due.remove((d.timestamp_millis(), id))?;
            }
            if let Some(d) = new_due {
                self.due.insert((d.timestamp_millis(), id), ())?;
            }
        }
        for k in counted(before, &st.township) {
            self.add(&k, -1)?;
        }
        for k in counted(after, &st.township) {
            self.add(&k, 1)?;
        }
        Ok(())
    }

    /// Indexes every stored case and evidence reference from scratch (a file from before the
    /// closed loop); holds only the ids in memory.
    pub(super) fn index_all_cases(&mut self) -> Result<(), StoreError> {
        let ids = self.state_ids()?;
        for id in ids {
            if let Some(st) = self.state(id)?.filter(|st| st.case.is_some()) {
                self.save_case(id, None, &st)?;
            }
            // and which events carry which evidence file
            let evidence = match self.events.get(id)? {
                Some(body) => super::evidence::evidence_of(body.value()),
                None => Vec::new(),
            };
            self.refer(id, &evidence)?;
        }
        Ok(())
    }

    /// Indexes the open cases of a file whose other case indexes exist already (one written
    /// before the open-cases index).
    pub(super) fn index_open_cases(&mut self) -> Result<(), StoreError> {
        for id in self.state_ids()? {
            let open = self
                .state(id)?
                .and_then(|st| st.case)
                .is_some_and(|c| c.is_open());
            if open {
                self.open_cases.insert(id, ())?;
            }
        }
        Ok(())
    }

    /// Closes an open ticket as recovered by `by_event` (a pair closing itself).
    pub(super) fn recover(
        &mut self,
        r: &Resolve,
        by_event: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = r.id.as_u128();
        let Some(mut st) = self.state(id)? else {
            return Ok(());
        };
        let outage_s = r
            .outage_s
            .unwrap_or_else(|| (now - st.committed_at).num_seconds());
        let before = st.case.clone();
        let Some(case) = st.case.as_mut() else {
            return Ok(());
        };
        let action = Action::Recover { by_event, outage_s };
        if let Ok(Applied::Changed) = case.apply(&action, &Actor::gateway("gateway"), now) {
            self.save_case(id, before.as_ref(), &st)?;
            self.put_state(id, &st)?;
        }
        Ok(())
    }

    /// A closed-loop step: refused, repeated, or applied with its notices.
    pub(super) fn act(
        &mut self,
        id: Uuid,
        action: &Action,
        actor: &Actor,
        at: DateTime<Utc>,
        expect_history: usize,
        notices: &[NewEvent],
    ) -> Result<Outcome, StoreError> {
        let key = id.as_u128();
        let (mut st, before) = match self.load_case(key)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let case = st.case.as_mut().expect("load_case found a case");
        if case.history.len() != expect_history {
            return Ok(Outcome::Stale);
        }
        match case.apply(action, actor, at) {
            Err(refusal) => Ok(Outcome::Refused(refusal)),
            Ok(Applied::Unchanged) => Ok(Outcome::Acted(Applied::Unchanged)),
            Ok(Applied::Changed) => {
                self.save_case(key, before.as_ref(), &st)?;
                self.put_state(key, &st)?;
                self.insert_notices(notices)?;
                Ok(Outcome::Acted(Applied::Changed))
            }
        }
    }

    /// Reminders (督办) sent at `at` with their notices — only if they are still exactly the
    /// ones due (else [`Outcome::Stale`]: the case moved on, or they were sent already).
    pub(super) fn remind(
        &mut self,
        id: Uuid,
        reminders: &[Reminder],
        at: DateTime<Utc>,
        notices: &[NewEvent],
    ) -> Result<Outcome, StoreError> {
        let key = id.as_u128();
        let (mut st, before) = match self.load_case(key)? {
            Ok(found) => found,
            Err(outcome) => return Ok(outcome),
        };
        let case = st.case.as_mut().expect("load_case found a case");
        if reminders.is_empty() || case.reminders_due(at) != reminders {
            return Ok(Outcome::Stale);
        }
        case.record_reminders(reminders, at);
        self.save_case(key, before.as_ref(), &st)?;
        self.put_state(key, &st)?;
        self.insert_notices(notices)?;
        Ok(Outcome::Done)
    }

    /// An event's state with a case, and the case as it was (to re-index after a change); or
    /// the outcome when there is no such event or it is not a case.
    #[allow(clippy::type_complexity)]
    fn load_case(
        &self,
        key: u128,
    ) -> Result<Result<(EventState, Option<Case>), Outcome>, StoreError> {
        let Some(st) = self.state(key)? else {
            return Ok(Err(Outcome::NotFound));
        };
        if st.case.is_none() {
            return Ok(Err(Outcome::NotACase));
        }
        let before = st.case.clone();
        Ok(Ok((st, before)))
    }

    fn insert_notices(&mut self, notices: &[NewEvent]) -> Result<(), StoreError> {
        let now = Utc::now();
        for n in notices {
            self.insert_event(n, now)?;
        }
        Ok(())
    }
}
