//! Field paths into a JSON payload: `$.residualCurrent`, `$.data.temps[2]`, `$["cable temp"]`.
//!
//! A deliberately small subset of JSONPath: every path names exactly one value (no wildcards,
//! filters or recursive descent), so a profile field is always one reading.

use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

/// Why a path is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path `{path}`: {problem}")]
pub struct PathError {
    path: String,
    problem: String,
}

impl JsonPath {
    /// Parses `$` followed by `.key`, `[index]` or `["key"]` steps.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |problem: String| PathError {
            path: text.to_string(),
            problem,
        };
        let Some(mut rest) = text.strip_prefix('$') else {
            return Err(err("must start with `$`".into()));
        };
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                let key = &r[..end];
                if key.is_empty() {
                    return Err(err("empty key after `.`".into()));
                }
                if key.contains(['*', ']', '"', '\'', '?', '@', '$']) {
                    return Err(err(format!(
                        "`{key}`: only plain keys, indexes and [\"quoted keys\"] are supported"
                    )));
                }
                steps.push(Step::Key(key.to_string()));
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| err("`[` without `]`".into()))?;
                let inner = &r[..end];
                let quoted = inner
                    .strip_prefix('"')
                    .and_then(|i| i.strip_suffix('"'))
                    .or_else(|| inner.strip_prefix('\'').and_then(|i| i.strip_suffix('\'')));
                match quoted {
                    Some(key) if !key.is_empty() => steps.push(Step::Key(key.to_string())),
                    _ => {
                        let index = inner.parse::<usize>().map_err(|_| {
                            err(format!(
                                "`[{inner}]`: an index (0, 1, …) or a quoted key was expected"
                            ))
                        })?;
                        steps.push(Step::Index(index));
                    }
                }
                rest = &r[end + 1..];
            } else {
                return Err(err(format!(
                    "unexpected `{rest}`: steps are `.key`, `[index]` or `[\"key\"]`"
                )));
            }
        }
        Ok(Self {
            text: text.to_string(),
            steps,
        })
    }

    /// The value the path names in `root`, if there is one (`null` counts as absent).
    pub fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut at = root;
        for step in &self.steps {
            at = match step {
                Step::Key(k) => at.as_object()?.get(k)?,
                Step::Index(i) => at.as_array()?.get(*i)?,
            };
        }
        (!at.is_null()).then_some(at)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_keys_indexes_and_quoted_keys() {
        let v = json!({"a": {"b": [10, {"c d": 5}]}, "n": null, "x": 1});
        let get = |p: &str| JsonPath::parse(p).unwrap().get(&v).cloned();
        assert_eq!(get("$.x"), Some(json!(1)));
        assert_eq!(get("$.a.b[0]"), Some(json!(10)));
        assert_eq!(get("$.a.b[1][\"c d\"]"), Some(json!(5)));
        assert_eq!(get("$['a']['b'][1]['c d']"), Some(json!(5)));
        assert_eq!(get("$.a.b[2]"), None);
        assert_eq!(get("$.n"), None, "null is absent");
        assert_eq!(get("$.x.y"), None);
        assert_eq!(get("$"), Some(v.clone()));
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        let e = |p: &str| JsonPath::parse(p).unwrap_err().to_string();
        assert_eq!(e("a.b"), "path `a.b`: must start with `$`");
        assert!(e("$.a[*]").contains("an index (0, 1, …) or a quoted key"));
        assert!(e("$..a").contains("empty key"));
        assert!(e("$.a[1").contains("without `]`"));
        assert!(e("$a").contains("unexpected `a`"));
        assert!(e("$.a*").contains("only plain keys"));
    }
}
