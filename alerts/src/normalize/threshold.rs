//! `fire.analog_threshold`: the event of a threshold crossing.

use super::fire::{fire_event, located, Context};
use crate::codes;
use crate::event::{AnalogDetail, Event, Kind};
use crate::signal::{AnalogReport, FireSignal};
use crate::threshold::{Crossing, Side};
use uuid::Uuid;

/// The `fire.analog_threshold` event of a threshold crossing (severity major when raised, info
/// when cleared).
pub fn threshold_event(
    crossing: &Crossing,
    report: &AnalogReport,
    signal: &FireSignal,
    ctx: &Context<'_>,
    id: Uuid,
) -> Event {
    let (band, cleared) = (crossing.band, crossing.cleared);
    let unit = codes::analog_unit(report.analog_type);
    let name = codes::analog_type(report.analog_type)
        .map(|(n, _, _)| n)
        .unwrap_or("模拟量");
    let high = crossing.side == Side::High;
    let mut detail = located(report.location);
    detail.analog = Some(AnalogDetail {
        analog_type: report.analog_type,
        value: report.value,
        unit: unit.to_string(),
        above: high.then_some(band.limit),
        clear_below: high.then_some(band.clear),
        below: (!high).then_some(band.limit),
        clear_above: (!high).then_some(band.clear),
        cleared,
    });
    let value = report.value;
    let what = match (high, cleared) {
        (true, false) => format!("{name} {value} {unit} > {} {unit}", band.limit),
        (true, true) => format!("{name} {value} {unit} < {} {unit} 已恢复", band.clear),
        (false, false) => format!("{name} {value} {unit} < {} {unit}", band.limit),
        (false, true) => format!("{name} {value} {unit} > {} {unit} 已恢复", band.clear),
    };
    let mut event = fire_event(signal, ctx, id, Kind::FireAnalogThreshold, detail);
    if cleared {
        event.severity = crate::Severity::Info;
    }
    event.title = format!("{} · {what}", event.title);
    event
}
