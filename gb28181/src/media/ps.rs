//! The MPEG program stream of GB/T 28181 media: a pack header (`00 00 01 BA`), on keyframes a
//! system header (`BB`) and a stream map (`BC`, which says the codec), then PES packets —
//! video `E0`–`EF`, audio `C0`–`DF`, private and padding ones skipped. [`demux`] takes one pack
//! (what RTP carried under one timestamp) and returns the video elementary stream in it;
//! [`mux`] writes one (for the simulated devices).

use super::Codec;

/// Why a pack could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PsError {
    /// Bytes that are not a program stream.
    #[error("not an MPEG program stream")]
    NotPs,
    /// A stream map names a video codec the gateway does not decode.
    #[error("video stream type {0:#04x} is not H.264 or H.265")]
    Unsupported(u8),
}

/// A pack's video, and the codec the stream map says (remembered across packs: the map comes
/// with keyframes only).
#[derive(Debug, Default)]
pub struct Demuxer {
    /// The codec the last stream map named.
    pub codec: Option<Codec>,
}

impl Demuxer {
    /// The video elementary stream (Annex B) of one pack; empty when it carries no video.
    pub fn demux(&mut self, pack: &[u8]) -> Result<Vec<u8>, PsError> {
        let mut video = Vec::new();
        let mut i = 0;
        let mut seen = false;
        while let Some(at) = find_start(pack, i) {
            let Some(&id) = pack.get(at + 3) else { break };
            let len = match id {
                0xBA => pack_header_len(&pack[at..]),
                0xB9 => Some(4),
                0xBB..=0xFF => pes_len(&pack[at..]),
                _ => None,
            };
            let Some(len) = len else {
                i = at + 3;
                continue;
            };
            seen = true;
            let end = (at + len).min(pack.len());
            match id {
                0xBC => self.codec = Some(stream_map(&pack[at..end])?),
                0xE0..=0xEF => video.extend_from_slice(pes_payload(&pack[at..end])),
                _ => {}
            }
            i = end.max(at + 4);
        }
        if !seen && !pack.is_empty() {
            return Err(PsError::NotPs);
        }
        Ok(video)
    }
}

/// The next `00 00 01` at or after `from`.
fn find_start(b: &[u8], from: usize) -> Option<usize> {
    (from..b.len().saturating_sub(3)).find(|&i| b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1)
}

/// A pack header's length: MPEG-2 (14 bytes and its stuffing) or MPEG-1 (12).
fn pack_header_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(4)?;
    if first >> 6 == 0b01 {
        Some(14 + (*b.get(13)? & 0x07) as usize)
    } else {
        Some(12)
    }
}

/// A PES-like packet's length: 6 and its 16-bit length (0: to the end of the pack).
fn pes_len(b: &[u8]) -> Option<usize> {
    let n = u16::from_be_bytes([*b.get(4)?, *b.get(5)?]) as usize;
    Some(if n == 0 { b.len() } else { 6 + n })
}

/// The payload of a video PES packet (after its header and the header's optional fields).
fn pes_payload(b: &[u8]) -> &[u8] {
    if b.len() < 9 || b[6] >> 6 != 0b10 {
        return b.get(6..).unwrap_or(&[]);
    }
    let start = 9 + b[8] as usize;
    b.get(start..).unwrap_or(&[])
}

/// The video codec a stream map names.
fn stream_map(b: &[u8]) -> Result<Codec, PsError> {
    let info_len = u16::from_be_bytes([
        *b.get(8).ok_or(PsError::NotPs)?,
        *b.get(9).ok_or(PsError::NotPs)?,
    ]) as usize;
    let mut i = 10 + info_len;
    let map_len = b
        .get(i..i + 2)
        .map(|m| u16::from_be_bytes([m[0], m[1]]) as usize)
        .ok_or(PsError::NotPs)?;
    i += 2;
    let end = (i + map_len).min(b.len());
    while i + 4 <= end {
        let (kind, id) = (b[i], b[i + 1]);
        let info = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if (0xE0..=0xEF).contains(&id) {
            return match kind {
                0x1B => Ok(Codec::H264),
                0x24 => Ok(Codec::H265),
                other => Err(PsError::Unsupported(other)),
            };
        }
        i += 4 + info;
    }
    Err(PsError::NotPs)
}

/// One pack of video (an Annex B access unit) at 90 kHz time `pts`: pack header, and with a
/// keyframe the system header and stream map, then PES packets of at most 64 KB.
pub fn mux(codec: Codec, au: &[u8], pts: u64, keyframe: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(au.len() + 64);
    // pack header, MPEG-2: SCR = pts, mux rate 6106 (× 50 B/s), no stuffing
    let scr = pts & 0x1_FFFF_FFFF;
    out.extend_from_slice(&[0, 0, 1, 0xBA]);
    out.extend_from_slice(&[
        0x44 | ((scr >> 27) & 0x38) as u8 | ((scr >> 28) & 0x03) as u8,
        (scr >> 20) as u8,
        0x04 | ((scr >> 12) & 0xF8) as u8 | ((scr >> 13) & 0x03) as u8,
        (scr >> 5) as u8,
        0x04 | ((scr << 3) & 0xF8) as u8,
        0x01,
        0x00,
        0x5F,
        0x6B,
        0xF8,
    ]);
    if keyframe {
        // system header: one video stream
        out.extend_from_slice(&[
            0, 0, 1, 0xBB, 0, 9, 0x80, 0x04, 0xE1, 0x00, 0xE1, 0xFF, 0xE0, 0xE0, 0x00,
        ]);
        // stream map: video E0 of the codec's stream type, CRC left zero (readers skip it)
        let kind = match codec {
            Codec::H264 => 0x1B,
            Codec::H265 => 0x24,
        };
        out.extend_from_slice(&[
            0, 0, 1, 0xBC, 0, 14, 0xE0, 0xFF, 0, 0, 0, 4, kind, 0xE0, 0, 0, 0, 0, 0, 0,
        ]);
    }
    for (k, chunk) in au.chunks(65_000).enumerate() {
        let with_pts = k == 0;
        let header_len: usize = if with_pts { 5 } else { 0 };
        let len = 3 + header_len + chunk.len();
        out.extend_from_slice(&[0, 0, 1, 0xE0, (len >> 8) as u8, len as u8, 0x80]);
        out.push(if with_pts { 0x80 } else { 0x00 });
        out.push(header_len as u8);
        if with_pts {
            let p = pts & 0x1_FFFF_FFFF;
            out.extend_from_slice(&[
                0x21 | ((p >> 29) & 0x0E) as u8,
                (p >> 22) as u8,
                0x01 | ((p >> 14) & 0xFE) as u8,
                (p >> 7) as u8,
                0x01 | ((p << 1) & 0xFE) as u8,
            ]);
        }
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IDR: &[u8] = &[
        0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65, 0x88, 0x84,
    ];

    #[test]
    fn a_muxed_keyframe_comes_back_whole_with_its_codec() {
        let mut d = Demuxer::default();
        let pack = mux(Codec::H264, IDR, 90_000, true);
        assert_eq!(d.demux(&pack).unwrap(), IDR);
        assert_eq!(d.codec, Some(Codec::H264));
        assert!(super::super::is_keyframe(Codec::H264, IDR));
        // a big frame spans several PES packets
        let big: Vec<u8> = IDR
            .iter()
            .chain(std::iter::repeat_n(&0x55, 200_000))
            .copied()
            .collect();
        assert_eq!(d.demux(&mux(Codec::H264, &big, 0, false)).unwrap(), big);
    }

    #[test]
    fn audio_private_and_padding_packets_are_skipped_and_unknown_codecs_named() {
        let mut pack = mux(Codec::H265, IDR, 0, true);
        pack.extend_from_slice(&[0, 0, 1, 0xC0, 0, 4, 0x80, 0, 0, 0xAA]);
        pack.extend_from_slice(&[0, 0, 1, 0xBD, 0, 3, 1, 2, 3]);
        pack.extend_from_slice(&[0, 0, 1, 0xBE, 0, 2, 0xFF, 0xFF]);
        let mut d = Demuxer::default();
        assert_eq!(d.demux(&pack).unwrap(), IDR);
        assert_eq!(d.codec, Some(Codec::H265));
        let mut svac = mux(Codec::H264, IDR, 0, true);
        let at = svac.windows(4).position(|w| w == [0, 0, 1, 0xBC]).unwrap();
        svac[at + 12] = 0x80;
        assert_eq!(
            Demuxer::default().demux(&svac),
            Err(PsError::Unsupported(0x80))
        );
        assert_eq!(
            Demuxer::default().demux(b"garbage, no start code"),
            Err(PsError::NotPs)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_demux_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = Demuxer::default().demux(&bytes);
        }

        #[test]
        fn cut_packs_demux_without_panic(cut in 0usize..200) {
            let pack = mux(Codec::H264, IDR, 0, true);
            let _ = Demuxer::default().demux(&pack[..cut.min(pack.len())]);
        }
    }
}
