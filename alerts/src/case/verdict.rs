//! Verdicts (处置结论) and which kinds take which.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How a case was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A real fire (真实火警).
    TrueAlarm,
    /// A false alarm (误报).
    FalseAlarm,
    /// A test (测试).
    Test,
    /// An equipment fault (设备故障).
    Fault,
    /// Repaired (已修复).
    Repaired,
    /// No fault found (无故障).
    NoFault,
    /// Something else (其他).
    Other,
    /// The outage ended by itself (自动恢复); given by the gateway only.
    Recovered,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 8] = [
        Verdict::TrueAlarm,
        Verdict::FalseAlarm,
        Verdict::Test,
        Verdict::Fault,
        Verdict::Repaired,
        Verdict::NoFault,
        Verdict::Other,
        Verdict::Recovered,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TrueAlarm => "true_alarm",
            Verdict::FalseAlarm => "false_alarm",
            Verdict::Test => "test",
            Verdict::Fault => "fault",
            Verdict::Repaired => "repaired",
            Verdict::NoFault => "no_fault",
            Verdict::Other => "other",
            Verdict::Recovered => "recovered",
        }
    }

    /// The label command-center staff read.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::TrueAlarm => "真实火警",
            Verdict::FalseAlarm => "误报",
            Verdict::Test => "测试",
            Verdict::Fault => "设备故障",
            Verdict::Repaired => "已修复",
            Verdict::NoFault => "无故障",
            Verdict::Other => "其他",
            Verdict::Recovered => "自动恢复",
        }
    }

    /// The verdict named `s`.
    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which verdicts a kind takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `fire.alarm`: fire verdicts, and never closed without one.
    FireAlarm,
    /// Other `fire.*`: fire verdicts.
    Fire,
    /// `camera.*` and `unit.*`: equipment verdicts.
    Equipment,
}

impl Family {
    /// The family of an event kind; `None` for notices (`event.*`, `report.*`), which are not
    /// cases.
    pub fn of(kind: &str) -> Option<Family> {
        if kind == "fire.alarm" {
            Some(Family::FireAlarm)
        } else if kind.starts_with("fire.") {
            Some(Family::Fire)
        } else if kind.starts_with("camera.") || kind.starts_with("unit.") {
            Some(Family::Equipment)
        } else {
            None
        }
    }

    /// The verdicts a person may give.
    pub fn verdicts(self) -> &'static [Verdict] {
        match self {
            Family::FireAlarm | Family::Fire => &[
                Verdict::TrueAlarm,
                Verdict::FalseAlarm,
                Verdict::Test,
                Verdict::Fault,
            ],
            Family::Equipment => &[Verdict::Repaired, Verdict::NoFault, Verdict::Other],
        }
    }

    /// Whether a person may give `v` on this family.
    pub fn allows(self, v: Verdict) -> bool {
        self.verdicts().contains(&v)
    }

    /// The verdict names, comma-separated (for error messages).
    pub fn verdict_names(self) -> String {
        self.verdicts()
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::FireAlarm => "fire.alarm",
            Family::Fire => "fire",
            Family::Equipment => "camera/unit",
        })
    }
}
