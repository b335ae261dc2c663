//! Vendor profiles: declarative mappings from a vendor's JSON payload to the standard signals,
//! written in the configuration — no code change per vendor.
//!
//! A profile says which MQTT topics it reads (`efm/{unit_id}/up`), where the unit id and the
//! time are (the topic or a field path), and, field by field, what each value is: an analog
//! reading (GB/T 26875.3 analog type, scale and offset into the type's unit, optional limits with
//! hysteresis) or a status (a map from the vendor's values to status flags). One payload becomes
//! several signals, committed together.
//!
//! Decoding is strict like the standard profile: a required field that is missing, a value of
//! the wrong type or a status value the map does not know rejects the message with an error that
//! names the field — an integration mistake shows at once instead of as a silently missing alarm.

pub mod path;

use crate::mqtt::topic::TopicPattern;
use alerts::signal::{
    AnalogReport, FireSignal, Location, Protocol, SignalBody, StatusFlags, StatusReport,
};
use alerts::threshold::Limits;
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
pub use path::{JsonPath, PathError};
use serde_json::Value;

/// How a profile's time field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// `2026-11-28T10:00:00+08:00`.
    Rfc3339,
    /// Seconds since 1970 (number or numeric string).
    UnixSeconds,
    /// Milliseconds since 1970.
    UnixMillis,
}

impl TimeFormat {
    /// Every format's name in the configuration.
    pub const NAMES: &'static [&'static str] = &["rfc3339", "unix_s", "unix_ms"];

    /// A format by its configuration name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "rfc3339" => Some(Self::Rfc3339),
            "unix_s" => Some(Self::UnixSeconds),
            "unix_ms" => Some(Self::UnixMillis),
            _ => None,
        }
    }
}

/// What a field's value is.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A measured value: `raw × scale + offset`, in the analog type's unit.
    Analog {
        /// GB/T 26875.3 analog type.
        analog_type: u8,
        /// Multiplier into the type's unit (mA → A: 0.001).
        scale: f64,
        /// Added after scaling.
        offset: f64,
        /// This sensor's limits, if the profile sets them.
        limits: Option<Limits>,
    },
    /// A status: the vendor's value (as text: `1`, `"ALARM"`, `true`) → flags.
    Status {
        /// Value → flags, in the configuration's order.
        map: Vec<(String, StatusFlags)>,
        /// A fixed description for the events (`剩余电流报警`).
        description: Option<String>,
    },
}

/// One field of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Where the value is.
    pub path: JsonPath,
    /// Whether a payload may lack it (then the field yields nothing).
    pub optional: bool,
    /// The system / component it belongs to.
    pub location: Location,
    /// What it is.
    pub reading: Reading,
}

/// A vendor profile.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorProfile {
    /// Its name: metrics, logs, and the channel of `POST /api/v1/ingest/{unit}/{profile}`.
    pub name: String,
    /// The MQTT topics it reads, if any.
    pub topic: Option<TopicPattern>,
    /// Where the unit id is when the topic does not name it.
    pub unit_path: Option<JsonPath>,
    /// Where the time of the reading is (none: the time of receipt).
    pub time: Option<(JsonPath, TimeFormat)>,
    /// The fields.
    pub fields: Vec<Field>,
}

/// Why a vendor payload was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VendorError {
    /// Not JSON.
    #[error("profile `{profile}`: malformed JSON: {error}")]
    MalformedJson {
        /// Profile name.
        profile: String,
        /// The parser's message.
        error: String,
    },
    /// A required field is absent (or `null`).
    #[error("profile `{profile}`: `{path}` is missing")]
    Missing {
        /// Profile name.
        profile: String,
        /// The field's path.
        path: String,
    },
    /// A value has the wrong type or is out of range.
    #[error("profile `{profile}`: `{path}`: {problem}")]
    Invalid {
        /// Profile name.
        profile: String,
        /// The field's path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// A status value the profile's map does not know.
    #[error("profile `{profile}`: `{path}`: value {value} is not in the map (known: {known})")]
    Unmapped {
        /// Profile name.
        profile: String,
        /// The field's path.
        path: String,
        /// The value, as text.
        value: String,
        /// The values the map knows.
        known: String,
    },
}

impl VendorError {
    /// The `reason` label for `gateway_ingest_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            VendorError::MalformedJson { .. } => "malformed_json",
            VendorError::Missing { .. } | VendorError::Invalid { .. } => "invalid_payload",
            VendorError::Unmapped { .. } => "unmapped_value",
        }
    }
}

/// A decoded vendor payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The unit it came from.
    pub unit_id: String,
    /// Its signals, in the profile's field order (empty: a sign of life only).
    pub signals: Vec<FireSignal>,
}

/// The text a status value is looked up by: strings as they are, numbers and booleans as
/// written in JSON (`1`, `2.5`, `true`).
fn map_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl VendorProfile {
    fn invalid(&self, path: &JsonPath, problem: String) -> VendorError {
        VendorError::Invalid {
            profile: self.name.clone(),
            path: path.to_string(),
            problem,
        }
    }

    fn number(&self, path: &JsonPath, v: &Value) -> Result<f64, VendorError> {
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        n.filter(|n| n.is_finite()).ok_or_else(|| {
            self.invalid(
                path,
                format!(
                    "expected a number (or numeric string), found {}",
                    type_name(v)
                ),
            )
        })
    }

    fn time(&self, root: &Value) -> Result<Option<DateTime<FixedOffset>>, VendorError> {
        let Some((path, format)) = &self.time else {
            return Ok(None);
        };
        let Some(v) = path.get(root) else {
            return Ok(None); // no time: the time of receipt
        };
        let utc = FixedOffset::east_opt(0).expect("zero offset");
        let parsed = match format {
            TimeFormat::Rfc3339 => match v.as_str() {
                Some(s) => DateTime::parse_from_rfc3339(s).map_err(|e| {
                    self.invalid(path, format!("`{s}` is not an RFC 3339 time ({e})"))
                })?,
                None => {
                    return Err(self.invalid(
                        path,
                        format!("expected an RFC 3339 string, found {}", type_name(v)),
                    ))
                }
            },
            TimeFormat::UnixSeconds | TimeFormat::UnixMillis => {
                let n = self.number(path, v)?;
                let ms = if *format == TimeFormat::UnixSeconds {
                    n * 1000.0
                } else {
                    n
                };
                Utc.timestamp_millis_opt(ms as i64)
                    .single()
                    .ok_or_else(|| self.invalid(path, format!("{n} is not a time")))?
                    .with_timezone(&utc)
            }
        };
        Ok(Some(parsed))
    }

    /// Decodes a payload that came over `protocol`. `topic_unit` is the unit the topic (or the
    /// URL) named, if any.
    pub fn decode(
        &self,
        protocol: Protocol,
        topic_unit: Option<&str>,
        body: &[u8],
    ) -> Result<Decoded, VendorError> {
        let root: Value = serde_json::from_slice(body).map_err(|e| VendorError::MalformedJson {
            profile: self.name.clone(),
            error: e.to_string(),
        })?;
        let unit_id = match (topic_unit, &self.unit_path) {
            (Some(u), _) => u.to_string(),
            (None, Some(path)) => match path.get(&root) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(other) => {
                    return Err(self.invalid(
                        path,
                        format!(
                            "expected the unit id as a string or number, found {}",
                            type_name(other)
                        ),
                    ))
                }
                None => {
                    return Err(VendorError::Missing {
                        profile: self.name.clone(),
                        path: path.to_string(),
                    })
                }
            },
            (None, None) => {
                return Err(VendorError::Missing {
                    profile: self.name.clone(),
                    path: "{unit_id}".into(),
                })
            }
        };
        let occurred_at = self.time(&root)?;
        let mut signals = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let Some(v) = field.path.get(&root) else {
                if field.optional {
                    continue;
                }
                return Err(VendorError::Missing {
                    profile: self.name.clone(),
                    path: field.path.to_string(),
                });
            };
            let body = match &field.reading {
                Reading::Analog {
                    analog_type,
                    scale,
                    offset,
                    limits,
                } => {
                    let value = self.number(&field.path, v)? * scale + offset;
                    // keep what the vendor meant, not binary noise (0.1 × 3 = 0.30000000000000004)
                    let value = (value * 1e6).round() / 1e6;
                    SignalBody::Analog(AnalogReport {
                        location: field.location,
                        analog_type: *analog_type,
                        value,
                        limits: *limits,
                    })
                }
                Reading::Status { map, description } => {
                    let key = map_key(v).ok_or_else(|| {
                        self.invalid(
                            &field.path,
                            format!(
                                "expected a string, number or boolean, found {}",
                                type_name(v)
                            ),
                        )
                    })?;
                    let Some((_, flags)) = map.iter().find(|(k, _)| *k == key) else {
                        return Err(VendorError::Unmapped {
                            profile: self.name.clone(),
                            path: field.path.to_string(),
                            value: v.to_string(),
                            known: map
                                .iter()
                                .map(|(k, _)| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    };
                    SignalBody::Status(StatusReport {
                        location: field.location,
                        flags: *flags,
                        description: description.clone(),
                    })
                }
            };
            signals.push(FireSignal {
                unit_id: unit_id.clone(),
                protocol,
                occurred_at,
                body,
            });
        }
        Ok(Decoded { unit_id, signals })
    }
}

/// The profiles of a configuration, in order: the first whose topic fits a message reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles(pub Vec<VendorProfile>);

impl Profiles {
    /// The first profile whose topic fits, and the unit the topic names.
    pub fn for_topic<'t>(&self, topic: &'t str) -> Option<(&VendorProfile, Option<&'t str>)> {
        self.0.iter().find_map(|p| {
            let captured = p.topic.as_ref()?.capture(topic)?;
            Some((p, captured.unit))
        })
    }

    /// A profile by name.
    pub fn by_name(&self, name: &str) -> Option<&VendorProfile> {
        self.0.iter().find(|p| p.name == name)
    }

    /// The MQTT subscription filters of the profiles that read topics.
    pub fn filters(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|p| p.topic.as_ref().map(TopicPattern::filter))
            .collect()
    }
}

#[cfg(test)]
mod tests;
