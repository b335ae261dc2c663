//! The equipment side of the assessment: cameras' availability and integrity (完好率) and
//! units' networking rate (联网率), time-weighted over the window from the logs. Pure.

use crate::availability::{breakdown, Breakdown};
use crate::camera::CameraState;
use crate::outbox::{CameraLog, PatrolRecord};
use serde::Serialize;

/// A township's cameras over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CameraFigures {
    /// Registered cameras.
    pub registered: u64,
    /// Seconds online, summed over the cameras.
    pub online_s: f64,
    /// Seconds online with a clear picture.
    pub intact_s: f64,
    /// Seconds in a known state (online, stalled, degraded, offline).
    pub known_s: f64,
    /// `online_s / known_s` (在线率).
    pub availability: Option<f64>,
    /// `intact_s / known_s` (完好率).
    pub integrity: Option<f64>,
}

impl CameraFigures {
    /// Adds one camera: its state log and its picture log over `[from_ms, to_ms)`.
    pub fn add(&mut self, states: &CameraLog, pictures: &CameraLog, from_ms: i64, to_ms: i64) {
        let b = breakdown(states, from_ms, to_ms);
        self.registered += 1;
        self.online_s += b.online_s;
        self.known_s += b.online_s + b.stalled_s + b.degraded_s + b.offline_s;
        self.intact_s += intact_ms(states, pictures, from_ms, to_ms) as f64 / 1000.0;
    }

    /// Completes the shares.
    pub fn finish(&mut self) {
        let share = |x: f64| (self.known_s > 0.0).then(|| x / self.known_s);
        self.availability = share(self.online_s);
        self.integrity = share(self.intact_s);
    }
}

/// A township's units over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnitFigures {
    /// Registered units.
    pub registered: u64,
    /// Units never heard from by the window's end.
    pub never_heard: u64,
    /// Seconds online, summed over the units.
    pub online_s: f64,
    /// Seconds registered (units × window).
    pub registered_s: f64,
    /// `online_s / registered_s` (联网率): a unit not heard from counts as not networked.
    pub networking_rate: Option<f64>,
    /// Patrol checks (查岗) sent in the window.
    pub patrol_checks: u64,
    /// Of them, answered within their timeout.
    pub patrol_answered_in_time: u64,
    /// `patrol_answered_in_time / patrol_checks`.
    pub patrol_in_time_share: Option<f64>,
    /// Median time from sending to the answer, seconds (answered checks).
    pub patrol_median_response_s: Option<f64>,
    #[serde(skip)]
    responses: Vec<f64>,
}

impl UnitFigures {
    /// Adds one unit's liveness log over `[from_ms, to_ms)`.
    pub fn add(&mut self, log: &CameraLog, from_ms: i64, to_ms: i64) {
        let b: Breakdown = breakdown(log, from_ms, to_ms);
        self.registered += 1;
        let heard = |code: u8| code != CameraState::Unknown.code();
        self.never_heard += u64::from(
            !log.before.is_some_and(|(_, c)| heard(c))
                && !log.within.iter().any(|&(_, c)| heard(c)),
        );
        self.online_s += b.online_s;
        self.registered_s += (to_ms - from_ms).max(0) as f64 / 1000.0;
    }

    /// Adds one unit's patrol checks: (sent ms, record).
    pub fn add_patrols(&mut self, patrols: &[(i64, PatrolRecord)]) {
        for (sent, r) in patrols {
            self.patrol_checks += 1;
            if let Some(answered) = r.answered_ms {
                let s = (answered - sent).max(0) as f64 / 1000.0;
                self.responses.push(s);
                self.patrol_answered_in_time += u64::from(s <= f64::from(r.timeout_min) * 60.0);
            }
        }
    }

    /// Completes the rates.
    pub fn finish(&mut self) {
        self.networking_rate = (self.registered_s > 0.0).then(|| self.online_s / self.registered_s);
        self.patrol_in_time_share =
            super::tally::ratio(self.patrol_answered_in_time, self.patrol_checks);
        self.responses.sort_by(f64::total_cmp);
        self.patrol_median_response_s = super::tally::percentile(&self.responses, 0.5);
    }
}

/// Milliseconds of `[from_ms, to_ms)` a camera was online with a clear picture: the state log
/// and the picture log walked together (a picture with no verdict yet counts as clear).
pub fn intact_ms(states: &CameraLog, pictures: &CameraLog, from_ms: i64, to_ms: i64) -> i64 {
    let online = |code: u8| CameraState::from_code(code) == CameraState::Online;
    let mut state_on = states.before.is_some_and(|(_, c)| online(c));
    let mut clear = pictures.before.is_none_or(|(_, c)| c == 0);
    let mut changes: Vec<(i64, bool, u8)> = states
        .within
        .iter()
        .map(|&(at, c)| (at, true, c))
        .chain(pictures.within.iter().map(|&(at, c)| (at, false, c)))
        .collect();
    changes.sort_by_key(|c| c.0);
    let mut t = from_ms;
    let mut total = 0;
    for (at, is_state, code) in changes {
        let at = at.clamp(t, to_ms);
        if state_on && clear {
            total += at - t;
        }
        t = at;
        if is_state {
            state_on = online(code);
        } else {
            clear = code == 0;
        }
    }
    if state_on && clear {
        total += to_ms - t;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intact_time_is_online_time_with_a_clear_picture() {
        // online 0–10 s, offline 10–15 s, online 15–20 s; picture failing 4–12 s
        let states = CameraLog {
            before: Some((-1, 1)),
            within: vec![(10_000, 4), (15_000, 1)],
        };
        let pictures = CameraLog {
            before: None,
            within: vec![(4_000, 1), (12_000, 0)],
        };
        assert_eq!(intact_ms(&states, &pictures, 0, 20_000), 4_000 + 5_000);
        let mut c = CameraFigures::default();
        c.add(&states, &pictures, 0, 20_000);
        c.finish();
        assert_eq!(c.availability, Some(15.0 / 20.0));
        assert_eq!(c.integrity, Some(9.0 / 20.0));
    }

    #[test]
    fn a_unit_never_heard_counts_against_the_networking_rate() {
        let mut u = UnitFigures::default();
        u.add(
            &CameraLog {
                before: Some((0, 1)),
                within: vec![(5_000, 4)],
            },
            0,
            10_000,
        );
        u.add(&CameraLog::default(), 0, 10_000);
        u.finish();
        assert_eq!((u.registered, u.never_heard), (2, 1));
        assert_eq!(u.networking_rate, Some(5.0 / 20.0));
    }
}
