//! RTP carrying a program stream over TCP (RFC 4571: each packet after a 2-byte length; some
//! senders use RTSP's `$`, channel, 2-byte length): packets of one timestamp make one pack,
//! which [`super::ps::Demuxer`] turns into video. [`first_keyframe`] reads a stream until its
//! first keyframe, within a byte budget and a deadline; [`packetize`] writes packs as RTP (for
//! the simulated devices).

use super::ps::{Demuxer, PsError};
use super::{is_keyframe, Codec};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UdpSocket;

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
    /// Sequence number.
    pub seq: u16,
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
        seq: u16::from_be_bytes([packet[2], packet[3]]),
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
    let mut finder = Finder::new(ssrc, false);
    let mut packet = Vec::new();
    loop {
        read_packet(r, &mut packet).await?;
        if let Some(found) = finder.push(&packet)? {
            return Ok(found);
        }
    }
}

/// Reads RTP datagrams from `socket` until a whole pack holds a keyframe (packs that lost or
/// reordered a packet are skipped; datagrams that are not RTP, of another SSRC, or from an
/// address `sender` refuses, ignored).
pub async fn first_keyframe_udp(
    socket: &UdpSocket,
    ssrc: Option<u32>,
    mut sender: impl FnMut(SocketAddr) -> bool,
) -> Result<(Codec, Vec<u8>), MediaError> {
    let mut finder = Finder::new(ssrc, true);
    let mut datagram = vec![0u8; 65_536];
    loop {
        let (n, from) = socket.recv_from(&mut datagram).await?;
        if !sender(from) {
            continue;
        }
        if let Some(found) = finder.push(&datagram[..n])? {
            return Ok(found);
        }
    }
}

/// Gathers RTP packets into packs (one timestamp each, ended by the marker bit or the next
/// timestamp) and looks in each for a keyframe, within [`MAX_PACK`] and [`MAX_READ`].
///
/// Over TCP nothing is lost, so any unreadable packet is an error. Over UDP (`lossy`) a
/// datagram that is not RTP is ignored, and a pack with a gap in its sequence numbers is
/// skipped rather than decoded into a broken picture: the next keyframe is taken.
#[derive(Debug)]
pub struct Finder {
    demux: Demuxer,
    ssrc: Option<u32>,
    lossy: bool,
    pack: Vec<u8>,
    /// The timestamp of the pack being gathered.
    current: Option<u32>,
    /// The timestamp of the last pack ended (over UDP its late packets are ignored).
    ended: Option<u32>,
    /// The sequence number the next packet should have.
    next_seq: Option<u16>,
    /// The pack being gathered lost a packet.
    broken: bool,
    read: usize,
    /// Packs skipped because they lost a packet.
    pub skipped: u32,
}

impl Finder {
    /// A finder of `ssrc`'s first keyframe (any source's when `None`); `lossy` for UDP.
    pub fn new(ssrc: Option<u32>, lossy: bool) -> Self {
        Self {
            demux: Demuxer::default(),
            ssrc,
            lossy,
            pack: Vec::new(),
            current: None,
            ended: None,
            next_seq: None,
            broken: false,
            read: 0,
            skipped: 0,
        }
    }

    /// Takes one RTP packet; returns the keyframe once a pack holding one is whole.
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<(Codec, Vec<u8>)>, MediaError> {
        self.read += packet.len() + 2;
        if self.read > MAX_READ {
            return Err(MediaError::TooMuch("64 MiB read"));
        }
        let (h, payload) = match parse(packet) {
            Ok(p) => p,
            Err(_) if self.lossy => return Ok(None),
            Err(e) => return Err(e),
        };
        let late = self.lossy && self.ended == Some(h.timestamp);
        if late || self.ssrc.is_some_and(|s| s != h.ssrc) {
            return Ok(None);
        }
        let gap = self.lossy && self.next_seq.is_some_and(|n| n != h.seq);
        self.next_seq = Some(h.seq.wrapping_add(1));
        if self.current.is_some_and(|t| t != h.timestamp) {
            // a gap where a pack ended without its marker: its last packet may be the lost one
            self.broken |= gap;
            if let Some(found) = self.end()? {
                return Ok(Some(found));
            }
        }
        self.current = Some(h.timestamp);
        self.broken |= gap;
        if self.pack.len() + payload.len() > MAX_PACK {
            return Err(MediaError::TooMuch("an 8 MiB pack"));
        }
        self.pack.extend_from_slice(payload);
        if h.marker {
            return self.end();
        }
        Ok(None)
    }

    /// Ends the pack being gathered: its keyframe, if it is whole and holds one.
    fn end(&mut self) -> Result<Option<(Codec, Vec<u8>)>, MediaError> {
        self.ended = self.current.take();
        let broken = std::mem::take(&mut self.broken);
        if self.pack.is_empty() {
            return Ok(None);
        }
        let pack = std::mem::take(&mut self.pack);
        if broken {
            self.skipped += 1;
            return Ok(None);
        }
        match keyframe(&mut self.demux, &pack) {
            Err(_) if self.lossy => {
                self.skipped += 1;
                Ok(None)
            }
            found => found,
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

/// A pack as RTP packets (payload type 96) of at most `mtu` payload bytes, the last with the
/// marker bit — one datagram each over UDP.
pub fn packets(pack: &[u8], seq: &mut u16, timestamp: u32, ssrc: u32, mtu: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = pack.chunks(mtu.max(1)).collect();
    let last = chunks.len().saturating_sub(1);
    let mut out = Vec::with_capacity(chunks.len());
    for (k, chunk) in chunks.into_iter().enumerate() {
        let marker = if k == last { 0x80 } else { 0 };
        let mut p = Vec::with_capacity(12 + chunk.len());
        p.extend_from_slice(&[0x80, marker | 96]);
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(chunk);
        out.push(p);
        *seq = seq.wrapping_add(1);
    }
    out
}

/// A pack as RTP packets (see [`packets`]), each after its 2-byte length (RFC 4571) — the
/// byte stream of RTP over TCP.
pub fn packetize(pack: &[u8], seq: &mut u16, timestamp: u32, ssrc: u32, mtu: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(pack.len() + pack.len() / mtu.max(1) * 14 + 14);
    for p in packets(pack, seq, timestamp, ssrc, mtu) {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(&p);
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

    /// A keyframe of `n` bytes whose content says which one it is.
    fn keyframe_of(n: usize, mark: u8) -> Vec<u8> {
        IDR.iter()
            .chain(std::iter::repeat_n(&mark, n))
            .copied()
            .collect()
    }

    #[test]
    fn over_udp_a_pack_that_lost_a_packet_is_skipped_and_the_next_keyframe_taken() {
        let (mut seq, ssrc) = (100u16, 5);
        let first = keyframe_of(6_000, 0x11);
        let second = keyframe_of(6_000, 0x22);
        let mut datagrams = packets(&mux(Codec::H264, &first, 0, true), &mut seq, 0, ssrc, 1400);
        datagrams.remove(2);
        // a datagram that is not RTP, a P frame, then the next keyframe whole
        datagrams.push(b"hello".to_vec());
        datagrams.extend(packets(
            &mux(Codec::H264, P, 3600, false),
            &mut seq,
            3600,
            ssrc,
            1400,
        ));
        datagrams.extend(packets(
            &mux(Codec::H264, &second, 7200, true),
            &mut seq,
            7200,
            ssrc,
            1400,
        ));
        let mut f = Finder::new(Some(ssrc), true);
        let found = datagrams.iter().find_map(|d| f.push(d).unwrap());
        assert_eq!(found, Some((Codec::H264, second)));
        assert_eq!(f.skipped, 1);
        // over TCP the same garbage is an error: the framing is lost
        let mut strict = Finder::new(Some(ssrc), false);
        assert!(matches!(strict.push(b"hello"), Err(MediaError::NotRtp(_))));
    }

    #[test]
    fn over_udp_a_pack_whose_marker_was_lost_is_skipped_and_so_is_the_next_if_it_lost_its_start() {
        let (mut seq, ssrc) = (65_530u16, 9); // wraps
        let a = keyframe_of(3_000, 0x33);
        let b = keyframe_of(3_000, 0x44);
        let c = keyframe_of(3_000, 0x55);
        let mut pa = packets(&mux(Codec::H264, &a, 0, true), &mut seq, 0, ssrc, 1000);
        pa.pop(); // a's marker packet
        let mut pb = packets(
            &mux(Codec::H264, &b, 3600, true),
            &mut seq,
            3600,
            ssrc,
            1000,
        );
        pb.remove(0); // b's first packet
        let pc = packets(
            &mux(Codec::H264, &c, 7200, true),
            &mut seq,
            7200,
            ssrc,
            1000,
        );
        let mut f = Finder::new(Some(ssrc), true);
        let found = pa
            .iter()
            .chain(&pb)
            .chain(&pc)
            .find_map(|d| f.push(d).unwrap());
        assert_eq!(found, Some((Codec::H264, c)));
        assert_eq!(f.skipped, 2);
    }

    #[tokio::test]
    async fn the_first_keyframe_is_read_from_a_udp_socket() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (mut seq, frame) = (0, keyframe_of(20_000, 0x66));
        for d in packets(&mux(Codec::H264, &frame, 0, true), &mut seq, 0, 77, 1400) {
            tx.send_to(&d, rx.local_addr().unwrap()).await.unwrap();
        }
        let found = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            first_keyframe_udp(&rx, Some(77), |_| true),
        )
        .await
        .expect("within 5 s")
        .unwrap();
        assert_eq!(found, (Codec::H264, frame));
    }
}
