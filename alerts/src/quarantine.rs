//! Unknown units that keep sending: rejected and counted, and — when enabled — listed here so
//! operators can see who is trying to connect and register them. Bounded: past `max` entries,
//! the one heard from longest ago is forgotten.

use crate::signal::Protocol;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// One unknown unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The unit id it used.
    pub unit: String,
    /// How it arrived (last time).
    pub protocol: Protocol,
    /// First message.
    #[serde(serialize_with = "crate::time::serialize")]
    pub first_seen: DateTime<Utc>,
    /// Last message.
    #[serde(serialize_with = "crate::time::serialize")]
    pub last_seen: DateTime<Utc>,
    /// Messages so far.
    pub messages: u64,
}

/// The quarantine list.
#[derive(Debug)]
pub struct Quarantine {
    max: usize,
    entries: HashMap<String, Entry>,
}

impl Quarantine {
    /// A list of at most `max` units.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            entries: HashMap::new(),
        }
    }

    /// Records a message from an unknown unit (its id cut to the longest a registry id may be,
    /// so the list is bounded in bytes as well as entries).
    pub fn record(&mut self, unit: &str, protocol: Protocol, now: DateTime<Utc>) {
        let unit = crate::registry::shown_id(unit);
        let unit = unit.as_str();
        if !self.entries.contains_key(unit) && self.entries.len() >= self.max {
            if let Some(oldest) = self
                .entries
                .values()
                .min_by_key(|e| e.last_seen)
                .map(|e| e.unit.clone())
            {
                self.entries.remove(&oldest);
            }
        }
        let e = self.entries.entry(unit.to_string()).or_insert(Entry {
            unit: unit.to_string(),
            protocol,
            first_seen: now,
            last_seen: now,
            messages: 0,
        });
        e.protocol = protocol;
        e.last_seen = now;
        e.messages += 1;
    }

    /// The list, most recently heard first.
    pub fn list(&self) -> Vec<Entry> {
        let mut v: Vec<Entry> = self.entries.values().cloned().collect();
        v.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then_with(|| a.unit.cmp(&b.unit))
        });
        v
    }

    /// Number of units listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn counts_orders_and_stays_bounded() {
        let mut q = Quarantine::new(2);
        q.record("a", Protocol::Mqtt, t(0));
        q.record("a", Protocol::Http, t(5));
        q.record("b", Protocol::Mqtt, t(3));
        let l = q.list();
        assert_eq!(
            l.iter().map(|e| e.unit.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(
            (l[0].messages, l[0].first_seen, l[0].protocol),
            (2, t(0), Protocol::Http)
        );
        q.record("c", Protocol::Mqtt, t(9)); // "b" was heard from longest ago
        assert_eq!(
            q.list().iter().map(|e| e.unit.as_str()).collect::<Vec<_>>(),
            vec!["c", "a"]
        );
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_huge_id_is_kept_cut_to_a_registry_id_length() {
        let mut q = Quarantine::new(10);
        let huge = "x".repeat(60_000);
        q.record(&huge, Protocol::Mqtt, t(0));
        q.record(&huge, Protocol::Mqtt, t(1));
        let l = q.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].messages, 2, "the same id, counted once");
        assert_eq!(
            l[0].unit.chars().count(),
            65,
            "64 characters and an ellipsis"
        );
    }
}
