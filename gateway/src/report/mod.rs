//! Reports: the assessment (考核) rendered as JSON, CSV, XLSX or printable HTML — the same
//! figures in each (`alerts::assessment` computes them; this module only lays them out).

pub mod html;
pub mod table;
pub mod xlsx;

use alerts::assessment::Report;
use anyhow::Context as _;
use std::str::FromStr;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The full report, English keys.
    Json,
    /// The township table, Chinese headers, UTF-8 with BOM.
    Csv,
    /// An Excel workbook: townships, departments, false-alarm units, the window and weights.
    Xlsx,
    /// A printable A4 page.
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            "html" => Ok(Format::Html),
            _ => Err(format!("format `{s}` is not json, csv, xlsx or html")),
        }
    }
}

impl Format {
    /// The content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
        }
    }
}

/// The report in `format`.
pub fn render(r: &Report, format: Format, offset: chrono::FixedOffset) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        Format::Json => serde_json::to_vec_pretty(r)?,
        Format::Csv => table::csv(r),
        Format::Xlsx => xlsx::xlsx(r, offset).context("writing the workbook")?,
        Format::Html => html::html(r, offset).into_bytes(),
    })
}
