//! Application data units: `[type][object count][objects…]`, each type with its object layout.

use super::time::TimeLabel;
use super::FrameError;

/// A component's status, with its description (type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    /// System type.
    pub system_type: u8,
    /// System address.
    pub system_addr: u8,
    /// Component type.
    pub component_type: u8,
    /// Component address.
    pub component_addr: u32,
    /// Status bits (little-endian on the wire).
    pub status: u16,
    /// Description: 31 bytes of GB18030, NUL/space padded, as sent.
    pub description: [u8; 31],
    /// When it happened at the device.
    pub time: TimeLabel,
}

/// A description as the 31 bytes of a component status: GB18030, cut at a character
/// boundary to fit, NUL padded.
pub fn encode_description(text: &str) -> [u8; 31] {
    let mut out = [0u8; 31];
    let (bytes, _, _) = encoding_rs::GB18030.encode(text);
    let mut end = bytes.len().min(30);
    // do not cut a multi-byte character: back off to a boundary that decodes cleanly
    while end > 0
        && encoding_rs::GB18030
            .decode_without_bom_handling(&bytes[..end])
            .1
    {
        end -= 1;
    }
    out[..end].copy_from_slice(&bytes[..end]);
    out
}

impl ComponentStatus {
    /// The description decoded from GB18030, padding trimmed (`None` when empty).
    pub fn description_text(&self) -> Option<String> {
        let end = self
            .description
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.description.len());
        let (text, _, _) = encoding_rs::GB18030.decode(&self.description[..end]);
        let t = text.trim();
        (!t.is_empty()).then(|| t.to_string())
    }
}

/// A component's analog value (type 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalogValue {
    /// System type.
    pub system_type: u8,
    /// System address.
    pub system_addr: u8,
    /// Component type.
    pub component_type: u8,
    /// Component address.
    pub component_addr: u32,
    /// Analog type (its resolution gives the unit of `value`).
    pub analog_type: u8,
    /// Raw value, in the analog type's resolution.
    pub value: i16,
    /// When measured.
    pub time: TimeLabel,
}

/// The objects of an ADU, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Objects {
    /// 1: (system type, system address, status bits, time).
    SystemStatus(Vec<(u8, u8, u16, TimeLabel)>),
    /// 2.
    ComponentStatus(Vec<ComponentStatus>),
    /// 3.
    Analog(Vec<AnalogValue>),
    /// 4: (system type, system address, operation flags, operator, time).
    Operation(Vec<(u8, u8, u8, u8, TimeLabel)>),
    /// 5: (system type, system address, major, minor).
    SystemVersion(Vec<(u8, u8, u8, u8)>),
    /// 8: (system type, system address, time).
    SystemTime(Vec<(u8, u8, TimeLabel)>),
    /// 21: (status bits, time).
    UitdStatus(Vec<(u8, TimeLabel)>),
    /// 24: (operation flags, operator, time); flag bit 5 is the patrol-check answer.
    UitdOperation(Vec<(u8, u8, TimeLabel)>),
    /// 25: (major, minor).
    UitdVersion(Vec<(u8, u8)>),
    /// 28: the device's clock.
    UitdTime(Vec<TimeLabel>),
    /// 90: set the device's clock (downstream).
    SyncClock(TimeLabel),
    /// 91: patrol check (downstream); the byte is the answer timeout in minutes.
    PatrolCheck(u8),
    /// UITD reads (81–88) and initialisation (89): one reserved byte per object.
    Request(Vec<u8>),
    /// Types whose objects are kept as raw bytes (system and component configuration 6, 7, 26;
    /// the facility reads 61–68, whose object layouts vary by read; user-defined 128–254): the
    /// object count and the bytes after it.
    Raw {
        /// Object count as sent.
        count: u8,
        /// The bytes after the count.
        bytes: Vec<u8>,
    },
}

/// An ADU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adu {
    /// Type code.
    pub kind: u8,
    /// Its objects.
    pub objects: Objects,
}

/// Reads fixed-size fields from an object slice (bounds checked by the caller's size check).
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> u8 {
        let v = self.b[self.at];
        self.at += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        let v = u16::from_le_bytes([self.b[self.at], self.b[self.at + 1]]);
        self.at += 2;
        v
    }
    fn u32(&mut self) -> u32 {
        let v = u32::from_le_bytes(self.b[self.at..self.at + 4].try_into().expect("4 bytes"));
        self.at += 4;
        v
    }
    fn time(&mut self) -> TimeLabel {
        let t = TimeLabel(self.b[self.at..self.at + 6].try_into().expect("6 bytes"));
        self.at += 6;
        t
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let v: [u8; N] = self.b[self.at..self.at + N].try_into().expect("N bytes");
        self.at += N;
        v
    }
}

/// Object size of the fixed-layout types.
fn object_size(kind: u8) -> Option<usize> {
    Some(match kind {
        1 => 2 + 2 + 6,
        2 => 7 + 2 + 31 + 6,
        3 => 7 + 1 + 2 + 6,
        4 => 4 + 6,
        5 => 4,
        8 => 2 + 6,
        21 => 1 + 6,
        24 => 2 + 6,
        25 => 2,
        28 => 6,
        90 => 6,
        91 => 1,
        81..=89 => 1,
        _ => return None,
    })
}

/// Largest object count of the types whose limit the standard states.
fn max_objects(kind: u8) -> usize {
    match kind {
        1 | 4 => 102,
        2 => 22,
        3 => 63,
        _ => 255,
    }
}

impl Adu {
    /// Decodes an ADU (the bytes the length field counts).
    pub fn decode(b: &[u8]) -> Result<Self, FrameError> {
        let (&kind, rest) = b.split_first().ok_or(FrameError::Truncated("ADU type"))?;
        let (&count, body) = rest
            .split_first()
            .ok_or(FrameError::Truncated("object count"))?;
        let n = count as usize;
        let Some(size) = object_size(kind) else {
            return match kind {
                6 | 7 | 26 | 61..=68 | 128..=254 => Ok(Self {
                    kind,
                    objects: Objects::Raw {
                        count,
                        bytes: body.to_vec(),
                    },
                }),
                _ => Err(FrameError::UnknownType(kind)),
            };
        };
        if n == 0 || n > max_objects(kind) {
            return Err(FrameError::BadObjectCount { kind, count });
        }
        // downstream commands that carry one value have exactly one object
        if matches!(kind, 90 | 91) && n != 1 {
            return Err(FrameError::BadObjectCount { kind, count });
        }
        if body.len() != n * size {
            return Err(FrameError::ObjectSize {
                kind,
                count,
                expected: n * size,
                found: body.len(),
            });
        }
        let mut c = Cursor { b: body, at: 0 };
        let objects = match kind {
            1 => Objects::SystemStatus(
                (0..n)
                    .map(|_| (c.u8(), c.u8(), c.u16(), c.time()))
                    .collect(),
            ),
            2 => Objects::ComponentStatus(
                (0..n)
                    .map(|_| ComponentStatus {
                        system_type: c.u8(),
                        system_addr: c.u8(),
                        component_type: c.u8(),
                        component_addr: c.u32(),
                        status: c.u16(),
                        description: c.bytes::<31>(),
                        time: c.time(),
                    })
                    .collect(),
            ),
            3 => Objects::Analog(
                (0..n)
                    .map(|_| AnalogValue {
                        system_type: c.u8(),
                        system_addr: c.u8(),
                        component_type: c.u8(),
                        component_addr: c.u32(),
                        analog_type: c.u8(),
                        value: c.u16() as i16,
                        time: c.time(),
                    })
                    .collect(),
            ),
            4 => Objects::Operation(
                (0..n)
                    .map(|_| (c.u8(), c.u8(), c.u8(), c.u8(), c.time()))
                    .collect(),
            ),
            5 => Objects::SystemVersion((0..n).map(|_| (c.u8(), c.u8(), c.u8(), c.u8())).collect()),
            8 => Objects::SystemTime((0..n).map(|_| (c.u8(), c.u8(), c.time())).collect()),
            21 => Objects::UitdStatus((0..n).map(|_| (c.u8(), c.time())).collect()),
            24 => Objects::UitdOperation((0..n).map(|_| (c.u8(), c.u8(), c.time())).collect()),
            25 => Objects::UitdVersion((0..n).map(|_| (c.u8(), c.u8())).collect()),
            28 => Objects::UitdTime((0..n).map(|_| c.time()).collect()),
            90 => Objects::SyncClock(c.time()),
            91 => Objects::PatrolCheck(c.u8()),
            _ => Objects::Request((0..n).map(|_| c.u8()).collect()),
        };
        Ok(Self { kind, objects })
    }

    /// Encodes the ADU.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind);
        let count_at = out.len();
        out.push(0);
        let t = |out: &mut Vec<u8>, time: &TimeLabel| out.extend_from_slice(&time.0);
        let count: usize = match &self.objects {
            Objects::SystemStatus(v) => {
                for (st, sa, status, time) in v {
                    out.extend_from_slice(&[*st, *sa]);
                    out.extend_from_slice(&status.to_le_bytes());
                    t(out, time);
                }
                v.len()
            }
            Objects::ComponentStatus(v) => {
                for o in v {
                    out.extend_from_slice(&[o.system_type, o.system_addr, o.component_type]);
                    out.extend_from_slice(&o.component_addr.to_le_bytes());
                    out.extend_from_slice(&o.status.to_le_bytes());
                    out.extend_from_slice(&o.description);
                    t(out, &o.time);
                }
                v.len()
            }
            Objects::Analog(v) => {
                for o in v {
                    out.extend_from_slice(&[o.system_type, o.system_addr, o.component_type]);
                    out.extend_from_slice(&o.component_addr.to_le_bytes());
                    out.push(o.analog_type);
                    out.extend_from_slice(&o.value.to_le_bytes());
                    t(out, &o.time);
                }
                v.len()
            }
            Objects::Operation(v) => {
                for (st, sa, flags, op, time) in v {
                    out.extend_from_slice(&[*st, *sa, *flags, *op]);
                    t(out, time);
                }
                v.len()
            }
            Objects::SystemVersion(v) => {
                for (st, sa, major, minor) in v {
                    out.extend_from_slice(&[*st, *sa, *major, *minor]);
                }
                v.len()
            }
            Objects::SystemTime(v) => {
                for (st, sa, time) in v {
                    out.extend_from_slice(&[*st, *sa]);
                    t(out, time);
                }
                v.len()
            }
            Objects::UitdStatus(v) => {
                for (status, time) in v {
                    out.push(*status);
                    t(out, time);
                }
                v.len()
            }
            Objects::UitdOperation(v) => {
                for (flags, op, time) in v {
                    out.extend_from_slice(&[*flags, *op]);
                    t(out, time);
                }
                v.len()
            }
            Objects::UitdVersion(v) => {
                for (major, minor) in v {
                    out.extend_from_slice(&[*major, *minor]);
                }
                v.len()
            }
            Objects::UitdTime(v) => {
                for time in v {
                    t(out, time);
                }
                v.len()
            }
            Objects::SyncClock(time) => {
                t(out, time);
                1
            }
            Objects::PatrolCheck(minutes) => {
                out.push(*minutes);
                1
            }
            Objects::Request(v) => {
                out.extend_from_slice(v);
                v.len()
            }
            Objects::Raw { count, bytes } => {
                out.extend_from_slice(bytes);
                *count as usize
            }
        };
        out[count_at] = count as u8;
    }
}
