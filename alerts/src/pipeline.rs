//! The pipeline sources submit to: registry lookup → liveness → dedup → normalize → durable
//! commit.
//!
//! [`Pipeline::submit`] returns only after the events are on disk; a source acknowledges its
//! device (HTTP 2xx, MQTT PUBACK, GB/T 26875.3 confirm) only when it returns `Ok`. Every message
//! from a unit — heartbeats and repeats included — counts as a sign of life; a unit that comes
//! online gets its `unit.online` event committed with the message's own events.

use crate::clock::Clock;
use crate::dedup::{Dedup, Verdict};
use crate::event::Kind;
use crate::linkage::Linkage;
use crate::liveness::{Change, Liveness, UnitState};
use crate::metrics::Metrics;
use crate::normalize::{normalize, threshold_event, unit_event, Context};
use crate::outbox::{Op, Outbox, OutboxError};
use crate::quarantine::{Entry, Quarantine};
use crate::registry::Registry;
use crate::signal::Protocol;
use crate::signal::{FireSignal, SignalBody};
use crate::threshold::Thresholds;
use chrono::FixedOffset;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What a submitted signal became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// Ids of the events committed.
    pub events: Vec<Uuid>,
    /// How many statuses repeated one already delivered (and produced no event).
    pub deduplicated: usize,
}

/// Why a signal was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The unit id is not in the registry.
    #[error("unit `{0}` is not in the registry")]
    UnknownUnit(String),
    /// Back-pressure: the outbox is full.
    #[error("{0}")]
    Full(OutboxError),
    /// The outbox could not commit (disk failure, shutting down).
    #[error("{0}")]
    Unavailable(OutboxError),
}

impl SubmitError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            SubmitError::UnknownUnit(_) => "unknown_unit",
            SubmitError::Full(_) => "outbox_full",
            SubmitError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<OutboxError> for SubmitError {
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Full { .. } => SubmitError::Full(e),
            other => SubmitError::Unavailable(other),
        }
    }
}

/// The state the pipeline keeps about units between messages.
pub struct Trackers {
    /// Repeated status reports.
    pub dedup: Dedup,
    /// Online / offline.
    pub liveness: Liveness,
    /// Fire alarm → linkage feedback.
    pub linkage: Linkage,
    /// Analog thresholds with hysteresis.
    pub thresholds: Thresholds,
    /// Unknown units that keep sending, when the quarantine list is enabled.
    pub quarantine: Option<Quarantine>,
}

/// The shared part of every source.
pub struct Pipeline {
    registry: Arc<Registry>,
    outbox: Outbox,
    dedup: Mutex<Dedup>,
    liveness: Mutex<Liveness>,
    linkage: Mutex<Linkage>,
    thresholds: Mutex<Thresholds>,
    quarantine: Option<Mutex<Quarantine>>,
    clock: Arc<dyn Clock>,
    offset: FixedOffset,
    metrics: Metrics,
    evidence: std::sync::OnceLock<Arc<dyn crate::evidence::EvidenceHook>>,
}

impl Pipeline {
    /// Assembles a pipeline. `offset` is the time zone events are written in.
    pub fn new(
        registry: Arc<Registry>,
        outbox: Outbox,
        trackers: Trackers,
        clock: Arc<dyn Clock>,
        offset: FixedOffset,
        metrics: Metrics,
    ) -> Self {
        let p = Self {
            registry,
            outbox,
            dedup: Mutex::new(trackers.dedup),
            liveness: Mutex::new(trackers.liveness),
            linkage: Mutex::new(trackers.linkage),
            thresholds: Mutex::new(trackers.thresholds),
            quarantine: trackers.quarantine.map(Mutex::new),
            clock,
            offset,
            metrics,
            evidence: std::sync::OnceLock::new(),
        };
        for t in p.registry.townships().to_vec() {
            p.update_unit_metrics(&t.code);
        }
        p
    }

    /// Installs the hook that gathers evidence (snapshots) for events being committed; the
    /// first one installed stays.
    pub fn set_evidence_hook(&self, hook: Arc<dyn crate::evidence::EvidenceHook>) {
        let _ = self.evidence.set(hook);
    }

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
        let unit = self.registry.unit(unit_id).ok_or_else(|| {
            self.note_unknown_unit(unit_id, protocol);
            SubmitError::UnknownUnit(unit_id.to_string())
        })?;
        debug_assert!(signals.iter().all(|s| s.unit_id == unit.id));
        let township = self
            .registry
            .township(&unit.township)
            .expect("the config loader checks every unit's township");
        let now = self.clock.now();
        let received_at = now.with_timezone(&self.offset);
        let ctx = Context {
            unit,
            township,
            received_at,
        };
        let (before, came_online) = {
            let mut l = self.liveness.lock().expect("liveness lock");
            let before = l.state(&unit.id);
            (before, l.seen(&unit.id, now))
        };
        // online now, with or without an event (a first contact raises none)
        let flipped = before.is_some_and(|b| !b.online);
        let mut events = Vec::new();
        if let Some(change) = &came_online {
            events.push(unit_event(
                change,
                unit,
                township,
                received_at,
                Uuid::now_v7(),
            ));
        }
        // statuses to record as delivered once committed, and threshold crossings to undo if not
        let mut statuses = Vec::new();
        let mut crossings = Vec::new();
        let mut deduplicated = 0;
        for signal in signals {
            match &signal.body {
                SignalBody::Status(r) => {
                    let verdict = self
                        .dedup
                        .lock()
                        .expect("dedup lock")
                        .check(&unit.id, r.location, r.flags, now);
                    if verdict == Verdict::Duplicate {
                        deduplicated += 1;
                        self.metrics
                            .events_deduplicated_total
                            .with_label_values(&[signal.protocol.as_str()])
                            .inc();
                        continue;
                    }
                    statuses.push((r.location, r.flags));
                }
                // analog readings: a threshold crossing raises (or clears) fire.analog_threshold
                SignalBody::Analog(r) => {
                    let c = self.thresholds.lock().expect("thresholds lock").observe(
                        &unit.id,
                        r.location,
                        r.analog_type,
                        r.value,
                        r.limits,
                    );
                    if let Some(c) = c {
                        events.push(threshold_event(&c, r, signal, &ctx, Uuid::now_v7()));
                        crossings.push((r.location, r.analog_type, c));
                    }
                }
                _ => {}
            }
            events.extend(normalize(signal, &ctx, &mut Uuid::now_v7));
        }
        // linkage: an alarm opens an episode; feedback closes it with its response time
        let mut closed = Vec::new();
        {
            let mut linkage = self.linkage.lock().expect("linkage lock");
            for e in &mut events {
                match e.kind {
                    Kind::FireAlarm => linkage.alarm(&unit.id, now),
                    Kind::FireLinkageFeedback => {
                        if let (Some((response, outcome)), Some(fire)) =
                            (linkage.feedback(&unit.id, now), e.fire.as_mut())
                        {
                            fire.linkage_response_s =
                                Some(response.num_milliseconds() as f64 / 1000.0);
                            fire.linkage_result = Some(outcome.as_str().to_string());
                            closed.push((response, outcome));
                        }
                    }
                    _ => {}
                }
            }
        }
        let gathering = self.evidence.get().and_then(|h| h.prepare(unit, &events));
        let receipt = match self
            .outbox
            .commit(&events, township.webhook.is_some())
            .await
        {
            Ok(r) => {
                if let Some(g) = gathering {
                    let _ = g.send(true);
                }
                r
            }
            Err(e) => {
                let mut linkage = self.linkage.lock().expect("linkage lock");
                for (response, _) in &closed {
                    linkage.alarm(&unit.id, now - *response); // reopen: the retry closes it again
                }
                drop(linkage);
                let mut thresholds = self.thresholds.lock().expect("thresholds lock");
                for (location, analog_type, c) in crossings.iter().rev() {
                    thresholds.undo(&unit.id, *location, *analog_type, c);
                }
                drop(thresholds);
                if let (true, Some(before)) = (flipped, before) {
                    self.liveness
                        .lock()
                        .expect("liveness lock")
                        .restore(&unit.id, before);
                }
                return Err(e.into());
            }
        };
        if flipped {
            self.update_unit_metrics(&township.code);
        }
        for (_, outcome) in closed {
            self.metrics
                .linkage_feedback_total
                .with_label_values(&[outcome.as_str()])
                .inc();
        }
        if !statuses.is_empty() {
            let mut dedup = self.dedup.lock().expect("dedup lock");
            for (location, flags) in statuses {
                dedup.record(&unit.id, location, flags, now);
            }
        }
        let mut ids: Vec<Uuid> = receipt.committed.iter().map(|c| c.id).collect();
        if came_online.is_some() {
            ids.remove(0); // the unit.online event is the gateway's, not the message's
        }
        Ok(Submitted {
            events: ids,
            deduplicated,
        })
    }

    /// Commits `unit.offline` for every unit silent past its timeout; call it every second.
    /// A change whose event cannot be committed now (outbox full) is undone and found again
    /// on the next call. Returns the number of units that went offline.
    pub async fn expire_units(&self) -> Result<usize, SubmitError> {
        let now = self.clock.now();
        let changes = self.liveness.lock().expect("liveness lock").expire(now);
        let mut done = 0;
        let mut first_error = None;
        for change in changes {
            let Change::Offline {
                unit: id,
                last_seen,
            } = &change
            else {
                continue;
            };
            let Some(unit) = self.registry.unit(id) else {
                continue;
            };
            let township = self
                .registry
                .township(&unit.township)
                .expect("checked township");
            let event = unit_event(
                &change,
                unit,
                township,
                now.with_timezone(&self.offset),
                Uuid::now_v7(),
            );
            match self
                .outbox
                .commit(&[event], township.webhook.is_some())
                .await
            {
                Ok(_) => {
                    done += 1;
                    self.update_unit_metrics(&township.code);
                }
                Err(e) => {
                    let was = UnitState {
                        online: true,
                        since: *last_seen,
                        last_seen: Some(*last_seen),
                    };
                    self.liveness
                        .lock()
                        .expect("liveness lock")
                        .restore(id, was);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(done),
        }
    }

    /// Notes a message from a unit that is not registered (it is rejected either way); listed
    /// when the quarantine list is enabled.
    pub fn note_unknown_unit(&self, unit: &str, protocol: Protocol) {
        if let Some(q) = &self.quarantine {
            let mut q = q.lock().expect("quarantine lock");
            q.record(unit, protocol, self.clock.now());
            self.metrics.quarantined_units.set(q.len() as i64);
        }
    }

    /// The quarantine list (`None` when disabled), most recently heard first.
    pub fn quarantined(&self) -> Option<Vec<Entry>> {
        self.quarantine
            .as_ref()
            .map(|q| q.lock().expect("quarantine lock").list())
    }

    /// Counts alarms whose linkage feedback window passed without feedback; call it every second.
    pub fn expire_linkage(&self) -> usize {
        let missing = self
            .linkage
            .lock()
            .expect("linkage lock")
            .expire(self.clock.now());
        self.metrics
            .linkage_feedback_total
            .with_label_values(&["missing"])
            .inc_by(missing as u64);
        missing
    }

    /// Writes the liveness snapshot to the outbox database (restart-safe online status).
    pub async fn persist_liveness(&self) -> Result<(), OutboxError> {
        let snapshot: Vec<(String, UnitState)> = self
            .liveness
            .lock()
            .expect("liveness lock")
            .snapshot()
            .into_iter()
            .collect();
        self.outbox
            .request(Op::UnitStates(snapshot))
            .await
            .map(|_| ())
    }

    /// A unit's connectivity.
    pub fn unit_state(&self, unit: &str) -> Option<UnitState> {
        self.liveness.lock().expect("liveness lock").state(unit)
    }

    /// Online and registered units of a township.
    pub fn units_online(&self, township: &str) -> (usize, usize) {
        let l = self.liveness.lock().expect("liveness lock");
        let mut online = 0;
        let mut registered = 0;
        for u in self.registry.units_in(township) {
            registered += 1;
            online += l.state(&u.id).is_some_and(|s| s.online) as usize;
        }
        (online, registered)
    }

    fn update_unit_metrics(&self, township: &str) {
        let units = self.registry.units_in(township);
        let l = self.liveness.lock().expect("liveness lock");
        let mut online = 0usize;
        for u in units {
            let up = l.state(&u.id).is_some_and(|s| s.online);
            online += up as usize;
            self.metrics
                .unit_up
                .with_label_values(&[u.id.as_str(), township])
                .set(up as i64);
        }
        let ratio = if units.is_empty() {
            0.0
        } else {
            online as f64 / units.len() as f64
        };
        self.metrics
            .unit_online_ratio
            .with_label_values(&[township])
            .set(ratio);
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The outbox.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The time zone events are written in.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }
}
