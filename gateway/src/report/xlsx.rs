//! The assessment as an Excel workbook (rust_xlsxwriter): one sheet per table, numbers as
//! numbers (shares formatted as percentages), Chinese headers, and a sheet that states the
//! window and the weights.

use super::table::{
    department_columns, township_columns, township_rows, unit_columns, Cell, Column,
};
use alerts::assessment::Report;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

/// The workbook's bytes.
pub fn xlsx(r: &Report, offset: chrono::FixedOffset) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let f = Formats {
        header: Format::new().set_bold().set_text_wrap(),
        share: Format::new().set_num_format("0.0%"),
        number: Format::new().set_num_format("0.##"),
    };
    let sheet = wb.add_worksheet().set_name("乡镇考核")?;
    table(sheet, &township_columns(), &township_rows(r), &f)?;
    let sheet = wb.add_worksheet().set_name("派驻机构")?;
    let departments: Vec<_> = r.departments.iter().collect();
    table(sheet, &department_columns(), &departments, &f)?;
    let sheet = wb.add_worksheet().set_name("误报单位")?;
    let units: Vec<_> = r.false_alarm_units.iter().collect();
    table(sheet, &unit_columns(), &units, &f)?;
    about(wb.add_worksheet().set_name("说明")?, r, offset, &f)?;
    wb.save_to_buffer()
}

struct Formats {
    header: Format,
    share: Format,
    number: Format,
}

fn table<T>(
    s: &mut Worksheet,
    cols: &[Column<T>],
    rows: &[&T],
    f: &Formats,
) -> Result<(), XlsxError> {
    for (c, col) in cols.iter().enumerate() {
        let c = c as u16;
        s.write_string_with_format(0, c, col.label, &f.header)?;
        s.set_column_width(c, 12)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        for (c, col) in cols.iter().enumerate() {
            let c = c as u16;
            match (col.get)(row) {
                Cell::Num(v) => s.write_number_with_format(r, c, v, &f.number)?,
                Cell::Share(v) => s.write_number_with_format(r, c, v, &f.share)?,
                Cell::Text(t) => s.write_string(r, c, t)?,
                Cell::Empty => s,
            };
        }
    }
    s.set_freeze_panes(1, 0)?;
    Ok(())
}

fn about(
    s: &mut Worksheet,
    r: &Report,
    offset: chrono::FixedOffset,
    f: &Formats,
) -> Result<(), XlsxError> {
    let time = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&offset)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let w = &r.weights;
    let rows: Vec<(&str, String)> = vec![
        ("考核周期 起", time(r.from)),
        ("考核周期 止", time(r.to)),
        ("生成时间", time(r.generated_at)),
        ("权重: 在线率", w.camera_availability.to_string()),
        ("权重: 完好率", w.camera_integrity.to_string()),
        ("权重: 联网率", w.unit_networking.to_string()),
        ("权重: 及时签收率", w.sign_on_time.to_string()),
        ("权重: 及时处置率", w.handle_on_time.to_string()),
        ("权重: 1 − 误报率", w.true_alarm_share.to_string()),
        (
            "口径",
            "见 docs/assessment.md (每个数字均可由事件与可用率接口复算)".to_string(),
        ),
    ];
    s.set_column_width(0, 20)?;
    s.set_column_width(1, 40)?;
    for (i, (k, v)) in rows.into_iter().enumerate() {
        s.write_string_with_format(i as u32, 0, k, &f.header)?;
        s.write_string(i as u32, 1, v)?;
    }
    Ok(())
}
