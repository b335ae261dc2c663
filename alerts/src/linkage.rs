//! Fire linkage feedback: after a `fire.alarm` at a unit, does its linkage equipment (pumps,
//! fans, shutters) report feedback within the window? Pure: time is an argument.
//!
//! The response time (alarm → feedback, on the gateway's clock: device clocks drift) is attached
//! to the `fire.linkage_feedback` event. Each alarm ends as `in_time`, `late` (feedback after the
//! window) or `missing` (no feedback within the window; a late one may still follow for an hour).

use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// How an alarm's linkage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Feedback within the window.
    InTime,
    /// Feedback after the window.
    Late,
    /// No feedback within the window.
    Missing,
}

impl Outcome {
    /// The `result` label of `gateway_linkage_feedback_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::InTime => "in_time",
            Outcome::Late => "late",
            Outcome::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Open {
    alarm_at: DateTime<Utc>,
    missed: bool,
}

/// Open alarms per unit.
#[derive(Debug)]
pub struct Linkage {
    window: chrono::Duration,
    keep_missed: chrono::Duration,
    open: HashMap<String, Open>,
}

impl Linkage {
    /// A tracker with the given feedback window.
    pub fn new(window: Duration) -> Self {
        Self {
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            keep_missed: chrono::Duration::hours(1),
            open: HashMap::new(),
        }
    }

    /// A fire alarm at `unit`; the first alarm of an episode starts the clock.
    pub fn alarm(&mut self, unit: &str, at: DateTime<Utc>) {
        self.open.entry(unit.to_string()).or_insert(Open {
            alarm_at: at,
            missed: false,
        });
    }

    /// Linkage feedback from `unit`: the response time and outcome, if an alarm was open.
    pub fn feedback(
        &mut self,
        unit: &str,
        at: DateTime<Utc>,
    ) -> Option<(chrono::Duration, Outcome)> {
        let open = self.open.remove(unit)?;
        let response = at - open.alarm_at;
        let outcome = if open.missed || response > self.window {
            Outcome::Late
        } else {
            Outcome::InTime
        };
        Some((response, outcome))
    }

    /// Alarms whose window passed without feedback (each reported once); forgets missed alarms
    /// after an hour.
    pub fn expire(&mut self, now: DateTime<Utc>) -> usize {
        let mut missing = 0;
        let (window, keep) = (self.window, self.keep_missed);
        self.open.retain(|_, o| {
            if !o.missed && now - o.alarm_at > window {
                o.missed = true;
                missing += 1;
            }
            !(o.missed && now - o.alarm_at > keep)
        });
        missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn feedback_in_time_late_and_missing() {
        let mut l = Linkage::new(Duration::from_secs(60));
        assert_eq!(l.feedback("u1", t(0)), None, "no alarm open");
        l.alarm("u1", t(0));
        l.alarm("u1", t(10)); // a repeat does not restart the clock
        assert_eq!(
            l.feedback("u1", t(45)),
            Some((chrono::Duration::seconds(45), Outcome::InTime))
        );
        assert_eq!(l.feedback("u1", t(46)), None, "closed");

        l.alarm("u2", t(100));
        assert_eq!(l.expire(t(160)), 0);
        assert_eq!(l.expire(t(161)), 1, "missing");
        assert_eq!(l.expire(t(200)), 0, "reported once");
        assert_eq!(
            l.feedback("u2", t(250)),
            Some((chrono::Duration::seconds(150), Outcome::Late))
        );

        l.alarm("u3", t(0));
        l.expire(t(61));
        l.expire(t(3601));
        assert_eq!(l.feedback("u3", t(3602)), None, "forgotten after an hour");
    }
}
