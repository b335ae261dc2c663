//! How the gateway writes a time: RFC 3339 with milliseconds, in the configured offset
//! (`[gateway] utc_offset`, +08:00 by default) — in events, API answers, CLI output and reports
//! alike. The offset is set once at start-up ([`set_offset`]); times are kept and computed in
//! UTC and worded here, at the edge.

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone};
use serde::Serializer;
use std::sync::atomic::{AtomicI32, Ordering};

static OFFSET_S: AtomicI32 = AtomicI32::new(8 * 3600);

/// Sets the offset times are written in.
pub fn set_offset(offset: FixedOffset) {
    OFFSET_S.store(offset.local_minus_utc(), Ordering::Relaxed);
}

/// The offset times are written in.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(OFFSET_S.load(Ordering::Relaxed)).expect("a valid offset")
}

/// `t` as the gateway writes times: `2026-11-30T18:02:03.456+08:00`.
pub fn format<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    t.with_timezone(&offset())
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// `#[serde(serialize_with = "…::time::serialize")]`: a time as [`format`] writes it.
pub fn serialize<S: Serializer, Tz: TimeZone>(t: &DateTime<Tz>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

/// The same for an optional time (`null` when absent).
pub mod option {
    use super::*;

    /// `#[serde(serialize_with = "…::time::option::serialize")]`.
    pub fn serialize<S: Serializer, Tz: TimeZone>(
        t: &Option<DateTime<Tz>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&format(t)),
            None => s.serialize_none(),
        }
    }
}

/// The same for a map of times (`{"lanjiang": "…"}`).
pub mod map {
    use super::*;
    use serde::ser::SerializeMap;

    /// `#[serde(serialize_with = "…::time::map::serialize")]`.
    pub fn serialize<S: Serializer, K: serde::Serialize, Tz: TimeZone>(
        m: &std::collections::BTreeMap<K, DateTime<Tz>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(m.len()))?;
        for (k, t) in m {
            out.serialize_entry(k, &format(t))?;
        }
        out.end()
    }
}

/// An optional time as [`format`] writes it, for a JSON view.
pub fn format_opt<Tz: TimeZone>(t: Option<&DateTime<Tz>>) -> Option<String> {
    t.map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_the_offset_with_milliseconds() {
        let t = DateTime::parse_from_rfc3339("2026-11-30T10:02:03.456789Z").unwrap();
        set_offset(FixedOffset::east_opt(8 * 3600).unwrap());
        assert_eq!(format(&t), "2026-11-30T18:02:03.456+08:00");
        let utc = t.with_timezone(&chrono::Utc);
        assert_eq!(format(&utc), "2026-11-30T18:02:03.456+08:00");
    }
}
