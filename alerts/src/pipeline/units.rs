//! Units: liveness expiry, the quarantine list of unknown senders, linkage windows, and the
//! online gauges (联网率).

use super::{Pipeline, SubmitError};
use crate::liveness::{Change, UnitState};
use crate::normalize::unit_event;
use crate::outbox::{Op, OutboxError};
use crate::quarantine::Entry;
use crate::signal::Protocol;
use uuid::Uuid;

impl Pipeline {
    /// Commits `unit.offline` for every unit silent past its timeout; call it every second.
    /// A change whose event cannot be committed now (outbox full) is undone and found again
    /// on the next call. Returns the number of units that went offline.
    pub async fn expire_units(&self) -> Result<usize, SubmitError> {
        let now = self.clock.now();
        let changes = self.liveness.lock().expire(now);
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
            let registry = self.registry();
            let Some(unit) = registry.unit(id) else {
                continue;
            };
            let township = registry.township(&unit.township).expect("checked township");
            let event = unit_event(
                &change,
                unit,
                township,
                now.with_timezone(&self.offset),
                Uuid::now_v7(),
            );
            match self.commit(&mut [event]).await {
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
                    self.liveness.lock().restore(id, was);
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
            let mut q = q.lock();
            q.record(unit, protocol, self.clock.now());
            self.metrics.quarantined_units.set(q.len() as i64);
        }
    }

    /// The quarantine list (`None` when disabled), most recently heard first.
    pub fn quarantined(&self) -> Option<Vec<Entry>> {
        self.quarantine.as_ref().map(|q| q.lock().list())
    }

    /// Counts alarms whose linkage feedback window passed without feedback; call it every second.
    pub fn expire_linkage(&self) -> usize {
        let missing = self.linkage.lock().expire(self.clock.now());
        self.metrics
            .linkage_feedback_total
            .with_label_values(&["missing"])
            .inc_by(missing as u64);
        missing
    }

    /// Writes the liveness snapshot to the outbox database (restart-safe online status).
    pub async fn persist_liveness(&self) -> Result<(), OutboxError> {
        let snapshot: Vec<(String, UnitState)> =
            self.liveness.lock().snapshot().into_iter().collect();
        self.outbox
            .request(Op::UnitStates(snapshot))
            .await
            .map(|_| ())
    }

    /// Records a patrol check (查岗) sent to a unit at `sent_at`, or its answer, for the
    /// assessment (kept with the uptime logs: durable within a second).
    pub fn record_patrol(
        &self,
        unit: &str,
        sent_at: chrono::DateTime<chrono::Utc>,
        timeout_min: u8,
        answered_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        self.outbox.record_now(Op::Patrol {
            unit: unit.to_string(),
            sent_ms: sent_at.timestamp_millis(),
            timeout_min,
            answered_ms: answered_at.map(|a| a.timestamp_millis()),
        });
    }

    /// A unit's connectivity.
    pub fn unit_state(&self, unit: &str) -> Option<UnitState> {
        self.liveness.lock().state(unit)
    }

    /// Online and registered units of a township.
    pub fn units_online(&self, township: &str) -> (usize, usize) {
        let l = self.liveness.lock();
        let mut online = 0;
        let mut registered = 0;
        for u in self.registry().units_in(township) {
            registered += 1;
            online += l.state(&u.id).is_some_and(|s| s.online) as usize;
        }
        (online, registered)
    }

    pub(super) fn update_unit_metrics(&self, township: &str) {
        let registry = self.registry();
        let units = registry.units_in(township);
        let l = self.liveness.lock();
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
}
