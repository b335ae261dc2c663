//! SIP over a byte stream (TCP): messages framed by their header block and `Content-Length`
//! (RFC 3261 §18.3), each at most a set size. Blank lines between messages (the CRLF
//! keepalives of RFC 5626) are skipped.

/// Why a stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message (header block or header and body) beyond the limit.
    #[error("a SIP message over {0} bytes")]
    TooLarge(usize),
    /// No usable `Content-Length` (required on a stream).
    #[error("a SIP message without a readable Content-Length")]
    NoLength,
}

/// Reassembles messages from what a stream delivers.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max: usize,
}

impl Framer {
    /// A framer for messages of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends what was read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, `Ok(None)` until one is complete. After an error the stream
    /// is to be closed: nothing after it can be framed.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let blank = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.buf.drain(..blank);
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > self.max {
                return Err(FrameError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let head = &self.buf[..head_end];
        let length = content_length(head).ok_or(FrameError::NoLength)?;
        let total = head_end + 4 + length;
        if total > self.max {
            return Err(FrameError::TooLarge(self.max));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }
}

/// The `Content-Length` (or compact `l`) of a header block.
pub fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nl:   5\r\n\r\nhello";

    #[test]
    fn messages_split_anywhere_and_back_to_back_come_out_whole() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        for cut in 0..stream.len() {
            let mut f = Framer::new(1024);
            let mut got = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                f.push(part);
                while let Some(m) = f.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, vec![MSG.to_vec(), MSG.to_vec()], "cut at {cut}");
        }
    }

    #[test]
    fn oversized_and_lengthless_messages_are_errors() {
        let mut f = Framer::new(MSG.len() - 1);
        f.push(MSG);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge(MSG.len() - 1)));
        let mut f = Framer::new(40);
        f.push(&[b'A'; 41]);
        assert_eq!(f.next_message(), Err(FrameError::TooLarge(40)));
        let mut f = Framer::new(1024);
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 999999\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::TooLarge(1024)));
        let mut f = Framer::new(1024);
        f.push(b"MESSAGE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_message(), Err(FrameError::NoLength));
    }
}
