//! Deduplication of repeated identical status reports.
//!
//! Panels and bridges often repeat a status (a fire stays a fire) every few seconds. A report
//! whose flags equal the last report for the same component, within `window` of the first one
//! that was let through, is a duplicate: counted, not re-delivered. Any change of status
//! (including back to `normal`) is let through and restarts the window, so
//! fire → normal → fire gives two alarms.
//!
//! Pure: the time is an argument. Memory is bounded and small: a component is remembered by a
//! 64-bit hash of (unit, location) — about 40 bytes an entry — expired entries are pruned once
//! per window, so the table holds only what was reported within the last window, and at its
//! limit the oldest half is dropped. Forgetting costs one extra delivery, never a lost event;
//! a hash collision would need two components to collide *and* repeat the same flags within the
//! window (odds about n²/2⁶⁵ for n components).

use crate::signal::{Location, StatusFlags};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Whether a report is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it.
    New,
    /// Same status as the last delivered one for this component, within the window.
    Duplicate,
}

fn key(unit: &str, location: Location) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    unit.hash(&mut h);
    location.hash(&mut h);
    h.finish()
}

/// The dedup table.
#[derive(Debug)]
pub struct Dedup {
    window: chrono::Duration,
    max_entries: usize,
    last: HashMap<u64, (StatusFlags, DateTime<Utc>)>,
    last_prune: Option<DateTime<Utc>>,
}

impl Dedup {
    /// A table with the given window; a zero window disables dedup.
    pub fn new(window: std::time::Duration, max_entries: usize) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            max_entries: max_entries.max(2),
            last: HashMap::new(),
            last_prune: None,
        }
    }

    /// Whether a status report repeats the last one let through for its component, within the
    /// window. Does not record anything: call [`Dedup::record`] once the report's events are
    /// committed, so that a report refused downstream (outbox full) is not remembered as seen.
    pub fn check(
        &self,
        unit: &str,
        location: Location,
        flags: StatusFlags,
        now: DateTime<Utc>,
    ) -> Verdict {
        if self.window.is_zero() {
            return Verdict::New;
        }
        match self.last.get(&key(unit, location)) {
            Some((last_flags, since)) if *last_flags == flags && now - *since < self.window => {
                Verdict::Duplicate
            }
            _ => Verdict::New,
        }
    }

    /// Remembers a report that was let through.
    pub fn record(
        &mut self,
        unit: &str,
        location: Location,
        flags: StatusFlags,
        now: DateTime<Utc>,
    ) {
        if self.window.is_zero() {
            return;
        }
        let key = key(unit, location);
        let prune_due = self.last_prune.is_none_or(|t| now - t >= self.window);
        if prune_due || (self.last.len() >= self.max_entries && !self.last.contains_key(&key)) {
            self.prune(now);
        }
        self.last.insert(key, (flags, now));
    }

    /// [`Dedup::check`], then [`Dedup::record`] if new.
    pub fn observe(
        &mut self,
        unit: &str,
        location: Location,
        flags: StatusFlags,
        now: DateTime<Utc>,
    ) -> Verdict {
        let verdict = self.check(unit, location, flags, now);
        if verdict == Verdict::New {
            self.record(unit, location, flags, now);
        }
        verdict
    }

    /// Number of components remembered.
    pub fn len(&self) -> usize {
        self.last.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        self.last_prune = Some(now);
        let window = self.window;
        self.last.retain(|_, (_, since)| now - *since < window);
        if self.last.len() >= self.max_entries {
            let mut times: Vec<DateTime<Utc>> = self.last.values().map(|(_, t)| *t).collect();
            times.sort_unstable();
            let cutoff = times[times.len() / 2];
            self.last.retain(|_, (_, since)| *since > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::{Component, StatusFlag};
    use std::time::Duration;

    fn loc(addr: u32) -> Location {
        Location {
            system_type: 1,
            system_addr: 1,
            component: Some(Component { kind: 40, addr }),
        }
    }

    fn flags(f: &[StatusFlag]) -> StatusFlags {
        f.iter().copied().collect()
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn repeats_within_the_window_are_duplicates_and_changes_are_not() {
        let mut d = Dedup::new(Duration::from_secs(60), 1000);
        let fire = flags(&[StatusFlag::Fire]);
        assert_eq!(d.observe("u1", loc(1), fire, t(0)), Verdict::New);
        assert_eq!(d.observe("u1", loc(1), fire, t(30)), Verdict::Duplicate);
        assert_eq!(d.observe("u1", loc(1), fire, t(59)), Verdict::Duplicate);
        // the window runs from the delivered report, not the last duplicate
        assert_eq!(d.observe("u1", loc(1), fire, t(60)), Verdict::New);
        // another component, another unit: independent
        assert_eq!(d.observe("u1", loc(2), fire, t(61)), Verdict::New);
        assert_eq!(d.observe("u2", loc(1), fire, t(61)), Verdict::New);
        // a change in between lets the repeat through
        assert_eq!(
            d.observe("u1", loc(1), flags(&[StatusFlag::Normal]), t(62)),
            Verdict::New
        );
        assert_eq!(d.observe("u1", loc(1), fire, t(63)), Verdict::New);
    }

    #[test]
    fn zero_window_disables() {
        let mut d = Dedup::new(Duration::ZERO, 10);
        let fire = flags(&[StatusFlag::Fire]);
        assert_eq!(d.observe("u", loc(1), fire, t(0)), Verdict::New);
        assert_eq!(d.observe("u", loc(1), fire, t(0)), Verdict::New);
    }

    #[test]
    fn expired_entries_are_forgotten_within_a_window() {
        let mut d = Dedup::new(Duration::from_secs(60), 1_000_000);
        for i in 0..1000 {
            d.observe("u", loc(i), flags(&[StatusFlag::Fire]), t(i as i64 / 100));
        }
        assert_eq!(d.len(), 1000, "all within the window");
        d.observe("u", loc(5000), flags(&[StatusFlag::Fire]), t(200));
        assert_eq!(d.len(), 1, "older than the window: pruned");
    }

    #[test]
    fn memory_stays_bounded() {
        let mut d = Dedup::new(Duration::from_secs(3600), 100);
        for i in 0..10_000 {
            d.observe("u", loc(i), flags(&[StatusFlag::Fire]), t(i as i64));
            assert!(d.len() <= 100);
        }
    }
}
