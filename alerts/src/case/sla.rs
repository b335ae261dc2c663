//! Supervision (督办): deadlines for each stage of a case, and the reminders that fall due when a
//! stage is late — pure, on the time given.
//!
//! A case under an SLA has up to three deadlines from the moment its clock starts (its commit, or
//! its last reopen): **sign** (签收) by `sign_within`, **handle** (a verdict) by `handle_within`,
//! **close** (办结) by `close_within`. A stage past its deadline and not done is overdue: a
//! reminder is due at the deadline (level 1), and again every `remind_every` while the stage
//! stays undone (levels 2, 3, …). After downtime a late reminder is sent once, and the next one
//! counted from then — never a burst.

use super::dispatch::kind_matches;
use super::Case;
use crate::event::Severity;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A supervised stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStage {
    /// Sign-off (签收).
    Sign,
    /// Handling: feedback with a verdict.
    Handle,
    /// Closing (办结).
    Close,
}

impl SlaStage {
    /// Every stage, in order.
    pub const ALL: [SlaStage; 3] = [SlaStage::Sign, SlaStage::Handle, SlaStage::Close];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaStage::Sign => "sign",
            SlaStage::Handle => "handle",
            SlaStage::Close => "close",
        }
    }

    /// What command-center staff read: 超时未签收, …
    pub fn label(self) -> &'static str {
        match self {
            SlaStage::Sign => "超时未签收",
            SlaStage::Handle => "超时未处置",
            SlaStage::Close => "超时未办结",
        }
    }
}

impl fmt::Display for SlaStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[sla]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaRule {
    /// Kind patterns (exact, `family.*`, `*`); empty = any kind.
    pub kinds: Vec<String>,
    /// Only events of this severity; `None` = any.
    pub severity: Option<Severity>,
    /// Sign within.
    pub sign_within: Option<Duration>,
    /// Handle (verdict) within.
    pub handle_within: Option<Duration>,
    /// Close within.
    pub close_within: Option<Duration>,
    /// Remind again this often while a stage stays late; `None`: once.
    pub remind_every: Option<Duration>,
}

impl SlaRule {
    /// Whether an event of `kind` and `severity` falls under the rule.
    pub fn matches(&self, kind: &str, severity: Severity) -> bool {
        (self.kinds.is_empty() || kind_matches(&self.kinds, kind))
            && self.severity.is_none_or(|s| s == severity)
    }

    fn rule(kinds: &[&str], sign: i64, handle: i64, close: i64, remind: i64) -> SlaRule {
        let secs = |s: i64| (s > 0).then(|| Duration::seconds(s));
        SlaRule {
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
            severity: None,
            sign_within: secs(sign),
            handle_within: secs(handle),
            close_within: secs(close),
            remind_every: secs(remind),
        }
    }

    /// The built-in rules, consulted after the configured ones (docs/closed-loop.md).
    pub fn defaults() -> Vec<SlaRule> {
        const MIN: i64 = 60;
        const HOUR: i64 = 3600;
        vec![
            SlaRule::rule(&["fire.alarm"], 3 * MIN, 30 * MIN, 0, 5 * MIN),
            SlaRule::rule(
                &[
                    "fire.fault",
                    "fire.supervisory",
                    "fire.power_fault",
                    "fire.linkage_started",
                    "fire.analog_threshold",
                ],
                HOUR,
                24 * HOUR,
                0,
                HOUR,
            ),
            SlaRule::rule(
                &[
                    "camera.offline",
                    "camera.stalled",
                    "camera.degraded",
                    "camera.quality",
                    "camera.tamper",
                    "unit.offline",
                ],
                4 * HOUR,
                0,
                72 * HOUR,
                4 * HOUR,
            ),
        ]
    }
}

/// The first rule (configured, then built-in) for an event.
pub fn rule_for<'r>(
    configured: &'r [SlaRule],
    defaults: &'r [SlaRule],
    kind: &str,
    severity: Severity,
) -> Option<&'r SlaRule> {
    configured
        .iter()
        .chain(defaults)
        .find(|r| r.matches(kind, severity))
}

/// Reminders sent for one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminded {
    /// How many (the level of the last one).
    pub level: u32,
    /// When the next one is due; `None`: no more (no `remind_every`).
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub next_at: Option<DateTime<Utc>>,
}

/// A case's deadlines and the reminders sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supervision {
    /// When the clock started (the commit, or the last reopen).
    #[serde(serialize_with = "crate::time::serialize")]
    pub started: DateTime<Utc>,
    /// Sign within, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_within_s: Option<i64>,
    /// Handle within, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_within_s: Option<i64>,
    /// Close within, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_within_s: Option<i64>,
    /// Reminder interval, in seconds (0: once).
    pub remind_every_s: i64,
    /// Reminders sent per stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reminded: Vec<(SlaStage, Reminded)>,
}

/// A reminder that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The late stage.
    pub stage: SlaStage,
    /// Its deadline.
    #[serde(serialize_with = "crate::time::serialize")]
    pub due_at: DateTime<Utc>,
    /// How late, in seconds, at the reminder.
    pub overdue_s: i64,
    /// 1 for the first reminder, rising with each repeat.
    pub level: u32,
}

impl Supervision {
    /// Deadlines under `rule` for a clock started at `start`.
    pub fn new(rule: &SlaRule, start: DateTime<Utc>) -> Supervision {
        Supervision {
            started: start,
            sign_within_s: rule.sign_within.map(|d| d.num_seconds()),
            handle_within_s: rule.handle_within.map(|d| d.num_seconds()),
            close_within_s: rule.close_within.map(|d| d.num_seconds()),
            remind_every_s: rule.remind_every.map_or(0, |d| d.num_seconds()),
            reminded: Vec::new(),
        }
    }

    /// A stage's deadline.
    pub fn due(&self, stage: SlaStage) -> Option<DateTime<Utc>> {
        let within = match stage {
            SlaStage::Sign => self.sign_within_s,
            SlaStage::Handle => self.handle_within_s,
            SlaStage::Close => self.close_within_s,
        };
        within.map(|s| self.started + Duration::seconds(s))
    }

    /// Reminders sent for a stage.
    pub fn reminded(&self, stage: SlaStage) -> Option<Reminded> {
        self.reminded
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, r)| *r)
    }

    /// When this stage next needs a reminder (its deadline, or the next repeat).
    fn next_for(&self, stage: SlaStage) -> Option<DateTime<Utc>> {
        match self.reminded(stage) {
            Some(r) => r.next_at,
            None => self.due(stage),
        }
    }

    /// Starts the clock again at `start` with no reminders sent (a reopen).
    pub fn restart(&mut self, start: DateTime<Utc>) {
        self.started = start;
        self.reminded.clear();
    }
}

impl Case {
    /// Whether a supervised stage is done.
    pub fn stage_done(&self, stage: SlaStage) -> bool {
        use super::Stage;
        match stage {
            SlaStage::Sign => self.signed.is_some() || self.stage == Stage::Closed,
            SlaStage::Handle => matches!(self.stage, Stage::Handled | Stage::Closed),
            SlaStage::Close => self.stage == Stage::Closed,
        }
    }

    /// When the case next needs the supervisor: the earliest reminder due among its undone
    /// stages; `None` when nothing is left to supervise.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let sla = self.sla.as_ref()?;
        SlaStage::ALL
            .into_iter()
            .filter(|s| !self.stage_done(*s))
            .filter_map(|s| sla.next_for(s))
            .min()
    }

    /// The stages that are late now (past their deadline, not done) and have had a reminder.
    pub fn overdue_stages(&self) -> Vec<SlaStage> {
        let Some(sla) = &self.sla else {
            return Vec::new();
        };
        SlaStage::ALL
            .into_iter()
            .filter(|s| !self.stage_done(*s) && sla.reminded(*s).is_some())
            .collect()
    }

    /// The reminders due at `now`.
    pub fn reminders_due(&self, now: DateTime<Utc>) -> Vec<Reminder> {
        let Some(sla) = &self.sla else {
            return Vec::new();
        };
        SlaStage::ALL
            .into_iter()
            .filter(|s| !self.stage_done(*s))
            .filter_map(|stage| {
                let due_at = sla.due(stage)?;
                let next = sla.next_for(stage)?;
                (next <= now).then(|| Reminder {
                    stage,
                    due_at,
                    overdue_s: (now - due_at).num_seconds(),
                    level: sla.reminded(stage).map_or(1, |r| r.level + 1),
                })
            })
            .collect()
    }

    /// Records reminders sent at `now`: the next repeat counts from now.
    pub fn record_reminders(&mut self, reminders: &[Reminder], now: DateTime<Utc>) {
        let Some(sla) = self.sla.as_mut() else {
            return;
        };
        let every = sla.remind_every_s;
        for r in reminders {
            let entry = Reminded {
                level: r.level,
                next_at: (every > 0).then(|| now + Duration::seconds(every)),
            };
            match sla.reminded.iter_mut().find(|(s, _)| *s == r.stage) {
                Some((_, old)) => *old = entry,
                None => sla.reminded.push((r.stage, entry)),
            }
        }
    }
}
