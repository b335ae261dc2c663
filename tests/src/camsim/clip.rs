//! The looped H.264 clip every simulated camera serves: encoded once with the `ffmpeg` command
//! (libx264, test pattern, no B-frames, one slice per frame, SPS/PPS before every IDR as cameras
//! send them), cached on disk, split into access units and packetized into RTP payloads once —
//! sessions only stamp sequence numbers and timestamps.

use base64::Engine;
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// What to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Target bitrate.
    pub kbps: u32,
}

impl Default for ClipSpec {
    fn default() -> Self {
        Self {
            width: 640,
            height: 360,
            fps: 25,
            kbps: 1000,
        }
    }
}

/// What the picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Content {
    /// A moving test pattern (the normal picture).
    #[default]
    Pattern,
    /// All black (a covered lens, a dead sensor).
    Black,
    /// One picture repeated (a frozen encoder): frames keep coming, nothing moves.
    Frozen,
    /// The moving pattern under heavy noise (a failing sensor, interference).
    Noisy,
    /// The moving pattern out of focus.
    Blurred,
}

impl Content {
    fn name(self) -> &'static str {
        match self {
            Content::Pattern => "pattern",
            Content::Black => "black",
            Content::Frozen => "frozen",
            Content::Noisy => "noisy",
            Content::Blurred => "blurred",
        }
    }

    fn source(self, spec: ClipSpec) -> String {
        let (w, h, fps) = (spec.width, spec.height, spec.fps);
        match self {
            Content::Pattern => format!("testsrc2=size={w}x{h}:rate={fps}"),
            Content::Black => format!("color=c=black:size={w}x{h}:rate={fps}"),
            Content::Frozen => format!(
                "testsrc2=size={w}x{h}:rate={fps},trim=end_frame=1,loop=loop=-1:size=1:start=0,setpts=N/{fps}/TB"
            ),
            Content::Noisy => format!("testsrc2=size={w}x{h}:rate={fps},noise=alls=80:allf=t+u"),
            Content::Blurred => format!("testsrc2=size={w}x{h}:rate={fps},boxblur=12:2"),
        }
    }
}

/// One frame: its RTP payloads (the last one carries the marker bit).
#[derive(Debug, Clone)]
pub struct Frame {
    /// RTP payloads (single NAL units or FU-A fragments).
    pub payloads: Vec<Bytes>,
    /// Whether it is an IDR (keyframe).
    pub keyframe: bool,
}

/// The packetized clip.
#[derive(Debug)]
pub struct Clip {
    /// What it is.
    pub spec: ClipSpec,
    /// Frames, in order; the first is an IDR, so the loop restarts cleanly.
    pub frames: Vec<Frame>,
    /// The SDP `fmtp` parameters (`packetization-mode=1;profile-level-id=…;sprop-parameter-sets=…`).
    pub fmtp: String,
}

/// Largest RTP payload (fits a 1500-byte MTU with headers).
const MAX_PAYLOAD: usize = 1400;
/// Length of the clip, in seconds: four keyframes, 2 s apart, the last GOP one second short —
/// so keyframes sampled at any whole number of seconds apart (60 s, say) are never the same
/// picture twice in a row, or a picture check would take the loop for a frozen camera.
const SECONDS: u32 = 7;

fn cache_dir() -> PathBuf {
    std::env::var_os("CAMSIM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("camsim-cache"))
}

/// Encodes (or reuses) the clip for `spec` and packetizes it.
pub fn load(spec: ClipSpec) -> Result<Clip, String> {
    load_content(spec, Content::Pattern)
}

/// Encodes (or reuses) a clip showing `content` and packetizes it.
pub fn load_content(spec: ClipSpec, content: Content) -> Result<Clip, String> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = clip_path(spec, content);
    if !path.exists() {
        encode(spec, content, &path)?;
    }
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    packetize(spec, &data)
}

/// The clip's access units, Annex B (parameter sets with each IDR), and whether each is a
/// keyframe — what a GB/T 28181 device muxes into its program stream.
pub fn access_units(spec: ClipSpec, content: Content) -> Result<Vec<(bool, Vec<u8>)>, String> {
    let path = clip_path(spec, content);
    if !path.exists() {
        std::fs::create_dir_all(cache_dir()).map_err(|e| e.to_string())?;
        encode(spec, content, &path)?;
    }
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut units = Vec::new();
    let mut au = Vec::new();
    for nal in nal_units(&data) {
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(nal);
        let kind = nal[0] & 0x1f;
        if kind == 1 || kind == 5 {
            units.push((kind == 5, std::mem::take(&mut au)));
        }
    }
    Ok(units)
}

/// Where the encoded clip is cached.
fn clip_path(spec: ClipSpec, content: Content) -> PathBuf {
    let name = match content {
        Content::Pattern => String::new(),
        other => format!("-{}", other.name()),
    };
    cache_dir().join(format!(
        "clip-{}x{}-{}fps-{}k-{SECONDS}s{name}.h264",
        spec.width, spec.height, spec.fps, spec.kbps
    ))
}

fn encode(spec: ClipSpec, content: Content, path: &Path) -> Result<(), String> {
    crate::harness::require("ffmpeg", "ffmpeg")?;
    // unique per call: tests in one process may encode the same clip at once
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let gop = (spec.fps * 2).to_string();
    let rate = format!("{}k", spec.kbps);
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(content.source(spec))
        .args([
            "-t",
            &SECONDS.to_string(),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
        ])
        .args([
            "-profile:v",
            "main",
            "-bf",
            "0",
            "-g",
            &gop,
            "-keyint_min",
            &gop,
        ])
        .args(["-sc_threshold", "0"])
        // a still picture at constant quality decodes to identical frames (rate control would
        // keep refining it; a frozen camera does not); moving pictures at the target bitrate
        .args(match content {
            Content::Pattern | Content::Noisy | Content::Blurred => {
                vec!["-b:v", &rate, "-maxrate", &rate, "-bufsize", &rate]
            }
            Content::Black | Content::Frozen => vec!["-qp", "23"],
        })
        .args(["-threads", "1", "-x264-params", "slices=1:repeat-headers=1"])
        .args(["-pix_fmt", "yuv420p", "-f", "h264"])
        .arg(&tmp)
        .status()
        .map_err(|e| format!("cannot run ffmpeg (install the ffmpeg package): {e}"))?;
    if !status.success() {
        return Err(format!("ffmpeg failed: {status}"));
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Splits an Annex B stream into NAL units (without start codes).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map(|n| n - 3).unwrap_or(data.len());
        // a four-byte start code leaves a zero at the end of the previous unit
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            nals.push(&data[s..end]);
        }
    }
    nals
}

fn packetize(spec: ClipSpec, data: &[u8]) -> Result<Clip, String> {
    let mut frames = Vec::new();
    let mut pending: Vec<&[u8]> = Vec::new();
    let (mut sps, mut pps) = (None, None);
    for nal in nal_units(data) {
        let kind = nal[0] & 0x1f;
        match kind {
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            _ => {}
        }
        pending.push(nal);
        if kind == 1 || kind == 5 {
            let mut payloads = Vec::new();
            for n in pending.drain(..) {
                fragment(n, &mut payloads);
            }
            frames.push(Frame {
                payloads,
                keyframe: kind == 5,
            });
        }
    }
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err("the clip has no SPS/PPS".into());
    };
    if !frames.first().is_some_and(|f| f.keyframe) {
        return Err("the clip does not start with an IDR".into());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let fmtp = format!(
        "packetization-mode=1;profile-level-id={};sprop-parameter-sets={},{}",
        hex::encode(&sps[1..4]),
        b64.encode(sps),
        b64.encode(pps)
    );
    Ok(Clip { spec, frames, fmtp })
}

/// One NAL unit as RTP payloads: itself, or FU-A fragments when it is too large.
fn fragment(nal: &[u8], out: &mut Vec<Bytes>) {
    if nal.len() <= MAX_PAYLOAD {
        out.push(Bytes::copy_from_slice(nal));
        return;
    }
    let indicator = (nal[0] & 0xe0) | 28;
    let kind = nal[0] & 0x1f;
    let body = &nal[1..];
    let chunks: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut header = kind;
        if i == 0 {
            header |= 0x80;
        }
        if i == chunks.len() - 1 {
            header |= 0x40;
        }
        let mut p = Vec::with_capacity(chunk.len() + 2);
        p.extend_from_slice(&[indicator, header]);
        p.extend_from_slice(chunk);
        out.push(Bytes::from(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a cached clip with the ffmpeg command into 64×36 grey frames.
    fn decoded(spec: ClipSpec, content: Content) -> Vec<Vec<u8>> {
        decoded_at(spec, content, 64, 36)
    }

    /// Decodes a cached clip into grey frames of `w`×`h`.
    fn decoded_at(spec: ClipSpec, content: Content, w: u32, h: u32) -> Vec<Vec<u8>> {
        load_content(spec, content).unwrap();
        let path = clip_path(spec, content);
        let out = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(&path)
            .args([
                "-f",
                "rawvideo",
                "-pix_fmt",
                "gray",
                "-s",
                &format!("{w}x{h}"),
                "-",
            ])
            .output()
            .expect("ffmpeg");
        assert!(out.status.success());
        out.stdout
            .chunks((w * h) as usize)
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn black_is_black_frozen_does_not_move_noise_adds_and_blur_removes_detail() {
        let spec = ClipSpec {
            width: 320,
            height: 180,
            ..ClipSpec::default()
        };
        let mean = |f: &[u8]| f.iter().map(|&b| b as f64).sum::<f64>() / f.len() as f64;
        let changes = |v: &[Vec<u8>]| v.windows(2).filter(|w| w[0] != w[1]).count();
        let black = decoded(spec, Content::Black);
        assert_eq!(
            black.len(),
            (SECONDS * 25) as usize,
            "the whole clip at 25 fps"
        );
        assert!(black.iter().all(|f| mean(f) < 20.0));
        let frozen = decoded(spec, Content::Frozen);
        assert_eq!(changes(&frozen), 0, "identical frames");
        assert!(mean(&frozen[0]) > 50.0, "a picture, not black");
        let pattern = decoded(spec, Content::Pattern);
        assert_eq!(changes(&pattern), pattern.len() - 1, "every frame moves");
        // detail at the native size: mean absolute difference of horizontal neighbours
        let sharp = |content| {
            let v = decoded_at(spec, content, spec.width, spec.height);
            let f = &v[10];
            let mut sum = 0u64;
            for row in f.chunks(spec.width as usize) {
                for w in row.windows(2) {
                    sum += (w[0] as i32 - w[1] as i32).unsigned_abs() as u64;
                }
            }
            sum as f64 / f.len() as f64
        };
        let (p, n, b) = (
            sharp(Content::Pattern),
            sharp(Content::Noisy),
            sharp(Content::Blurred),
        );
        assert!(n > p * 1.3, "noise adds detail: {n} vs {p}");
        assert!(b < p * 0.7, "blur removes it: {b} vs {p}");
    }

    #[test]
    fn splits_annex_b_and_fragments_large_units() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9, 9,
        ];
        let nals = nal_units(&data);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9, 9]]);
        let big: Vec<u8> = std::iter::once(0x65)
            .chain(std::iter::repeat_n(7, 3000))
            .collect();
        let mut out = Vec::new();
        fragment(&big, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0][..2], [0x7c, 0x85], "FU-A, start, IDR");
        assert_eq!(out[2][1], 0x45, "end bit");
        let total: usize = out.iter().map(|p| p.len() - 2).sum();
        assert_eq!(total, 3000);
    }
}
