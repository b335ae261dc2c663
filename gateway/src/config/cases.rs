//! The closed loop's configuration: `[[departments]]`, `[[dispatch]]` rules and `[lifecycle]`.

use super::raw::WebhookEntry;
use super::registry::Townships;
use super::{is_code, Validator};
use alerts::assessment::Weights;
use alerts::case::dispatch::{valid_pattern, DispatchRule};
use alerts::case::sla::SlaRule;
use alerts::pipeline::CasePolicy;
use alerts::registry::Department;
use alerts::{Kind, Severity};
use chrono::Duration;
use serde::Deserialize;
use toml::Spanned;

/// `[[departments]]`: a department (派驻机构) townships assign events to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentEntry {
    pub code: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub townships: Vec<Spanned<String>>,
    pub webhook: Option<WebhookEntry>,
}

/// `[[dispatch]]`: assign events automatically (自动派单).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchEntry {
    pub kinds: Vec<Spanned<String>>,
    #[serde(default)]
    pub townships: Vec<Spanned<String>>,
    pub to: Spanned<String>,
}

/// `[[sla]]`: deadlines per stage (督办).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaEntry {
    #[serde(default)]
    pub kinds: Vec<Spanned<String>>,
    pub severity: Option<Spanned<String>>,
    pub sign_within_s: Option<u64>,
    pub handle_within_s: Option<u64>,
    pub close_within_s: Option<u64>,
    pub remind_every_s: Option<u64>,
}

/// `[reports]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsSection {
    #[serde(default)]
    pub weekly: WeeklyEntry,
}

/// `[reports] weekly = { weekday, at, enabled }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyEntry {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_weekday")]
    pub weekday: Spanned<String>,
    #[serde(default = "default_at")]
    pub at: Spanned<String>,
}

impl Default for WeeklyEntry {
    fn default() -> Self {
        WeeklyEntry {
            enabled: true,
            weekday: default_weekday(),
            at: default_at(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_weekday() -> Spanned<String> {
    Spanned::new(0..0, "mon".into())
}
fn default_at() -> Spanned<String> {
    Spanned::new(0..0, "08:00".into())
}

/// `[lifecycle]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSection {
    /// Info kinds (patterns) whose cases stay open after delivery.
    #[serde(default)]
    pub keep_open: Vec<Spanned<String>>,
}

/// Department codes, for the tokens' `department:<code>` scopes.
pub(super) type DepartmentCodes = Vec<String>;

impl Validator {
    /// `[[departments]]`: unique codes, names, known townships, valid webhooks.
    pub(super) fn departments(
        &mut self,
        raw: &[DepartmentEntry],
        known: &Townships,
    ) -> (Vec<Department>, DepartmentCodes) {
        let mut out: Vec<Department> = Vec::new();
        for d in raw {
            let code = d.code.get_ref();
            let at = self.at(&d.code);
            if !is_code(code) {
                self.err(
                    at.clone(),
                    format!("department `code`: `{code}` must be 1-64 of a-z, 0-9, `_`, `-`"),
                );
            }
            if out.iter().any(|o| &o.code == code) {
                self.err(at.clone(), format!("department `{code}` is defined twice"));
            }
            if d.name.trim().is_empty() {
                self.err(at, format!("department `{code}`: `name` is empty"));
            }
            for t in &d.townships {
                let v = self.valued(t);
                self.check_township(known, &v, &format!("department `{code}`"));
            }
            out.push(Department {
                code: code.clone(),
                name: d.name.clone(),
                townships: d.townships.iter().map(|t| t.get_ref().clone()).collect(),
                webhook: d.webhook.as_ref().and_then(|w| self.webhook(w)),
            });
        }
        let codes = out.iter().map(|d| d.code.clone()).collect();
        (out, codes)
    }

    /// `[[dispatch]]` and `[lifecycle]`: kind patterns that exist, known townships, and
    /// departments that serve the townships the rule names.
    pub(super) fn case_policy(
        &mut self,
        dispatch: &[DispatchEntry],
        sla: &[SlaEntry],
        lifecycle: &LifecycleSection,
        departments: &[Department],
        known: &Townships,
    ) -> CasePolicy {
        let mut rules = Vec::new();
        for r in dispatch {
            if r.kinds.is_empty() {
                self.err(
                    self.at(&r.to),
                    "dispatch `kinds`: empty (a rule needs at least one kind)",
                );
            }
            self.kind_patterns(&r.kinds, "dispatch `kinds`");
            let to = r.to.get_ref();
            match departments.iter().find(|d| &d.code == to) {
                None => {
                    let list: Vec<&str> = departments.iter().map(|d| d.code.as_str()).collect();
                    self.err(
                        self.at(&r.to),
                        format!(
                            "dispatch `to`: department `{to}` does not exist (known: {})",
                            list.join(", ")
                        ),
                    );
                }
                Some(d) => {
                    for t in &r.townships {
                        let v = self.valued(t);
                        self.check_township(known, &v, "dispatch");
                        if known.contains(&v.value) && !d.serves(&v.value) {
                            self.err(
                                v.at,
                                format!(
                                    "dispatch: department `{to}` does not serve township `{}`",
                                    v.value
                                ),
                            );
                        }
                    }
                }
            }
            rules.push(DispatchRule {
                kinds: r.kinds.iter().map(|k| k.get_ref().clone()).collect(),
                townships: r.townships.iter().map(|t| t.get_ref().clone()).collect(),
                to: to.clone(),
            });
        }
        self.kind_patterns(&lifecycle.keep_open, "lifecycle `keep_open`");
        let mut sla: Vec<SlaRule> = sla.iter().map(|r| self.sla_rule(r)).collect();
        sla.extend(SlaRule::defaults());
        CasePolicy {
            keep_open: lifecycle
                .keep_open
                .iter()
                .map(|k| k.get_ref().clone())
                .collect(),
            dispatch: rules,
            sla,
        }
    }

    /// One `[[sla]]` rule: known kinds and severity; 0 or absent = no deadline for that stage.
    fn sla_rule(&mut self, r: &SlaEntry) -> SlaRule {
        self.kind_patterns(&r.kinds, "sla `kinds`");
        let severity = r
            .severity
            .as_ref()
            .and_then(|s| match s.get_ref().parse::<Severity>() {
                Ok(v) => Some(v),
                Err(e) => {
                    self.err(self.at(s), format!("sla `severity`: {e}"));
                    None
                }
            });
        let secs = |s: Option<u64>| {
            s.filter(|s| *s > 0)
                .map(|s| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000)))
        };
        SlaRule {
            kinds: r.kinds.iter().map(|k| k.get_ref().clone()).collect(),
            severity,
            sign_within: secs(r.sign_within_s),
            handle_within: secs(r.handle_within_s),
            close_within: secs(r.close_within_s),
            remind_every: secs(r.remind_every_s),
        }
    }

    /// `[reports] weekly`: a weekday (`mon` … `sun`) and a local time `HH:MM`; `None` when off.
    pub(super) fn weekly(&mut self, w: &WeeklyEntry) -> Option<crate::weekly::Schedule> {
        let weekday = w.weekday.get_ref().parse::<chrono::Weekday>();
        let at = chrono::NaiveTime::parse_from_str(w.at.get_ref(), "%H:%M");
        if weekday.is_err() {
            self.err(
                self.at(&w.weekday),
                format!(
                    "[reports] weekly `weekday`: `{}` is not mon, tue, wed, thu, fri, sat or sun",
                    w.weekday.get_ref()
                ),
            );
        }
        if at.is_err() {
            self.err(
                self.at(&w.at),
                format!(
                    "[reports] weekly `at`: `{}` is not a time like 08:00",
                    w.at.get_ref()
                ),
            );
        }
        let schedule = crate::weekly::Schedule {
            weekday: weekday.ok()?,
            at: at.ok()?,
        };
        w.enabled.then_some(schedule)
    }

    /// `[assessment]`: weights must be finite and not negative, and not all zero.
    pub(super) fn weights(&mut self, w: &Weights) -> Weights {
        let all = [
            w.camera_availability,
            w.camera_integrity,
            w.unit_networking,
            w.sign_on_time,
            w.handle_on_time,
            w.true_alarm_share,
        ];
        if all.iter().any(|v| !v.is_finite() || *v < 0.0) || all.iter().all(|v| *v == 0.0) {
            self.err(
                self.src.at(&(0..0)),
                "[assessment] weights must be numbers ≥ 0, not all 0",
            );
        }
        w.clone()
    }

    fn kind_patterns(&mut self, patterns: &[Spanned<String>], what: &str) {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        for p in patterns {
            if !valid_pattern(p.get_ref(), &known) {
                self.err(
                    self.at(p),
                    format!(
                        "{what}: `{}` is not a kind, a family like `fire.*`, or `*`",
                        p.get_ref()
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, Scope};
    use std::path::Path;

    const BASE: &str = r#"
[[api.tokens]]
name = "brigade"
token = "0123456789abcdef-brigade"
scope = "department:fire-brigade"

[[townships]]
code = "lanjiang"
name = "兰江街道"

[[townships]]
code = "yunshan"
name = "云山街道"

[[departments]]
code = "fire-brigade"
name = "消防救援大队"
townships = ["lanjiang"]
webhook = { url = "http://127.0.0.1:9000/fire-brigade", secret = "s3cret" }
"#;

    fn load(extra: &str) -> Result<super::super::Config, String> {
        parse(Path::new("/etc/gw/gateway.toml"), &format!("{BASE}{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn departments_rules_and_scopes_load() {
        let c = load("\n[[dispatch]]\nkinds = [\"fire.*\"]\ntownships = [\"lanjiang\"]\nto = \"fire-brigade\"\n\n[lifecycle]\nkeep_open = [\"camera.motion\"]\n").unwrap();
        assert_eq!(
            c.api.tokens[0].scope,
            Scope::Department("fire-brigade".into())
        );
        let d = c.registry.department("fire-brigade").unwrap();
        assert!(d.serves("lanjiang") && !d.serves("yunshan"));
        assert!(c
            .registry
            .destinations()
            .iter()
            .any(|t| t.code == "dept:fire-brigade"));
        assert_eq!(c.cases.dispatch[0].to, "fire-brigade");
        assert_eq!(c.cases.keep_open, ["camera.motion"]);
    }

    #[test]
    fn mistakes_in_rules_are_named_with_their_line() {
        let e = load("\n[[dispatch]]\nkinds = [\"fir.*\"]\nto = \"police\"\n").unwrap_err();
        assert!(e.contains("`fir.*` is not a kind"), "{e}");
        assert!(
            e.contains("department `police` does not exist (known: fire-brigade)"),
            "{e}"
        );
        assert!(e.contains("gateway.toml:22:10: dispatch `kinds`"), "{e}");
        let e = load("\n[[dispatch]]\nkinds = [\"fire.alarm\"]\ntownships = [\"yunshan\"]\nto = \"fire-brigade\"\n").unwrap_err();
        assert!(e.contains("does not serve township `yunshan`"), "{e}");
        let e = load("\n[[dispatch]]\nkinds = []\nto = \"fire-brigade\"\n").unwrap_err();
        assert!(e.contains("a rule needs at least one kind"), "{e}");
        let e = parse(
            Path::new("/etc/gw/gateway.toml"),
            &BASE.replace("department:fire-brigade", "department:police"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("department `police` does not exist"), "{e}");
        let e = load("\n[reports]\nweekly = { weekday = \"moon\", at = \"25:00\" }\n").unwrap_err();
        assert!(e.contains("`moon` is not mon"), "{e}");
        assert!(e.contains("`25:00` is not a time"), "{e}");
        let c = load("\n[reports]\nweekly = { enabled = false }\n").unwrap();
        assert!(c.weekly.is_none());
        assert!(load("").unwrap().weekly.is_some(), "on by default");
        let e = load("\n[assessment]\nsign_on_time = -1\n").unwrap_err();
        assert!(e.contains("weights must be numbers"), "{e}");
    }
}
