//! Governance events: the one format every source produces and every command center receives.

use crate::signal::{Operation, Protocol, StatusFlag};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A governance event, exactly as delivered (the JSON body of the webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// UUIDv7, assigned once; stable across retries and restarts.
    pub id: Uuid,
    /// What happened.
    pub kind: Kind,
    /// How urgent it is.
    pub severity: Severity,
    /// A human-readable one-line summary.
    pub title: String,
    /// When it happened (the device's time when it said, else when it was received).
    #[serde(serialize_with = "crate::time::serialize")]
    pub occurred_at: DateTime<FixedOffset>,
    /// When the gateway received it.
    #[serde(serialize_with = "crate::time::serialize")]
    pub received_at: DateTime<FixedOffset>,
    /// Who or what raised it.
    pub source: Source,
    /// The township it is routed to.
    pub township: TownshipRef,
    /// Fire detail, for `fire.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire: Option<FireDetail>,
    /// Camera detail, for `camera.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraDetail>,
    /// Unit connectivity detail, for `unit.*` events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitDetail>,
    /// Evidence (snapshots) attached to the event.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// For `event.*` notices: the event this one is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<Uuid>,
    /// For a recovering event (`camera.online`, `unit.online`, a cleared threshold or picture
    /// check): the open tickets it closes (verdict `recovered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolves: Vec<Uuid>,
    /// For `event.updated` and `event.assigned`: the step of the closed loop it reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseNotice>,
    /// For `event.overdue`: the late stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<OverdueDetail>,
    /// For `report.weekly`: the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportDetail>,
    /// Where the source is: `address`, `lat`, `lon`, `datum` (as the registry knows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<crate::place::Place>,
    /// Whom to call at the unit (for unit events, and for `event.assigned` to a department).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<crate::place::Contacts>,
}

/// A report that is ready (`report.weekly`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDetail {
    /// Its name (`2026-W48`).
    pub name: String,
    /// The window it covers, start.
    #[serde(serialize_with = "crate::time::serialize")]
    pub from: DateTime<FixedOffset>,
    /// The window's end (exclusive).
    #[serde(serialize_with = "crate::time::serialize")]
    pub to: DateTime<FixedOffset>,
    /// Download paths on the gateway's API (admin token), by format.
    pub files: std::collections::BTreeMap<String, String>,
}

/// A stage past its deadline (督办).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueDetail {
    /// `sign`, `handle` or `close`.
    pub stage: crate::case::sla::SlaStage,
    /// Its deadline.
    #[serde(serialize_with = "crate::time::serialize")]
    pub due_at: DateTime<FixedOffset>,
    /// How late at this reminder, in seconds.
    pub overdue_s: i64,
    /// 1 for the first reminder, rising with each repeat.
    pub level: u32,
    /// The case's stage now.
    pub case_stage: crate::case::Stage,
}

impl Event {
    /// An event of `kind` from `source` in `township`: its envelope only — the kind's default
    /// severity, no title yet, no detail, evidence, case, location or contacts. Normalizers
    /// fill in what their kind carries.
    pub fn envelope(
        id: Uuid,
        kind: Kind,
        source: Source,
        township: TownshipRef,
        occurred_at: DateTime<FixedOffset>,
        received_at: DateTime<FixedOffset>,
    ) -> Event {
        Event {
            id,
            kind,
            severity: kind.severity(),
            title: String::new(),
            occurred_at,
            received_at,
            source,
            township,
            fire: None,
            camera: None,
            unit: None,
            evidence: Vec::new(),
            refers_to: None,
            resolves: Vec::new(),
            case: None,
            overdue: None,
            report: None,
            location: None,
            contacts: None,
        }
    }
}

impl TownshipRef {
    /// The reference to a registry township.
    pub fn of(t: &crate::registry::Township) -> TownshipRef {
        TownshipRef {
            code: t.code.clone(),
            name: t.name.clone(),
        }
    }
}

/// The closed-loop step a notice reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseNotice {
    /// The case's stage after the step.
    pub stage: crate::case::Stage,
    /// The step (its history entry).
    pub step: crate::case::Step,
    /// The department it is assigned to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_to: Option<String>,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `unit`, `camera` or `gateway`.
    pub kind: SourceKind,
    /// The registry id.
    pub id: String,
    /// The registry name.
    pub name: String,
    /// The protocol it arrived over.
    pub protocol: Protocol,
}

/// The kind of thing that raised an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A key fire-safety unit.
    Unit,
    /// A camera.
    Camera,
    /// The gateway itself.
    Gateway,
}

/// A township, as named in events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TownshipRef {
    /// Registry code (`lanjiang`).
    pub code: String,
    /// Display name (`兰江街道`).
    pub name: String,
}

/// Fire detail: which system/component, and what it reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FireDetail {
    /// System type code.
    pub system_type: u8,
    /// System type name, when the code is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_type_name: Option<String>,
    /// System address.
    pub system_addr: u8,
    /// Component type code (absent for system-level reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<u8>,
    /// Component type name, when the code is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type_name: Option<String>,
    /// Component address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_addr: Option<u32>,
    /// The panel's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every status flag the report carried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<StatusFlag>,
    /// The flag this event is about (one event per meaningful flag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<StatusFlag>,
    /// The operation, for operation reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// The operator number, for operation reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<u8>,
    /// The measured value, for analog events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analog: Option<AnalogDetail>,
    /// For `fire.linkage_feedback`: seconds from the unit's fire alarm to this feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkage_response_s: Option<f64>,
    /// For `fire.linkage_feedback`: `in_time` or `late` against the feedback window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkage_result: Option<String>,
    /// The device's clock was outside the sane window (before 2000, or more than a day ahead):
    /// its time minus the receive time, in seconds; `occurred_at` is then the receive time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_s: Option<i64>,
}

/// A measured value in an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalogDetail {
    /// GB/T 26875.3 analog type.
    pub analog_type: u8,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// For `fire.analog_threshold`: the limit it went above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// For `fire.analog_threshold`: the limit it must fall under to clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_below: Option<f64>,
    /// For `fire.analog_threshold` of a low band: the limit it went below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// For `fire.analog_threshold` of a low band: the limit it must rise above to clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_above: Option<f64>,
    /// For `fire.analog_threshold`: `true` when this event clears the alarm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
}

/// Camera detail (filled by the camera sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CameraDetail {
    /// Health state: `online`, `stalled`, `degraded`, `offline`.
    pub state: String,
    /// Why, for `offline` and `degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Measured values (fps, bitrate_kbps, loss, …).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub measured: serde_json::Map<String, serde_json::Value>,
    /// Failing picture checks, for `camera.quality`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing_checks: Vec<String>,
    /// Picture checks that pass again, for `camera.quality` (all clear when `failing_checks`
    /// is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleared_checks: Vec<String>,
    /// What a device's alarm said, for `camera.alarm` and a device's `camera.tamper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<AlarmDetail>,
}

/// A device's alarm (GB/T 28181 Alarm notify), its codes with their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AlarmDetail {
    /// The device that sent it (an NVR for its channels).
    pub device: String,
    /// `AlarmMethod` as sent (1 telephone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The method's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_name: Option<String>,
    /// `AlarmType` as sent.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub alarm_type: Option<String>,
    /// The type's name (for the method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// `AlarmPriority`: 1 (most severe) to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// `AlarmDescription`, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Unit connectivity detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDetail {
    /// Online after this event.
    pub online: bool,
    /// The unit's last message before the event (for `unit.offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::time::option::serialize")]
    pub last_seen: Option<DateTime<FixedOffset>>,
    /// How long it had been offline (for `unit.online` after an outage), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_for_s: Option<i64>,
}

/// A piece of evidence attached to an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `snapshot`.
    pub kind: String,
    /// The camera it came from.
    pub camera: String,
    /// Where to fetch it (through the API, token-scoped).
    pub url: String,
    /// When it was captured.
    #[serde(serialize_with = "crate::time::serialize")]
    pub captured_at: DateTime<FixedOffset>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant,)* }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = crate::signal::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(crate::signal::UnknownName {
                        what: stringify!($name),
                        name: s.to_string(),
                        known: &[$($text,)*],
                    }),
                }
            }
        }
    };
}

wire_enum! {
    /// Event kinds.
    Kind {
        /// A fire alarm (火警).
        FireAlarm = "fire.alarm",
        /// A fault (故障).
        FireFault = "fire.fault",
        /// A supervisory signal (监管).
        FireSupervisory = "fire.supervisory",
        /// Something was disabled / isolated (屏蔽).
        FireDisabled = "fire.disabled",
        /// Linkage equipment started (联动启动).
        FireLinkageStarted = "fire.linkage_started",
        /// Linkage equipment reported back (联动反馈).
        FireLinkageFeedback = "fire.linkage_feedback",
        /// Main, backup or component power fault.
        FirePowerFault = "fire.power_fault",
        /// Panel reset (复位).
        FireReset = "fire.reset",
        /// Another panel operation (mute, self-test, alarm clear, …).
        FireOperation = "fire.operation",
        /// An analog value crossed a threshold.
        FireAnalogThreshold = "fire.analog_threshold",
        /// A unit stopped reporting.
        UnitOffline = "unit.offline",
        /// A unit reports again.
        UnitOnline = "unit.online",
        /// A camera has no working session.
        CameraOffline = "camera.offline",
        /// A camera streams again.
        CameraOnline = "camera.online",
        /// A camera's session is up but no frames arrive.
        CameraStalled = "camera.stalled",
        /// A camera streams badly (low fps, loss).
        CameraDegraded = "camera.degraded",
        /// A camera's picture fails quality checks.
        CameraQuality = "camera.quality",
        /// A camera reports tampering.
        CameraTamper = "camera.tamper",
        /// A camera reports motion.
        CameraMotion = "camera.motion",
        /// A camera or NVR reports an alarm (GB/T 28181: video loss, intrusion, disk full, …).
        CameraAlarm = "camera.alarm",
        /// An event was escalated (督办).
        EventEscalated = "event.escalated",
        /// Evidence that came after its event was delivered (a late snapshot).
        EventEvidence = "event.evidence",
        /// A step of the closed loop on an event (signed, assigned, handled, closed, …).
        EventUpdated = "event.updated",
        /// An event assigned (交办) to a department: sent to the department.
        EventAssigned = "event.assigned",
        /// A stage of a case is past its deadline (督办): to the township and the city.
        EventOverdue = "event.overdue",
        /// The weekly report (工作周报) is ready: to the city.
        ReportWeekly = "report.weekly",
    }
}

wire_enum! {
    /// Severity, most urgent first.
    Severity {
        /// Act now (fire).
        Critical = "critical",
        /// Act soon (faults, offline).
        Major = "major",
        /// Note (disabled, feedback).
        Minor = "minor",
        /// For the record.
        Info = "info",
    }
}

impl Kind {
    /// The default severity of this kind.
    pub fn severity(self) -> Severity {
        use Kind::*;
        match self {
            FireAlarm => Severity::Critical,
            FireFault | FireSupervisory | FireLinkageStarted | FirePowerFault
            | FireAnalogThreshold | UnitOffline | CameraOffline | CameraTamper | CameraAlarm
            | EventEscalated | EventAssigned | EventOverdue => Severity::Major,
            FireDisabled | FireLinkageFeedback | CameraStalled | CameraDegraded | CameraQuality => {
                Severity::Minor
            }
            FireReset | FireOperation | UnitOnline | CameraOnline | CameraMotion
            | EventEvidence | EventUpdated | ReportWeekly => Severity::Info,
        }
    }

    /// The label command-center staff read in titles.
    pub fn label(self) -> &'static str {
        use Kind::*;
        match self {
            FireAlarm => "火警",
            FireFault => "故障",
            FireSupervisory => "监管报警",
            FireDisabled => "屏蔽",
            FireLinkageStarted => "联动启动",
            FireLinkageFeedback => "联动反馈",
            FirePowerFault => "电源故障",
            FireReset => "复位",
            FireOperation => "操作",
            FireAnalogThreshold => "模拟量超限",
            UnitOffline => "单位离线",
            UnitOnline => "单位上线",
            CameraOffline => "摄像机离线",
            CameraOnline => "摄像机上线",
            CameraStalled => "视频中断",
            CameraDegraded => "视频质量下降",
            CameraQuality => "图像异常",
            CameraTamper => "摄像机遮挡/破坏",
            CameraMotion => "移动侦测",
            CameraAlarm => "视频报警",
            EventEscalated => "督办",
            EventEvidence => "补充视频证据",
            EventUpdated => "处置进展",
            EventAssigned => "交办",
            EventOverdue => "督办",
            ReportWeekly => "工作周报",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_to_their_spec_names() {
        for k in Kind::ALL {
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<Kind>(&json).unwrap(), *k);
        }
        assert_eq!(Kind::FireAlarm.severity(), Severity::Critical);
    }
}
