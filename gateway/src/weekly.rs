//! The weekly report (工作周报): last week's assessment generated once a week at a configured
//! moment, stored under `data_dir/reports/` as XLSX, HTML and JSON, and announced to the city as
//! `report.weekly`. Once per week even across restarts: a week whose JSON is on disk is done; a
//! gateway that was down at the moment catches up when it starts. A week that ended before the
//! outbox was created (a fresh install) is not reported.

use crate::report::{render, Format};
use alerts::assessment::{assess, Weights};
use alerts::event::ReportDetail;
use alerts::Pipeline;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveTime, Weekday};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// When the weekly report is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The day.
    pub weekday: Weekday,
    /// The local time.
    pub at: NaiveTime,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            weekday: Weekday::Mon,
            at: NaiveTime::from_hms_opt(8, 0, 0).expect("08:00"),
        }
    }
}

/// A week's report: its name and window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    /// `2026-W48` (ISO week of the window).
    pub name: String,
    /// Monday 00:00, local.
    pub from: DateTime<FixedOffset>,
    /// The next Monday 00:00, local.
    pub to: DateTime<FixedOffset>,
}

impl Schedule {
    /// The week whose report is due at `now`: the latest scheduled moment at or before `now`
    /// falls in some week; the report covers the week before it (Monday to Monday, local).
    pub fn due(&self, now: DateTime<FixedOffset>) -> Week {
        let offset = *now.offset();
        let monday = now.date_naive() - Duration::days(now.weekday().num_days_from_monday().into());
        let moment = |monday: chrono::NaiveDate| {
            let day = monday + Duration::days(self.weekday.num_days_from_monday().into());
            day.and_time(self.at).and_local_timezone(offset).single()
        };
        let this_week = match moment(monday) {
            Some(m) if m <= now => monday,
            _ => monday - Duration::days(7),
        };
        let start = this_week - Duration::days(7);
        let midnight = |d: chrono::NaiveDate| {
            d.and_time(NaiveTime::MIN)
                .and_local_timezone(offset)
                .single()
                .expect("fixed offsets have no gaps")
        };
        Week {
            name: start.format("%G-W%V").to_string(),
            from: midnight(start),
            to: midnight(this_week),
        }
    }
}

/// The file of a week's report in one format.
pub fn file_name(week: &str, format: Format) -> String {
    format!("weekly-{week}.{}", format.extension())
}

/// Whether `name` is a report file name the API may serve (nothing else, no path).
pub fn valid_file(name: &str) -> Option<Format> {
    let rest = name.strip_prefix("weekly-")?;
    let (week, ext) = rest.split_once('.')?;
    let ok = week.len() == 8
        && week.as_bytes()[4..6] == *b"-W"
        && week[..4].bytes().all(|b| b.is_ascii_digit())
        && week[6..].bytes().all(|b| b.is_ascii_digit());
    ok.then(|| ext.parse().ok()).flatten()
}

/// Writes a file whole or not at all (temp file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What the loop needs.
pub struct WeeklyReports {
    /// The pipeline (store, registry, clock, announcement).
    pub pipeline: Arc<Pipeline>,
    /// `data_dir/reports`.
    pub dir: PathBuf,
    /// When.
    pub schedule: Schedule,
    /// Score weights.
    pub weights: Weights,
}

impl WeeklyReports {
    /// Makes the due week's report if it is not on disk yet; its name when one was made.
    pub async fn run_once(&self) -> anyhow::Result<Option<String>> {
        let offset = self.pipeline.offset();
        let week = self
            .schedule
            .due(self.pipeline.clock().now().with_timezone(&offset));
        if self.dir.join(file_name(&week.name, Format::Json)).exists() {
            return Ok(None);
        }
        // a week that ended before this gateway's outbox existed has nothing to report
        let created = self.pipeline.outbox().store().created()?;
        if created.is_some_and(|c| week.to.to_utc() <= c) {
            return Ok(None);
        }
        std::fs::create_dir_all(&self.dir)?;
        let (store, registry, weights) = (
            self.pipeline.outbox().store().clone(),
            self.pipeline.registry().clone(),
            self.weights.clone(),
        );
        let (from, to) = (week.from.to_utc(), week.to.to_utc());
        let report = tokio::task::spawn_blocking(move || {
            assess(&store, &registry, from, to, &weights, None)
        })
        .await??;
        let mut files = BTreeMap::new();
        for format in [Format::Xlsx, Format::Html] {
            let name = file_name(&week.name, format);
            write_atomic(&self.dir.join(&name), &render(&report, format, offset)?)?;
            files.insert(
                format.extension().to_string(),
                format!("/api/v1/reports/{name}"),
            );
        }
        let json = file_name(&week.name, Format::Json);
        files.insert("json".into(), format!("/api/v1/reports/{json}"));
        let detail = ReportDetail {
            name: week.name.clone(),
            from: week.from,
            to: week.to,
            files,
        };
        self.pipeline.announce_report(detail).await?;
        // the JSON last: its presence marks the week done
        write_atomic(
            &self.dir.join(json),
            &render(&report, Format::Json, offset)?,
        )?;
        Ok(Some(week.name))
    }

    /// Checks every 30 s (and at once); one log line per failure streak.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut failing = false;
        loop {
            match self.run_once().await {
                Ok(made) => {
                    if let Some(name) = made {
                        tracing::info!(week = %name, "weekly report made");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %format!("{e:#}"), "weekly report failed; retrying every 30 s");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn the_due_week_is_the_one_before_the_last_scheduled_moment() {
        let s = Schedule::default(); // Monday 08:00
                                     // Monday 30 Nov 2026, 09:00: this Monday's moment passed → the week of 23 Nov
        let w = s.due(t("2026-11-30T09:00:00+08:00"));
        assert_eq!(w.name, "2026-W48");
        assert_eq!(
            (w.from, w.to),
            (
                t("2026-11-23T00:00:00+08:00"),
                t("2026-11-30T00:00:00+08:00")
            )
        );
        // 07:59 the same Monday: not yet → still the week before
        assert_eq!(s.due(t("2026-11-30T07:59:00+08:00")).name, "2026-W47");
        // Wednesday: this Monday's moment passed
        assert_eq!(s.due(t("2026-12-02T12:00:00+08:00")).name, "2026-W48");
        let friday = Schedule {
            weekday: Weekday::Fri,
            at: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        assert_eq!(friday.due(t("2026-12-02T12:00:00+08:00")).name, "2026-W47");
    }

    #[test]
    fn only_report_names_are_served() {
        assert_eq!(valid_file("weekly-2026-W48.xlsx"), Some(Format::Xlsx));
        assert_eq!(valid_file("weekly-2026-W48.json"), Some(Format::Json));
        for bad in [
            "weekly-2026-W48.tmp",
            "../outbox.redb",
            "weekly-2026-W4.json",
            "weekly-../../x.json",
            "weekly-2026-W48.json/x",
        ] {
            assert_eq!(valid_file(bad), None, "{bad}");
        }
    }
}
