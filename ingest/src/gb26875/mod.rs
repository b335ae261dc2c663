//! GB/T 26875.3-2011: the protocol between a key unit's user information transmission device
//! (用户信息传输装置) and a monitoring center.
//!
//! The codec — [`frame`], [`adu`], [`time`], [`stream`] (a streaming decoder for TCP) and
//! [`signals`] (frames → `FireSignal`s) — does no I/O and is what the fuzz target exercises.
//! [`server`] is the one part with sockets: the TCP server, one `Connection` per device.

pub mod adu;
pub mod frame;
pub mod server;
pub mod signals;
pub mod stream;
pub mod time;

pub use adu::{encode_description, Adu, AnalogValue, ComponentStatus, Objects};
pub use frame::{command, Frame, Header};
pub use stream::{Decoded, StreamDecoder};
pub use time::TimeLabel;

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Does not begin with `@@`.
    #[error("bad start marker")]
    BadStart,
    /// Does not end with `##` where the length says.
    #[error("bad end marker")]
    BadEnd,
    /// ADU length above 1024.
    #[error("ADU length {0} exceeds 1024")]
    BadLength(usize),
    /// The frame is not as long as its length field says.
    #[error("ADU length {declared} does not match a frame of {frame} bytes")]
    LengthMismatch {
        /// Declared ADU length.
        declared: usize,
        /// Bytes given.
        frame: usize,
    },
    /// Checksum mismatch.
    #[error("checksum {sent:#04x} sent, {computed:#04x} computed")]
    Checksum {
        /// What the bytes sum to.
        computed: u8,
        /// What the frame says.
        sent: u8,
    },
    /// A command the standard does not define (7–127).
    #[error("unknown command {0}")]
    UnknownCommand(u8),
    /// An ADU type that is neither defined nor user-defined.
    #[error("unknown ADU type {0}")]
    UnknownType(u8),
    /// Zero objects, or more than the type allows.
    #[error("ADU type {kind}: {count} objects")]
    BadObjectCount {
        /// Type.
        kind: u8,
        /// Count sent.
        count: u8,
    },
    /// The objects do not fill the ADU exactly.
    #[error("ADU type {kind}: {count} objects need {expected} bytes, {found} sent")]
    ObjectSize {
        /// Type.
        kind: u8,
        /// Count sent.
        count: u8,
        /// Bytes the objects need.
        expected: usize,
        /// Bytes sent.
        found: usize,
    },
    /// Too short to hold what it must.
    #[error("truncated {0}")]
    Truncated(&'static str),
}

impl FrameError {
    /// The `reason` label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FrameError::BadStart => "bad_start",
            FrameError::BadEnd => "bad_end",
            FrameError::BadLength(_) | FrameError::LengthMismatch { .. } => "bad_length",
            FrameError::Checksum { .. } => "checksum",
            FrameError::UnknownCommand(_) => "unknown_command",
            FrameError::UnknownType(_) => "unknown_type",
            FrameError::BadObjectCount { .. }
            | FrameError::ObjectSize { .. }
            | FrameError::Truncated(_) => "truncated_object",
        }
    }
}

#[cfg(test)]
mod tests;
