//! The fire vocabulary shared by every source (GB/T 26875.3's, whatever the transport).
//!
//! MQTT, HTTP push and GB/T 26875.3 only translate bytes into a [`FireSignal`]; everything after
//! that — normalization, dedup, commit, delivery — is shared.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The protocol a signal arrived over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MQTT publish.
    Mqtt,
    /// HTTP push (`POST /api/v1/ingest/{unit}/{channel}`).
    Http,
    /// GB/T 26875.3-2011 over TCP.
    Gb26875,
    /// RTSP camera session.
    Rtsp,
    /// GB/T 28181 device (SIP registration, keepalives, catalog, alarms).
    Gb28181,
    /// Raised by the gateway itself (health, escalation).
    Gateway,
}

impl Protocol {
    /// The name used in events and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Mqtt => "mqtt",
            Protocol::Http => "http",
            Protocol::Gb26875 => "gb26875",
            Protocol::Rtsp => "rtsp",
            Protocol::Gb28181 => "gb28181",
            Protocol::Gateway => "gateway",
        }
    }
}

/// One message from a key unit, already decoded from its transport.
#[derive(Debug, Clone, PartialEq)]
pub struct FireSignal {
    /// The registered unit that sent it.
    pub unit_id: String,
    /// How it arrived.
    pub protocol: Protocol,
    /// When it happened according to the device; `None` when the device did not say.
    pub occurred_at: Option<DateTime<FixedOffset>>,
    /// What it says.
    pub body: SignalBody,
}

/// What a fire signal says.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalBody {
    /// A system or component status (channel `status`, GB/T 26875.3 types 1 and 2).
    Status(StatusReport),
    /// A measured value (channel `analog`, type 3).
    Analog(AnalogReport),
    /// An operation on the panel (channel `operation`, type 4).
    Operation(OperationReport),
    /// Liveness only (channel `heartbeat`, an empty GB/T 26875.3 send-data).
    Heartbeat,
}

/// Where in the unit's fire systems something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Building fire-facility system type (GB/T 26875.3 codes; 1 = fire alarm system).
    pub system_type: u8,
    /// System address.
    pub system_addr: u8,
    /// The component, or `None` for a system-level report.
    pub component: Option<Component>,
}

/// A component of a fire system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Component {
    /// Component type (GB/T 26875.3 codes; 40 = smoke detector).
    pub kind: u8,
    /// Component address (4 bytes in GB/T 26875.3).
    pub addr: u32,
}

/// A status change of a system or component.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReport {
    /// Which system or component.
    pub location: Location,
    /// The flags that are set.
    pub flags: StatusFlags,
    /// Free text from the panel (GB/T 26875.3: 31 bytes GB18030).
    pub description: Option<String>,
}

/// A measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalogReport {
    /// Which system or component measured it.
    pub location: Location,
    /// GB/T 26875.3 analog type (3 temperature, 4 pressure, 9 current, …).
    pub analog_type: u8,
    /// The value in the analog type's unit (see [`crate::codes::analog_unit`]).
    pub value: f64,
    /// This sensor's own limits (a vendor profile's); `None`: the general `[[thresholds]]`.
    pub limits: Option<crate::threshold::Limits>,
}

/// An operation performed on a system.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationReport {
    /// Which system.
    pub location: Location,
    /// What was done.
    pub operation: Operation,
    /// Operator number, when the panel reports one.
    pub operator: Option<u8>,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every value, in declaration order.
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
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(UnknownName {
                        what: stringify!($name),
                        name: s.to_string(),
                        known: &[$($text,)*],
                    }),
                }
            }
        }
    };
}

/// A name that is not in a vocabulary; its `Display` lists the names that are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}` (expected one of: {})", known.join(", "))]
pub struct UnknownName {
    /// Which vocabulary.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names that exist.
    pub known: &'static [&'static str],
}

named_enum! {
    /// A status flag, as in GB/T 26875.3's system and component status words.
    StatusFlag {
        /// Normal operation (bit 0).
        Normal = "normal",
        /// Fire alarm (bit 1).
        Fire = "fire",
        /// Fault (bit 2).
        Fault = "fault",
        /// Disabled / isolated (屏蔽, bit 3).
        Disabled = "disabled",
        /// Supervisory (监管, bit 4).
        Supervisory = "supervisory",
        /// Linkage started (启动, bit 5).
        Started = "started",
        /// Linkage feedback (反馈, bit 6).
        Feedback = "feedback",
        /// Delay running (bit 7).
        Delay = "delay",
        /// Main power fault (bit 8 of the system word).
        MainPowerFault = "main_power_fault",
        /// Backup power fault (bit 9).
        BackupPowerFault = "backup_power_fault",
        /// Bus fault (bit 10).
        BusFault = "bus_fault",
        /// Manual mode (bit 11; clear = automatic).
        Manual = "manual",
        /// Configuration changed (bit 12).
        ConfigChanged = "config_changed",
        /// Reset (bit 13).
        Reset = "reset",
        /// Component power fault (bit 8 of the component word).
        PowerFault = "power_fault",
    }
}

named_enum! {
    /// An operation on a fire alarm panel (GB/T 26875.3 type 4 flags).
    Operation {
        /// Reset (复位).
        Reset = "reset",
        /// Mute (消音).
        Mute = "mute",
        /// Manual alarm (手动报警).
        ManualAlarm = "manual_alarm",
        /// Alarm clear (警情消除).
        AlarmClear = "alarm_clear",
        /// Self-test (自检).
        SelfTest = "self_test",
        /// Confirm (确认).
        Confirm = "confirm",
        /// Test (测试).
        Test = "test",
    }
}

/// A set of [`StatusFlag`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StatusFlags(u32);

impl StatusFlags {
    /// No flag set.
    pub const EMPTY: StatusFlags = StatusFlags(0);

    fn bit(flag: StatusFlag) -> u32 {
        1 << (flag as u32)
    }

    /// Adds a flag.
    pub fn insert(&mut self, flag: StatusFlag) {
        self.0 |= Self::bit(flag);
    }

    /// Whether a flag is set.
    pub fn contains(self, flag: StatusFlag) -> bool {
        self.0 & Self::bit(flag) != 0
    }

    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flags that are set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = StatusFlag> {
        StatusFlag::ALL
            .iter()
            .copied()
            .filter(move |f| self.contains(*f))
    }
}

impl FromIterator<StatusFlag> for StatusFlags {
    fn from_iter<I: IntoIterator<Item = StatusFlag>>(iter: I) -> Self {
        let mut flags = StatusFlags::EMPTY;
        for f in iter {
            flags.insert(f);
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known() {
        for f in StatusFlag::ALL {
            assert_eq!(f.as_str().parse::<StatusFlag>().unwrap(), *f);
        }
        let err = "smoke".parse::<StatusFlag>().unwrap_err().to_string();
        assert!(err.contains("`smoke`"), "{err}");
        assert!(err.contains("fire"), "{err}");
    }

    #[test]
    fn flag_set_keeps_what_was_inserted() {
        let flags: StatusFlags = [StatusFlag::Reset, StatusFlag::Fire].into_iter().collect();
        assert!(flags.contains(StatusFlag::Fire));
        assert!(!flags.contains(StatusFlag::Fault));
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            vec![StatusFlag::Fire, StatusFlag::Reset]
        );
    }
}
