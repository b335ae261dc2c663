//! One frame: `@@`, control unit (serial, version, time label, source and destination
//! addresses, ADU length), command, ADU, checksum, `##`.

use super::adu::Adu;
use super::time::TimeLabel;
use super::FrameError;

/// Start marker.
pub const START: [u8; 2] = [0x40, 0x40];
/// End marker.
pub const END: [u8; 2] = [0x23, 0x23];
/// Bytes besides the ADU.
pub const OVERHEAD: usize = 30;
/// Longest ADU the standard allows.
pub const MAX_ADU: usize = 1024;

/// Commands.
pub mod command {
    /// Control (center → device: clock sync, patrol check, init).
    pub const CONTROL: u8 = 1;
    /// Send data (device → center), or a heartbeat when empty.
    pub const SEND: u8 = 2;
    /// Confirm.
    pub const CONFIRM: u8 = 3;
    /// Request (reads).
    pub const REQUEST: u8 = 4;
    /// Reply to a request.
    pub const REPLY: u8 = 5;
    /// Deny.
    pub const DENY: u8 = 6;
}

/// The control unit and command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Business serial number (a confirm echoes it).
    pub serial: u16,
    /// Protocol version (major, minor).
    pub version: (u8, u8),
    /// When the frame was sent.
    pub time: TimeLabel,
    /// Sender's 48-bit address.
    pub source: u64,
    /// Receiver's 48-bit address.
    pub destination: u64,
    /// Command byte.
    pub command: u8,
}

impl Header {
    /// The header of the answer to this frame (confirm or deny): same serial and version,
    /// addresses swapped, sent at `time`.
    pub fn answer(&self, command: u8, time: TimeLabel) -> Header {
        Header {
            serial: self.serial,
            version: self.version,
            time,
            source: self.destination,
            destination: self.source,
            command,
        }
    }
}

/// A whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Control unit and command.
    pub header: Header,
    /// The ADU; `None` for an empty one (confirm, deny, heartbeat).
    pub adu: Option<Adu>,
}

fn addr(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..6].copy_from_slice(&b[..6]);
    u64::from_le_bytes(a)
}

fn checksum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
}

/// Whether a command byte is one the standard defines (1–6) or user-defined (128–255).
pub fn known_command(c: u8) -> bool {
    matches!(c, 1..=6 | 128..=255)
}

/// Reads the header of a buffer that holds at least the 27 bytes before the ADU.
pub(crate) fn header(b: &[u8]) -> Header {
    Header {
        serial: u16::from_le_bytes([b[2], b[3]]),
        version: (b[4], b[5]),
        time: TimeLabel(b[6..12].try_into().expect("6 bytes")),
        source: addr(&b[12..18]),
        destination: addr(&b[18..24]),
        command: b[26],
    }
}

impl Frame {
    /// Decodes exactly one frame (`b` is the whole frame).
    pub fn decode(b: &[u8]) -> Result<Frame, FrameError> {
        if b.len() < OVERHEAD {
            return Err(FrameError::Truncated("frame"));
        }
        if b[..2] != START {
            return Err(FrameError::BadStart);
        }
        let n = u16::from_le_bytes([b[24], b[25]]) as usize;
        if n > MAX_ADU {
            return Err(FrameError::BadLength(n));
        }
        if b.len() != OVERHEAD + n {
            return Err(FrameError::LengthMismatch {
                declared: n,
                frame: b.len(),
            });
        }
        if b[28 + n..30 + n] != END {
            return Err(FrameError::BadEnd);
        }
        let sum = checksum(&b[2..27 + n]);
        if sum != b[27 + n] {
            return Err(FrameError::Checksum {
                computed: sum,
                sent: b[27 + n],
            });
        }
        let header = header(b);
        if !known_command(header.command) {
            return Err(FrameError::UnknownCommand(header.command));
        }
        let adu = if n == 0 {
            None
        } else {
            Some(Adu::decode(&b[27..27 + n])?)
        };
        Ok(Frame { header, adu })
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&START);
        let h = &self.header;
        out.extend_from_slice(&h.serial.to_le_bytes());
        out.extend_from_slice(&[h.version.0, h.version.1]);
        out.extend_from_slice(&h.time.0);
        out.extend_from_slice(&h.source.to_le_bytes()[..6]);
        out.extend_from_slice(&h.destination.to_le_bytes()[..6]);
        out.extend_from_slice(&[0, 0]); // length, below
        out.push(h.command);
        if let Some(adu) = &self.adu {
            adu.encode(&mut out);
        }
        let n = out.len() - 27;
        out[24..26].copy_from_slice(&(n as u16).to_le_bytes());
        let sum = checksum(&out[2..]);
        out.push(sum);
        out.extend_from_slice(&END);
        out
    }
}
