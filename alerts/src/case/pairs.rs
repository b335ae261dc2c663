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
