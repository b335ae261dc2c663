//! Topic → unit and channel: a pattern such as `fire/{unit_id}/{channel}`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `+`: any one level.
    Any,
    Unit,
    Channel,
}

/// A topic pattern with `{unit_id}` and `{channel}` placeholders, each a whole level, and `+`
/// for a level that may be anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    text: String,
    segments: Vec<Segment>,
}

/// Why a pattern is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic pattern `{pattern}`: {problem}")]
pub struct PatternError {
    pattern: String,
    problem: &'static str,
}

/// What a topic that fits a pattern names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured<'t> {
    /// The `{unit_id}` level, if the pattern has one.
    pub unit: Option<&'t str>,
    /// The `{channel}` level, if the pattern has one.
    pub channel: Option<&'t str>,
}

impl TopicPattern {
    /// Parses a standard-profile pattern: it must name `{unit_id}` and `{channel}` once each,
    /// as whole levels.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        Self::parse_with(pattern, true)
    }

    /// Parses a vendor profile's pattern: `{unit_id}` at most once (the unit may be named in
    /// the payload instead), no `{channel}` (the profile says what the payload holds).
    pub fn parse_vendor(pattern: &str) -> Result<Self, PatternError> {
        Self::parse_with(pattern, false)
    }

    fn parse_with(pattern: &str, standard: bool) -> Result<Self, PatternError> {
        let err = |problem| PatternError {
            pattern: pattern.to_string(),
            problem,
        };
        let segments: Vec<Segment> = pattern
            .split('/')
            .map(|s| match s {
                "{unit_id}" => Segment::Unit,
                "{channel}" => Segment::Channel,
                "+" => Segment::Any,
                other => Segment::Literal(other.to_string()),
            })
            .collect();
        let count = |want: &Segment| segments.iter().filter(|s| *s == want).count();
        if standard && (count(&Segment::Unit) != 1 || count(&Segment::Channel) != 1) {
            return Err(err(
                "needs `{unit_id}` and `{channel}` exactly once each, as whole levels",
            ));
        }
        if !standard && (count(&Segment::Unit) > 1 || count(&Segment::Channel) > 0) {
            return Err(err(
                "may name `{unit_id}` once, as a whole level, and no `{channel}`",
            ));
        }
        if segments
            .iter()
            .any(|s| matches!(s, Segment::Literal(l) if l.contains(['{', '}', '+', '#'])))
        {
            return Err(err(
                "levels other than the placeholders and `+` must be literal",
            ));
        }
        Ok(Self {
            text: pattern.to_string(),
            segments,
        })
    }

    /// Whether the pattern has a `{unit_id}` level.
    pub fn names_unit(&self) -> bool {
        self.segments.contains(&Segment::Unit)
    }

    /// What a topic names, if it fits the pattern (placeholders must not be empty).
    pub fn capture<'t>(&self, topic: &'t str) -> Option<Captured<'t>> {
        let levels: Vec<&str> = topic.split('/').collect();
        if levels.len() != self.segments.len() {
            return None;
        }
        let mut captured = Captured {
            unit: None,
            channel: None,
        };
        for (segment, level) in self.segments.iter().zip(levels) {
            match segment {
                Segment::Literal(l) if l != level => return None,
                Segment::Literal(_) | Segment::Any => {}
                Segment::Unit if level.is_empty() => return None,
                Segment::Channel if level.is_empty() => return None,
                Segment::Unit => captured.unit = Some(level),
                Segment::Channel => captured.channel = Some(level),
            }
        }
        Some(captured)
    }

    /// The unit id and channel a topic names, if it fits a standard pattern.
    pub fn extract<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str)> {
        let c = self.capture(topic)?;
        Some((c.unit?, c.channel?))
    }

    /// The subscription filter that covers the pattern (`fire/+/+`).
    pub fn filter(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Any | Segment::Unit | Segment::Channel => "+",
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pattern() {
        let p = TopicPattern::parse("fire/{unit_id}/{channel}").unwrap();
        assert_eq!(
            p.extract("fire/unit-0001/status"),
            Some(("unit-0001", "status"))
        );
        assert_eq!(p.extract("fire/unit-0001/status/extra"), None);
        assert_eq!(p.extract("water/unit-0001/status"), None);
        assert_eq!(p.extract("fire//status"), None);
        assert_eq!(p.filter(), "fire/+/+");
    }

    #[test]
    fn other_layouts_and_bad_patterns() {
        let p = TopicPattern::parse("county/lanxi/{channel}/by-unit/{unit_id}").unwrap();
        assert_eq!(
            p.extract("county/lanxi/heartbeat/by-unit/u7"),
            Some(("u7", "heartbeat"))
        );
        assert_eq!(p.filter(), "county/lanxi/+/by-unit/+");
        assert!(TopicPattern::parse("fire/{unit_id}").is_err());
        assert!(TopicPattern::parse("fire/{unit_id}/{unit_id}/{channel}").is_err());
        assert!(TopicPattern::parse("fire/x{unit_id}/{channel}").is_err());
        assert!(TopicPattern::parse("fire/a+/{unit_id}/{channel}").is_err());
        let any = TopicPattern::parse("fire/+/{unit_id}/{channel}").unwrap();
        assert_eq!(any.extract("fire/acme/u1/status"), Some(("u1", "status")));
        assert_eq!(any.filter(), "fire/+/+/+");
    }

    #[test]
    fn vendor_patterns() {
        let p = TopicPattern::parse_vendor("efm/{unit_id}/up").unwrap();
        assert!(p.names_unit());
        let c = p.capture("efm/u1/up").unwrap();
        assert_eq!((c.unit, c.channel), (Some("u1"), None));
        assert_eq!(p.capture("efm//up"), None);
        assert_eq!(
            p.extract("efm/u1/up"),
            None,
            "no channel: not a standard topic"
        );
        let p = TopicPattern::parse_vendor("water/+/report").unwrap();
        assert!(!p.names_unit());
        assert_eq!(p.capture("water/x/report").unwrap().unit, None);
        assert!(TopicPattern::parse_vendor("a/{unit_id}/{channel}").is_err());
        assert!(TopicPattern::parse_vendor("a/{unit_id}/{unit_id}").is_err());
    }
}
