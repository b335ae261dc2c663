//! The streaming decoder: TCP delivers frames coalesced and split (粘包/半包). Bytes go in as
//! they arrive; whole frames come out, and garbage or a broken frame is reported once with its
//! reason, after which decoding resynchronises on the next `@@`. The buffer never grows past
//! one maximal frame plus what one read added.

use super::frame::{self, Frame, Header, MAX_ADU, OVERHEAD, START};
use super::FrameError;

/// What the decoder found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A frame that checks out.
    Frame(Frame),
    /// A frame-shaped run of bytes that does not; `header` when its control unit could be
    /// read (for a deny).
    Rejected {
        /// Why.
        error: FrameError,
        /// Its header, if readable.
        header: Option<Header>,
    },
    /// Bytes before a start marker that belong to no frame.
    Garbage(usize),
}

/// Accumulates bytes and yields what they hold.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    buf: Vec<u8>,
}

/// Bytes kept at most while waiting for the rest of a frame.
pub const MAX_BUFFERED: usize = OVERHEAD + MAX_ADU;

impl StreamDecoder {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
        }
    }

    /// Adds bytes read from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next thing the buffer holds, or `None` until more bytes arrive.
    pub fn decode_next(&mut self) -> Option<Decoded> {
        if self.buf.is_empty() {
            return None;
        }
        // resynchronise on the start marker
        let start = self.buf.windows(2).position(|w| w == START);
        match start {
            Some(0) => {}
            Some(i) => {
                self.buf.drain(..i);
                return Some(Decoded::Garbage(i));
            }
            None => {
                // keep a trailing `@`: it may be half a start marker
                let keep = usize::from(self.buf.last() == Some(&START[0]));
                let dropped = self.buf.len() - keep;
                if dropped == 0 {
                    return None;
                }
                self.buf.drain(..dropped);
                return Some(Decoded::Garbage(dropped));
            }
        }
        if self.buf.len() < 27 {
            return None;
        }
        let n = u16::from_le_bytes([self.buf[24], self.buf[25]]) as usize;
        if n > MAX_ADU {
            // not a frame: drop its start marker and look for the next
            let header = Some(frame::header(&self.buf));
            self.buf.drain(..2);
            return Some(Decoded::Rejected {
                error: FrameError::BadLength(n),
                header,
            });
        }
        let total = OVERHEAD + n;
        if self.buf.len() < total {
            return None;
        }
        let result = Frame::decode(&self.buf[..total]);
        match result {
            Ok(f) => {
                self.buf.drain(..total);
                Some(Decoded::Frame(f))
            }
            Err(error) => {
                let header = Some(frame::header(&self.buf));
                // a broken end marker may mean a wrong length: resynchronise right after the
                // start marker rather than trust the length
                let skip = if matches!(error, FrameError::BadEnd) {
                    2
                } else {
                    total
                };
                self.buf.drain(..skip);
                Some(Decoded::Rejected { error, header })
            }
        }
    }
}

impl Iterator for StreamDecoder {
    type Item = Decoded;
    fn next(&mut self) -> Option<Decoded> {
        self.decode_next()
    }
}
