//! Pairs that close themselves: an outage's ticket is closed by the event that ends it.
//!
//! | opens a ticket | closed by |
//! |---|---|
//! | `camera.offline`, `camera.stalled`, `camera.degraded` | `camera.online` of the same camera |
//! | `camera.quality` with failing checks | `camera.quality` of the same camera with none failing |
//! | `unit.offline` | `unit.online` of the same unit |
//! | `fire.analog_threshold` raised | the same threshold cleared (same unit, place, analog type and side) |
//!
//! Both sides of a pair compute the same key, so the outbox finds the open tickets by key.

use crate::event::{Event, Kind};

/// What an event is to the pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pair {
    /// It opens a ticket under this key.
    Opens(String),
    /// It closes the open tickets under this key.
    Closes(String),
}

/// The pair role of an event, if it has one.
pub fn pair(event: &Event) -> Option<Pair> {
    let source = &event.source.id;
    match event.kind {
        Kind::CameraOffline | Kind::CameraStalled | Kind::CameraDegraded => {
            Some(Pair::Opens(format!("camera-outage/{source}")))
        }
        Kind::CameraOnline => Some(Pair::Closes(format!("camera-outage/{source}"))),
        Kind::CameraQuality => {
            let failing = event
                .camera
                .as_ref()
                .is_some_and(|c| !c.failing_checks.is_empty());
            let key = format!("camera-quality/{source}");
            Some(if failing {
                Pair::Opens(key)
            } else {
                Pair::Closes(key)
            })
        }
        Kind::UnitOffline => Some(Pair::Opens(format!("unit-offline/{source}"))),
        Kind::UnitOnline => Some(Pair::Closes(format!("unit-offline/{source}"))),
        Kind::FireAnalogThreshold => threshold(event),
        _ => None,
    }
}

fn threshold(event: &Event) -> Option<Pair> {
    let fire = event.fire.as_ref()?;
    let analog = fire.analog.as_ref()?;
    let side = if analog.above.is_some() {
        "high"
    } else {
        "low"
    };
    let component = fire
        .component_addr
        .map_or_else(|| "-".to_string(), |c| c.to_string());
    let key = format!(
        "threshold/{}/{}/{}/{}/{}/{side}",
        event.source.id, fire.system_type, fire.system_addr, component, analog.analog_type
    );
    Some(if analog.cleared {
        Pair::Closes(key)
    } else {
        Pair::Opens(key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, extra: serde_json::Value) -> Event {
        let mut v = json!({
            "id": "01900000-0000-7000-8000-000000000001", "kind": kind, "severity": "minor",
            "title": "t", "occurred_at": "2026-11-30T08:00:00+08:00",
            "received_at": "2026-11-30T08:00:00+08:00",
            "source": {"kind": "camera", "id": "cam-1", "name": "c", "protocol": "rtsp"},
            "township": {"code": "lanjiang", "name": "兰江"}, "evidence": []
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn both_sides_of_a_pair_compute_the_same_key() {
        let offline = pair(&event("camera.offline", json!({})));
        let online = pair(&event("camera.online", json!({})));
        assert_eq!(offline, Some(Pair::Opens("camera-outage/cam-1".into())));
        assert_eq!(online, Some(Pair::Closes("camera-outage/cam-1".into())));
        let failing = json!({"camera": {"state": "online", "failing_checks": ["blurred"]}});
        let cleared = json!({"camera": {"state": "online", "cleared_checks": ["blurred"]}});
        assert_eq!(
            pair(&event("camera.quality", failing)),
            Some(Pair::Opens("camera-quality/cam-1".into()))
        );
        assert_eq!(
            pair(&event("camera.quality", cleared)),
            Some(Pair::Closes("camera-quality/cam-1".into()))
        );
        let analog = |cleared: bool| {
            json!({"fire": {"system_type": 1, "system_addr": 1, "component_addr": 5,
                            "analog": {"analog_type": 9, "value": 0.4, "unit": "A", "above": 0.3, "cleared": cleared}}})
        };
        let (raised, clear) = (
            pair(&event("fire.analog_threshold", analog(false))),
            pair(&event("fire.analog_threshold", analog(true))),
        );
        match (raised, clear) {
            (Some(Pair::Opens(a)), Some(Pair::Closes(b))) => assert_eq!(a, b),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            pair(&event("fire.alarm", json!({}))),
            None,
            "a fire alarm never closes itself"
        );
    }
}
