//! Uptime accounting: how long a camera spent in each state over a window, from its logged
//! state changes. Time the gateway was not watching (stopped, crashed) is logged as `unknown`
//! when it starts again, so it never counts as online. Pure.

use crate::camera::CameraState as State;
use crate::outbox::CameraLog;
use serde::Serialize;

/// Seconds in each state over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Breakdown {
    /// Streaming.
    pub online_s: f64,
    /// Session up, no frames.
    pub stalled_s: f64,
    /// Streaming badly.
    pub degraded_s: f64,
    /// No working session.
    pub offline_s: f64,
    /// Not watched (before the camera was registered, or while the gateway was down).
    pub unknown_s: f64,
}

impl Breakdown {
    /// Online share of the time the state was known (`None` when none was).
    pub fn availability(&self) -> Option<f64> {
        let known = self.online_s + self.stalled_s + self.degraded_s + self.offline_s;
        (known > 0.0).then(|| self.online_s / known)
    }

    /// Adds another camera's (for a township's figure).
    pub fn add(&mut self, o: &Breakdown) {
        self.online_s += o.online_s;
        self.stalled_s += o.stalled_s;
        self.degraded_s += o.degraded_s;
        self.offline_s += o.offline_s;
        self.unknown_s += o.unknown_s;
    }

    fn put(&mut self, state: State, ms: i64) {
        let s = ms.max(0) as f64 / 1000.0;
        match state {
            State::Online => self.online_s += s,
            State::Stalled => self.stalled_s += s,
            State::Degraded => self.degraded_s += s,
            State::Offline => self.offline_s += s,
            State::Unknown => self.unknown_s += s,
        }
    }
}

/// The breakdown of `[from_ms, to_ms)` from a camera's log over that window.
pub fn breakdown(log: &CameraLog, from_ms: i64, to_ms: i64) -> Breakdown {
    let mut b = Breakdown::default();
    let mut state = log
        .before
        .map(|(_, s)| State::from_code(s))
        .unwrap_or(State::Unknown);
    let mut t = from_ms;
    for &(at, code) in &log.within {
        let at = at.clamp(t, to_ms);
        b.put(state, at - t);
        t = at;
        state = State::from_code(code);
    }
    b.put(state, to_ms - t);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_split_by_the_changes_and_unwatched_time_is_unknown() {
        // online from 1 000, offline from 5 000, unknown (gateway down) from 7 000, online from 9 000
        let log = CameraLog {
            before: Some((1_000, State::Online.code())),
            within: vec![
                (5_000, State::Offline.code()),
                (7_000, State::Unknown.code()),
                (9_000, State::Online.code()),
            ],
        };
        let b = breakdown(&log, 2_000, 10_000);
        assert_eq!(
            b,
            Breakdown {
                online_s: 4.0,
                offline_s: 2.0,
                unknown_s: 2.0,
                ..Breakdown::default()
            }
        );
        assert_eq!(b.availability(), Some(4.0 / 6.0));
        let never = breakdown(&CameraLog::default(), 0, 5_000);
        assert_eq!(never.unknown_s, 5.0);
        assert_eq!(never.availability(), None);
        let mut sum = b;
        sum.add(&never);
        assert_eq!(sum.unknown_s, 7.0);
    }
}
