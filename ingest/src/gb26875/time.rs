//! Time labels: sec, min, hour, day, month, year − 2000, binary (not BCD), in the device's local
//! time (the unit's configured offset; +08:00 by default).

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike};

/// Six bytes as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeLabel(pub [u8; 6]);

impl TimeLabel {
    /// The label of a moment, in `offset`'s local time (years 2000–2255).
    pub fn from_datetime(t: DateTime<FixedOffset>) -> Self {
        let year = (t.year() - 2000).clamp(0, 255) as u8;
        Self([
            t.second() as u8,
            t.minute() as u8,
            t.hour() as u8,
            t.day() as u8,
            t.month() as u8,
            year,
        ])
    }

    /// The moment, reading the label in `offset`'s local time; `None` when it is not a date
    /// (devices with an unset clock send zeros).
    pub fn to_datetime(self, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
        let [s, mi, h, d, mo, y] = self.0;
        let naive = NaiveDate::from_ymd_opt(2000 + y as i32, mo as u32, d as u32)?
            .and_hms_opt(h as u32, mi as u32, s as u32)?;
        offset.from_local_datetime(&naive).single()
    }
}
