//! Unit liveness: a unit is online after any message (a heartbeat or anything else), offline
//! after its timeout of silence. Pure: time is an argument.
//!
//! Restart-safe: the state is restored from the last snapshot; a unit that was online gets a
//! full timeout of grace from the restart (the gateway could not hear it while it was down), so
//! a restart produces no storm of offline/online events. A unit never heard from is offline
//! without an event, and its first message makes it online without one either (`unit.online`
//! means "back": a first deployment does not flood the townships with one event per unit).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// A unit's connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitState {
    /// Online now.
    pub online: bool,
    /// Since when (online or offline).
    #[serde(serialize_with = "crate::time::serialize")]
    pub since: DateTime<Utc>,
    /// Last message, if any was ever received.
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub last_seen: Option<DateTime<Utc>>,
}

/// A transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The unit reports again after having gone offline.
    Online {
        /// Unit id.
        unit: String,
        /// How long it had been offline.
        offline_for: chrono::Duration,
    },
    /// The unit has been silent for longer than its timeout.
    Offline {
        /// Unit id.
        unit: String,
        /// Its last message.
        last_seen: DateTime<Utc>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    timeout: chrono::Duration,
    state: UnitState,
}

/// Every registered unit's liveness.
#[derive(Debug, Default)]
pub struct Liveness {
    units: HashMap<String, Entry>,
}

impl Liveness {
    /// Units with their timeouts; `restored` is the last snapshot (may be empty).
    pub fn new(
        units: impl IntoIterator<Item = (String, Duration)>,
        restored: &HashMap<String, UnitState>,
        now: DateTime<Utc>,
    ) -> Self {
        let units = units
            .into_iter()
            .map(|(id, timeout)| {
                let state = match restored.get(&id) {
                    // silence while the gateway was down does not count against the unit
                    Some(s) if s.online => UnitState {
                        last_seen: Some(now),
                        ..*s
                    },
                    Some(s) => *s,
                    None => UnitState {
                        online: false,
                        since: now,
                        last_seen: None,
                    },
                };
                let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
                (id, Entry { timeout, state })
            })
            .collect();
        Self { units }
    }

    /// The units of a new registry: those kept keep their state (with their new timeout),
    /// new ones start offline and never seen (no event until they first report), removed ones
    /// are forgotten.
    pub fn retime(
        &mut self,
        units: impl IntoIterator<Item = (String, Duration)>,
        now: DateTime<Utc>,
    ) {
        let mut old = std::mem::take(&mut self.units);
        self.units = units
            .into_iter()
            .map(|(id, timeout)| {
                let timeout = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
                let state = old.remove(&id).map(|e| e.state).unwrap_or(UnitState {
                    online: false,
                    since: now,
                    last_seen: None,
                });
                (id, Entry { timeout, state })
            })
            .collect();
    }

    /// A message from `unit` arrived; `Some` when that brings it back online.
    pub fn seen(&mut self, unit: &str, now: DateTime<Utc>) -> Option<Change> {
        let entry = self.units.get_mut(unit)?;
        let was = entry.state;
        entry.state.last_seen = Some(now);
        if was.online {
            return None;
        }
        entry.state.online = true;
        entry.state.since = now;
        // first contact: online, but no event (nothing came back)
        was.last_seen?;
        Some(Change::Online {
            unit: unit.to_string(),
            offline_for: now - was.since,
        })
    }

    /// Units silent past their timeout go offline.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<Change> {
        let mut changes = Vec::new();
        for (id, entry) in &mut self.units {
            let last = entry.state.last_seen.unwrap_or(entry.state.since);
            if entry.state.online && now - last > entry.timeout {
                entry.state.online = false;
                entry.state.since = now;
                changes.push(Change::Offline {
                    unit: id.clone(),
                    last_seen: last,
                });
            }
        }
        changes.sort_by(|a, b| unit_of(a).cmp(unit_of(b)));
        changes
    }

    /// Puts a unit back as it was (its transition's event could not be committed).
    pub fn restore(&mut self, unit: &str, state: UnitState) {
        if let Some(e) = self.units.get_mut(unit) {
            e.state = state;
        }
    }

    /// One unit's state.
    pub fn state(&self, unit: &str) -> Option<UnitState> {
        self.units.get(unit).map(|e| e.state)
    }

    /// Every unit's state, for the snapshot.
    pub fn snapshot(&self) -> HashMap<String, UnitState> {
        self.units
            .iter()
            .map(|(id, e)| (id.clone(), e.state))
            .collect()
    }
}

fn unit_of(c: &Change) -> &str {
    match c {
        Change::Online { unit, .. } | Change::Offline { unit, .. } => unit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn two_units(restored: &HashMap<String, UnitState>, now: DateTime<Utc>) -> Liveness {
        Liveness::new(
            [
                ("u1".to_string(), Duration::from_secs(90)),
                ("u2".to_string(), Duration::from_secs(30)),
            ],
            restored,
            now,
        )
    }

    #[test]
    fn online_on_any_message_offline_after_the_timeout_and_back() {
        let mut l = two_units(&HashMap::new(), t(0));
        assert_eq!(
            l.expire(t(1000)),
            vec![],
            "never heard: offline without an event"
        );
        assert_eq!(
            l.seen("u1", t(1000)),
            None,
            "first contact: online without an event"
        );
        assert!(l.state("u1").unwrap().online);
        assert_eq!(l.seen("u1", t(1050)), None, "already online");
        assert_eq!(
            l.expire(t(1140)),
            vec![],
            "90 s of silence is not more than 90 s"
        );
        assert_eq!(
            l.expire(t(1141)),
            vec![Change::Offline {
                unit: "u1".into(),
                last_seen: t(1050)
            }]
        );
        assert_eq!(l.expire(t(2000)), vec![], "offline once");
        assert_eq!(
            l.seen("u1", t(2141)),
            Some(Change::Online {
                unit: "u1".into(),
                offline_for: chrono::Duration::seconds(1000)
            })
        );
        assert_eq!(l.seen("nobody", t(0)), None);
    }

    #[test]
    fn each_unit_has_its_own_timeout() {
        let mut l = two_units(&HashMap::new(), t(0));
        l.seen("u1", t(0));
        l.seen("u2", t(0));
        assert_eq!(
            l.expire(t(31)),
            vec![Change::Offline {
                unit: "u2".into(),
                last_seen: t(0)
            }]
        );
    }

    #[test]
    fn a_restart_restores_state_with_grace_and_no_storm() {
        let mut before = two_units(&HashMap::new(), t(0));
        before.seen("u1", t(10));
        let snapshot = before.snapshot();
        // the gateway was down 10 minutes: u1 was online, and is not declared offline at once
        let mut after = two_units(&snapshot, t(610));
        assert_eq!(after.state("u1").unwrap().since, t(10), "since is kept");
        assert!(after.state("u1").unwrap().online);
        assert_eq!(after.expire(t(611)), vec![]);
        assert_eq!(
            after.seen("u1", t(612)),
            None,
            "still online: no online event"
        );
        assert!(!after.state("u2").unwrap().online);
        // without news it does go offline, a full timeout after the restart
        assert_eq!(
            after.expire(t(703)),
            vec![Change::Offline {
                unit: "u1".into(),
                last_seen: t(612)
            }]
        );
    }

    #[test]
    fn restore_undoes_a_transition() {
        let mut l = two_units(&HashMap::new(), t(0));
        l.seen("u1", t(0));
        l.expire(t(100));
        let before = l.state("u1").unwrap();
        assert!(l.seen("u1", t(105)).is_some());
        l.restore("u1", before);
        assert!(
            l.seen("u1", t(106)).is_some(),
            "comes back again, with an event"
        );
    }

    #[test]
    fn a_reload_keeps_kept_units_starts_new_ones_unseen_and_forgets_removed_ones() {
        let mut l = two_units(&HashMap::new(), t(0));
        l.seen("u1", t(1));
        let secs = Duration::from_secs;
        l.retime(
            [("u1".to_string(), secs(5)), ("c".to_string(), secs(60))],
            t(2),
        );
        assert!(l.state("u1").unwrap().online, "u1 kept its state");
        assert_eq!(l.state("u2"), None, "u2 removed");
        assert_eq!(l.state("c").unwrap().last_seen, None, "c new and unseen");
        // u1's new timeout applies; c's first message is contact, not a comeback
        assert_eq!(l.expire(t(7)).len(), 1);
        assert_eq!(l.seen("c", t(8)), None);
    }
}
