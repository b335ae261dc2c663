//! The assessment as tables: one column list, with Chinese headers (what the offices read) and
//! the English keys of the JSON, shared by the CSV, XLSX and HTML renderings.

use alerts::assessment::{DepartmentReport, Report, TownshipReport, UnitReport};

/// A cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A count or a number of seconds.
    Num(f64),
    /// A share in [0, 1] (shown as a percentage).
    Share(f64),
    /// Text.
    Text(String),
    /// No figure (no data for it).
    Empty,
}

impl Cell {
    fn num(v: Option<f64>) -> Cell {
        v.map_or(Cell::Empty, Cell::Num)
    }
    fn share(v: Option<f64>) -> Cell {
        v.map_or(Cell::Empty, Cell::Share)
    }
    fn count(v: u64) -> Cell {
        Cell::Num(v as f64)
    }

    /// As CSV text: numbers plain, shares as fractions rounded to 4 places.
    pub fn csv(&self) -> String {
        match self {
            Cell::Num(v) => trim(*v, 1),
            Cell::Share(v) => trim(*v, 4),
            Cell::Text(t) => t.clone(),
            Cell::Empty => String::new(),
        }
    }

    /// As display text: shares as percentages.
    pub fn display(&self) -> String {
        match self {
            Cell::Num(v) => trim(*v, 1),
            Cell::Share(v) => format!("{}%", trim(v * 100.0, 1)),
            Cell::Text(t) => t.clone(),
            Cell::Empty => "—".into(),
        }
    }
}

fn trim(v: f64, places: usize) -> String {
    let s = format!("{v:.places$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A column: Chinese header, the JSON key it comes from, and how to read it.
pub struct Column<T> {
    /// What the offices read.
    pub label: &'static str,
    /// The key in the JSON report.
    pub key: &'static str,
    /// The value.
    pub get: fn(&T) -> Cell,
}

macro_rules! col {
    ($label:literal, $key:literal, $get:expr) => {
        Column {
            label: $label,
            key: $key,
            get: $get,
        }
    };
}

/// The township table's columns (a row per township, then the city total).
pub fn township_columns() -> Vec<Column<TownshipReport>> {
    vec![
        col!("排名", "rank", |t| t
            .rank
            .map_or(Cell::Empty, |r| Cell::count(r.into()))),
        col!("乡镇", "name", |t| Cell::Text(t.name.clone())),
        col!("代码", "code", |t| Cell::Text(t.code.clone())),
        col!("得分", "score", |t| Cell::num(t.score)),
        col!("摄像机数", "cameras.registered", |t| Cell::count(
            t.cameras.registered
        )),
        col!("在线率", "cameras.availability", |t| Cell::share(
            t.cameras.availability
        )),
        col!("完好率", "cameras.integrity", |t| Cell::share(
            t.cameras.integrity
        )),
        col!("离线工单", "events.camera_outages", |t| Cell::count(
            t.events.camera_outages
        )),
        col!("平均恢复时长(秒)", "events.camera_mttr_s", |t| {
            Cell::num(t.events.camera_mttr_s)
        }),
        col!("单位数", "units.registered", |t| Cell::count(
            t.units.registered
        )),
        col!("联网率", "units.networking_rate", |t| Cell::share(
            t.units.networking_rate
        )),
        col!("从未接入单位", "units.never_heard", |t| Cell::count(
            t.units.never_heard
        )),
        col!("查岗次数", "units.patrol_checks", |t| Cell::count(
            t.units.patrol_checks
        )),
        col!("查岗及时应答率", "units.patrol_in_time_share", |t| {
            Cell::share(t.units.patrol_in_time_share)
        }),
        col!(
            "查岗应答中位数(秒)",
            "units.patrol_median_response_s",
            |t| Cell::num(t.units.patrol_median_response_s)
        ),
        col!("应签收", "events.sign.cases", |t| Cell::count(
            t.events.sign.cases
        )),
        col!("已签收", "events.sign.done", |t| Cell::count(
            t.events.sign.done
        )),
        col!("及时签收率", "events.sign.on_time_share", |t| {
            Cell::share(t.events.sign.on_time_share)
        }),
        col!("签收时长中位数(秒)", "events.sign.median_s", |t| {
            Cell::num(t.events.sign.median_s)
        }),
        col!("签收时长P90(秒)", "events.sign.p90_s", |t| Cell::num(
            t.events.sign.p90_s
        )),
        col!("签收督办", "events.sign.overdue", |t| Cell::count(
            t.events.sign.overdue
        )),
        col!("应处置", "events.handle.cases", |t| Cell::count(
            t.events.handle.cases
        )),
        col!("已处置", "events.handle.done", |t| Cell::count(
            t.events.handle.done
        )),
        col!("及时处置率", "events.handle.on_time_share", |t| {
            Cell::share(t.events.handle.on_time_share)
        }),
        col!(
            "处置时长中位数(秒)",
            "events.handle.median_s",
            |t| Cell::num(t.events.handle.median_s)
        ),
        col!("处置时长P90(秒)", "events.handle.p90_s", |t| Cell::num(
            t.events.handle.p90_s
        )),
        col!("处置督办", "events.handle.overdue", |t| Cell::count(
            t.events.handle.overdue
        )),
        col!("火警", "events.fire_alarms.total", |t| Cell::count(
            t.events.fire_alarms.total
        )),
        col!(
            "真实火警",
            "events.fire_alarms.by_verdict.true_alarm",
            |t| verdict(t, "true_alarm")
        ),
        col!("误报", "events.fire_alarms.by_verdict.false_alarm", |t| {
            verdict(t, "false_alarm")
        }),
        col!("测试", "events.fire_alarms.by_verdict.test", |t| verdict(
            t, "test"
        )),
        col!("设备故障", "events.fire_alarms.by_verdict.fault", |t| {
            verdict(t, "fault")
        }),
        col!("未研判", "events.fire_alarms.by_verdict.unjudged", |t| {
            verdict(t, "unjudged")
        }),
        col!("误报率", "events.fire_alarms.false_alarm_rate", |t| {
            Cell::share(t.events.fire_alarms.false_alarm_rate)
        }),
        col!(
            "视频核验率",
            "events.fire_alarms.video_verified_share",
            |t| Cell::share(t.events.fire_alarms.video_verified_share)
        ),
        col!(
            "联动反馈及时率",
            "events.linkage.in_time_share",
            |t| Cell::share(t.events.linkage.in_time_share)
        ),
    ]
}

fn verdict(t: &TownshipReport, v: &str) -> Cell {
    Cell::count(t.events.fire_alarms.by_verdict.get(v).copied().unwrap_or(0))
}

/// The department table's columns.
pub fn department_columns() -> Vec<Column<DepartmentReport>> {
    vec![
        col!("派驻机构", "name", |d| Cell::Text(d.name.clone())),
        col!("代码", "code", |d| Cell::Text(d.code.clone())),
        col!("交办", "assigned", |d| Cell::count(d.figures.assigned)),
        col!("已接收", "accepted", |d| Cell::count(d.figures.accepted)),
        col!("已处置", "handled", |d| Cell::count(d.figures.handled)),
        col!("处置时长中位数(秒)", "median_handle_s", |d| {
            Cell::num(d.figures.median_handle_s)
        }),
    ]
}

/// The false-alarm units' columns.
pub fn unit_columns() -> Vec<Column<UnitReport>> {
    vec![
        col!("单位", "name", |u| Cell::Text(u.name.clone())),
        col!("编号", "unit", |u| Cell::Text(u.alarms.unit.clone())),
        col!("乡镇", "township", |u| Cell::Text(u.township.clone())),
        col!("地址", "address", |u| u
            .address
            .clone()
            .map_or(Cell::Empty, Cell::Text)),
        col!("火警", "alarms", |u| Cell::count(u.alarms.alarms)),
        col!("已研判", "judged", |u| Cell::count(u.alarms.judged)),
        col!("误报", "false_alarms", |u| Cell::count(
            u.alarms.false_alarms
        )),
        col!("误报率", "false_alarm_rate", |u| Cell::share(
            u.alarms.false_alarm_rate
        )),
    ]
}

/// The township rows: each township in ranking order, then the city total.
pub fn township_rows(r: &Report) -> Vec<&TownshipReport> {
    r.townships.iter().chain(std::iter::once(&r.city)).collect()
}

/// The CSV (UTF-8 with a byte-order mark, which Excel in a Chinese locale needs to read it as
/// UTF-8): the township table.
pub fn csv(r: &Report) -> Vec<u8> {
    let cols = township_columns();
    let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
    let _ = w.write_record(cols.iter().map(|c| c.label));
    for t in township_rows(r) {
        let _ = w.write_record(cols.iter().map(|c| (c.get)(t).csv()));
    }
    w.into_inner().unwrap_or_default()
}
