//! The standard fire-telemetry profile: JSON payloads on channels `status`, `analog`,
//! `operation` and `heartbeat` (MQTT topic `fire/{unit_id}/{channel}`, HTTP
//! `POST /api/v1/ingest/{unit_id}/{channel}`).
//!
//! Strict: unknown fields, unknown flags, wrong types and out-of-range values are rejected with
//! an error that names the field, so an integration mistake shows at once instead of as a
//! silently missing alarm.

use alerts::signal::{
    AnalogReport, Component, FireSignal, Location, Operation, OperationReport, Protocol,
    SignalBody, StatusFlag, StatusFlags, StatusReport, UnknownName,
};
use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use std::fmt;
use std::str::FromStr;

/// Longest accepted `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// A channel of the standard profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// System or component status.
    Status,
    /// Measured value.
    Analog,
    /// Panel operation.
    Operation,
    /// Liveness.
    Heartbeat,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 4] = [
        Channel::Status,
        Channel::Analog,
        Channel::Operation,
        Channel::Heartbeat,
    ];

    /// The channel's name in topics and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Status => "status",
            Channel::Analog => "analog",
            Channel::Operation => "operation",
            Channel::Heartbeat => "heartbeat",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: "channel",
                name: s.to_string(),
                known: &["status", "analog", "operation", "heartbeat"],
            })
    }
}

/// Why a payload was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Not JSON at all.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// JSON, but a field is missing, unknown, of the wrong type or out of range.
    #[error("invalid payload: {0}")]
    Invalid(String),
}

impl ProfileError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            ProfileError::MalformedJson(_) => "malformed_json",
            ProfileError::Invalid(_) => "invalid_payload",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusPayload {
    ts: Option<String>,
    system_type: u8,
    system_addr: u8,
    component_type: Option<u8>,
    component_addr: Option<u32>,
    status: Vec<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalogPayload {
    ts: Option<String>,
    system_type: u8,
    system_addr: u8,
    component_type: Option<u8>,
    component_addr: Option<u32>,
    analog_type: u8,
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationPayload {
    ts: Option<String>,
    system_type: u8,
    system_addr: u8,
    operation: String,
    operator: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatPayload {
    ts: Option<String>,
}

fn decode<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ProfileError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            String::new()
        } else {
            format!("`{path}`: ")
        };
        if inner.is_syntax() || inner.is_eof() {
            ProfileError::MalformedJson(inner.to_string())
        } else {
            ProfileError::Invalid(format!("{at}{inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ProfileError::MalformedJson(e.to_string()))?;
    Ok(value)
}

fn time(ts: Option<String>) -> Result<Option<DateTime<FixedOffset>>, ProfileError> {
    ts.map(|t| {
        DateTime::parse_from_rfc3339(&t).map_err(|e| {
            ProfileError::Invalid(format!(
                "`ts`: `{t}` is not an RFC 3339 time with offset ({e})"
            ))
        })
    })
    .transpose()
}

fn location(
    system_type: u8,
    system_addr: u8,
    component_type: Option<u8>,
    component_addr: Option<u32>,
) -> Result<Location, ProfileError> {
    let component = match (component_type, component_addr) {
        (Some(kind), Some(addr)) => Some(Component { kind, addr }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ProfileError::Invalid(
                "`component_addr` is required when `component_type` is given".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(ProfileError::Invalid(
                "`component_type` is required when `component_addr` is given".into(),
            ))
        }
    };
    Ok(Location {
        system_type,
        system_addr,
        component,
    })
}

/// Decodes a standard-profile payload into a signal.
pub fn parse(
    unit_id: &str,
    protocol: Protocol,
    channel: Channel,
    body: &[u8],
) -> Result<FireSignal, ProfileError> {
    let (occurred_at, body) = match channel {
        Channel::Status => {
            let p: StatusPayload = decode(body)?;
            if p.status.is_empty() {
                return Err(ProfileError::Invalid(
                    "`status` must name at least one flag".into(),
                ));
            }
            let mut flags = StatusFlags::EMPTY;
            for (i, name) in p.status.iter().enumerate() {
                let flag = name
                    .parse::<StatusFlag>()
                    .map_err(|e| ProfileError::Invalid(format!("`status[{i}]`: {e}")))?;
                flags.insert(flag);
            }
            if let Some(d) = &p.description {
                if d.chars().count() > MAX_DESCRIPTION_CHARS {
                    return Err(ProfileError::Invalid(format!(
                        "`description`: longer than {MAX_DESCRIPTION_CHARS} characters"
                    )));
                }
            }
            let report = StatusReport {
                location: location(
                    p.system_type,
                    p.system_addr,
                    p.component_type,
                    p.component_addr,
                )?,
                flags,
                description: p.description,
            };
            (time(p.ts)?, SignalBody::Status(report))
        }
        Channel::Analog => {
            let p: AnalogPayload = decode(body)?;
            if !p.value.is_finite() {
                return Err(ProfileError::Invalid(
                    "`value` must be a finite number".into(),
                ));
            }
            let report = AnalogReport {
                location: location(
                    p.system_type,
                    p.system_addr,
                    p.component_type,
                    p.component_addr,
                )?,
                analog_type: p.analog_type,
                value: p.value,
                limits: None,
            };
            (time(p.ts)?, SignalBody::Analog(report))
        }
        Channel::Operation => {
            let p: OperationPayload = decode(body)?;
            let operation = p
                .operation
                .parse::<Operation>()
                .map_err(|e| ProfileError::Invalid(format!("`operation`: {e}")))?;
            let report = OperationReport {
                location: location(p.system_type, p.system_addr, None, None)?,
                operation,
                operator: p.operator,
            };
            (time(p.ts)?, SignalBody::Operation(report))
        }
        Channel::Heartbeat => {
            let p: HeartbeatPayload = if body.iter().all(u8::is_ascii_whitespace) {
                HeartbeatPayload { ts: None }
            } else {
                decode(body)?
            };
            (time(p.ts)?, SignalBody::Heartbeat)
        }
    };
    Ok(FireSignal {
        unit_id: unit_id.to_string(),
        protocol,
        occurred_at,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(body: &str) -> Result<FireSignal, ProfileError> {
        parse("u1", Protocol::Http, Channel::Status, body.as_bytes())
    }

    #[test]
    fn the_spec_examples_parse() {
        let s = status(r#"{"ts": "2026-11-28T10:00:00+08:00", "system_type": 1, "system_addr": 1,
            "component_type": 40, "component_addr": 131082, "status": ["fire"], "description": "3F east corridor"}"#)
            .unwrap();
        let SignalBody::Status(r) = &s.body else {
            panic!("status")
        };
        assert!(r.flags.contains(StatusFlag::Fire));
        assert_eq!(
            r.location.component,
            Some(Component {
                kind: 40,
                addr: 131082
            })
        );
        assert_eq!(
            s.occurred_at.unwrap().to_rfc3339(),
            "2026-11-28T10:00:00+08:00"
        );

        let a = parse("u1", Protocol::Http, Channel::Analog, br#"{"ts": "2026-11-28T10:00:00+08:00", "system_type": 1, "system_addr": 1, "component_type": 17, "component_addr": 5, "analog_type": 9, "value": 0.35}"#).unwrap();
        assert!(
            matches!(a.body, SignalBody::Analog(AnalogReport { analog_type: 9, value, .. }) if value == 0.35)
        );
        let o = parse("u1", Protocol::Http, Channel::Operation, br#"{"ts": "2026-11-28T10:00:00+08:00", "system_type": 1, "system_addr": 1, "operation": "reset", "operator": 1}"#).unwrap();
        assert!(matches!(
            o.body,
            SignalBody::Operation(OperationReport {
                operation: Operation::Reset,
                operator: Some(1),
                ..
            })
        ));
        let h = parse(
            "u1",
            Protocol::Http,
            Channel::Heartbeat,
            br#"{"ts": "2026-11-28T10:00:00+08:00"}"#,
        )
        .unwrap();
        assert_eq!(h.body, SignalBody::Heartbeat);
        assert!(parse("u1", Protocol::Http, Channel::Heartbeat, b"").is_ok());
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (r#"{"system_type": 1"#, "malformed_json", "EOF"),
            (r#"not json"#, "malformed_json", "expected"),
            (
                r#"{"system_type": 1, "system_addr": 1, "status": ["smoke"]}"#,
                "invalid_payload",
                "`status[0]`: unknown StatusFlag `smoke`",
            ),
            (
                r#"{"system_type": "one", "system_addr": 1, "status": ["fire"]}"#,
                "invalid_payload",
                "`system_type`",
            ),
            (
                r#"{"system_type": 300, "system_addr": 1, "status": ["fire"]}"#,
                "invalid_payload",
                "`system_type`",
            ),
            (
                r#"{"system_type": 1, "system_addr": 1, "status": ["fire"], "colour": "red"}"#,
                "invalid_payload",
                "unknown field `colour`",
            ),
            (
                r#"{"system_type": 1, "system_addr": 1}"#,
                "invalid_payload",
                "missing field `status`",
            ),
            (
                r#"{"system_type": 1, "system_addr": 1, "status": []}"#,
                "invalid_payload",
                "at least one flag",
            ),
            (
                r#"{"system_type": 1, "system_addr": 1, "status": ["fire"], "component_type": 40}"#,
                "invalid_payload",
                "`component_addr` is required",
            ),
            (
                r#"{"ts": "yesterday", "system_type": 1, "system_addr": 1, "status": ["fire"]}"#,
                "invalid_payload",
                "`ts`",
            ),
            (
                r#"{"system_type": 1, "system_addr": 1, "status": ["fire"]} {}"#,
                "malformed_json",
                "trailing",
            ),
        ];
        for (body, reason, needle) in cases {
            let err = status(body).unwrap_err();
            assert_eq!(err.reason(), reason, "{body}: {err}");
            assert!(
                err.to_string().contains(needle),
                "{body}: `{err}` lacks `{needle}`"
            );
        }
        let err = parse(
            "u1",
            Protocol::Http,
            Channel::Operation,
            br#"{"system_type": 1, "system_addr": 1, "operation": "explode"}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown Operation `explode`"),
            "{err}"
        );
        let err = "alarms".parse::<Channel>().unwrap_err().to_string();
        assert!(
            err.contains("`alarms`") && err.contains("heartbeat"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            for c in Channel::ALL {
                let _ = parse("u", Protocol::Http, c, &bytes);
            }
        }
    }
}
