//! Dispatch rules (自动派单): which events are assigned to a department as they are committed.

/// One `[[dispatch]]` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchRule {
    /// Kind patterns: an exact kind (`fire.alarm`), a family (`fire.*`) or `*`.
    pub kinds: Vec<String>,
    /// Townships it applies to; empty = all.
    pub townships: Vec<String>,
    /// The department (code) events are assigned to.
    pub to: String,
}

impl DispatchRule {
    /// Whether an event of `kind` in `township` falls under the rule.
    pub fn matches(&self, kind: &str, township: &str) -> bool {
        kind_matches(&self.kinds, kind)
            && (self.townships.is_empty() || self.townships.iter().any(|t| t == township))
    }
}

/// Whether `kind` matches one of `patterns` (exact, `family.*`, or `*`).
pub fn kind_matches(patterns: &[String], kind: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == kind
            || p.strip_suffix(".*").is_some_and(|family| {
                kind.strip_prefix(family)
                    .is_some_and(|r| r.starts_with('.'))
            })
    })
}

/// Whether a pattern names a kind or a family that exists (for config checking).
pub fn valid_pattern(pattern: &str, known: &[&str]) -> bool {
    pattern == "*"
        || known.contains(&pattern)
        || pattern.strip_suffix(".*").is_some_and(|family| {
            known
                .iter()
                .any(|k| k.strip_prefix(family).is_some_and(|r| r.starts_with('.')))
        })
}

/// The first rule that assigns an event of `kind` in `township`.
pub fn first_match<'r>(
    rules: &'r [DispatchRule],
    kind: &str,
    township: &str,
) -> Option<&'r DispatchRule> {
    rules.iter().find(|r| r.matches(kind, township))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_kinds_and_families() {
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(kind_matches(&p(&["fire.*"]), "fire.alarm"));
        assert!(!kind_matches(&p(&["fire.*"]), "firework.alarm"));
        assert!(!kind_matches(&p(&["fire.alarm"]), "fire.fault"));
        assert!(kind_matches(&p(&["*"]), "camera.offline"));
        let rule = DispatchRule {
            kinds: p(&["camera.*"]),
            townships: p(&["lanjiang"]),
            to: "video-ops".into(),
        };
        assert!(rule.matches("camera.offline", "lanjiang"));
        assert!(!rule.matches("camera.offline", "yunshan"));
        let known = ["fire.alarm", "camera.offline"];
        assert!(valid_pattern("fire.*", &known));
        assert!(!valid_pattern("fir.*", &known));
        assert!(!valid_pattern("fire.alarms", &known));
    }
}
