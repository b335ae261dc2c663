//! What a frame means in the gateway's one fire vocabulary: the same `FireSignal`s the MQTT and
//! HTTP sources produce, so normalization, dedup, linkage and delivery are shared. Pure.

use super::adu::Objects;
use super::frame::{command, Frame};
use super::time::TimeLabel;
use alerts::signal::{
    AnalogReport, Component, FireSignal, Location, Operation, OperationReport, Protocol,
    SignalBody, StatusFlag, StatusFlags, StatusReport,
};
use chrono::{DateTime, FixedOffset};

/// A patrol-check answer (type 24, bit 5) found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatrolAnswer {
    /// Operator number.
    pub operator: u8,
    /// When the device says it answered.
    pub at: Option<DateTime<FixedOffset>>,
}

/// Status bits 0–13 name the flags in the vocabulary's order; component status adds bit 8
/// (power fault) in place of the system's main-power bit.
fn status_flags(bits: u16, component: bool) -> StatusFlags {
    let mut flags = StatusFlags::EMPTY;
    for (i, flag) in StatusFlag::ALL.iter().enumerate().take(14) {
        if bits & (1 << i) == 0 {
            continue;
        }
        let flag = match (component, *flag) {
            (true, StatusFlag::MainPowerFault) => StatusFlag::PowerFault,
            (true, _) if i > 8 => continue, // components define bits 0–8 only
            (_, f) => f,
        };
        flags.insert(flag);
    }
    flags
}

/// UITD status (type 21): bit 0 normal, 1 fire, 2 fault, 3 main power fault, 4 backup power
/// fault, 5 channel-to-center fault, 6 monitoring-line fault. Channel and line faults are
/// faults of the device itself, named in the description.
fn uitd_status(bits: u8) -> (StatusFlags, Option<String>) {
    let mut flags = StatusFlags::EMPTY;
    let mut what = Vec::new();
    for (bit, flag, name) in [
        (0, StatusFlag::Normal, ""),
        (1, StatusFlag::Fire, "传输装置火警"),
        (2, StatusFlag::Fault, "传输装置故障"),
        (3, StatusFlag::MainPowerFault, "传输装置主电故障"),
        (4, StatusFlag::BackupPowerFault, "传输装置备电故障"),
        (5, StatusFlag::Fault, "与监控中心通信信道故障"),
        (6, StatusFlag::Fault, "监测连接线路故障"),
    ] {
        if bits & (1 << bit) != 0 {
            flags.insert(flag);
            if !name.is_empty() {
                what.push(name);
            }
        }
    }
    (flags, (!what.is_empty()).then(|| what.join("，")))
}

/// A component of a system, as a location.
fn component_location(system_type: u8, system_addr: u8, kind: u8, addr: u32) -> Location {
    Location {
        system_type,
        system_addr,
        component: Some(Component { kind, addr }),
    }
}

/// The UITD itself as a location (system type 0, address 0).
const UITD: Location = Location {
    system_type: 0,
    system_addr: 0,
    component: None,
};

fn operations(flags: u8, patrol_bit: bool) -> impl Iterator<Item = Operation> {
    Operation::ALL
        .iter()
        .enumerate()
        .filter(move |(i, _)| flags & (1 << i) != 0 && !(patrol_bit && *i == 5))
        .map(|(_, op)| *op)
}

/// The signals of a frame from `unit_id`'s device, read in the unit's time zone, and any
/// patrol-check answers. An empty send-data (heartbeat) is a sign of life; frames that carry
/// no event (versions, clocks, configuration) are signs of life too.
pub fn signals(
    frame: &Frame,
    unit_id: &str,
    offset: FixedOffset,
) -> (Vec<FireSignal>, Vec<PatrolAnswer>) {
    let mut out = Vec::new();
    let mut answers = Vec::new();
    let signal = |at: &TimeLabel, body| FireSignal {
        unit_id: unit_id.to_string(),
        protocol: Protocol::Gb26875,
        occurred_at: at.to_datetime(offset),
        body,
    };
    let Some(adu) = &frame.adu else {
        if frame.header.command == command::SEND {
            out.push(FireSignal {
                unit_id: unit_id.to_string(),
                protocol: Protocol::Gb26875,
                occurred_at: None,
                body: SignalBody::Heartbeat,
            });
        }
        return (out, answers);
    };
    match &adu.objects {
        Objects::SystemStatus(v) => {
            for (st, sa, bits, at) in v {
                out.push(signal(
                    at,
                    SignalBody::Status(StatusReport {
                        location: Location {
                            system_type: *st,
                            system_addr: *sa,
                            component: None,
                        },
                        flags: status_flags(*bits, false),
                        description: None,
                    }),
                ));
            }
        }
        Objects::ComponentStatus(v) => {
            for o in v {
                out.push(signal(
                    &o.time,
                    SignalBody::Status(StatusReport {
                        location: component_location(
                            o.system_type,
                            o.system_addr,
                            o.component_type,
                            o.component_addr,
                        ),
                        flags: status_flags(o.status, true),
                        description: o.description_text(),
                    }),
                ));
            }
        }
        Objects::Analog(v) => {
            for o in v {
                let scale = alerts::codes::analog_type(o.analog_type)
                    .map(|(_, _, s)| s)
                    .unwrap_or(1.0);
                let value = (o.value as f64 * scale * 1e6).round() / 1e6;
                out.push(signal(
                    &o.time,
                    SignalBody::Analog(AnalogReport {
                        location: component_location(
                            o.system_type,
                            o.system_addr,
                            o.component_type,
                            o.component_addr,
                        ),
                        analog_type: o.analog_type,
                        value,
                        limits: None,
                    }),
                ));
            }
        }
        Objects::Operation(v) => {
            for (st, sa, flags, operator, at) in v {
                for op in operations(*flags, false) {
                    out.push(signal(
                        at,
                        SignalBody::Operation(OperationReport {
                            location: Location {
                                system_type: *st,
                                system_addr: *sa,
                                component: None,
                            },
                            operation: op,
                            operator: Some(*operator),
                        }),
                    ));
                }
            }
        }
        Objects::UitdStatus(v) => {
            for (bits, at) in v {
                let (flags, description) = uitd_status(*bits);
                out.push(signal(
                    at,
                    SignalBody::Status(StatusReport {
                        location: UITD,
                        flags,
                        description,
                    }),
                ));
            }
        }
        Objects::UitdOperation(v) => {
            for (flags, operator, at) in v {
                if flags & 0x20 != 0 {
                    answers.push(PatrolAnswer {
                        operator: *operator,
                        at: at.to_datetime(offset),
                    });
                }
                for op in operations(*flags, true) {
                    out.push(signal(
                        at,
                        SignalBody::Operation(OperationReport {
                            location: UITD,
                            operation: op,
                            operator: Some(*operator),
                        }),
                    ));
                }
            }
        }
        _ => {}
    }
    (out, answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gb26875::Frame;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn east8() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
    }

    #[test]
    fn the_worked_fire_alarm_is_a_fire_status_at_the_device_time() {
        let f = Frame::decode(&hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02 02 01 01 01 28 0A 00 02 00 02 00 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 00 02 3A 09 1A 09 0C 46 23 23")).unwrap();
        let (s, answers) = signals(&f, "unit-0001", east8());
        assert!(answers.is_empty());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].protocol, Protocol::Gb26875);
        assert_eq!(
            s[0].occurred_at.unwrap().to_rfc3339(),
            "2012-09-26T09:58:02+08:00"
        );
        let SignalBody::Status(r) = &s[0].body else {
            panic!("status")
        };
        assert_eq!(r.flags.iter().collect::<Vec<_>>(), [StatusFlag::Fire]);
        assert_eq!(
            r.location.component,
            Some(Component {
                kind: 40,
                addr: 0x0002000A
            })
        );
    }

    #[test]
    fn uitd_power_faults_and_patrol_answers() {
        let f = Frame::decode(&hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 09 00 02 15 01 08 02 3A 09 1A 09 0C 42 23 23")).unwrap();
        let (s, _) = signals(&f, "u", east8());
        let SignalBody::Status(r) = &s[0].body else {
            panic!("status")
        };
        assert_eq!(
            r.flags.iter().collect::<Vec<_>>(),
            [StatusFlag::MainPowerFault]
        );
        assert_eq!(r.description.as_deref(), Some("传输装置主电故障"));
        let (flags, what) = uitd_status(0x20);
        assert!(flags.contains(StatusFlag::Fault));
        assert_eq!(what.as_deref(), Some("与监控中心通信信道故障"));
        let p = Frame::decode(&hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 0A 00 02 18 01 20 01 02 3A 09 1A 09 0C 5F 23 23")).unwrap();
        let (s, answers) = signals(&p, "u", east8());
        assert!(
            s.is_empty(),
            "bit 5 of type 24 is the answer, not an operation"
        );
        assert_eq!(answers[0].operator, 1);
    }

    #[test]
    fn component_status_bit_8_is_power_fault_and_heartbeats_are_life() {
        let flags = status_flags(0x0104, true);
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            [StatusFlag::Fault, StatusFlag::PowerFault]
        );
        let flags = status_flags(0x2102, false);
        assert_eq!(
            flags.iter().collect::<Vec<_>>(),
            [
                StatusFlag::Fire,
                StatusFlag::MainPowerFault,
                StatusFlag::Reset
            ]
        );
        let hb = Frame {
            header: crate::gb26875::Header {
                serial: 5,
                version: (1, 1),
                time: TimeLabel::default(),
                source: 889,
                destination: 88888,
                command: command::SEND,
            },
            adu: None,
        };
        let hb = Frame::decode(&hb.encode()).unwrap();
        let (s, _) = signals(&hb, "u", east8());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].body, SignalBody::Heartbeat);
    }
}
