//! Assessment (督查考核): per township and per department, over a window, the figures the county
//! is ranked on — camera availability and integrity, unit networking rate, sign-off and
//! handling times, fire alarms by verdict, video verification, linkage feedback — a score from
//! configurable weights, and the ranking. Definitions: docs/assessment.md.
//!
//! Events are read in one streamed pass over the window (never loaded whole); cameras and
//! units from their logs, one at a time.

pub mod equipment;
pub mod score;
pub mod tally;

pub use equipment::{CameraFigures, UnitFigures};
pub use score::Weights;
pub use tally::{DepartmentFigures, EventFigures, Lite, Tally, UnitAlarms};

use crate::outbox::{Store, StoreError};
use crate::registry::Registry;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The code of the city-wide total row.
pub const CITY: &str = "city";

/// Units listed by false alarms, at most.
pub const TOP_UNITS: usize = 20;

/// One township's (or the city's) assessment.
#[derive(Debug, Clone, Serialize)]
pub struct TownshipReport {
    /// Township code (`city` for the total).
    pub code: String,
    /// Its name.
    pub name: String,
    /// Rank (排名) among townships; `None` for the city total.
    pub rank: Option<u32>,
    /// Score out of 100 (考核得分).
    pub score: Option<f64>,
    /// Cameras.
    pub cameras: CameraFigures,
    /// Units.
    pub units: UnitFigures,
    /// Events, sign-off, handling, alarms, linkage.
    pub events: EventFigures,
}

/// One department's assessment.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentReport {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Figures.
    #[serde(flatten)]
    pub figures: DepartmentFigures,
}

/// A unit's false alarms.
#[derive(Debug, Clone, Serialize)]
pub struct UnitReport {
    /// Township.
    pub township: String,
    /// Unit name.
    pub name: String,
    /// Its address.
    pub address: Option<String>,
    /// Figures.
    #[serde(flatten)]
    pub alarms: UnitAlarms,
}

/// The assessment of a window.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Window start (inclusive).
    #[serde(serialize_with = "crate::time::serialize")]
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    #[serde(serialize_with = "crate::time::serialize")]
    pub to: DateTime<Utc>,
    /// When it was computed.
    #[serde(serialize_with = "crate::time::serialize")]
    pub generated_at: DateTime<Utc>,
    /// The weights of the score.
    pub weights: Weights,
    /// Townships in ranking order.
    pub townships: Vec<TownshipReport>,
    /// The city total.
    pub city: TownshipReport,
    /// Departments.
    pub departments: Vec<DepartmentReport>,
    /// Units by false alarms, most first (at most [`TOP_UNITS`]).
    pub false_alarm_units: Vec<UnitReport>,
}

/// Computes the assessment of `[from, to)`; `township` narrows it to one.
pub fn assess(
    store: &Store,
    registry: &Registry,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    weights: &Weights,
    township: Option<&str>,
) -> Result<Report, StoreError> {
    let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
    let tally = tally_events(store, registry, f, t, township)?;
    let mut townships = Vec::new();
    let mut city = TownshipReport::empty(CITY, "全市");
    for tw in registry
        .townships()
        .iter()
        .filter(|tw| township.is_none_or(|c| c == tw.code))
    {
        let mut r = TownshipReport::empty(&tw.code, &tw.name);
        r.events = tally.townships.get(&tw.code).cloned().unwrap_or_default();
        equipment(store, registry, &tw.code, f, t, &mut r, &mut city)?;
        r.score = r.score(weights);
        townships.push(r);
    }
    city.events = tally.townships.get(CITY).cloned().unwrap_or_default();
    city.cameras.finish();
    city.units.finish();
    city.score = city.score(weights);
    rank(&mut townships);
    Ok(Report {
        from,
        to,
        generated_at: Utc::now(),
        weights: weights.clone(),
        townships,
        city,
        departments: departments(registry, &tally),
        false_alarm_units: false_alarm_units(registry, &tally),
    })
}

/// The one pass over the window's events, in as many slices as there are cores (each slice
/// its own read transaction and tally, merged at the end).
fn tally_events(
    store: &Store,
    registry: &Registry,
    from_ms: i64,
    to_ms: i64,
    township: Option<&str>,
) -> Result<Tally, StoreError> {
    let slices = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8) as i64;
    let step = ((to_ms - from_ms) / slices).max(1);
    let bounds: Vec<(i64, i64)> = (0..slices)
        .map(|i| {
            (
                from_ms + i * step,
                if i + 1 == slices {
                    to_ms
                } else {
                    from_ms + (i + 1) * step
                },
            )
        })
        .filter(|(a, b)| a < b)
        .collect();
    let tallies: Vec<Result<Tally, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = bounds
            .iter()
            .map(|&(a, b)| s.spawn(move || tally_slice(store, registry, a, b, township)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("tally thread"))
            .collect()
    });
    let mut tally = Tally::default();
    for t in tallies {
        tally.merge(t?);
    }
    tally.finish();
    Ok(tally)
}

fn tally_slice(
    store: &Store,
    registry: &Registry,
    from_ms: i64,
    to_ms: i64,
    township: Option<&str>,
) -> Result<Tally, StoreError> {
    let mut tally = Tally::default();
    // only alarms and linkage feedback need the body
    let wants_body = |st: &tally::Row| {
        matches!(st.kind.as_str(), "fire.alarm" | "fire.linkage_feedback")
            && township.is_none_or(|t| t == st.township)
    };
    store.scan_window(from_ms, to_ms, wants_body, |_, st, body| {
        if township.is_some_and(|t| t != st.township) {
            return;
        }
        let lite: Lite = body
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default();
        let has_cameras = registry
            .unit(&lite.source.id)
            .is_some_and(|u| !u.cameras.is_empty() || !u.camera_links.is_empty());
        tally.add(st, &lite, has_cameras);
    })?;
    Ok(tally)
}

/// A township's cameras and units from their logs (added to the city total too).
fn equipment(
    store: &Store,
    registry: &Registry,
    township: &str,
    f: i64,
    t: i64,
    r: &mut TownshipReport,
    city: &mut TownshipReport,
) -> Result<(), StoreError> {
    for c in registry.cameras().filter(|c| c.township == township) {
        let (states, pictures) = (
            store.camera_log(&c.id, f, t)?,
            store.picture_log(&c.id, f, t)?,
        );
        r.cameras.add(&states, &pictures, f, t);
        city.cameras.add(&states, &pictures, f, t);
    }
    for u in registry.units_in(township) {
        let log = store.unit_log(&u.id, f, t)?;
        r.units.add(&log, f, t);
        city.units.add(&log, f, t);
        let patrols = store.patrols(&u.id, f, t)?;
        r.units.add_patrols(&patrols);
        city.units.add_patrols(&patrols);
    }
    r.cameras.finish();
    r.units.finish();
    Ok(())
}

impl TownshipReport {
    fn empty(code: &str, name: &str) -> Self {
        TownshipReport {
            code: code.to_string(),
            name: name.to_string(),
            rank: None,
            score: None,
            cameras: CameraFigures::default(),
            units: UnitFigures::default(),
            events: EventFigures::default(),
        }
    }

    fn score(&self, w: &Weights) -> Option<f64> {
        let e = &self.events;
        score::score(&[
            (w.camera_availability, self.cameras.availability),
            (w.camera_integrity, self.cameras.integrity),
            (w.unit_networking, self.units.networking_rate),
            (w.sign_on_time, e.sign.on_time_share),
            (w.handle_on_time, e.handle.on_time_share),
            (
                w.true_alarm_share,
                e.fire_alarms.false_alarm_rate.map(|r| 1.0 - r),
            ),
        ])
    }
}

fn rank(townships: &mut [TownshipReport]) {
    let scores: Vec<(String, Option<f64>)> = townships
        .iter()
        .map(|t| (t.code.clone(), t.score))
        .collect();
    for (t, r) in townships.iter_mut().zip(score::ranks(&scores)) {
        t.rank = Some(r);
    }
    townships.sort_by_key(|t| (t.rank, t.code.clone()));
}

fn departments(registry: &Registry, tally: &Tally) -> Vec<DepartmentReport> {
    registry
        .departments()
        .iter()
        .map(|d| DepartmentReport {
            code: d.code.clone(),
            name: d.name.clone(),
            figures: tally.departments.get(&d.code).cloned().unwrap_or_default(),
        })
        .collect()
}

fn false_alarm_units(registry: &Registry, tally: &Tally) -> Vec<UnitReport> {
    let mut units: Vec<UnitReport> = tally
        .units
        .values()
        .filter(|(_, u)| u.false_alarms > 0)
        .map(|(t, u)| UnitReport {
            township: t.clone(),
            name: registry
                .unit(&u.unit)
                .map_or_else(String::new, |x| x.name.clone()),
            address: registry.unit(&u.unit).and_then(|x| x.place.address.clone()),
            alarms: u.clone(),
        })
        .collect();
    units.sort_by(|a, b| {
        b.alarms
            .false_alarms
            .cmp(&a.alarms.false_alarms)
            .then(a.alarms.unit.cmp(&b.alarms.unit))
    });
    units.truncate(TOP_UNITS);
    units
}
