//! A unit's signals: registry lookup → liveness → dedup → thresholds → normalize → linkage →
//! one durable commit. What the trackers learnt is kept only when the commit succeeds; a
//! refused commit undoes it, so that the device's retry is taken as new.

use super::{Pipeline, SubmitError, Submitted};
use crate::dedup::Verdict;
use crate::event::{Event, Kind};
use crate::linkage::Outcome;
use crate::liveness::UnitState;
use crate::normalize::{normalize, threshold_event, unit_event, Context};
use crate::outbox::MessageKey;
use crate::outbox::Receipt;
use crate::registry::{Township, Unit};
use crate::signal::{FireSignal, Location, Protocol, SignalBody, StatusFlags};
use crate::threshold::Crossing;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One message's events before the commit, and what to record — or undo — after it.
#[derive(Default)]
struct Draft {
    events: Vec<Event>,
    /// The unit's state before the message, when it was offline (the message brings it back).
    was_offline: Option<UnitState>,
    /// Whether `events` starts with the gateway's own `unit.online`.
    came_online: bool,
    /// Statuses to remember as delivered once committed.
    statuses: Vec<(Location, StatusFlags)>,
    /// Threshold crossings to undo if the commit fails.
    crossings: Vec<(Location, u8, Crossing)>,
    /// Linkage episodes this message's feedback closed.
    closed: Vec<(chrono::Duration, Outcome)>,
    deduplicated: usize,
}

impl Pipeline {
    /// Normalizes a signal and commits its events durably.
    pub async fn submit(&self, signal: FireSignal) -> Result<Submitted, SubmitError> {
        self.submit_all(
            &signal.unit_id,
            signal.protocol,
            std::slice::from_ref(&signal),
        )
        .await
    }

    /// Normalizes the signals one message of `unit_id` carried (a vendor payload holds several
    /// readings) and commits all their events in one durable transaction: the message is
    /// acknowledged whole or not at all. An empty list is a sign of life only.
    pub async fn submit_all(
        &self,
        unit_id: &str,
        protocol: Protocol,
        signals: &[FireSignal],
    ) -> Result<Submitted, SubmitError> {
        self.submit_message(unit_id, protocol, signals, None).await
    }

    /// [`Pipeline::submit_all`] of a message that may come again (an MQTT QoS 1 message after
    /// a crash, an HTTP retry, a GB/T 26875.3 frame sent again): with `key`, a redelivery within
    /// its window commits nothing and answers with the ids its events got the first time.
    pub async fn submit_message(
        &self,
        unit_id: &str,
        protocol: Protocol,
        signals: &[FireSignal],
        key: Option<MessageKey>,
    ) -> Result<Submitted, SubmitError> {
        let registry = self.registry();
        let unit = registry.unit(unit_id).ok_or_else(|| {
            self.note_unknown_unit(unit_id, protocol);
            SubmitError::UnknownUnit(crate::registry::shown_id(unit_id))
        })?;
        debug_assert!(signals.iter().all(|s| s.unit_id == unit.id));
        let township = registry
            .township(&unit.township)
            .expect("the config loader checks every unit's township");
        let now = self.clock.now();
        let ctx = Context {
            unit,
            township,
            received_at: now.with_timezone(&self.offset),
        };
        let mut draft = self.sign_of_life(&ctx, now);
        for signal in signals {
            self.draft_signal(signal, &ctx, now, &mut draft);
        }
        self.link(&unit.id, now, &mut draft);
        let gathering = self
            .video
            .as_ref()
            .and_then(|v| v.prepare(unit, &draft.events));
        let skip = usize::from(draft.came_online);
        let own: Vec<Uuid> = draft.events.iter().skip(skip).map(|e| e.id).collect();
        match self
            .commit_keyed(&mut draft.events, key.map(|k| (k, own)))
            .await
        {
            Ok(receipt) => {
                if let Some(g) = gathering {
                    // a redelivery committed nothing: no picture to attach
                    let _ = g.send(receipt.repeated.is_none());
                }
                Ok(self.keep(unit, township, now, draft, receipt))
            }
            Err(e) => {
                self.undo(&unit.id, now, &draft);
                Err(e.into())
            }
        }
    }

    /// Every message is a sign of life: a unit that was offline comes back with `unit.online`.
    fn sign_of_life(&self, ctx: &Context<'_>, now: DateTime<Utc>) -> Draft {
        let (before, came_online) = {
            let mut l = self.liveness.lock();
            (l.state(&ctx.unit.id), l.seen(&ctx.unit.id, now))
        };
        let mut draft = Draft {
            // online now, with or without an event (a first contact raises none)
            was_offline: before.filter(|b| !b.online),
            came_online: came_online.is_some(),
            ..Draft::default()
        };
        if let Some(change) = &came_online {
            draft.events.push(unit_event(
                change,
                ctx.unit,
                ctx.township,
                ctx.received_at,
                Uuid::now_v7(),
            ));
        }
        draft
    }

    /// One signal's events: repeated statuses are counted, not re-delivered; analog readings
    /// raise (or clear) `fire.analog_threshold` when they cross a limit.
    fn draft_signal(
        &self,
        signal: &FireSignal,
        ctx: &Context<'_>,
        now: DateTime<Utc>,
        draft: &mut Draft,
    ) {
        let unit = &ctx.unit.id;
        match &signal.body {
            SignalBody::Status(r) => {
                let verdict = self.dedup.lock().check(unit, r.location, r.flags, now);
                if verdict == Verdict::Duplicate {
                    draft.deduplicated += 1;
                    self.metrics
                        .events_deduplicated_total
                        .with_label_values(&[signal.protocol.as_str()])
                        .inc();
                    return;
                }
                draft.statuses.push((r.location, r.flags));
            }
            SignalBody::Analog(r) => {
                let crossing = self.thresholds.lock().observe(
                    unit,
                    r.location,
                    r.analog_type,
                    r.value,
                    r.limits,
                );
                if let Some(c) = crossing {
                    let event = threshold_event(&c, r, signal, ctx, Uuid::now_v7());
                    draft.events.push(event);
                    draft.crossings.push((r.location, r.analog_type, c));
                }
            }
            _ => {}
        }
        draft
            .events
            .extend(normalize(signal, ctx, &mut Uuid::now_v7));
    }

    /// Linkage: an alarm opens an episode; feedback closes it with its response time.
    fn link(&self, unit: &str, now: DateTime<Utc>, draft: &mut Draft) {
        let mut linkage = self.linkage.lock();
        for e in &mut draft.events {
            match e.kind {
                Kind::FireAlarm => linkage.alarm(unit, now),
                Kind::FireLinkageFeedback => {
                    if let (Some((response, outcome)), Some(fire)) =
                        (linkage.feedback(unit, now), e.fire.as_mut())
                    {
                        fire.linkage_response_s = Some(response.num_milliseconds() as f64 / 1000.0);
                        fire.linkage_result = Some(outcome.as_str().to_string());
                        draft.closed.push((response, outcome));
                    }
                }
                _ => {}
            }
        }
    }

    /// The commit failed: what the trackers learnt from the message is forgotten.
    fn undo(&self, unit: &str, now: DateTime<Utc>, draft: &Draft) {
        let mut linkage = self.linkage.lock();
        for (response, _) in &draft.closed {
            linkage.alarm(unit, now - *response); // reopen: the retry closes it again
        }
        drop(linkage);
        let mut thresholds = self.thresholds.lock();
        for (location, analog_type, c) in draft.crossings.iter().rev() {
            thresholds.undo(unit, *location, *analog_type, c);
        }
        drop(thresholds);
        if let Some(before) = draft.was_offline {
            self.liveness.lock().restore(unit, before);
        }
    }

    /// The commit succeeded: gauges, linkage counters and dedup memory follow.
    fn keep(
        &self,
        unit: &Unit,
        township: &Township,
        now: DateTime<Utc>,
        draft: Draft,
        receipt: Receipt,
    ) -> Submitted {
        if draft.was_offline.is_some() {
            self.update_unit_metrics(&township.code);
        }
        for (_, outcome) in &draft.closed {
            self.metrics
                .linkage_feedback_total
                .with_label_values(&[outcome.as_str()])
                .inc();
        }
        if !draft.statuses.is_empty() {
            let mut dedup = self.dedup.lock();
            for (location, flags) in draft.statuses {
                dedup.record(&unit.id, location, flags, now);
            }
        }
        let ids: Vec<Uuid> = match receipt.repeated {
            Some(first) => first,
            // the unit.online event is the gateway's, not the message's
            None => receipt
                .committed
                .iter()
                .skip(usize::from(draft.came_online))
                .map(|c| c.id)
                .collect(),
        };
        Submitted {
            events: ids,
            deduplicated: draft.deduplicated,
        }
    }
}
