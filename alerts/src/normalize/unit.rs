//! `unit.online` / `unit.offline`: the events of a unit's liveness changes.

use crate::event::{Event, Kind, Source, SourceKind, TownshipRef, UnitDetail};
use crate::liveness::Change;
use crate::registry::{Township, Unit};
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// The `unit.online` / `unit.offline` event of a liveness change.
pub fn unit_event(
    change: &Change,
    unit: &Unit,
    township: &Township,
    received_at: DateTime<FixedOffset>,
    id: Uuid,
) -> Event {
    let offset = *received_at.offset();
    let (kind, detail, occurred_at, what) = match change {
        Change::Online { offline_for, .. } => (
            Kind::UnitOnline,
            UnitDetail {
                online: true,
                last_seen: None,
                offline_for_s: Some(offline_for.num_seconds()),
            },
            received_at,
            format!("离线 {} 秒后恢复", offline_for.num_seconds()),
        ),
        Change::Offline { last_seen, .. } => {
            let last = last_seen.with_timezone(&offset);
            (
                Kind::UnitOffline,
                UnitDetail {
                    online: false,
                    last_seen: Some(last),
                    offline_for_s: None,
                },
                received_at,
                format!("{} 秒无消息", (received_at - last).num_seconds()),
            )
        }
    };
    let source = Source {
        kind: SourceKind::Unit,
        id: unit.id.clone(),
        name: unit.name.clone(),
        protocol: crate::signal::Protocol::Gateway,
    };
    Event {
        title: format!("{} · {} · {what}", kind.label(), unit.name),
        unit: Some(detail),
        location: unit.place.block(),
        contacts: unit.contacts.block(),
        ..Event::envelope(
            id,
            kind,
            source,
            TownshipRef::of(township),
            occurred_at,
            received_at,
        )
    }
}
