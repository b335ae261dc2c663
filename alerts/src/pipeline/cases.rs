//! The closed loop at the door: every commit opens its cases (dispatch rules assign them,
//! recovering events close their pairs), and [`Pipeline::act`] applies a person's step with its
//! notices in one transaction.

use super::Pipeline;
use crate::case::dispatch::{first_match, kind_matches, DispatchRule};
use crate::case::pairs::{self, Pair};
use crate::case::sla::{SlaRule, Supervision};
use crate::case::{Action, Actor, Applied, Case, Refusal};
use crate::event::Event;
use crate::normalize::{assigned_notice, updated_notice};
use crate::outbox::{
    MessageKey, NewEvent, Op, OutboxError, Outcome, Receipt, Resolve, StoreError, Stored,
};
use chrono::{DateTime, FixedOffset};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// How cases are opened.
#[derive(Debug, Clone)]
pub struct CasePolicy {
    /// Info kinds (patterns) that stay open after delivery (by default info events close
    /// once delivered).
    pub keep_open: Vec<String>,
    /// Dispatch rules, first match wins.
    pub dispatch: Vec<DispatchRule>,
    /// SLA rules (督办), first match wins: the configured ones, then the built-in defaults.
    pub sla: Vec<SlaRule>,
}

impl Default for CasePolicy {
    fn default() -> Self {
        CasePolicy {
            keep_open: Vec::new(),
            dispatch: Vec::new(),
            sla: SlaRule::defaults(),
        }
    }
}

/// Why a step was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// No such event.
    #[error("no such event")]
    NotFound,
    /// A notice, which has no lifecycle.
    #[error("`{0}` events are notices and have no lifecycle")]
    NotACase(String),
    /// The case refused the step.
    #[error(transparent)]
    Refused(Refusal),
    /// No such department, or it does not serve the event's township.
    #[error("{0}")]
    BadDepartment(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] OutboxError),
}

impl From<StoreError> for ActError {
    fn from(e: StoreError) -> Self {
        ActError::Storage(OutboxError::Store(Arc::new(e)))
    }
}

/// A step applied (or repeated): the event as it now stands.
#[derive(Debug, Clone)]
pub struct Acted {
    /// The event and its state after the step.
    pub stored: Stored,
    /// Whether the step changed anything.
    pub applied: Applied,
}

/// How often a step is decided again when its case changed under it.
const STALE_RETRIES: usize = 5;

impl Pipeline {
    /// Commits events through the closed loop's door: recovering events name the tickets they
    /// close, each event opens its case, dispatch rules assign (and notify the department).
    pub(super) async fn commit(&self, events: &mut [Event]) -> Result<Receipt, OutboxError> {
        self.commit_keyed(events, None).await
    }

    /// [`Pipeline::commit`] of one message's events, remembered under its key when given: a
    /// redelivery within the key's window commits nothing and gets the first commit's ids
    /// (`own`: the message's own events) in the receipt's `repeated`.
    pub(super) async fn commit_keyed(
        &self,
        events: &mut [Event],
        message: Option<(MessageKey, Vec<Uuid>)>,
    ) -> Result<Receipt, OutboxError> {
        let resolves = self
            .resolve_pairs(events)
            .map_err(|e| OutboxError::Store(Arc::new(e)))?;
        let mut new = Vec::with_capacity(events.len());
        for (e, resolves) in events.iter().zip(resolves) {
            let deliver = self.registry().delivers_to(&e.township.code);
            let mut n = NewEvent::of(e, deliver);
            n.resolves = resolves;
            if kind_matches(&self.cases.keep_open, e.kind.as_str()) {
                n.close_on_delivery = false;
            }
            self.supervise_from_now(e, &mut n);
            let notice = self.dispatch(e, &mut n);
            new.push(n);
            new.extend(notice);
        }
        let delivered = new.iter().filter(|n| n.deliver).count() as u64;
        self.outbox.check_room(delivered)?;
        match message {
            Some((key, own)) if !new.is_empty() => self.outbox.commit_message(key, own, new).await,
            _ => self.outbox.commit_new(new).await,
        }
    }

    /// Fills `resolves` of recovering events with the open tickets of their pair — in the
    /// store, and opened earlier in the same batch — and times each outage from the ticket's
    /// event to the recovering one.
    fn resolve_pairs(&self, events: &mut [Event]) -> Result<Vec<Vec<Resolve>>, StoreError> {
        let mut opened: HashMap<String, Vec<(Uuid, DateTime<FixedOffset>)>> = HashMap::new();
        let mut out = Vec::with_capacity(events.len());
        for e in events.iter_mut() {
            let mut resolves = Vec::new();
            match pairs::pair(e) {
                Some(Pair::Opens(key)) => {
                    opened.entry(key).or_default().push((e.id, e.occurred_at))
                }
                Some(Pair::Closes(key)) => {
                    let mut open = Vec::new();
                    for id in self.outbox.store().open_pairs(&key)? {
                        let at = self.outbox.store().get(id)?.and_then(|s| {
                            serde_json::from_slice::<Event>(&s.body)
                                .ok()
                                .map(|o| o.occurred_at)
                        });
                        open.push((id, at));
                    }
                    open.extend(
                        opened
                            .remove(&key)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(id, at)| (id, Some(at))),
                    );
                    e.resolves = open.iter().map(|(id, _)| *id).collect();
                    resolves = open
                        .into_iter()
                        .map(|(id, at)| Resolve {
                            id,
                            outage_s: at.map(|at| (e.occurred_at - at).num_seconds()),
                        })
                        .collect();
                }
                None => {}
            }
            out.push(resolves);
        }
        Ok(out)
    }

    /// Puts a new case under the first SLA rule that matches it, its clock starting now.
    fn supervise_from_now(&self, e: &Event, new: &mut NewEvent) {
        let Some(case) = new.case.as_mut() else {
            return;
        };
        if let Some(rule) = self
            .cases
            .sla
            .iter()
            .find(|r| r.matches(e.kind.as_str(), e.severity))
        {
            case.sla = Some(Supervision::new(rule, self.clock.now()));
        }
    }

    /// Applies the first matching dispatch rule to a new case; the department's
    /// `event.assigned` notice, if one is due.
    fn dispatch(&self, e: &Event, new: &mut NewEvent) -> Option<NewEvent> {
        let case = new.case.as_mut()?;
        let rule = first_match(&self.cases.dispatch, e.kind.as_str(), &e.township.code)?;
        let registry = self.registry();
        let department = registry.department(&rule.to)?;
        if !department.serves(&e.township.code) {
            return None;
        }
        let at = self.clock.now();
        let action = Action::Assign {
            to: rule.to.clone(),
        };
        case.apply(&action, &Actor::gateway("dispatch"), at).ok()?;
        let local = at.with_timezone(&self.offset);
        let notice = assigned_notice(e, case, department, local, Uuid::now_v7());
        let mut n = NewEvent::of(&notice, department.webhook.is_some());
        n.route = Some(department.route());
        Some(n)
    }

    /// Applies a step of the closed loop to event `id`, with its notices (`event.updated` to
    /// the township, `event.assigned` to a department), in one durable transaction.
    pub async fn act(&self, id: Uuid, action: Action, actor: Actor) -> Result<Acted, ActError> {
        for _ in 0..STALE_RETRIES {
            let stored = self.outbox.store().get(id)?.ok_or(ActError::NotFound)?;
            let Some(mut case) = stored.state.case.clone() else {
                return Err(ActError::NotACase(stored.state.kind));
            };
            let expect_history = case.history.len();
            let at = self.clock.now();
            if case.apply(&action, &actor, at).map_err(ActError::Refused)? == Applied::Unchanged {
                return Ok(Acted {
                    stored,
                    applied: Applied::Unchanged,
                });
            }
            let notices = self.notices(&stored, &case)?;
            let op = Op::Act {
                id,
                action: action.clone(),
                actor: actor.clone(),
                at,
                expect_history,
                notices,
            };
            match self.outbox.request(op).await? {
                Outcome::Acted(applied) => {
                    let stored = self.outbox.store().get(id)?.ok_or(ActError::NotFound)?;
                    self.observe_step(&action, &stored);
                    return Ok(Acted { stored, applied });
                }
                Outcome::Refused(r) => return Err(ActError::Refused(r)),
                Outcome::NotACase => return Err(ActError::NotACase(stored.state.kind)),
                Outcome::NotFound => return Err(ActError::NotFound),
                _stale => continue,
            }
        }
        Err(ActError::Storage(OutboxError::Closed))
    }

    /// The notices of a step just applied to `case`: `event.updated` for the township, and
    /// for an assignment `event.assigned` for the department.
    fn notices(&self, stored: &Stored, case: &Case) -> Result<Vec<NewEvent>, ActError> {
        let original: Event = serde_json::from_slice(&stored.body)
            .map_err(|_| ActError::NotACase(stored.state.kind.clone()))?;
        let step = case.history.last().expect("a changed case has a step");
        let department = match step.to.as_deref() {
            Some(code) => Some(self.department_for(code, &original)?),
            None => None,
        };
        let at = step.at.with_timezone(&self.offset);
        let township = &original.township.code;
        let updated = updated_notice(&original, case, department.as_deref(), at, Uuid::now_v7());
        let mut out = vec![NewEvent::of(
            &updated,
            self.registry().delivers_to(township),
        )];
        if let Some(d) = department {
            let assigned = assigned_notice(&original, case, &d, at, Uuid::now_v7());
            let mut n = NewEvent::of(&assigned, d.webhook.is_some());
            n.route = Some(d.route());
            out.push(n);
        }
        Ok(out)
    }

    fn department_for(
        &self,
        code: &str,
        original: &Event,
    ) -> Result<Arc<crate::registry::Department>, ActError> {
        let d = self
            .registry()
            .department(code)
            .cloned()
            .ok_or_else(|| ActError::BadDepartment(format!("no department `{code}`")))?;
        if !d.serves(&original.township.code) {
            return Err(ActError::BadDepartment(format!(
                "department `{code}` does not serve township `{}`",
                original.township.code
            )));
        }
        Ok(d)
    }
}
