//! The closed loop (闭环): an event's life as a case, from delivery to its township until it is
//! closed — a pure state machine, applied by the outbox inside the transaction that stores it.
//!
//! ```text
//!   open ──sign──▶ signed ──assign──▶ assigned ──accept──▶ accepted
//!     │               │                                       │
//!     │               └──────────feedback with a verdict──────┴──▶ handled ──close──▶ closed
//!     └──(pair recovered / info delivered)───────────────────────────────────────────▶ closed
//!                                                 closed ──reopen──▶ assigned|signed|open
//! ```
//!
//! * Signing (签收) is a fact beside the stage: the first sign-off wins; the same person again is
//!   a no-op, another person is refused with the name of who signed.
//! * A dispatch rule may assign an unsigned event (自动派单); a person assigns only after signing.
//! * Every change appends a [`Step`] to the history; repeating the action that made the current
//!   stage changes nothing and is not an error ([`Applied::Unchanged`]).
//! * Notices (`event.*`, `report.*`) are not cases.

pub mod dispatch;
pub mod pairs;
pub mod sla;
mod verdict;

pub use verdict::{Family, Verdict};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Committed and delivered to its township; nobody has signed.
    Open,
    /// Signed for (签收) by the township.
    Signed,
    /// Assigned (交办) to a department.
    Assigned,
    /// The department accepted its assignment.
    Accepted,
    /// Feedback with a verdict was given.
    Handled,
    /// Done (办结), by a person or by the recovery that ended it.
    Closed,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 6] = [
        Stage::Open,
        Stage::Signed,
        Stage::Assigned,
        Stage::Accepted,
        Stage::Handled,
        Stage::Closed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Signed => "signed",
            Stage::Assigned => "assigned",
            Stage::Accepted => "accepted",
            Stage::Handled => "handled",
            Stage::Closed => "closed",
        }
    }

    /// The stage named `s`.
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sign-off (签收), or a department's acceptance of its assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// Who signed.
    pub by: String,
    /// When.
    #[serde(serialize_with = "crate::time::serialize")]
    pub at: DateTime<Utc>,
}

/// One feedback entry (信息反馈).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// Who reported.
    pub by: String,
    /// The verdict, when this entry gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// What was done (free text). Stored as `result` by earlier versions.
    #[serde(alias = "result")]
    pub note: String,
    /// When.
    #[serde(serialize_with = "crate::time::serialize")]
    pub at: DateTime<Utc>,
}

/// Who acts on a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The person, as they name themselves (`by`).
    pub by: String,
    /// The API token's name (`None` for the gateway itself).
    pub token: Option<String>,
    /// In what capacity.
    pub role: Role,
}

impl Actor {
    /// The gateway acting on its own (a dispatch rule, a recovery, a delivery).
    pub fn gateway(by: &str) -> Actor {
        Actor {
            by: by.to_string(),
            token: None,
            role: Role::Gateway,
        }
    }
}

/// The capacity an actor acts in (from the token's scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The city / operators: every action.
    Admin,
    /// The event's township command room.
    Township,
    /// A department (派驻机构), on events assigned to it.
    Department(String),
    /// The gateway: dispatch rules, recoveries, closing on delivery.
    Gateway,
}

/// What someone does to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 签收.
    Sign,
    /// 交办 to a department (by code).
    Assign {
        /// Department code.
        to: String,
    },
    /// The department accepts its assignment.
    Accept,
    /// 反馈: a note, with a verdict it makes the case handled.
    Feedback {
        /// The verdict, if this feedback gives one.
        verdict: Option<Verdict>,
        /// Free text.
        note: String,
    },
    /// 办结.
    Close,
    /// Reopen a closed case.
    Reopen {
        /// Why.
        reason: String,
    },
    /// The outage this ticket is about ended (a pair closes itself).
    Recover {
        /// The recovering event.
        by_event: Uuid,
        /// How long the outage lasted, in seconds.
        outage_s: i64,
    },
    /// An info event was delivered: nothing to handle.
    CloseOnDelivery,
}

impl Action {
    /// The name written into the history.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Sign => "sign",
            Action::Assign { .. } => "assign",
            Action::Accept => "accept",
            Action::Feedback { .. } => "feedback",
            Action::Close => "close",
            Action::Reopen { .. } => "reopen",
            Action::Recover { .. } => "recover",
            Action::CloseOnDelivery => "close_on_delivery",
        }
    }
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// When.
    #[serde(serialize_with = "crate::time::serialize")]
    pub at: DateTime<Utc>,
    /// What (`sign`, `assign`, `accept`, `feedback`, `close`, `reopen`, `recover`,
    /// `close_on_delivery`).
    pub action: String,
    /// Who (a person's name, or `gateway`).
    pub by: String,
    /// Through which API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The stage after the step.
    pub stage: Stage,
    /// For `assign`: the department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For `feedback` and `recover`: the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// For `feedback`: the note; for `reopen`: the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For `recover`: the recovering event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Uuid>,
}

/// A case: the lifecycle state stored beside an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Where it stands.
    pub stage: Stage,
    /// Its kind's verdict family.
    pub family: Family,
    /// The sign-off, once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignOff>,
    /// The department it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
    /// When it was (last) assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// The department's acceptance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<SignOff>,
    /// Feedback entries, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<Feedback>,
    /// The current verdict (the last one given; `recovered` for a pair that closed itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// When it became handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub handled_at: Option<DateTime<Utc>>,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The event whose recovery closed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<Uuid>,
    /// For a recovered outage: how long it lasted, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_s: Option<i64>,
    /// Deadlines and reminders (督办), when an SLA rule applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<sla::Supervision>,
    /// The pair key this case opened (see [`pairs`]): recovering events close it by this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    /// Every change, oldest first.
    #[serde(default)]
    pub history: Vec<Step>,
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The case changed (a step was appended).
    Changed,
    /// It repeated what was already done: nothing changed.
    Unchanged,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Somebody else signed first.
    #[error("already signed by `{}` at {}", .0.by, .0.at.to_rfc3339())]
    AlreadySigned(SignOff),
    /// The action does not apply in the case's stage.
    #[error("cannot {action} an event that is {stage}")]
    Invalid {
        /// The stage it is in.
        stage: Stage,
        /// The action tried.
        action: &'static str,
    },
    /// The township must sign before this action.
    #[error("sign the event before {0}")]
    NotSigned(&'static str),
    /// The actor may not take this action.
    #[error("{0}")]
    NotAllowed(String),
    /// A verdict of the wrong family for this kind.
    #[error("verdict `{verdict}` does not apply to {family} events (expected one of: {})", family.verdict_names())]
    BadVerdict {
        /// The verdict given.
        verdict: Verdict,
        /// The kind's family.
        family: Family,
    },
}

impl Case {
    /// A new, open case for an event of `kind`; `None` for notices, which are not cases.
    pub fn new(kind: &str) -> Option<Case> {
        Some(Case {
            stage: Stage::Open,
            family: Family::of(kind)?,
            signed: None,
            assigned_to: None,
            assigned_at: None,
            accepted: None,
            feedback: Vec::new(),
            verdict: None,
            handled_at: None,
            closed_at: None,
            resolved_by: None,
            outage_s: None,
            pair: None,
            sla: None,
            history: Vec::new(),
        })
    }

    /// Whether the case still needs someone (not closed).
    pub fn is_open(&self) -> bool {
        self.stage != Stage::Closed
    }

    /// Applies `action` by `actor` at `at`.
    pub fn apply(
        &mut self,
        action: &Action,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Applied, Refusal> {
        let applied = match action {
            Action::Sign => self.sign(actor, at)?,
            Action::Assign { to } => self.assign(to, actor, at)?,
            Action::Accept => self.accept(actor, at)?,
            Action::Feedback { verdict, note } => self.give_feedback(*verdict, note, actor, at)?,
            Action::Close => self.close(actor, at)?,
            Action::Reopen { reason } => self.reopen(reason, actor, at)?,
            Action::Recover { by_event, outage_s } => self.recover(*by_event, *outage_s, at)?,
            Action::CloseOnDelivery => self.close_on_delivery(at),
        };
        if applied == Applied::Changed {
            self.history.push(self.step(action, actor, at));
        }
        Ok(applied)
    }

    fn step(&self, action: &Action, actor: &Actor, at: DateTime<Utc>) -> Step {
        let mut step = Step {
            at,
            action: action.name().to_string(),
            by: actor.by.clone(),
            token: actor.token.clone(),
            stage: self.stage,
            to: None,
            verdict: None,
            note: None,
            resolved_by: None,
        };
        match action {
            Action::Assign { to } => step.to = Some(to.clone()),
            Action::Feedback { verdict, note } => {
                step.verdict = *verdict;
                step.note = Some(note.clone());
            }
            Action::Reopen { reason } => step.note = Some(reason.clone()),
            Action::Recover { by_event, .. } => {
                step.verdict = Some(Verdict::Recovered);
                step.resolved_by = Some(*by_event);
            }
            _ => {}
        }
        step
    }

    fn invalid(&self, action: &'static str) -> Refusal {
        Refusal::Invalid {
            stage: self.stage,
            action,
        }
    }

    fn township_only(actor: &Actor, action: &str) -> Result<(), Refusal> {
        match actor.role {
            Role::Admin | Role::Township => Ok(()),
            _ => Err(Refusal::NotAllowed(format!(
                "only the event's township can {action} it"
            ))),
        }
    }

    fn sign(&mut self, actor: &Actor, at: DateTime<Utc>) -> Result<Applied, Refusal> {
        Self::township_only(actor, "sign")?;
        if let Some(s) = &self.signed {
            return if s.by == actor.by {
                Ok(Applied::Unchanged)
            } else {
                Err(Refusal::AlreadySigned(s.clone()))
            };
        }
        if self.stage == Stage::Closed {
            return Err(self.invalid("sign"));
        }
        self.signed = Some(SignOff {
            by: actor.by.clone(),
            at,
        });
        if self.stage == Stage::Open {
            self.stage = Stage::Signed;
        }
        Ok(Applied::Changed)
    }

    fn assign(&mut self, to: &str, actor: &Actor, at: DateTime<Utc>) -> Result<Applied, Refusal> {
        let by_rule = actor.role == Role::Gateway;
        if !by_rule {
            Self::township_only(actor, "assign")?;
        }
        let allowed = match self.stage {
            Stage::Open => by_rule,
            Stage::Signed | Stage::Assigned | Stage::Accepted => true,
            Stage::Handled | Stage::Closed => false,
        };
        if matches!(self.stage, Stage::Assigned | Stage::Accepted)
            && self.assigned_to.as_deref() == Some(to)
        {
            return Ok(Applied::Unchanged);
        }
        if !allowed {
            return Err(if self.stage == Stage::Open {
                Refusal::NotSigned("assigning it")
            } else {
                self.invalid("assign")
            });
        }
        self.assigned_to = Some(to.to_string());
        self.assigned_at = Some(at);
        self.accepted = None;
        self.stage = Stage::Assigned;
        Ok(Applied::Changed)
    }

    fn accept(&mut self, actor: &Actor, at: DateTime<Utc>) -> Result<Applied, Refusal> {
        self.require_assignee(actor, "accept")?;
        match self.stage {
            Stage::Assigned => {
                self.accepted = Some(SignOff {
                    by: actor.by.clone(),
                    at,
                });
                self.stage = Stage::Accepted;
                Ok(Applied::Changed)
            }
            Stage::Accepted if self.accepted.as_ref().is_some_and(|a| a.by == actor.by) => {
                Ok(Applied::Unchanged)
            }
            _ => Err(self.invalid("accept")),
        }
    }

    /// A department acts only on what is assigned to it; admins on anything.
    fn require_assignee(&self, actor: &Actor, action: &str) -> Result<(), Refusal> {
        match &actor.role {
            Role::Admin => Ok(()),
            Role::Department(d) if self.assigned_to.as_deref() == Some(d) => Ok(()),
            _ => Err(Refusal::NotAllowed(format!(
                "only the department the event is assigned to can {action} it"
            ))),
        }
    }

    fn give_feedback(
        &mut self,
        verdict: Option<Verdict>,
        note: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Applied, Refusal> {
        match &actor.role {
            Role::Department(_) => {
                self.require_assignee(actor, "give feedback on")?;
                if self.stage == Stage::Assigned {
                    return Err(Refusal::NotAllowed(
                        "accept the assignment before giving feedback".into(),
                    ));
                }
            }
            Role::Gateway => return Err(Refusal::NotAllowed("feedback is given by people".into())),
            Role::Admin | Role::Township => {
                if self.signed.is_none() {
                    return Err(Refusal::NotSigned("giving feedback"));
                }
            }
        }
        if let Some(v) = verdict {
            if !self.family.allows(v) {
                return Err(Refusal::BadVerdict {
                    verdict: v,
                    family: self.family,
                });
            }
        }
        if self.stage == Stage::Closed {
            return Err(self.invalid("give feedback on"));
        }
        let entry = Feedback {
            by: actor.by.clone(),
            verdict,
            note: note.to_string(),
            at,
        };
        if self.feedback.last().is_some_and(|last| {
            last.by == entry.by && last.verdict == entry.verdict && last.note == entry.note
        }) {
            return Ok(Applied::Unchanged);
        }
        self.feedback.push(entry);
        if verdict.is_some() {
            self.verdict = verdict;
            self.handled_at.get_or_insert(at);
            self.stage = Stage::Handled;
        }
        Ok(Applied::Changed)
    }

    fn close(&mut self, actor: &Actor, at: DateTime<Utc>) -> Result<Applied, Refusal> {
        Self::township_only(actor, "close")?;
        match self.stage {
            Stage::Handled => {
                self.stage = Stage::Closed;
                self.closed_at = Some(at);
                Ok(Applied::Changed)
            }
            Stage::Closed => Ok(Applied::Unchanged),
            _ => Err(self.invalid("close")),
        }
    }

    fn reopen(
        &mut self,
        reason: &str,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Applied, Refusal> {
        Self::township_only(actor, "reopen")?;
        if self.stage != Stage::Closed {
            let repeat = self
                .history
                .last()
                .is_some_and(|s| s.action == "reopen" && s.note.as_deref() == Some(reason));
            return if repeat {
                Ok(Applied::Unchanged)
            } else {
                Err(self.invalid("reopen"))
            };
        }
        // back to whoever had it: the department (to accept again), else the township
        self.stage = if self.assigned_to.is_some() {
            Stage::Assigned
        } else if self.signed.is_some() {
            Stage::Signed
        } else {
            Stage::Open
        };
        self.verdict = None;
        self.handled_at = None;
        self.closed_at = None;
        self.resolved_by = None;
        self.outage_s = None;
        self.accepted = None;
        if let Some(sla) = self.sla.as_mut() {
            sla.restart(at);
        }
        Ok(Applied::Changed)
    }

    fn recover(
        &mut self,
        by_event: Uuid,
        outage_s: i64,
        at: DateTime<Utc>,
    ) -> Result<Applied, Refusal> {
        if self.family == Family::FireAlarm {
            return Err(Refusal::NotAllowed(
                "a fire alarm is closed only with a person's verdict".into(),
            ));
        }
        if self.stage == Stage::Closed {
            return Ok(Applied::Unchanged);
        }
        self.stage = Stage::Closed;
        self.verdict = Some(Verdict::Recovered);
        self.closed_at = Some(at);
        self.resolved_by = Some(by_event);
        self.outage_s = Some(outage_s.max(0));
        Ok(Applied::Changed)
    }

    fn close_on_delivery(&mut self, at: DateTime<Utc>) -> Applied {
        if self.stage != Stage::Open || self.family == Family::FireAlarm {
            return Applied::Unchanged;
        }
        self.stage = Stage::Closed;
        self.closed_at = Some(at);
        Applied::Changed
    }
}

#[cfg(test)]
mod tests;
