//! The event side of the assessment: one pass over the window's events, counted per township
//! and per department. Pure: it is handed each event's state and a light view of its body.

use crate::case::sla::{SlaStage, Supervision};
use crate::case::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The parts of a stored event state the assessment reads (the case's history, feedback and
/// notes are skipped unread: most of the decoding cost of a state row).
#[derive(Debug, Deserialize)]
pub struct Row {
    /// Township code.
    pub township: String,
    /// Kind.
    pub kind: String,
    /// Set for a department's or the city's copy of a notice.
    #[serde(default)]
    pub route: Option<String>,
    /// When it was committed.
    #[serde(serialize_with = "crate::time::serialize")]
    pub committed_at: DateTime<Utc>,
    /// The case.
    #[serde(default)]
    pub case: Option<CaseRow>,
}

/// The parts of a case the assessment reads.
#[derive(Debug, Default, Deserialize)]
pub struct CaseRow {
    /// The sign-off.
    #[serde(default)]
    pub signed: Option<At>,
    /// The department's acceptance.
    #[serde(default)]
    pub accepted: Option<At>,
    /// The department.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// When it was assigned.
    #[serde(default)]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// The current verdict.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// When it became handled.
    #[serde(default)]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub handled_at: Option<DateTime<Utc>>,
    /// A recovered outage's length.
    #[serde(default)]
    pub outage_s: Option<i64>,
    /// Deadlines and reminders.
    #[serde(default)]
    pub sla: Option<Supervision>,
}

/// A moment someone did something.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct At {
    /// When.
    #[serde(serialize_with = "crate::time::serialize")]
    pub at: DateTime<Utc>,
}

/// The parts of an event body the assessment reads.
#[derive(Debug, Default, Deserialize)]
pub struct Lite {
    /// Who raised it.
    #[serde(default)]
    pub source: LiteSource,
    /// Its evidence (only the count is used).
    #[serde(default)]
    pub evidence: Vec<serde::de::IgnoredAny>,
    /// Fire detail, for linkage feedback.
    #[serde(default)]
    pub fire: Option<LiteFire>,
}

/// The source's id.
#[derive(Debug, Default, Deserialize)]
pub struct LiteSource {
    /// Unit or camera id.
    #[serde(default)]
    pub id: String,
}

/// Linkage feedback's result.
#[derive(Debug, Default, Deserialize)]
pub struct LiteFire {
    /// `in_time` or `late`.
    #[serde(default)]
    pub linkage_result: Option<String>,
}

/// Durations (seconds) with their summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Cases with a deadline for this stage.
    pub cases: u64,
    /// Of them, done (signed / handled).
    pub done: u64,
    /// Median time to done, seconds.
    pub median_s: Option<f64>,
    /// 90th percentile, seconds.
    pub p90_s: Option<f64>,
    /// Done by the deadline.
    pub on_time: u64,
    /// `on_time / cases`.
    pub on_time_share: Option<f64>,
    /// Cases that were reminded (督办) for this stage.
    pub overdue: u64,
    #[serde(skip)]
    samples: Vec<f64>,
}

impl Timing {
    fn add(
        &mut self,
        sla: Option<&Supervision>,
        stage: SlaStage,
        done_at: Option<DateTime<Utc>>,
        committed: DateTime<Utc>,
    ) {
        let Some(sla) = sla else { return };
        let Some(due) = sla.due(stage) else { return };
        self.cases += 1;
        if sla.reminded(stage).is_some() {
            self.overdue += 1;
        }
        if let Some(at) = done_at {
            self.done += 1;
            self.samples
                .push((at - committed).num_milliseconds().max(0) as f64 / 1000.0);
            if at <= due {
                self.on_time += 1;
            }
        }
    }

    fn finish(&mut self) {
        self.samples.sort_by(f64::total_cmp);
        self.median_s = percentile(&self.samples, 0.5);
        self.p90_s = percentile(&self.samples, 0.9);
        self.on_time_share = ratio(self.on_time, self.cases);
        self.samples = Vec::new();
    }
}

/// The nearest-rank percentile of sorted samples (the smallest value with at least `q` of the
/// samples at or below it).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// `a / b`, `None` when `b` is 0.
pub fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Fire alarms and their verdicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FireAlarms {
    /// `fire.alarm` events.
    pub total: u64,
    /// By current verdict (`unjudged` for none yet).
    pub by_verdict: BTreeMap<String, u64>,
    /// `false_alarm / judged` (judged = with a verdict).
    pub false_alarm_rate: Option<f64>,
    /// Alarms of units that have cameras (video verification possible).
    pub linked: u64,
    /// Of those, alarms that carry evidence.
    pub with_evidence: u64,
    /// `with_evidence / linked`.
    pub video_verified_share: Option<f64>,
}

/// One unit's alarms.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UnitAlarms {
    /// Unit id.
    pub unit: String,
    /// `fire.alarm` events.
    pub alarms: u64,
    /// With verdict `false_alarm`.
    pub false_alarms: u64,
    /// With any verdict.
    pub judged: u64,
    /// `false_alarms / judged`.
    pub false_alarm_rate: Option<f64>,
}

/// Linkage feedback (联动反馈) timing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LinkageFigures {
    /// `fire.linkage_feedback` in the feedback window.
    pub in_time: u64,
    /// After it.
    pub late: u64,
    /// `in_time / (in_time + late)`.
    pub in_time_share: Option<f64>,
}

/// A township's event figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventFigures {
    /// Events (cases and notices) by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Sign-off (签收).
    pub sign: Timing,
    /// Handling (a verdict).
    pub handle: Timing,
    /// Camera outage tickets (`camera.offline`).
    pub camera_outages: u64,
    /// Of them, closed by recovery, with their outage length.
    pub camera_outages_recovered: u64,
    /// Mean time to recover, seconds.
    pub camera_mttr_s: Option<f64>,
    /// Fire alarms.
    pub fire_alarms: FireAlarms,
    /// Linkage feedback.
    pub linkage: LinkageFigures,
    #[serde(skip)]
    outage_s: f64,
}

/// A department's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DepartmentFigures {
    /// Cases assigned to it (by hand or by rule).
    pub assigned: u64,
    /// Accepted.
    pub accepted: u64,
    /// Accepted, then given a verdict.
    pub handled: u64,
    /// Median assignment → verdict of those, seconds.
    pub median_handle_s: Option<f64>,
    #[serde(skip)]
    samples: Vec<f64>,
}

/// The event tally of a window.
#[derive(Debug, Default)]
pub struct Tally {
    /// Per township.
    pub townships: BTreeMap<String, EventFigures>,
    /// Per department.
    pub departments: BTreeMap<String, DepartmentFigures>,
    /// Per unit (fire alarms), by unit id: (township, figures).
    pub units: HashMap<String, (String, UnitAlarms)>,
}

impl Tally {
    /// Counts one event in its township and in the city total. `has_cameras`: whether its
    /// unit has cameras (for video verification).
    pub fn add(&mut self, st: &Row, lite: &Lite, has_cameras: bool) {
        if st.route.is_some() {
            return; // a department's or the city's copy of a notice
        }
        for key in [st.township.as_str(), super::CITY] {
            self.townships
                .entry(key.to_string())
                .or_default()
                .add(st, lite, has_cameras);
        }
        let Some(case) = &st.case else { return };
        if st.kind == "fire.alarm" {
            let (_, u) = self
                .units
                .entry(lite.source.id.clone())
                .or_insert_with(|| (st.township.clone(), UnitAlarms::default()));
            u.unit = lite.source.id.clone();
            u.alarms += 1;
            u.judged += u64::from(case.verdict.is_some());
            u.false_alarms += u64::from(case.verdict == Some(Verdict::FalseAlarm));
        }
        if let Some(d) = &case.assigned_to {
            self.departments.entry(d.clone()).or_default().add(case);
        }
    }

    /// Completes the summaries (medians, shares).
    pub fn finish(&mut self) {
        for t in self.townships.values_mut() {
            t.sign.finish();
            t.handle.finish();
            t.camera_mttr_s = (t.camera_outages_recovered > 0)
                .then(|| t.outage_s / t.camera_outages_recovered as f64);
            let f = &mut t.fire_alarms;
            let judged = f.total - f.by_verdict.get("unjudged").copied().unwrap_or(0);
            f.false_alarm_rate = ratio(
                f.by_verdict.get("false_alarm").copied().unwrap_or(0),
                judged,
            );
            f.video_verified_share = ratio(f.with_evidence, f.linked);
            let l = &mut t.linkage;
            l.in_time_share = ratio(l.in_time, l.in_time + l.late);
        }
        for d in self.departments.values_mut() {
            d.samples.sort_by(f64::total_cmp);
            d.median_handle_s = percentile(&d.samples, 0.5);
            d.samples = Vec::new();
        }
        for (_, u) in self.units.values_mut() {
            u.false_alarm_rate = ratio(u.false_alarms, u.judged);
        }
    }
}

impl EventFigures {
    fn add(&mut self, st: &Row, lite: &Lite, has_cameras: bool) {
        *self.by_kind.entry(st.kind.clone()).or_default() += 1;
        if st.kind == "fire.linkage_feedback" {
            match lite.fire.as_ref().and_then(|f| f.linkage_result.as_deref()) {
                Some("in_time") => self.linkage.in_time += 1,
                Some("late") => self.linkage.late += 1,
                _ => {}
            }
        }
        let Some(case) = &st.case else { return };
        self.sign.add(
            case.sla.as_ref(),
            SlaStage::Sign,
            case.signed.as_ref().map(|s| s.at),
            st.committed_at,
        );
        self.handle.add(
            case.sla.as_ref(),
            SlaStage::Handle,
            case.handled_at,
            st.committed_at,
        );
        match st.kind.as_str() {
            "camera.offline" => {
                self.camera_outages += 1;
                if let (Some(Verdict::Recovered), Some(s)) = (case.verdict, case.outage_s) {
                    self.camera_outages_recovered += 1;
                    self.outage_s += s as f64;
                }
            }
            "fire.alarm" => {
                let f = &mut self.fire_alarms;
                f.total += 1;
                let verdict = case.verdict.map_or("unjudged", Verdict::as_str);
                *f.by_verdict.entry(verdict.to_string()).or_default() += 1;
                if has_cameras {
                    f.linked += 1;
                    f.with_evidence += u64::from(!lite.evidence.is_empty());
                }
            }
            _ => {}
        }
    }
}

impl DepartmentFigures {
    fn add(&mut self, case: &CaseRow) {
        self.assigned += 1;
        self.accepted += u64::from(case.accepted.is_some());
        let assigned_at = case.assigned_at;
        // handled by the department: it accepted, and a verdict followed
        if let (Some(from), Some(to), Some(_)) = (assigned_at, case.handled_at, &case.accepted) {
            self.handled += 1;
            self.samples
                .push((to - from).num_milliseconds().max(0) as f64 / 1000.0);
        }
    }
}

/// Adds counts of the same keys.
fn add_counts(into: &mut BTreeMap<String, u64>, from: BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

impl Timing {
    fn merge(&mut self, o: Timing) {
        self.cases += o.cases;
        self.done += o.done;
        self.on_time += o.on_time;
        self.overdue += o.overdue;
        self.samples.extend(o.samples);
    }
}

impl EventFigures {
    fn merge(&mut self, o: EventFigures) {
        add_counts(&mut self.by_kind, o.by_kind);
        self.sign.merge(o.sign);
        self.handle.merge(o.handle);
        self.camera_outages += o.camera_outages;
        self.camera_outages_recovered += o.camera_outages_recovered;
        self.outage_s += o.outage_s;
        let (f, g) = (&mut self.fire_alarms, o.fire_alarms);
        f.total += g.total;
        add_counts(&mut f.by_verdict, g.by_verdict);
        f.linked += g.linked;
        f.with_evidence += g.with_evidence;
        self.linkage.in_time += o.linkage.in_time;
        self.linkage.late += o.linkage.late;
    }
}

impl Tally {
    /// Adds another slice's tally (before [`Tally::finish`]): the window can be counted in
    /// slices, in parallel.
    pub fn merge(&mut self, o: Tally) {
        for (k, v) in o.townships {
            self.townships.entry(k).or_default().merge(v);
        }
        for (k, d) in o.departments {
            let mine = self.departments.entry(k).or_default();
            mine.assigned += d.assigned;
            mine.accepted += d.accepted;
            mine.handled += d.handled;
            mine.samples.extend(d.samples);
        }
        for (k, (t, u)) in o.units {
            let (_, mine) = self
                .units
                .entry(k)
                .or_insert_with(|| (t, UnitAlarms::default()));
            mine.unit = u.unit;
            mine.alarms += u.alarms;
            mine.judged += u.judged;
            mine.false_alarms += u.false_alarms;
        }
    }
}
