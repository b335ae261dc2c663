//! RTP carrying a program stream over TCP (RFC 4571: each packet after a 2-byte length; some
//! senders use RTSP's `$`, channel, 2-byte length): packets of one timestamp make one pack,
//! which [`super::ps::Demuxer`] turns into video. [`first_keyframe`] reads a stream until its
//! first keyframe, within a byte budget and a deadline; [`packetize`] writes packs as RTP (for
//! the simulated devices).

use super::ps::{Demuxer, PsError};
use super::{is_keyframe, Codec};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A pack larger than this is not a picture a camera sends.
pub const MAX_PACK: usize = 8 << 20;

/// Bytes read at most while waiting for a keyframe (a camera whose keyframes are further apart
/// than this is not worth the wait).
pub const MAX_READ: usize = 64 << 20;

/// Why no keyframe came.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The stream ended.
    #[error("the stream ended before a keyframe")]
    Ended,
    /// Read failed.
    #[error("reading the stream failed: {0}")]
    Io(#[from] std::io::Error),
    /// Bytes that are not RTP.
    #[error("not RTP (version {0})")]
    NotRtp(u8),
    /// The program stream could not be read.
    #[error("{0}")]
    Ps(#[from] PsError),
    /// A pack, or the wait, beyond its budget.
    #[error("{0} without a keyframe")]
    TooMuch(&'static str),
}

/// One RTP packet's fields the reader uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Marker bit (the frame's last packet).
    pub marker: bool,
    /// Timestamp (90 kHz).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// The header and payload of an RTP packet.
pub fn parse(packet: &[u8]) -> Result<(Header, &[u8]), MediaError> {
    if packet.len() < 12 {
        return Err(MediaError::NotRtp(0));
    }
    let version = packet[0] >> 6;
    if version != 2 {
        return Err(MediaError::NotRtp(version));
    }
    let csrc = (packet[0] & 0x0F) as usize;
    let mut start = 12 + 4 * csrc;
    if packet[0] & 0x10 != 0 {
        let ext = packet
            .get(start + 2..start + 4)
            .ok_or(MediaError::NotRtp(2))?;
        start += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.saturating_sub(*packet.last().unwrap_or(&0) as usize);
    }
    let payload = packet
        .get(start..end.max(start))
        .ok_or(MediaError::NotRtp(2))?;
    let header = Header {
        marker: packet[1] & 0x80 != 0,
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    };
    Ok((header, payload))
}

/// Reads one framed RTP packet into `buf`.
async fn read_packet<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<(), MediaError> {
    let mut first = [0u8; 2];
    r.read_exact(&mut first).await.map_err(eof)?;
    let len = if first[0] == b'$' {
        let mut len = [0u8; 2];
        r.read_exact(&mut len).await.map_err(eof)?;
        u16::from_be_bytes(len)
    } else {
        u16::from_be_bytes(first)
    } as usize;
    buf.resize(len, 0);
    r.read_exact(buf).await.map_err(eof)?;
    Ok(())
}

fn eof(e: std::io::Error) -> MediaError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        MediaError::Ended
    } else {
        MediaError::Io(e)
    }
}

/// Reads RTP from `r` until a pack holds a keyframe; returns its codec and access unit.
/// Packets of another SSRC than `ssrc` (when given) are ignored.
pub async fn first_keyframe<R: AsyncRead + Unpin>(
    r: &mut R,
    ssrc: Option<u32>,
) -> Result<(Codec, Vec<u8>), MediaError> {
    let mut demux = Demuxer::default();
    let mut packet = Vec::new();
    let mut pack: Vec<u8> = Vec::new();
    let mut current: Option<u32> = None;
    let mut read = 0usize;
    loop {
        read_packet(r, &mut packet).await?;
        read += packet.len() + 2;
        if read > MAX_READ {
            return Err(MediaError::TooMuch("64 MiB read"));
        }
        let (h, payload) = parse(&packet)?;
        if ssrc.is_some_and(|s| s != h.ssrc) {
            continue;
        }
        if current.is_some_and(|t| t != h.timestamp) && !pack.is_empty() {
            if let Some(found) = keyframe(&mut demux, &pack)? {
                return Ok(found);
            }
            pack.clear();
        }
        current = Some(h.timestamp);
        if pack.len() + payload.len() > MAX_PACK {
            return Err(MediaError::TooMuch("an 8 MiB pack"));
        }
        pack.extend_from_slice(payload);
        if h.marker {
            if let Some(found) = keyframe(&mut demux, &pack)? {
                return Ok(found);
            }
            pack.clear();
            current = None;
        }
    }
}

/// The keyframe in a pack, if it holds one.
fn keyframe(demux: &mut Demuxer, pack: &[u8]) -> Result<Option<(Codec, Vec<u8>)>, MediaError> {
    let video = demux.demux(pack)?;
    if video.is_empty() {
        return Ok(None);
    }
    // joined mid-stream: frames before the first stream map cannot be decoded anyway
    let Some(codec) = demux.codec else {
        return Ok(None);
    };
    Ok(is_keyframe(codec, &video).then_some((codec, video)))
}

/// A pack as RTP packets (payload type 96) of at most `mtu` payload bytes, each after its 2-byte
/// length (RFC 4571), the last with the marker bit.
pub fn packetize(pack: &[u8], seq: &mut u16, timestamp: u32, ssrc: u32, mtu: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = pack.chunks(mtu.max(1)).collect();
    let mut out = Vec::with_capacity(pack.len() + chunks.len() * 14);
    for (k, chunk) in chunks.iter().enumerate() {
        let marker = if k + 1 == chunks.len() { 0x80 } else { 0 };
        let len = (12 + chunk.len()) as u16;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[0x80, marker | 96]);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        out.extend_from_slice(chunk);
        *seq = seq.wrapping_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ps::mux;
    use super::*;

    const P: &[u8] = &[0, 0, 0, 1, 0x41, 0x9A, 0x02];
    const IDR: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 0x88,
    ];

    #[tokio::test]
    async fn the_first_keyframe_is_found_after_other_frames_and_other_sources() {
        let mut seq = 0;
        let mut wire = Vec::new();
        // a P frame before the stream map, another source's keyframe, then ours
        wire.extend(packetize(
            &mux(Codec::H264, P, 0, false),
            &mut seq,
            0,
            7,
            1400,
        ));
        wire.extend(packetize(
            &mux(Codec::H265, IDR, 3600, true),
            &mut seq,
            3600,
            99,
            1400,
        ));
        let big: Vec<u8> = IDR
            .iter()
            .chain(std::iter::repeat_n(&0x11, 50_000))
            .copied()
            .collect();
        wire.extend(packetize(
            &mux(Codec::H264, &big, 7200, true),
            &mut seq,
            7200,
            7,
            1400,
        ));
        let (codec, au) = first_keyframe(&mut wire.as_slice(), Some(7)).await.unwrap();
        assert_eq!((codec, au), (Codec::H264, big));
    }

    #[tokio::test]
    async fn dollar_framing_is_read_and_an_early_end_is_an_error() {
        let mut seq = 0;
        let framed = packetize(&mux(Codec::H264, IDR, 0, true), &mut seq, 0, 1, 1400);
        let mut dollar = vec![b'$', 0];
        dollar.extend_from_slice(&framed);
        let (codec, _) = first_keyframe(&mut dollar.as_slice(), None).await.unwrap();
        assert_eq!(codec, Codec::H264);
        let cut = &framed[..framed.len() - 3];
        assert!(matches!(
            first_keyframe(&mut &cut[..], None).await,
            Err(MediaError::Ended)
        ));
        let junk = [
            0u8, 20, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(matches!(
            first_keyframe(&mut &junk[..], None).await,
            Err(MediaError::NotRtp(1))
        ));
    }
}
