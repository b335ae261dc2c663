//! The assessment as a printable page: A4 landscape, inline style, no external resource, every
//! name escaped.

use super::table::{department_columns, township_columns, township_rows, unit_columns, Column};
use alerts::assessment::Report;
use std::fmt::Write as _;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "@page{size:A4 landscape;margin:12mm}\
body{font-family:sans-serif;font-size:9pt;color:#111}\
h1{font-size:14pt;margin:0 0 4pt}h2{font-size:11pt;margin:12pt 0 4pt}\
table{border-collapse:collapse;width:100%;page-break-inside:auto}\
th,td{border:1px solid #999;padding:2pt 3pt;text-align:right}\
th{background:#eee;font-weight:bold;text-align:center}\
td.t{text-align:left}tr{page-break-inside:avoid}\
tr.city td{font-weight:bold;background:#f6f6f6}p.m{color:#555;margin:0}";

fn table<T>(out: &mut String, cols: &[Column<T>], rows: &[&T], city_last: bool) {
    out.push_str("<table><thead><tr>");
    for c in cols {
        let _ = write!(out, "<th>{}</th>", escape(c.label));
    }
    out.push_str("</tr></thead><tbody>");
    for (i, row) in rows.iter().enumerate() {
        let city = city_last && i + 1 == rows.len();
        out.push_str(if city { "<tr class=\"city\">" } else { "<tr>" });
        for c in cols {
            let cell = (c.get)(row);
            let class = if matches!(cell, super::table::Cell::Text(_)) {
                " class=\"t\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", escape(&cell.display()));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// The page.
pub fn html(r: &Report, offset: chrono::FixedOffset) -> String {
    let time = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>考核报表 {} — {}</title><style>{STYLE}</style></head><body>",
        time(r.from),
        time(r.to)
    );
    let _ = write!(
        out,
        "<h1>乡镇综合信息指挥室考核报表</h1><p class=\"m\">考核周期 {} 至 {}，生成于 {}</p>",
        time(r.from),
        time(r.to),
        time(r.generated_at)
    );
    out.push_str("<h2>乡镇考核与排名</h2>");
    table(&mut out, &township_columns(), &township_rows(r), true);
    if !r.departments.is_empty() {
        out.push_str("<h2>派驻机构</h2>");
        let rows: Vec<_> = r.departments.iter().collect();
        table(&mut out, &department_columns(), &rows, false);
    }
    if !r.false_alarm_units.is_empty() {
        out.push_str("<h2>误报单位</h2>");
        let rows: Vec<_> = r.false_alarm_units.iter().collect();
        table(&mut out, &unit_columns(), &rows, false);
    }
    let w = &r.weights;
    let _ = write!(
        out,
        "<p class=\"m\">得分权重：在线率 {} · 完好率 {} · 联网率 {} · 及时签收率 {} · 及时处置率 {} · 1−误报率 {}（无数据的指标不计，其余按权重折算）。</p></body></html>",
        w.camera_availability, w.camera_integrity, w.unit_networking, w.sign_on_time, w.handle_on_time, w.true_alarm_share
    );
    out
}
