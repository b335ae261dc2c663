//! Supervision (督办) at run time: each tick finds the cases whose next reminder is due (by the
//! outbox's due-time index — the cost is per due case, not per open case), commits their
//! `event.overdue` notices for the township and the city with the reminder in one transaction,
//! and refreshes the case gauges from the writer's counters.

use super::Pipeline;
use crate::case::sla::Reminder;
use crate::case::{Action, Case};
use crate::event::Event;
use crate::metrics::register;
use crate::normalize::overdue_notice;
use crate::outbox::{NewEvent, Op, OutboxError, Outcome, Stored};
use crate::registry::CITY_ROUTE;
use chrono::{DateTime, Utc};
use prometheus::{exponential_buckets, HistogramOpts, HistogramVec, IntGaugeVec, Opts};
use std::sync::Arc;
use uuid::Uuid;

/// At most this many due cases are reminded per tick (the rest on the next).
pub const SUPERVISE_BATCH: usize = 1000;

/// The closed loop's metrics.
#[derive(Clone)]
pub struct CaseMetrics {
    /// `gateway_events_open{township,state}`: cases not closed, by stage.
    pub open: IntGaugeVec,
    /// `gateway_events_overdue{township,stage}`: late stages (`sign`, `handle`, `close`).
    pub overdue: IntGaugeVec,
    /// `gateway_sign_seconds{township}`: commit → sign-off.
    pub sign_seconds: HistogramVec,
    /// `gateway_handle_seconds{township}`: commit → verdict.
    pub handle_seconds: HistogramVec,
}

impl CaseMetrics {
    /// Registers the metrics in `r`.
    pub fn new(r: &prometheus::Registry) -> Self {
        let gauges = |name: &str, help: &str, labels: &[&str]| {
            register(r, IntGaugeVec::new(Opts::new(name, help), labels))
        };
        // 5 s … ~3.8 days
        let buckets = exponential_buckets(5.0, 2.0, 17).expect("buckets");
        let histogram = |name: &str, help: &str| {
            register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.clone()),
                    &["township"],
                ),
            )
        };
        CaseMetrics {
            open: gauges(
                "gateway_events_open",
                "Cases not closed, by township and stage",
                &["township", "state"],
            ),
            overdue: gauges(
                "gateway_events_overdue",
                "Late stages (reminded, not done), by township and stage",
                &["township", "stage"],
            ),
            sign_seconds: histogram(
                "gateway_sign_seconds",
                "Time from commit to sign-off (签收)",
            ),
            handle_seconds: histogram("gateway_handle_seconds", "Time from commit to a verdict"),
        }
    }
}

/// What one supervision tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Supervised {
    /// Cases looked at (their next reminder was due).
    pub due: usize,
    /// Reminders committed.
    pub reminded: usize,
}

impl Pipeline {
    /// One supervision tick at the pipeline's clock.
    pub async fn supervise(&self) -> Result<Supervised, OutboxError> {
        let now = self.clock.now();
        let store = self.outbox.store().clone();
        let ids = tokio::task::spawn_blocking(move || store.due_until(now, SUPERVISE_BATCH))
            .await
            .expect("due read")
            .map_err(|e| OutboxError::Store(Arc::new(e)))?;
        let due = ids.len();
        let mut ops = Vec::with_capacity(due);
        for id in ids {
            if let Some(op) = self
                .reminder(id, now)
                .map_err(|e| OutboxError::Store(Arc::new(e)))?
            {
                ops.push(op);
            }
        }
        // all at once: the writer groups them into few transactions (one fsync for many)
        let answers = futures::future::join_all(
            ops.into_iter()
                .map(|(n, op)| async move { (n, self.outbox.request(op).await) }),
        )
        .await;
        let mut reminded = 0;
        for (n, answer) in answers {
            if let Outcome::Done = answer? {
                reminded += n;
            }
        }
        self.refresh_case_gauges();
        Ok(Supervised { due, reminded })
    }

    /// The reminders due on one case, as an operation with its notices (and how many).
    fn reminder(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<(usize, Op)>, crate::outbox::StoreError> {
        let Some(stored) = self.outbox.store().get(id)? else {
            return Ok(None);
        };
        let Some(case) = &stored.state.case else {
            return Ok(None);
        };
        let reminders = case.reminders_due(now);
        if reminders.is_empty() {
            return Ok(None);
        }
        let notices = self.overdue_notices(&stored, case, &reminders, now);
        let n = reminders.len();
        let op = Op::Remind {
            id,
            reminders,
            at: now,
            notices,
        };
        Ok(Some((n, op)))
    }

    /// `event.overdue` for each reminder: one for the township, one for the city (when it has
    /// a webhook).
    fn overdue_notices(
        &self,
        stored: &Stored,
        case: &Case,
        reminders: &[Reminder],
        now: DateTime<Utc>,
    ) -> Vec<NewEvent> {
        let Ok(original) = serde_json::from_slice::<Event>(&stored.body) else {
            return Vec::new();
        };
        let at = now.with_timezone(&self.offset);
        let township = self.registry().delivers_to(&original.township.code);
        let mut out = Vec::new();
        for r in reminders {
            let notice = overdue_notice(&original, case, r, at, Uuid::now_v7());
            out.push(NewEvent::of(&notice, township));
            if self.registry().city().is_some() {
                let copy = overdue_notice(&original, case, r, at, Uuid::now_v7());
                let mut n = NewEvent::of(&copy, true);
                n.route = Some(CITY_ROUTE.to_string());
                out.push(n);
            }
        }
        out
    }

    /// Announces a weekly report (工作周报) to the city: a `report.weekly` event, delivered to
    /// the `[city]` webhook when there is one.
    pub async fn announce_report(
        &self,
        detail: crate::event::ReportDetail,
    ) -> Result<Uuid, OutboxError> {
        let at = self.clock.now().with_timezone(&self.offset);
        let event = crate::normalize::report::weekly_report_event(detail, at, Uuid::now_v7());
        let mut n = NewEvent::of(&event, self.registry().city().is_some());
        n.route = Some(CITY_ROUTE.to_string());
        self.outbox.commit_new(vec![n]).await?;
        Ok(event.id)
    }

    /// Sets the case gauges from the writer's counters.
    pub fn refresh_case_gauges(&self) {
        let Ok(counts) = self.outbox.store().case_counts() else {
            return;
        };
        let m = &self.case_metrics;
        m.open.reset();
        for ((township, stage), n) in &counts.open {
            m.open.with_label_values(&[township, stage]).set(*n as i64);
        }
        m.overdue.reset();
        for ((township, stage), n) in &counts.overdue {
            m.overdue
                .with_label_values(&[township, stage])
                .set(*n as i64);
        }
    }

    /// Times a step that signed or handled a case, from the event's commit.
    pub(super) fn observe_step(&self, action: &Action, stored: &Stored) {
        let Some(case) = &stored.state.case else {
            return;
        };
        let township = stored.state.township.as_str();
        let since = |at: DateTime<Utc>| {
            (at - stored.state.committed_at).num_milliseconds().max(0) as f64 / 1000.0
        };
        match action {
            Action::Sign => {
                if let Some(s) = &case.signed {
                    self.case_metrics
                        .sign_seconds
                        .with_label_values(&[township])
                        .observe(since(s.at));
                }
            }
            Action::Feedback {
                verdict: Some(_), ..
            } => {
                if let Some(at) = case.handled_at {
                    self.case_metrics
                        .handle_seconds
                        .with_label_values(&[township])
                        .observe(since(at));
                }
            }
            _ => {}
        }
    }
}
