//! One camera's supervisor: keeps a retina session playing, feeds the camera's health, and
//! reconnects with backoff. retina has no connect or read timeouts of its own, so every step
//! and every frame wait is bounded here.

use super::metrics::CameraMetrics;
use super::{RtpTransport, RtspConfig, StreamInfo, Watched};
use crate::video::{KeyframeBuilder, VideoCodec};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use retina::client::{
    Credentials, PacketItem, PlayOptions, Playing, Session, SessionGroup, SessionOptions,
    SetupOptions, Transport,
};
use retina::codec::ParametersRef;
use retina::rtp::ReceivedPacket;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Why a session failed: a short reason (events, metrics) and the detail (logs, API).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub reason: &'static str,
    pub detail: String,
}

impl Failure {
    fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// Classifies retina's errors into the reasons operators act on.
fn classify(e: &retina::Error) -> Failure {
    let detail = e.to_string();
    // retina's messages carry addresses and RTSP context, never credentials (it refuses them
    // in URLs, and the Authorization header is not part of its error context)
    let first = detail.lines().next().unwrap_or("").to_string();
    let reason = match e.status_code() {
        Some(401) => "unauthorized",
        Some(403) => "forbidden",
        Some(404) => "not_found",
        Some(454) => "session_not_found",
        Some(461) => "unsupported_transport",
        Some(_) => "rtsp_error",
        None if first.starts_with("Unable to connect") && first.contains("refused") => "refused",
        None if first.starts_with("Unable to connect") => "connect_failed",
        None if first.starts_with("Error reading") || first.contains("EOF") => "connection_closed",
        None if first.starts_with("Unsupported") => "codec_unsupported",
        None if first.starts_with("Timeout") => "timeout",
        None => "error",
    };
    Failure::new(reason, first)
}

async fn bounded<T>(
    limit: Duration,
    step: &str,
    f: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e)),
        Err(_) => Err(Failure::new(
            "timeout",
            format!("{step} took longer than {} s", limit.as_secs_f64()),
        )),
    }
}

/// Runs the camera's sessions until `stop` turns true.
pub(crate) async fn supervise(
    watched: Arc<Mutex<Watched>>,
    config: Arc<RtspConfig>,
    group: Arc<SessionGroup>,
    metrics: CameraMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let (id, url, creds) = {
        let w = watched.lock();
        let c = &w.camera;
        let creds = c.username.as_ref().map(|u| Credentials {
            username: u.clone(),
            password: c
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        });
        (c.id.clone(), c.url.clone(), creds)
    };
    let counters = Counters {
        frames: metrics.frames.with_label_values(&[id.as_str()]),
        bytes: metrics.bytes.with_label_values(&[id.as_str()]),
        reconnects: metrics.reconnects.with_label_values(&[id.as_str()]),
    };
    let mut failures: u32 = 0;
    let mut outage_logged = false;
    loop {
        let attempt = play(&url, creds.clone(), &config, &group, &watched, &counters);
        let result = tokio::select! {
            _ = stop.changed() => return,
            r = attempt => r,
        };
        let streamed = result.streamed;
        let f = result.failure;
        watched.lock().session_down(f.reason, f.detail.clone());
        metrics.failures.with_label_values(&[f.reason]).inc();
        if streamed {
            failures = 0;
        }
        failures += 1;
        if !outage_logged {
            tracing::warn!(camera = %id, reason = f.reason, detail = %f.detail, "camera session failed; reconnecting with backoff");
            outage_logged = true;
        } else {
            tracing::debug!(camera = %id, reason = f.reason, detail = %f.detail, attempt = failures, "camera reconnect failed");
        }
        if streamed {
            outage_logged = false;
        }
        if !ingest::retry::pause(
            failures,
            config.reconnect_initial,
            config.reconnect_max,
            &mut stop,
        )
        .await
        {
            return;
        }
    }
}

/// How one session ended.
struct Ended {
    /// Whether frames flowed before it failed (resets the backoff).
    streamed: bool,
    failure: Failure,
}

/// The camera's counters, one per session task.
struct Counters {
    frames: prometheus::IntCounter,
    bytes: prometheus::IntCounter,
    reconnects: prometheus::IntCounter,
}

/// A session set up and playing, with what was learnt from its SDP.
struct Prepared {
    session: Session<Playing>,
    /// The video stream.
    index: usize,
    /// The ONVIF metadata stream, when set up.
    metadata: Option<usize>,
    sdp_fps: Option<f64>,
}

/// One session: describe → setup → play → frames until something fails.
async fn play(
    url: &str,
    creds: Option<Credentials>,
    config: &RtspConfig,
    group: &Arc<SessionGroup>,
    watched: &Mutex<Watched>,
    counters: &Counters,
) -> Ended {
    let prepared = match prepare(url, creds, config, group, watched).await {
        Ok(p) => p,
        Err(failure) => {
            return Ended {
                streamed: false,
                failure,
            }
        }
    };
    let reader = Reader::new(&prepared, watched, counters);
    {
        let mut w = watched.lock();
        let before = w.reconnects();
        let info = stream_info(prepared.session.streams()[prepared.index].parameters());
        w.session_up(prepared.sdp_fps, info);
        if w.reconnects() > before {
            counters.reconnects.inc();
        }
    }
    reader.read(Box::pin(prepared.session), config).await
}

/// DESCRIBE, SETUP of the video stream (and of the ONVIF metadata stream when the camera
/// offers one and its events are wanted), PLAY — each step bounded.
async fn prepare(
    url: &str,
    creds: Option<Credentials>,
    config: &RtspConfig,
    group: &Arc<SessionGroup>,
    watched: &Mutex<Watched>,
) -> Result<Prepared, Failure> {
    let parsed = url::Url::parse(url)
        .map_err(|e| Failure::new("bad_url", format!("bad camera URL: {e}")))?;
    let options = SessionOptions::default()
        .creds(creds)
        .session_group(group.clone())
        .user_agent("sharp-eyes-gateway".into());
    let limit = config.step_timeout;
    let mut session = bounded(limit, "DESCRIBE", Session::describe(parsed, options)).await?;
    let streams = session.streams();
    let video = streams
        .iter()
        .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"));
    let Some(index) = video else {
        let offered: Vec<String> = streams
            .iter()
            .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
            .collect();
        return Err(Failure::new(
            "codec_unsupported",
            format!(
                "no H.264/H.265 video stream (offered: {})",
                offered.join(", ")
            ),
        ));
    };
    let sdp_fps = streams[index].framerate().map(f64::from);
    let wants_onvif = {
        let w = watched.lock();
        w.camera.motion_events || w.camera.tamper_events
    };
    let metadata = streams
        .iter()
        .position(|s| {
            s.media() == "application" && s.encoding_name().starts_with("vnd.onvif.metadata")
        })
        .filter(|_| wants_onvif);
    // length-prefixed NALs without parameter sets copied into every keyframe: the frames are
    // measured, not decoded
    let video_setup = SetupOptions::default()
        .transport(rtp_transport(config))
        .frame_format(retina::codec::FrameFormat::MP4);
    bounded(limit, "SETUP", session.setup(index, video_setup)).await?;
    if let Some(m) = metadata {
        let setup = SetupOptions::default().transport(rtp_transport(config));
        if let Err(f) = bounded(limit, "SETUP (metadata)", session.setup(m, setup)).await {
            // video matters more than events: go on without them
            tracing::debug!(reason = f.reason, detail = %f.detail, "ONVIF metadata stream not set up");
        }
    }
    let session = bounded(limit, "PLAY", session.play(PlayOptions::default())).await?;
    Ok(Prepared {
        session,
        index,
        metadata,
        sdp_fps,
    })
}

/// Reads a playing session. Frames are measured from the RTP packets themselves — sizes,
/// boundaries (marker bit or a new timestamp), keyframes from the NAL unit types, loss from the
/// sequence numbers — without reassembling them: the gateway never looks inside a frame, and
/// skipping retina's depacketizer and its copies is most of the difference to a per-camera
/// ffmpeg. Keyframes are the one thing rebuilt (for picture checks and snapshots).
struct Reader<'a> {
    watched: &'a Mutex<Watched>,
    counters: &'a Counters,
    index: usize,
    metadata: Option<usize>,
    h265: bool,
    keyframe: KeyframeBuilder,
    frame: FrameAcc,
    onvif_buf: Vec<u8>,
    /// Whether frames flowed (resets the backoff).
    streamed: bool,
    /// Frames since the watchdog last looked.
    frames_since_check: u64,
}

impl<'a> Reader<'a> {
    fn new(p: &Prepared, watched: &'a Mutex<Watched>, counters: &'a Counters) -> Self {
        let stream = &p.session.streams()[p.index];
        let h265 = stream.encoding_name() == "h265";
        let extra = match stream.parameters() {
            Some(ParametersRef::Video(v)) => Some(v.extra_data()),
            _ => None,
        };
        let codec = if h265 {
            VideoCodec::H265
        } else {
            VideoCodec::H264
        };
        Self {
            watched,
            counters,
            index: p.index,
            metadata: p.metadata,
            h265,
            keyframe: KeyframeBuilder::new(codec, extra),
            frame: FrameAcc::default(),
            onvif_buf: Vec::new(),
            streamed: false,
            frames_since_check: 0,
        }
    }

    /// Reads until the session fails or no frame came for the offline time.
    async fn read(
        mut self,
        mut session: std::pin::Pin<Box<Session<Playing>>>,
        config: &RtspConfig,
    ) -> Ended {
        // a session with no frame for this long is dropped and started again (the health has
        // reported it stalled long before)
        let frame_limit = config
            .health
            .offline_after
            .to_std()
            .unwrap_or(Duration::from_secs(30));
        // one watchdog timer re-armed every `frame_limit`, not a timeout per frame (a timer per
        // frame, 25 000 a second at 1,000 cameras, was a visible share of the CPU)
        let watchdog = tokio::time::sleep(frame_limit);
        tokio::pin!(watchdog);
        let mut batch = Batch::new(config.read_batch);
        loop {
            // What is already buffered is taken without a wake-up. When nothing is, the
            // session rests a moment so that the next read finds several frames waiting in the
            // socket: one wake-up and one read per batch instead of per frame — most of a
            // session's cost at 25 fps is waking up and reading, not the packets themselves.
            let ready = if batch.max.is_zero() {
                None
            } else {
                session.next().now_or_never()
            };
            let next = match ready {
                Some(item) => Some(item),
                None => {
                    let rest = batch.rest();
                    if !rest.is_zero() {
                        tokio::time::sleep(rest).await;
                    }
                    tokio::select! {
                        biased;
                        item = session.next() => Some(item),
                        _ = &mut watchdog => None,
                    }
                }
            };
            let failure = match next {
                None if self.frames_since_check > 0 => {
                    self.frames_since_check = 0;
                    let again = tokio::time::Instant::now() + frame_limit;
                    watchdog.as_mut().reset(again);
                    continue;
                }
                None => Failure::new(
                    "no_frames",
                    format!("no frame for {} s", frame_limit.as_secs()),
                ),
                Some(None) => Failure::new("connection_closed", "the camera ended the session"),
                Some(Some(Err(e))) => classify(&e),
                Some(Some(Ok(PacketItem::Rtp(pkt)))) => {
                    batch.bytes += self.packet(&pkt);
                    continue;
                }
                Some(Some(Ok(_))) => continue,
            };
            return Ended {
                streamed: self.streamed,
                failure,
            };
        }
    }

    /// One RTP packet; returns the bytes of video it carried.
    fn packet(&mut self, pkt: &ReceivedPacket) -> usize {
        if Some(pkt.stream_id()) == self.metadata {
            // ONVIF messages end with the marker bit
            self.onvif_buf.extend_from_slice(pkt.payload());
            if self.onvif_buf.len() > 64 * 1024 {
                self.onvif_buf.clear();
            }
            if pkt.mark() {
                onvif(self.watched, &self.onvif_buf);
                self.onvif_buf.clear();
            }
            return 0;
        }
        if pkt.stream_id() != self.index {
            return 0;
        }
        let ts = pkt.timestamp().timestamp();
        if self.frame.packets > 0 && self.frame.timestamp != ts {
            // a new timestamp without a marker before it: the last frame ended
            self.frame_done();
        }
        let f = &mut self.frame;
        f.timestamp = ts;
        f.packets += 1;
        f.bytes += pkt.payload().len();
        f.lost += u32::from(pkt.loss());
        if !f.key && is_keyframe_packet(pkt.payload(), self.h265) {
            f.key = true;
            self.keyframe.start();
        }
        if f.key {
            self.keyframe.push(pkt.payload(), pkt.loss());
        }
        if pkt.mark() {
            self.frame_done();
        }
        pkt.payload().len()
    }

    fn frame_done(&mut self) {
        let c = self.counters;
        record(
            self.watched,
            &self.frame,
            &mut self.keyframe,
            &c.frames,
            &c.bytes,
        );
        self.streamed = true;
        self.frames_since_check += 1;
        self.frame = FrameAcc::default();
    }
}

/// How long a session rests between reads: as long as it takes the stream to bring
/// [`Batch::TARGET_BYTES`] at its current rate, at most `max` — a few frames per read for a
/// 1 Mbit/s camera, still short enough for an 8 Mbit/s one that the socket's receive buffer
/// never fills (a camera whose sends block may drop the session).
struct Batch {
    max: Duration,
    bytes: usize,
    since: tokio::time::Instant,
}

impl Batch {
    const TARGET_BYTES: f64 = 64.0 * 1024.0;

    fn new(max: Duration) -> Self {
        Self {
            max,
            bytes: 0,
            since: tokio::time::Instant::now(),
        }
    }

    /// The rest before the next read; starts counting the next batch.
    fn rest(&mut self) -> Duration {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.since).as_secs_f64();
        let rate = self.bytes as f64 / elapsed.max(1e-3);
        self.bytes = 0;
        self.since = now;
        if self.max.is_zero() || rate <= 0.0 {
            return self.max;
        }
        Duration::from_secs_f64(Self::TARGET_BYTES / rate).min(self.max)
    }
}

/// The packets of the frame being received.
#[derive(Default)]
struct FrameAcc {
    timestamp: i64,
    packets: u32,
    bytes: usize,
    lost: u32,
    key: bool,
}

fn record(
    watched: &Mutex<Watched>,
    f: &FrameAcc,
    keyframe: &mut KeyframeBuilder,
    frames: &prometheus::IntCounter,
    bytes: &prometheus::IntCounter,
) {
    frames.inc();
    bytes.inc_by(f.bytes as u64);
    let rebuilt = if f.key { keyframe.finish() } else { None };
    let rebuilt = rebuilt.map(|data| (keyframe.codec(), data));
    watched.lock().frame(f.bytes, f.key, f.lost, rebuilt);
}

fn onvif(watched: &Mutex<Watched>, xml: &[u8]) {
    let events = super::onvif::parse(xml);
    if !events.is_empty() {
        watched.lock().onvif(events);
    }
}

/// Whether an RTP payload starts or carries a keyframe (H.264 IDR / SPS; H.265 IRAP / VPS /
/// SPS), in single NAL unit, aggregation (STAP-A / AP) or fragmentation (FU-A / FU) form.
pub(crate) fn is_keyframe_packet(p: &[u8], h265: bool) -> bool {
    let key_264 = |t: u8| t == 5 || t == 7;
    let key_265 = |t: u8| (16..=21).contains(&t) || t == 32 || t == 33;
    if h265 {
        let Some(&b0) = p.first() else { return false };
        match (b0 >> 1) & 0x3f {
            48 => {
                // AP: 2-byte header, then (size, NAL)…
                let mut at = 2;
                while at + 2 < p.len() {
                    let size = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                    if key_265((p[at + 2] >> 1) & 0x3f) {
                        return true;
                    }
                    at += 2 + size;
                }
                false
            }
            49 => p.len() > 2 && p[2] & 0x80 != 0 && key_265(p[2] & 0x3f),
            t => key_265(t),
        }
    } else {
        let Some(&b0) = p.first() else { return false };
        match b0 & 0x1f {
            24 => {
                // STAP-A: 1-byte header, then (size, NAL)…
                let mut at = 1;
                while at + 2 < p.len() {
                    let size = u16::from_be_bytes([p[at], p[at + 1]]) as usize;
                    if key_264(p[at + 2] & 0x1f) {
                        return true;
                    }
                    at += 2 + size;
                }
                false
            }
            28 => p.len() > 1 && p[1] & 0x80 != 0 && key_264(p[1] & 0x1f),
            t => key_264(t),
        }
    }
}

fn rtp_transport(config: &RtspConfig) -> Transport {
    match config.transport {
        RtpTransport::Tcp => Transport::Tcp(Default::default()),
        RtpTransport::Udp => Transport::Udp(Default::default()),
    }
}

fn stream_info(params: Option<ParametersRef<'_>>) -> Option<StreamInfo> {
    match params? {
        ParametersRef::Video(v) => {
            let (width, height) = v.pixel_dimensions();
            Some(StreamInfo {
                codec: Some(v.rfc6381_codec().to_string()),
                width: Some(width),
                height: Some(height),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{is_keyframe_packet, Batch};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn reads_rest_longer_for_slow_streams_and_never_past_the_limit() {
        let mut b = Batch::new(Duration::from_millis(250));
        // 1 Mbit/s: 64 KiB would take half a second; the limit holds it to 250 ms
        tokio::time::advance(Duration::from_millis(100)).await;
        b.bytes = 12_500;
        assert_eq!(b.rest(), Duration::from_millis(250));
        // 8 Mbit/s: 64 KiB in 65.5 ms
        tokio::time::advance(Duration::from_millis(100)).await;
        b.bytes = 100_000;
        let r = b.rest();
        assert!(
            r > Duration::from_millis(60) && r < Duration::from_millis(70),
            "{r:?}"
        );
        // batching off
        let mut off = Batch::new(Duration::ZERO);
        off.bytes = 1000;
        assert_eq!(off.rest(), Duration::ZERO);
    }

    #[test]
    fn keyframes_are_found_in_every_packet_form() {
        // H.264: IDR, non-IDR slice, FU-A start of an IDR, FU-A middle, STAP-A with an SPS
        assert!(is_keyframe_packet(&[0x65, 0x88], false));
        assert!(!is_keyframe_packet(&[0x41, 0x9a], false));
        assert!(is_keyframe_packet(&[0x7c, 0x85, 0x00], false));
        assert!(
            !is_keyframe_packet(&[0x7c, 0x05, 0x00], false),
            "not the start"
        );
        assert!(is_keyframe_packet(&[0x78, 0x00, 0x02, 0x67, 0x42], false));
        assert!(
            !is_keyframe_packet(&[0x78, 0x00, 0x02, 0x06, 0x05], false),
            "SEI only"
        );
        // H.265: IDR_W_RADL (19), TRAIL_R (1), FU (49) start of a CRA (21)
        assert!(is_keyframe_packet(&[19 << 1, 0x01], true));
        assert!(!is_keyframe_packet(&[1 << 1, 0x01], true));
        assert!(is_keyframe_packet(&[49 << 1, 0x01, 0x80 | 21], true));
        assert!(!is_keyframe_packet(&[], true));
    }
}
