//! Keyframes rebuilt from RTP payloads: the camera sessions measure frames packet by packet and
//! never depacketize, except for the keyframes, which are reassembled here into an Annex B
//! access unit (start codes, the parameter sets first) that any H.264/H.265 decoder takes as is.

use bytes::Bytes;
use chrono::{DateTime, Utc};

/// The video codec of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

/// A camera's latest keyframe, ready to decode.
#[derive(Debug, Clone)]
pub struct Keyframe {
    /// Codec.
    pub codec: VideoCodec,
    /// Annex B access unit: the parameter sets from the SDP, then the frame's NAL units.
    pub data: Bytes,
    /// When its last packet arrived.
    pub at: DateTime<Utc>,
    /// Counts the camera's keyframes (a new one has a higher number).
    pub seq: u64,
}

/// Keyframes larger than this are dropped (a camera sending 8 MiB I-frames is broken).
pub const MAX_KEYFRAME_BYTES: usize = 8 << 20;

const START: [u8; 4] = [0, 0, 0, 1];

/// Rebuilds one keyframe from its RTP payloads.
#[derive(Debug)]
pub struct KeyframeBuilder {
    codec: VideoCodec,
    /// Parameter sets from the SDP, Annex B.
    params: Vec<u8>,
    buf: Vec<u8>,
    /// Size of the last keyframe (the next buffer starts with room for it).
    last_len: usize,
    /// A fragmented NAL unit is open (its start was seen).
    in_fragment: bool,
    broken: bool,
}

impl KeyframeBuilder {
    /// A builder for `codec`, with the stream's parameter sets in their MP4 form (the
    /// `avcC`/`hvcC` record retina derives from the SDP), if any.
    pub fn new(codec: VideoCodec, decoder_config: Option<&[u8]>) -> Self {
        let params = decoder_config
            .map(|c| match codec {
                VideoCodec::H264 => avcc_parameter_sets(c),
                VideoCodec::H265 => hvcc_parameter_sets(c),
            })
            .unwrap_or_default();
        Self {
            codec,
            params,
            buf: Vec::new(),
            last_len: 0,
            in_fragment: false,
            broken: false,
        }
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Starts a new access unit.
    pub fn start(&mut self) {
        self.buf.clear();
        self.buf.reserve(self.last_len);
        self.buf.extend_from_slice(&self.params);
        self.in_fragment = false;
        self.broken = false;
    }

    /// Adds one RTP payload of the access unit; `lost` is the number of packets lost just
    /// before it (a keyframe with a hole is not kept).
    pub fn push(&mut self, payload: &[u8], lost: u16) {
        if lost > 0 || self.buf.len() + payload.len() > MAX_KEYFRAME_BYTES {
            self.broken = true;
        }
        if self.broken || payload.is_empty() {
            return;
        }
        match self.codec {
            VideoCodec::H264 => self.push_h264(payload),
            VideoCodec::H265 => self.push_h265(payload),
        }
    }

    /// The access unit, unless it is damaged or holds no slice. The buffer itself becomes the
    /// keyframe (no copy; one keyframe's memory per camera, not two).
    pub fn finish(&mut self) -> Option<Bytes> {
        if self.broken || self.in_fragment || self.buf.len() <= self.params.len() {
            return None;
        }
        self.last_len = self.buf.len();
        Some(Bytes::from(std::mem::take(&mut self.buf)))
    }

    fn nal(&mut self, nal: &[u8]) {
        if !nal.is_empty() {
            self.buf.extend_from_slice(&START);
            self.buf.extend_from_slice(nal);
        }
    }

    fn aggregated(&mut self, mut rest: &[u8]) {
        while rest.len() >= 2 {
            let size = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let Some(nal) = rest.get(2..2 + size) else {
                self.broken = true;
                return;
            };
            self.nal(nal);
            rest = &rest[2 + size..];
        }
    }

    fn fragment(&mut self, start: bool, end: bool, header: &[u8], data: &[u8]) {
        if start {
            self.buf.extend_from_slice(&START);
            self.buf.extend_from_slice(header);
            self.in_fragment = true;
        } else if !self.in_fragment {
            // a middle piece without its start: the unit cannot be rebuilt
            self.broken = true;
            return;
        }
        self.buf.extend_from_slice(data);
        if end {
            self.in_fragment = false;
        }
    }

    fn push_h264(&mut self, p: &[u8]) {
        match p[0] & 0x1f {
            24 => self.aggregated(&p[1..]),
            28 if p.len() > 2 => {
                let header = (p[0] & 0xe0) | (p[1] & 0x1f);
                self.fragment(p[1] & 0x80 != 0, p[1] & 0x40 != 0, &[header], &p[2..]);
            }
            1..=23 => self.nal(p),
            _ => self.broken = true,
        }
    }

    fn push_h265(&mut self, p: &[u8]) {
        if p.len() < 2 {
            self.broken = true;
            return;
        }
        match (p[0] >> 1) & 0x3f {
            48 => self.aggregated(&p[2..]),
            49 if p.len() > 3 => {
                let fu = p[2];
                let header = [(p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]];
                self.fragment(fu & 0x80 != 0, fu & 0x40 != 0, &header, &p[3..]);
            }
            0..=47 => self.nal(p),
            _ => self.broken = true,
        }
    }
}

/// SPS and PPS of an `AVCDecoderConfigurationRecord`, Annex B.
fn avcc_parameter_sets(c: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 5;
    for _ in 0..2 {
        // the SPS count is in the low 5 bits, the PPS count is a full byte
        let Some(&n) = c.get(at) else { return out };
        let n = if out.is_empty() { n & 0x1f } else { n };
        at += 1;
        if copy_units(c, &mut at, usize::from(n), &mut out).is_none() {
            break;
        }
    }
    out
}

/// Copies `n` NAL units, each after a 16-bit length, from `c` at `at` as Annex B; `None` when
/// the record ends early.
fn copy_units(c: &[u8], at: &mut usize, n: usize, out: &mut Vec<u8>) -> Option<()> {
    for _ in 0..n {
        let len = c.get(*at..*at + 2)?;
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        let nal = c.get(*at + 2..*at + 2 + len)?;
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
        *at += 2 + len;
    }
    Some(())
}

/// VPS, SPS and PPS of an `HEVCDecoderConfigurationRecord`, Annex B.
fn hvcc_parameter_sets(c: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(&arrays) = c.get(22) else {
        return out;
    };
    let mut at = 23;
    for _ in 0..arrays {
        let Some(n) = c.get(at + 1..at + 3) else {
            return out;
        };
        let n = u16::from_be_bytes([n[0], n[1]]);
        at += 3;
        if copy_units(c, &mut at, usize::from(n), &mut out).is_none() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_single_aggregated_and_fragmented_units_become_annex_b() {
        let avcc = [
            1, 0x4d, 0, 0x1e, 0xff, 0xe1, 0, 3, 0x67, 0xaa, 0xbb, 1, 0, 2, 0x68, 0xcc,
        ];
        let mut b = KeyframeBuilder::new(VideoCodec::H264, Some(&avcc));
        b.start();
        // STAP-A with an SEI (6) and an AUD-less SPS (7)
        b.push(&[24, 0, 2, 0x06, 0x01, 0, 2, 0x67, 0xaa], 0);
        // FU-A: IDR (nri 3, type 5) split in three
        b.push(&[0x7c, 0x85, 1, 2], 0);
        b.push(&[0x7c, 0x05, 3], 0);
        b.push(&[0x7c, 0x45, 4], 0);
        let au = b.finish().expect("complete");
        assert_eq!(
            &au[..],
            &[
                0, 0, 0, 1, 0x67, 0xaa, 0xbb, 0, 0, 0, 1, 0x68, 0xcc, // from the SDP
                0, 0, 0, 1, 0x06, 0x01, 0, 0, 0, 1, 0x67, 0xaa, // STAP-A
                0, 0, 0, 1, 0x65, 1, 2, 3, 4, // FU-A rebuilt
            ][..]
        );
    }

    #[test]
    fn damaged_keyframes_are_not_kept() {
        let mut b = KeyframeBuilder::new(VideoCodec::H264, None);
        b.start();
        b.push(&[0x7c, 0x85, 1], 0);
        b.push(&[0x7c, 0x45, 2], 1);
        assert!(b.finish().is_none(), "a lost packet");
        b.start();
        b.push(&[0x7c, 0x05, 1], 0);
        assert!(b.finish().is_none(), "a fragment without its start");
        b.start();
        b.push(&[0x7c, 0x85, 1], 0);
        assert!(b.finish().is_none(), "a fragment without its end");
        b.start();
        assert!(b.finish().is_none(), "nothing");
        b.start();
        b.push(&[0x65, 9], 0);
        assert_eq!(&b.finish().unwrap()[..], &[0, 0, 0, 1, 0x65, 9]);
    }

    /// NAL units of an Annex B stream.
    fn nal_units(au: &[u8]) -> Vec<&[u8]> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= au.len() {
            if au[i..i + 3] == [0, 0, 1] {
                starts.push(i + 3);
                i += 3;
            } else {
                i += 1;
            }
        }
        let mut out = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let mut end = starts.get(k + 1).map_or(au.len(), |&n| n - 3);
            while end > s && au[end - 1] == 0 {
                end -= 1;
            }
            out.push(&au[s..end]);
        }
        out
    }

    /// RTP payloads as a camera sends them: small units whole, large ones fragmented.
    fn packetize(au: &[u8], codec: VideoCodec) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for nal in nal_units(au) {
            if nal.len() <= 1200 {
                out.push(nal.to_vec());
                continue;
            }
            let body = match codec {
                VideoCodec::H264 => &nal[1..],
                VideoCodec::H265 => &nal[2..],
            };
            let chunks: Vec<&[u8]> = body.chunks(1200).collect();
            for (k, chunk) in chunks.iter().enumerate() {
                let (s, e) = (k == 0, k + 1 == chunks.len());
                let flags = (u8::from(s) << 7) | (u8::from(e) << 6);
                let mut p = match codec {
                    VideoCodec::H264 => vec![(nal[0] & 0xe0) | 28, flags | (nal[0] & 0x1f)],
                    VideoCodec::H265 => {
                        vec![
                            (nal[0] & 0x81) | (49 << 1),
                            nal[1],
                            flags | ((nal[0] >> 1) & 0x3f),
                        ]
                    }
                };
                p.extend_from_slice(chunk);
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn real_keyframes_survive_packetizing_and_rebuilding() {
        use crate::video::decode::{decode_bytes, encode_keyframe, picture, Picture};
        let (w, h) = (480u32, 272u32);
        let original = Picture {
            width: w,
            height: h,
            y: (0..w * h).map(|k| ((k % w) ^ (k / w)) as u8).collect(),
            u: vec![128; (w * h / 4) as usize],
            v: vec![128; (w * h / 4) as usize],
        };
        for codec in [VideoCodec::H264, VideoCodec::H265] {
            let au = encode_keyframe(&original, codec).expect("encoder");
            let packets = packetize(&au, codec);
            assert!(
                packets.len() > 3,
                "{codec:?}: fragmented ({} packets)",
                packets.len()
            );
            let mut b = KeyframeBuilder::new(codec, None);
            b.start();
            for p in &packets {
                b.push(p, 0);
            }
            let rebuilt = b.finish().expect("complete");
            let p = picture(&decode_bytes(codec, &rebuilt).expect("decodes")).unwrap();
            assert_eq!((p.width, p.height), (w, h), "{codec:?}");
            let err = crate::video::decode::max_luma_error(&p, &original);
            assert!(err <= 24, "{codec:?}: luma within coding noise: {err}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever a camera sends, rebuilding never panics, and what comes out decodes or is
        /// refused with an error — FFmpeg is given garbage here on purpose.
        #[test]
        fn random_payloads_never_panic_the_builder_or_the_decoder(
            payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500), 0..12),
            h265 in proptest::prelude::any::<bool>(),
        ) {
            let codec = if h265 { VideoCodec::H265 } else { VideoCodec::H264 };
            let mut b = KeyframeBuilder::new(codec, Some(&payloads.concat()));
            b.start();
            for p in &payloads {
                b.push(p, 0);
            }
            if let Some(au) = b.finish() {
                proptest::prop_assert!(au.len() <= MAX_KEYFRAME_BYTES + 64 * 1024);
                let _ = crate::video::decode::decode_bytes(codec, &au);
            }
        }
    }

    #[test]
    fn h265_parameter_sets_and_fragments() {
        // hvcC: 22 header bytes, 1 array (VPS, type 32) with one 3-byte NAL
        let mut hvcc = vec![0u8; 22];
        hvcc.extend_from_slice(&[1, 0x20, 0, 1, 0, 3, 0x40, 0x01, 0x0c]);
        let mut b = KeyframeBuilder::new(VideoCodec::H265, Some(&hvcc));
        b.start();
        // FU of an IDR_W_RADL (19): payload header type 49, FU header S|19 then E|19
        b.push(&[49 << 1, 1, 0x80 | 19, 7], 0);
        b.push(&[49 << 1, 1, 0x40 | 19, 8], 0);
        let au = b.finish().unwrap();
        assert_eq!(
            &au[..],
            &[0, 0, 0, 1, 0x40, 0x01, 0x0c, 0, 0, 0, 1, 19 << 1, 1, 7, 8][..]
        );
    }
}
