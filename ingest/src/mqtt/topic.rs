//! Topic → unit and channel: a pattern such as `fire/{unit_id}/{channel}`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Unit,
    Channel,
}

/// A topic pattern with `{unit_id}` and `{channel}` placeholders, each a whole level.
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

impl TopicPattern {
    /// Parses a pattern; it must name `{unit_id}` and `{channel}` once each, as whole levels.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let err = |problem| PatternError {
            pattern: pattern.to_string(),
            problem,
        };
        let segments: Vec<Segment> = pattern
            .split('/')
            .map(|s| match s {
                "{unit_id}" => Segment::Unit,
                "{channel}" => Segment::Channel,
                other => Segment::Literal(other.to_string()),
            })
            .collect();
        let count = |want: &Segment| segments.iter().filter(|s| *s == want).count();
        if count(&Segment::Unit) != 1 || count(&Segment::Channel) != 1 {
            return Err(err(
                "needs `{unit_id}` and `{channel}` exactly once each, as whole levels",
            ));
        }
        if segments
            .iter()
            .any(|s| matches!(s, Segment::Literal(l) if l.contains(['{', '}', '+', '#'])))
        {
            return Err(err("levels other than the placeholders must be literal"));
        }
        Ok(Self {
            text: pattern.to_string(),
            segments,
        })
    }

    /// The unit id and channel a topic names, if it fits the pattern.
    pub fn extract<'t>(&self, topic: &'t str) -> Option<(&'t str, &'t str)> {
        let levels: Vec<&str> = topic.split('/').collect();
        if levels.len() != self.segments.len() {
            return None;
        }
        let (mut unit, mut channel) = (None, None);
        for (segment, level) in self.segments.iter().zip(levels) {
            match segment {
                Segment::Literal(l) if l != level => return None,
                Segment::Literal(_) => {}
                Segment::Unit => unit = Some(level),
                Segment::Channel => channel = Some(level),
            }
        }
        Some((
            unit.filter(|u| !u.is_empty())?,
            channel.filter(|c| !c.is_empty())?,
        ))
    }

    /// The subscription filter that covers the pattern (`fire/+/+`).
    pub fn filter(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Unit | Segment::Channel => "+",
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
        assert!(TopicPattern::parse("fire/+/{unit_id}/{channel}").is_err());
        assert!(TopicPattern::parse("fire/x{unit_id}/{channel}").is_err());
    }
}
