use super::*;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_295_200, 0).unwrap()
}

/// A simulated camera: feeds `fps` frames per second (a keyframe every 2 s) and ticks every
/// second, collecting transitions.
struct Cam {
    h: Health,
    now: DateTime<Utc>,
    seen: Vec<Transition>,
}

impl Cam {
    fn new(config: HealthConfig) -> Self {
        Self {
            h: Health::new(config, t0()),
            now: t0(),
            seen: Vec::new(),
        }
    }

    fn stream(&mut self, seconds: i64, fps: u32) {
        for _ in 0..seconds {
            for f in 0..fps {
                let at = self.now + Duration::milliseconds(1000 * f as i64 / fps as i64);
                let key = f == 0 && self.now.timestamp() % 2 == 0;
                self.h.frame(at, 5000, key, 0);
            }
            self.now += Duration::seconds(1);
            self.seen.extend(self.h.tick(self.now));
        }
    }

    fn idle(&mut self, seconds: i64) {
        for _ in 0..seconds {
            self.now += Duration::seconds(1);
            self.seen.extend(self.h.tick(self.now));
        }
    }

    fn kinds(&self) -> Vec<State> {
        self.seen.iter().map(|t| t.to).collect()
    }
}

#[test]
fn a_streaming_camera_is_online_without_an_event_and_measured() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_up(c.now, Some(25.0));
    c.stream(8, 25);
    assert!(c.seen.is_empty(), "first look: no event");
    assert_eq!(c.h.state().0, State::Online);
    let m = c.h.measured(c.now);
    assert_eq!(m.fps, 25.0);
    assert_eq!(m.bitrate_kbps, 1000.0, "25 × 5000 B × 8 = 1 Mbit/s");
    assert_eq!(m.expected_fps, Some(25.0));
    assert_eq!(m.keyframe_interval_s, Some(2.0));
}

#[test]
fn short_outages_raise_nothing_long_ones_go_offline_then_online_with_the_time_away() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_up(c.now, Some(25.0));
    c.stream(6, 25);
    c.h.session_down(c.now, "connection_closed");
    c.idle(20);
    c.h.session_up(c.now, Some(25.0));
    c.stream(3, 25);
    assert!(c.seen.is_empty(), "20 s < offline_after: nothing");
    let down_at = c.now;
    c.h.session_down(c.now, "refused");
    c.idle(29);
    assert!(c.seen.is_empty());
    c.idle(1);
    assert_eq!(c.kinds(), [State::Offline]);
    let off = &c.seen[0];
    assert_eq!(off.at, down_at, "offline since the session was lost");
    assert_eq!(off.reason.as_deref(), Some("refused"));
    assert_eq!(off.from, State::Online);
    c.idle(10);
    c.h.session_up(c.now, Some(25.0));
    c.stream(2, 25);
    assert_eq!(c.kinds(), [State::Offline, State::Online]);
    assert_eq!(
        c.seen[1].away,
        Some(Duration::seconds(41)),
        "away from the loss to the return"
    );
}

#[test]
fn a_camera_never_reached_goes_offline_with_the_reason() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_down(c.now, "unauthorized");
    c.idle(30);
    assert_eq!(c.kinds(), [State::Offline]);
    assert_eq!(c.seen[0].reason.as_deref(), Some("unauthorized"));
    assert_eq!(c.seen[0].from, State::Unknown);
}

#[test]
fn frames_stopping_on_a_live_session_is_a_stall_and_frames_back_are_online() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_up(c.now, Some(25.0));
    c.stream(6, 25);
    c.idle(9);
    assert!(c.seen.is_empty(), "9 s < stall_after");
    c.idle(1);
    assert_eq!(c.kinds(), [State::Stalled]);
    let last_frame = c.h.last_frame().unwrap();
    assert_eq!(c.seen[0].at, last_frame, "stalled since the last frame");
    c.stream(2, 25);
    assert_eq!(c.kinds(), [State::Stalled, State::Online]);
    let away = c.seen[1].away.unwrap();
    assert_eq!(away, c.seen[1].at - last_frame);
    assert!(
        away > Duration::seconds(10) && away < Duration::seconds(12),
        "{away}"
    );
}

#[test]
fn a_low_frame_rate_degrades_after_the_debounce_and_recovers_after_it() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_up(c.now, Some(25.0));
    c.stream(6, 25);
    c.stream(12, 5);
    assert!(
        c.seen.is_empty(),
        "the window still holds good seconds, then the debounce"
    );
    c.stream(6, 5);
    assert_eq!(c.kinds(), [State::Degraded]);
    let d = &c.seen[0];
    assert_eq!(d.reason.as_deref(), Some("low_fps"));
    assert_eq!(d.measured.fps, 5.0);
    assert_eq!(d.measured.expected_fps, Some(25.0));
    c.stream(5, 25);
    assert_eq!(c.kinds(), [State::Degraded], "recovering: not yet");
    c.stream(12, 25);
    assert_eq!(c.kinds(), [State::Degraded, State::Online]);
}

#[test]
fn without_an_sdp_rate_the_best_observed_rate_is_the_norm() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.session_up(c.now, None);
    c.stream(8, 20);
    c.stream(25, 4);
    assert_eq!(c.kinds(), [State::Degraded]);
    assert_eq!(c.seen[0].measured.expected_fps, Some(20.0));
}

#[test]
fn a_flapping_camera_is_held_to_its_budget_and_corrected_later() {
    let mut c = Cam::new(HealthConfig {
        events_per_hour: 2,
        ..HealthConfig::default()
    });
    c.h.session_up(c.now, Some(25.0));
    c.stream(6, 25);
    for _ in 0..3 {
        c.h.session_down(c.now, "connection_closed");
        c.idle(31);
        c.h.session_up(c.now, Some(25.0));
        c.stream(3, 25);
    }
    assert_eq!(
        c.kinds(),
        [State::Offline, State::Online],
        "budget: two events"
    );
    assert!(c.h.suppressed() > 0, "the rest counted");
    c.h.session_down(c.now, "connection_closed");
    c.idle(31);
    // half an hour later one token is back: the township hears the current state
    c.idle(1800);
    assert_eq!(c.kinds(), [State::Offline, State::Online, State::Offline]);
}

#[test]
fn a_resumed_state_raises_no_event_when_unchanged() {
    let mut c = Cam::new(HealthConfig::default());
    c.h.resume(State::Offline);
    c.h.session_down(c.now, "timeout");
    c.idle(40);
    assert!(c.seen.is_empty(), "still offline as before the restart");
    c.h.session_up(c.now, Some(25.0));
    c.stream(2, 25);
    assert_eq!(c.kinds(), [State::Online]);
}
