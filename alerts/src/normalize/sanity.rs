//! What a device says is checked before it is written: its clock within a sane window, its
//! text free of control characters.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Timelike};

/// A device time earlier than this is not believed (a panel with a reset clock says 2000 or
/// 1970).
pub fn earliest() -> DateTime<FixedOffset> {
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
        .fixed_offset()
}

/// How far ahead of the receive time a device time may be.
pub const MAX_AHEAD: Duration = Duration::days(1);

/// The time an event is written with: the device's when it is within a sane window (from 2000
/// to a day after the receive time), else the receive time — and then the device's skew in
/// seconds (device − received) to record. A leap second is written as the second before it.
pub fn device_time(
    device: Option<DateTime<FixedOffset>>,
    received: DateTime<FixedOffset>,
) -> (DateTime<FixedOffset>, Option<i64>) {
    let Some(t) = device else {
        return (received, None);
    };
    if t < earliest() || t > received + MAX_AHEAD {
        let skew = (t - received).num_seconds();
        return (received, Some(skew));
    }
    let t = if t.nanosecond() >= 1_000_000_000 {
        t.with_nanosecond(999_999_999).unwrap_or(t)
    } else {
        t
    };
    (t.with_timezone(received.offset()), None)
}

/// Text from a device without control characters (NUL, escapes, line breaks become a space),
/// trimmed; `None` when nothing is left.
pub fn clean_text(s: &str) -> Option<String> {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn device_times_outside_a_sane_window_give_way_to_the_receive_time() {
        let received = t("2026-11-30T10:00:00+08:00");
        let ok = t("2026-11-30T01:59:00Z");
        assert_eq!(
            device_time(Some(ok), received),
            (t("2026-11-30T09:59:00+08:00"), None)
        );
        for bad in [
            "1970-01-01T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "2026-12-02T10:00:00+08:00",
        ] {
            let (at, skew) = device_time(Some(t(bad)), received);
            assert_eq!(at, received, "{bad}");
            assert_eq!(skew, Some((t(bad) - received).num_seconds()), "{bad}");
        }
        let far = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc()
            .fixed_offset();
        assert_eq!(
            device_time(Some(far), received).0.to_rfc3339(),
            "2026-11-30T10:00:00+08:00"
        );
        assert_eq!(device_time(None, received), (received, None));
    }

    #[test]
    fn a_leap_second_is_written_as_the_second_before() {
        let received = t("2017-01-01T08:00:10+08:00");
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc()
            .fixed_offset();
        let (at, _) = device_time(Some(leap), received);
        assert!(!at.to_rfc3339().contains(":60"), "{}", at.to_rfc3339());
    }

    #[test]
    fn control_characters_never_reach_an_event() {
        assert_eq!(
            clean_text("3F\u{0}east\r\ncorridor\u{1b}[31m").as_deref(),
            Some("3F east  corridor [31m")
        );
        assert_eq!(clean_text("\u{0}\u{7}  "), None);
    }
}
