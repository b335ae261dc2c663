//! `report.weekly`: the weekly report (工作周报) is ready, for the city.

use crate::event::{Event, Kind, ReportDetail, Source, SourceKind, TownshipRef};
use crate::signal::Protocol;
use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

/// The township reference of city-wide events.
pub fn city_ref() -> TownshipRef {
    TownshipRef {
        code: crate::assessment::CITY.to_string(),
        name: "全市".to_string(),
    }
}

/// The notice that a weekly report is ready.
pub fn weekly_report_event(detail: ReportDetail, at: DateTime<FixedOffset>, id: Uuid) -> Event {
    let kind = Kind::ReportWeekly;
    let source = Source {
        kind: SourceKind::Gateway,
        id: "gateway".into(),
        name: "gateway".into(),
        protocol: Protocol::Gateway,
    };
    let title = format!(
        "{} {}: {} 至 {}",
        kind.label(),
        detail.name,
        detail.from.format("%Y-%m-%d"),
        detail.to.format("%Y-%m-%d")
    );
    Event {
        title,
        report: Some(detail),
        ..Event::envelope(id, kind, source, city_ref(), at, at)
    }
}
