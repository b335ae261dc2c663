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
    // the sensor's resolution, or finer where a limit needs it (the event keeps the raw value)
    let resolution = codes::analog_type(report.analog_type).map_or(0.01, |(_, _, r)| r);
    let places = [resolution, band.limit, band.clear]
        .into_iter()
        .map(decimals)
        .max()
        .unwrap_or(0);
    let shown = |v: f64| format!("{v:.places$}");
    let (value, limit, clear) = (shown(report.value), shown(band.limit), shown(band.clear));
    let what = match (high, cleared) {
        (true, false) => format!("{name} {value} {unit} > {limit} {unit}"),
        (true, true) => format!("{name} {value} {unit} < {clear} {unit} 已恢复"),
        (false, false) => format!("{name} {value} {unit} < {limit} {unit}"),
        (false, true) => format!("{name} {value} {unit} > {clear} {unit} 已恢复"),
    };
    let mut event = fire_event(signal, ctx, id, Kind::FireAnalogThreshold, detail);
    if cleared {
        event.severity = crate::Severity::Info;
    }
    event.title = format!("{} · {what}", event.title);
    event
}

/// Decimal places of a number as written shortest (at most 3): 0.1 → 1, 0.25 → 2, 300 → 0.
fn decimals(x: f64) -> usize {
    let text = format!("{x}");
    text.split_once('.').map_or(0, |(_, f)| f.len()).min(3)
}

#[cfg(test)]
mod tests {
    use super::decimals;

    #[test]
    fn places_follow_the_resolution_and_the_limits() {
        assert_eq!(decimals(0.1), 1);
        assert_eq!(decimals(0.25), 2);
        assert_eq!(decimals(300.0), 0);
        assert_eq!(decimals(0.939026453362204), 3, "capped");
        let places = [0.1, 0.3, 0.25].into_iter().map(decimals).max().unwrap();
        assert_eq!(format!("{:.places$}", 0.939026453362204), "0.94");
    }
}
