//! Decoding a keyframe and encoding a JPEG, with FFmpeg (through ffmpeg-next). Blocking and
//! CPU-bound: called from the decoder pool's threads, never from the async runtime.

use super::keyframe::{Keyframe, VideoCodec};
use ff::codec::threading;
use ff::format::Pixel;
use ff::software::scaling;
use ffmpeg_next as ff;
use std::sync::Once;

/// Why a keyframe could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// FFmpeg has no decoder or encoder for this codec.
    #[error("no {0} codec in this FFmpeg build")]
    NoCodec(&'static str),
    /// The data did not decode into a picture.
    #[error("keyframe does not decode: {0}")]
    Decode(String),
    /// Scaling or JPEG encoding failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// A decoded picture, 8-bit 4:2:0, planes without padding.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma, `width × height`.
    pub y: Vec<u8>,
    /// Cb, `ceil(width/2) × ceil(height/2)`.
    pub u: Vec<u8>,
    /// Cr, same size as `u`.
    pub v: Vec<u8>,
}

impl Picture {
    /// Width and height of the chroma planes.
    pub fn chroma_size(&self) -> (u32, u32) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }
}

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let _ = ff::init();
        // broken frames are reported through our errors, not FFmpeg's stderr
        ff::util::log::set_level(ff::util::log::Level::Fatal);
    });
}

/// A decoded frame as FFmpeg holds it.
pub struct Decoded(ff::frame::Video);

/// Decodes a keyframe (one thread, no frame delay).
pub fn decode(kf: &Keyframe) -> Result<Decoded, VideoError> {
    decode_bytes(kf.codec, &kf.data)
}

/// Decodes one Annex B access unit.
pub fn decode_bytes(codec: VideoCodec, data: &[u8]) -> Result<Decoded, VideoError> {
    init();
    let (id, name) = match codec {
        VideoCodec::H264 => (ff::codec::Id::H264, "H.264"),
        VideoCodec::H265 => (ff::codec::Id::HEVC, "H.265"),
    };
    let c = ff::decoder::find(id).ok_or(VideoError::NoCodec(name))?;
    let mut ctx = ff::codec::Context::new_with_codec(c);
    ctx.set_threading(threading::Config {
        kind: threading::Type::Slice,
        count: 1,
        ..Default::default()
    });
    let fail = |e: ff::Error| VideoError::Decode(e.to_string());
    let mut dec = ctx.decoder().video().map_err(fail)?;
    dec.send_packet(&ff::Packet::copy(data)).map_err(fail)?;
    dec.send_eof().map_err(fail)?;
    let mut frame = ff::frame::Video::empty();
    dec.receive_frame(&mut frame).map_err(fail)?;
    if frame.width() == 0 || frame.height() == 0 {
        return Err(VideoError::Decode("empty picture".into()));
    }
    Ok(Decoded(frame))
}

/// The picture's planes (converted to 8-bit 4:2:0 when the stream uses another format).
pub fn picture(d: &Decoded) -> Result<Picture, VideoError> {
    let converted;
    let f = match d.0.format() {
        Pixel::YUV420P | Pixel::YUVJ420P => &d.0,
        other => {
            let mut out = ff::frame::Video::empty();
            scaling::Context::get(
                other,
                d.0.width(),
                d.0.height(),
                Pixel::YUV420P,
                d.0.width(),
                d.0.height(),
                scaling::Flags::FAST_BILINEAR,
            )
            .and_then(|mut s| s.run(&d.0, &mut out))
            .map_err(|e| VideoError::Decode(format!("pixel format {other:?}: {e}")))?;
            converted = out;
            &converted
        }
    };
    let plane = |i: usize, w: u32, h: u32| {
        let stride = f.stride(i);
        let data = f.data(i);
        let mut out = Vec::with_capacity((w * h) as usize);
        for row in 0..h as usize {
            out.extend_from_slice(&data[row * stride..row * stride + w as usize]);
        }
        out
    };
    let (w, h) = (f.width(), f.height());
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    Ok(Picture {
        width: w,
        height: h,
        y: plane(0, w, h),
        u: plane(1, cw, ch),
        v: plane(2, cw, ch),
    })
}

/// A JPEG picture.
#[derive(Debug, Clone)]
pub struct Jpeg {
    /// The file's bytes.
    pub data: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Encodes the picture as a JPEG, scaled down to at most `max_width` pixels wide (aspect kept)
/// when it is wider; `quality` 2 (best) … 31 (smallest), FFmpeg's qscale.
pub fn jpeg(d: &Decoded, max_width: Option<u32>, quality: u8) -> Result<Jpeg, VideoError> {
    init();
    let fail = |e: ff::Error| VideoError::Encode(e.to_string());
    let (w, h) = (d.0.width(), d.0.height());
    let (ow, oh) = match max_width {
        Some(m) if m >= 16 && m < w => {
            let oh = ((u64::from(h) * u64::from(m)) / u64::from(w)) as u32;
            (m & !1, oh.max(2) & !1)
        }
        _ => (w, h),
    };
    let mut scaled = ff::frame::Video::empty();
    scaling::Context::get(
        d.0.format(),
        w,
        h,
        Pixel::YUVJ420P,
        ow,
        oh,
        scaling::Flags::BILINEAR,
    )
    .and_then(|mut s| s.run(&d.0, &mut scaled))
    .map_err(fail)?;
    let codec = ff::encoder::find(ff::codec::Id::MJPEG).ok_or(VideoError::NoCodec("JPEG"))?;
    let ctx = ff::codec::Context::new_with_codec(codec);
    let mut enc = ctx.encoder().video().map_err(fail)?;
    enc.set_width(ow);
    enc.set_height(oh);
    enc.set_format(Pixel::YUVJ420P);
    enc.set_time_base((1, 25));
    let q = i32::from(quality.clamp(2, 31));
    enc.set_qmin(q);
    enc.set_qmax(q);
    let mut enc = enc.open_as(codec).map_err(fail)?;
    scaled.set_pts(Some(0));
    enc.send_frame(&scaled).map_err(fail)?;
    enc.send_eof().map_err(fail)?;
    let mut packet = ff::Packet::empty();
    enc.receive_packet(&mut packet).map_err(fail)?;
    Ok(Jpeg {
        data: packet.data().unwrap_or_default().to_vec(),
        width: ow,
        height: oh,
    })
}

/// Width and height from a JPEG's start-of-frame marker (`None` when it has none).
pub fn jpeg_dimensions(j: &[u8]) -> Option<(u32, u32)> {
    if j.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut at = 2;
    while at + 9 < j.len() {
        if j[at] != 0xff {
            return None;
        }
        let (marker, len) = (
            j[at + 1],
            u16::from_be_bytes([j[at + 2], j[at + 3]]) as usize,
        );
        if (0xc0..=0xc3).contains(&marker) {
            let h = u16::from_be_bytes([j[at + 5], j[at + 6]]);
            let w = u16::from_be_bytes([j[at + 7], j[at + 8]]);
            return Some((u32::from(w), u32::from(h)));
        }
        at += 2 + len;
    }
    None
}

/// The largest difference between two luma planes (tests: "the picture came through").
#[cfg(test)]
pub(crate) fn max_luma_error(a: &Picture, b: &Picture) -> u8 {
    a.y.iter()
        .zip(&b.y)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(u8::MAX)
}

/// Encodes a picture as one keyframe access unit (Annex B, parameter sets first) with libx264
/// or libx265 — for tests and benchmarks.
pub fn encode_keyframe(p: &Picture, codec: VideoCodec) -> Result<Vec<u8>, VideoError> {
    init();
    let fail = |e: ff::Error| VideoError::Encode(e.to_string());
    let name = match codec {
        VideoCodec::H264 => "libx264",
        VideoCodec::H265 => "libx265",
    };
    let codec = ff::encoder::find_by_name(name).ok_or(VideoError::NoCodec(name))?;
    let ctx = ff::codec::Context::new_with_codec(codec);
    let mut enc = ctx.encoder().video().map_err(fail)?;
    enc.set_width(p.width);
    enc.set_height(p.height);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base((1, 25));
    enc.set_gop(1);
    enc.set_max_b_frames(0);
    let mut opts = ff::Dictionary::new();
    opts.set("preset", "veryfast");
    opts.set("tune", "zerolatency");
    opts.set("qp", "20");
    if name == "libx265" {
        opts.set("x265-params", "log-level=error");
    }
    let mut enc = enc.open_as_with(codec, opts).map_err(fail)?;
    let mut f = ff::frame::Video::new(Pixel::YUV420P, p.width, p.height);
    let (cw, ch) = p.chroma_size();
    for (i, (src, w, h)) in [(&p.y, p.width, p.height), (&p.u, cw, ch), (&p.v, cw, ch)]
        .into_iter()
        .enumerate()
    {
        let stride = f.stride(i);
        let data = f.data_mut(i);
        for row in 0..h as usize {
            data[row * stride..row * stride + w as usize]
                .copy_from_slice(&src[row * w as usize..(row + 1) * w as usize]);
        }
    }
    f.set_pts(Some(0));
    f.set_kind(ff::picture::Type::I);
    enc.send_frame(&f).map_err(fail)?;
    enc.send_eof().map_err(fail)?;
    let mut packet = ff::Packet::empty();
    enc.receive_packet(&mut packet).map_err(fail)?;
    Ok(packet.data().unwrap_or_default().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> Picture {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        Picture {
            width: w,
            height: h,
            y: (0..w * h).map(|k| ((k % w) * 200 / w + 20) as u8).collect(),
            u: vec![100; (cw * ch) as usize],
            v: vec![160; (cw * ch) as usize],
        }
    }

    #[test]
    fn a_keyframe_decodes_to_its_picture_and_encodes_to_a_jpeg() {
        let original = gradient(320, 180);
        let au = encode_keyframe(&original, VideoCodec::H264).expect("libx264");
        let d = decode_bytes(VideoCodec::H264, &au).expect("decodes");
        let p = picture(&d).unwrap();
        assert_eq!((p.width, p.height), (320, 180));
        let err = max_luma_error(&p, &original);
        assert!(err <= 6, "luma within coding noise: {err}");
        assert!(p.v.iter().all(|v| v.abs_diff(160) <= 4));

        let full = jpeg(&d, None, 5).unwrap();
        let data = &full.data;
        assert_eq!(&data[data.len() - 2..], &[0xff, 0xd9], "end of image");
        assert_eq!(jpeg_dimensions(data), Some((320, 180)));
        assert_eq!((full.width, full.height), (320, 180));
        let small = jpeg(&d, Some(160), 5).unwrap();
        assert_eq!(jpeg_dimensions(&small.data), Some((160, 90)));
        assert_eq!((small.width, small.height), (160, 90));
        assert_eq!(jpeg_dimensions(b"not a jpeg"), None);
    }

    #[test]
    fn h265_keyframes_decode_too() {
        let original = gradient(320, 180);
        let au = encode_keyframe(&original, VideoCodec::H265).expect("libx265");
        let p = picture(&decode_bytes(VideoCodec::H265, &au).expect("decodes")).unwrap();
        assert_eq!((p.width, p.height), (320, 180));
        let err = max_luma_error(&p, &original);
        assert!(err <= 6, "luma within coding noise: {err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        assert!(decode_bytes(VideoCodec::H264, &[0, 0, 0, 1, 0x65, 1, 2, 3]).is_err());
        assert!(decode_bytes(VideoCodec::H265, &[]).is_err());
    }
}
