//! `fire.*`: a [`FireSignal`] from a registered unit becomes zero or more events.
//!
//! | signal | events |
//! |---|---|
//! | status flag `fire` | `fire.alarm` |
//! | `fault`, `bus_fault` | `fire.fault` |
//! | `supervisory` | `fire.supervisory` |
//! | `disabled` | `fire.disabled` |
//! | `started` | `fire.linkage_started` |
//! | `feedback` | `fire.linkage_feedback` |
//! | `main_power_fault`, `backup_power_fault`, `power_fault` | `fire.power_fault` |
//! | `reset` | `fire.reset` |
//! | `normal`, `delay`, `manual`, `config_changed` | none (carried in `fire.flags` of the others) |
//! | operation `manual_alarm` | `fire.alarm` |
//! | operation `reset` | `fire.reset` |
//! | other operations | `fire.operation` |
//! | analog, heartbeat | none (liveness and thresholds are handled elsewhere) |
//!
//! One status message with several meaningful flags yields one event per flag.

use super::sanity;
use crate::codes;
use crate::event::{Event, FireDetail, Kind, Source, SourceKind, TownshipRef};
use crate::registry::{Township, Unit};
use crate::signal::{FireSignal, Location, Operation, SignalBody, StatusFlag};
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// What normalization needs to know besides the signal.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The unit that sent the signal.
    pub unit: &'a Unit,
    /// Its township.
    pub township: &'a Township,
    /// When the gateway received the signal.
    pub received_at: DateTime<FixedOffset>,
}

/// The event kind a status flag produces, if any.
pub fn kind_for_flag(flag: StatusFlag) -> Option<Kind> {
    use StatusFlag::*;
    match flag {
        Fire => Some(Kind::FireAlarm),
        Fault | BusFault => Some(Kind::FireFault),
        Supervisory => Some(Kind::FireSupervisory),
        Disabled => Some(Kind::FireDisabled),
        Started => Some(Kind::FireLinkageStarted),
        Feedback => Some(Kind::FireLinkageFeedback),
        MainPowerFault | BackupPowerFault | PowerFault => Some(Kind::FirePowerFault),
        Reset => Some(Kind::FireReset),
        Normal | Delay | Manual | ConfigChanged => None,
    }
}

/// The event kind an operation produces.
pub fn kind_for_operation(op: Operation) -> Kind {
    match op {
        Operation::ManualAlarm => Kind::FireAlarm,
        Operation::Reset => Kind::FireReset,
        _ => Kind::FireOperation,
    }
}

/// Turns a signal into events; `new_id` is called once per event.
pub fn normalize(
    signal: &FireSignal,
    ctx: &Context<'_>,
    new_id: &mut dyn FnMut() -> Uuid,
) -> Vec<Event> {
    let make = |id: Uuid, kind: Kind, detail: FireDetail| fire_event(signal, ctx, id, kind, detail);
    match &signal.body {
        SignalBody::Status(report) => {
            let flags: Vec<StatusFlag> = report.flags.iter().collect();
            report
                .flags
                .iter()
                .filter_map(|flag| kind_for_flag(flag).map(|kind| (flag, kind)))
                .map(|(flag, kind)| {
                    let mut detail = located(report.location);
                    detail.description = report.description.as_deref().and_then(sanity::clean_text);
                    detail.flags = flags.clone();
                    detail.flag = Some(flag);
                    make(new_id(), kind, detail)
                })
                .collect()
        }
        SignalBody::Operation(op) => {
            let mut detail = located(op.location);
            detail.operation = Some(op.operation);
            detail.operator = op.operator;
            vec![make(new_id(), kind_for_operation(op.operation), detail)]
        }
        SignalBody::Analog(_) | SignalBody::Heartbeat => Vec::new(),
    }
}

/// A `fire.*` event of a unit's signal: the one place the envelope (times, source, township)
/// is built.
pub(super) fn fire_event(
    signal: &FireSignal,
    ctx: &Context<'_>,
    id: Uuid,
    kind: Kind,
    detail: FireDetail,
) -> Event {
    let (occurred_at, clock_skew_s) = sanity::device_time(signal.occurred_at, ctx.received_at);
    let mut detail = detail;
    detail.clock_skew_s = clock_skew_s;
    let source = Source {
        kind: SourceKind::Unit,
        id: ctx.unit.id.clone(),
        name: ctx.unit.name.clone(),
        protocol: signal.protocol,
    };
    let township = TownshipRef::of(ctx.township);
    Event {
        title: title(kind, ctx.unit, &detail),
        fire: Some(detail),
        location: ctx.unit.place.block(),
        contacts: ctx.unit.contacts.block(),
        ..Event::envelope(id, kind, source, township, occurred_at, ctx.received_at)
    }
}

pub(super) fn located(location: Location) -> FireDetail {
    FireDetail {
        system_type: location.system_type,
        system_type_name: codes::system_type_name(location.system_type).map(str::to_string),
        system_addr: location.system_addr,
        component_type: location.component.map(|c| c.kind),
        component_type_name: location
            .component
            .and_then(|c| codes::component_type_name(c.kind))
            .map(str::to_string),
        component_addr: location.component.map(|c| c.addr),
        ..FireDetail::default()
    }
}

/// `火警 · 兰溪某商场 · 感烟火灾探测器 131082 · 3F east corridor`
fn title(kind: Kind, unit: &Unit, detail: &FireDetail) -> String {
    let mut parts = vec![kind.label().to_string(), unit.name.clone()];
    let what = match (detail.component_type, detail.component_addr) {
        (Some(ct), Some(addr)) => format!(
            "{} {}",
            detail
                .component_type_name
                .clone()
                .unwrap_or_else(|| format!("部件类型{ct}")),
            addr
        ),
        _ => format!(
            "{} {}号",
            detail
                .system_type_name
                .clone()
                .unwrap_or_else(|| format!("系统类型{}", detail.system_type)),
            detail.system_addr
        ),
    };
    parts.push(what);
    if let Some(op) = detail.operation {
        parts.push(op.as_str().to_string());
    }
    if let Some(d) = detail
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        parts.push(d.to_string());
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Township;
    use crate::signal::{Component, OperationReport, Protocol, StatusFlags, StatusReport};

    fn unit() -> Unit {
        Unit {
            camera_links: Vec::new(),
            id: "unit-0001".into(),
            name: "兰溪某商场".into(),
            township: "lanjiang".into(),
            heartbeat_timeout_s: None,
            gb26875_address: None,
            utc_offset: None,
            gb26875_peers: Vec::new(),
            cameras: vec![],
            place: Default::default(),
            contacts: Default::default(),
        }
    }

    fn township() -> Township {
        Township {
            code: "lanjiang".into(),
            name: "兰江街道".into(),
            webhook: None,
        }
    }

    fn received() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:01+08:00").unwrap()
    }

    fn status(flags: &[StatusFlag]) -> FireSignal {
        FireSignal {
            unit_id: "unit-0001".into(),
            protocol: Protocol::Http,
            occurred_at: Some(DateTime::parse_from_rfc3339("2026-11-28T02:00:00Z").unwrap()),
            body: SignalBody::Status(StatusReport {
                location: Location {
                    system_type: 1,
                    system_addr: 1,
                    component: Some(Component {
                        kind: 40,
                        addr: 131082,
                    }),
                },
                flags: flags.iter().copied().collect::<StatusFlags>(),
                description: Some("3F east corridor".into()),
            }),
        }
    }

    fn run(signal: &FireSignal) -> Vec<Event> {
        let (u, t) = (unit(), township());
        let ctx = Context {
            unit: &u,
            township: &t,
            received_at: received(),
        };
        let mut n = 0u128;
        normalize(signal, &ctx, &mut || {
            n += 1;
            Uuid::from_u128(n)
        })
    }

    #[test]
    fn fire_flag_becomes_a_critical_fire_alarm_with_detail() {
        let events = run(&status(&[StatusFlag::Fire]));
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e.kind, Kind::FireAlarm);
        assert_eq!(e.severity, crate::Severity::Critical);
        assert_eq!(e.township.code, "lanjiang");
        assert_eq!(e.source.id, "unit-0001");
        assert_eq!(e.source.protocol, Protocol::Http);
        // device time kept as an instant, shown in the gateway's offset
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-11-28T10:00:00+08:00");
        assert_eq!(e.received_at, received());
        let fire = e.fire.as_ref().unwrap();
        assert_eq!(fire.component_type, Some(40));
        assert_eq!(fire.component_addr, Some(131082));
        assert_eq!(fire.component_type_name.as_deref(), Some("感烟火灾探测器"));
        assert_eq!(fire.flag, Some(StatusFlag::Fire));
        assert_eq!(
            e.title,
            "火警 · 兰溪某商场 · 感烟火灾探测器 131082 · 3F east corridor"
        );
    }

    #[test]
    fn every_meaningful_flag_gives_one_event_and_the_rest_none() {
        let events = run(&status(&[
            StatusFlag::Fire,
            StatusFlag::Fault,
            StatusFlag::Started,
            StatusFlag::Manual,
            StatusFlag::Delay,
            StatusFlag::MainPowerFault,
        ]));
        let kinds: Vec<Kind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::FireAlarm,
                Kind::FireFault,
                Kind::FireLinkageStarted,
                Kind::FirePowerFault
            ]
        );
        let ids: std::collections::HashSet<_> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 4, "each event has its own id");
        for e in &events {
            assert_eq!(e.fire.as_ref().unwrap().flags.len(), 6, "all flags carried");
        }
        assert!(run(&status(&[StatusFlag::Normal])).is_empty());
    }

    #[test]
    fn every_flag_maps_as_the_vocabulary_implies() {
        use StatusFlag::*;
        let expect = [
            (Fire, Some(Kind::FireAlarm)),
            (Fault, Some(Kind::FireFault)),
            (BusFault, Some(Kind::FireFault)),
            (Disabled, Some(Kind::FireDisabled)),
            (Supervisory, Some(Kind::FireSupervisory)),
            (Started, Some(Kind::FireLinkageStarted)),
            (Feedback, Some(Kind::FireLinkageFeedback)),
            (MainPowerFault, Some(Kind::FirePowerFault)),
            (BackupPowerFault, Some(Kind::FirePowerFault)),
            (PowerFault, Some(Kind::FirePowerFault)),
            (Reset, Some(Kind::FireReset)),
            (Normal, None),
            (Delay, None),
            (Manual, None),
            (ConfigChanged, None),
        ];
        assert_eq!(expect.len(), StatusFlag::ALL.len(), "every flag decided");
        for (flag, kind) in expect {
            assert_eq!(kind_for_flag(flag), kind, "{flag}");
        }
    }

    #[test]
    fn operations_and_system_level_reports() {
        let mut s = status(&[]);
        s.occurred_at = None;
        s.body = SignalBody::Operation(OperationReport {
            location: Location {
                system_type: 1,
                system_addr: 2,
                component: None,
            },
            operation: Operation::ManualAlarm,
            operator: Some(7),
        });
        let e = &run(&s)[0];
        assert_eq!(e.kind, Kind::FireAlarm);
        assert_eq!(e.occurred_at, received(), "no device time: received time");
        assert_eq!(e.fire.as_ref().unwrap().operator, Some(7));
        assert_eq!(
            e.title,
            "火警 · 兰溪某商场 · 火灾报警系统 2号 · manual_alarm"
        );
        assert_eq!(kind_for_operation(Operation::Mute), Kind::FireOperation);
        assert_eq!(kind_for_operation(Operation::Reset), Kind::FireReset);
        s.body = SignalBody::Heartbeat;
        assert!(run(&s).is_empty());
    }
}
