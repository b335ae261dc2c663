//! `camsim`: an RTSP server that simulates N cameras at `rtsp://ADDR/cam/{1..N}`, serving real
//! H.264 (one clip, encoded once, looped with continuous RTP timestamps) over TCP-interleaved
//! RTP, cheap enough for 1,000+ streams in one process, with faults injectable per camera at
//! run time (refuse, 401, 404, stall, drop, slow DESCRIBE, unsupported codec, low fps, and black,
//! frozen, noisy or blurred pictures).

pub mod clip;

use base64::Engine;
use bytes::{BufMut, BytesMut};
use clip::{Clip, ClipSpec};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A fault injected into one camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Close the connection at the first request (and drop live sessions).
    Refuse,
    /// Answer 401 to everything, whatever the credentials.
    Unauthorized,
    /// Answer 404 (no such stream).
    NotFound,
    /// Stop sending frames `after` the PLAY (the session stays up).
    Stall {
        /// Delay.
        after: Duration,
    },
    /// Close the connection `after` the PLAY.
    Drop {
        /// Delay.
        after: Duration,
    },
    /// Answer DESCRIBE only after `delay`.
    SlowDescribe {
        /// Delay.
        delay: Duration,
    },
    /// Offer a codec the gateway does not read (MPEG-4 Part 2).
    WrongSdp,
    /// Send only `fps` frames per second (the SDP still says the clip's rate).
    LowFps {
        /// Frames per second.
        fps: u32,
    },
    /// Stream a black picture (frames keep coming).
    Black,
    /// Stream a frozen picture: one image repeated.
    Frozen,
    /// Stream the moving picture under heavy noise.
    Noisy,
    /// Stream the moving picture out of focus.
    Blurred,
}

impl Fault {
    /// Parses `refuse`, `401`, `404`, `stall:S`, `drop:S`, `slow-describe:S`, `wrong-sdp`,
    /// `low-fps:N`, `black`, `frozen`, `noisy`, `blurred`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let secs = || {
            arg.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|_| format!("fault `{s}`: `{arg}` is not a number of seconds"))
        };
        Ok(match name {
            "refuse" => Fault::Refuse,
            "401" => Fault::Unauthorized,
            "404" => Fault::NotFound,
            "stall" => Fault::Stall { after: secs()? },
            "drop" => Fault::Drop { after: secs()? },
            "slow-describe" => Fault::SlowDescribe { delay: secs()? },
            "wrong-sdp" => Fault::WrongSdp,
            "black" => Fault::Black,
            "frozen" => Fault::Frozen,
            "noisy" => Fault::Noisy,
            "blurred" => Fault::Blurred,
            "low-fps" => Fault::LowFps {
                fps: arg
                    .parse()
                    .map_err(|_| format!("fault `{s}`: `{arg}` is not a frame rate"))?,
            },
            _ => return Err(format!("unknown fault `{s}` (refuse, 401, 404, stall:S, drop:S, slow-describe:S, wrong-sdp, low-fps:N, black, frozen, noisy, blurred)")),
        })
    }
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct CamSimConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Cameras `1..=cameras`.
    pub cameras: u32,
    /// The clip.
    pub clip: ClipSpec,
    /// Required credentials (Basic), if any, for every camera…
    pub credentials: Option<(String, String)>,
    /// … except these, which have their own.
    pub camera_credentials: HashMap<u32, (String, String)>,
    /// Faults from the start.
    pub faults: HashMap<u32, Fault>,
    /// Cameras that offer an ONVIF metadata stream (events sent with [`CamSim::onvif`]).
    pub onvif: std::collections::HashSet<u32>,
}

impl CamSimConfig {
    /// `cameras` cameras on a free loopback port, the default clip, no credentials, no faults.
    pub fn local(cameras: u32) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            cameras,
            clip: ClipSpec::default(),
            credentials: None,
            camera_credentials: HashMap::new(),
            faults: HashMap::new(),
            onvif: Default::default(),
        }
    }
}

struct Shared {
    clip: Clip,
    /// The clips of the picture faults (black, frozen, noisy, blurred).
    faulty: HashMap<clip::Content, Clip>,
    cameras: u32,
    authorization: Option<String>,
    camera_authorization: HashMap<u32, String>,
    faults: Mutex<HashMap<u32, Fault>>,
    onvif: std::collections::HashSet<u32>,
    onvif_pending: Mutex<HashMap<u32, Vec<String>>>,
    frames: AtomicU64,
    next_session: AtomicU64,
    /// Per camera: sessions that started playing, and those still connected.
    plays: Mutex<HashMap<u32, (u64, u64)>>,
}

impl Shared {
    fn fault(&self, cam: u32) -> Option<Fault> {
        self.faults.lock().get(&cam).copied()
    }
}

/// A running camsim.
pub struct CamSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CamSim {
    /// Encodes (or reuses) the clip and starts serving.
    pub async fn start(config: CamSimConfig) -> Result<Self, String> {
        let spec = config.clip;
        let (clip, faulty) = tokio::task::spawn_blocking(move || {
            let mut faulty = HashMap::new();
            for c in [
                clip::Content::Black,
                clip::Content::Frozen,
                clip::Content::Noisy,
                clip::Content::Blurred,
            ] {
                faulty.insert(c, clip::load_content(spec, c)?);
            }
            Ok::<_, String>((clip::load(spec)?, faulty))
        })
        .await
        .map_err(|e| e.to_string())??;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let shared = Arc::new(Shared {
            clip,
            faulty,
            cameras: config.cameras,
            authorization: config
                .credentials
                .map(|(u, p)| format!("Basic {}", b64.encode(format!("{u}:{p}")))),
            camera_authorization: config
                .camera_credentials
                .into_iter()
                .map(|(n, (u, p))| (n, format!("Basic {}", b64.encode(format!("{u}:{p}")))))
                .collect(),
            faults: Mutex::new(config.faults),
            onvif: config.onvif,
            onvif_pending: Mutex::new(HashMap::new()),
            frames: AtomicU64::new(0),
            next_session: AtomicU64::new(0x1000_0000),
            plays: Mutex::new(HashMap::new()),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, s.clone()));
            }
        });
        Ok(Self { shared, addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of camera `n` (1-based), without credentials.
    pub fn url(&self, n: u32) -> String {
        format!("rtsp://{}/cam/{n}", self.addr)
    }

    /// Injects a fault into camera `n` (or clears it with `None`); live sessions follow at once.
    pub fn set_fault(&self, n: u32, fault: Option<Fault>) {
        let mut f = self.shared.faults.lock();
        match fault {
            Some(x) => f.insert(n, x),
            None => f.remove(&n),
        };
    }

    /// Queues an ONVIF metadata message (XML) for camera `n`: a playing session that set up
    /// the metadata track sends it with its next frame.
    pub fn onvif(&self, n: u32, xml: String) {
        self.shared
            .onvif_pending
            .lock()
            .entry(n)
            .or_default()
            .push(xml);
    }

    /// Camera `n`'s sessions: how many started playing, and how many of those are still
    /// connected (a client that keeps its session shows 1 and 1).
    pub fn plays(&self, n: u32) -> (u64, u64) {
        self.shared
            .plays
            .lock()
            .get(&n)
            .copied()
            .unwrap_or_default()
    }

    /// Frames sent so far, over all sessions.
    pub fn frames_sent(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// Stops listening (live sessions end when their cameras' tasks notice the socket).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// One RTSP request.
#[derive(Debug)]
struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads requests (and discards interleaved data from the client, e.g. RTCP) until the peer
/// goes away.
async fn read_requests(mut rd: tokio::net::tcp::OwnedReadHalf, tx: mpsc::Sender<Request>) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        // interleaved binary data: `$`, channel, length
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let _ = buf.split_to(4 + len);
        }
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = buf.split_to(end + 4);
            let text = String::from_utf8_lossy(&head);
            let mut lines = text.split("\r\n");
            let mut first = lines.next().unwrap_or("").split(' ');
            let method = first.next().unwrap_or("").to_string();
            let url = first.next().unwrap_or("").to_string();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let body = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < body {
                if rd.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
            }
            let _ = buf.split_to(body);
            if tx
                .send(Request {
                    method,
                    url,
                    headers,
                })
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        if buf.len() > 64 * 1024 {
            return; // garbage
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The camera number a URL names (`rtsp://host/cam/7`, `…/cam/7/trackID=0`).
fn camera_of(url: &str, cameras: u32) -> Option<u32> {
    let path = url.split("://").nth(1)?.split_once('/')?.1;
    let mut parts = path.split('/');
    (parts.next()? == "cam").then_some(())?;
    let n: u32 = parts.next()?.parse().ok()?;
    (1..=cameras).contains(&n).then_some(n)
}

struct Playing {
    /// The picture being sent (a change restarts at the new clip's keyframe).
    content: clip::Content,
    /// Whether the client set up the ONVIF metadata track.
    metadata: bool,
    meta_seq: u16,
    started: Instant,
    next: Instant,
    frame: usize,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel(8);
    let reader = tokio::spawn(read_requests(rd, tx));
    let mut camera: Option<u32> = None;
    let mut playing: Option<Playing> = None;
    let mut metadata = false;
    let session = shared.next_session.fetch_add(1, Ordering::Relaxed);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let frame_time = Duration::from_secs_f64(1.0 / shared.clip.spec.fps as f64);
    loop {
        let wake = playing.as_ref().map(|p| p.next);
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { break };
                let cam = camera_of(&req.url, shared.cameras).or(camera);
                if let (Some(c), None) = (cam, camera) {
                    camera = Some(c);
                }
                let fault = cam.and_then(|c| shared.fault(c));
                if fault == Some(Fault::Refuse) {
                    break;
                }
                let Some(response) = respond(&req, cam, fault, session, &shared, &mut playing, &mut metadata).await else {
                    break;
                };
                if wr.write_all(response.as_bytes()).await.is_err() {
                    break;
                }
                if req.method == "TEARDOWN" {
                    break;
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                let p = playing.as_mut().expect("playing");
                let fault = camera.and_then(|c| shared.fault(c));
                let elapsed = p.started.elapsed();
                let mut step = frame_time;
                match fault {
                    Some(Fault::Refuse) => break,
                    Some(Fault::Drop { after }) if elapsed >= after => break,
                    Some(Fault::Stall { after }) if elapsed >= after => {
                        p.next += frame_time;
                        continue;
                    }
                    Some(Fault::LowFps { fps }) if fps > 0 => {
                        step = Duration::from_secs_f64(1.0 / fps as f64);
                    }
                    _ => {}
                }
                let content = match fault {
                    Some(Fault::Black) => clip::Content::Black,
                    Some(Fault::Frozen) => clip::Content::Frozen,
                    Some(Fault::Noisy) => clip::Content::Noisy,
                    Some(Fault::Blurred) => clip::Content::Blurred,
                    _ => clip::Content::Pattern,
                };
                if content != p.content {
                    p.content = content;
                    p.frame = 0;
                }
                let clip = shared.faulty.get(&content).unwrap_or(&shared.clip);
                let frame = &clip.frames[p.frame % clip.frames.len()];
                out.clear();
                let last = frame.payloads.len() - 1;
                for (i, payload) in frame.payloads.iter().enumerate() {
                    out.put_u8(b'$');
                    out.put_u8(0);
                    out.put_u16((12 + payload.len()) as u16);
                    out.put_u8(0x80);
                    out.put_u8(if i == last { 0x80 | 96 } else { 96 });
                    out.put_u16(p.seq);
                    out.put_u32(p.timestamp);
                    out.put_u32(p.ssrc);
                    out.put_slice(payload);
                    p.seq = p.seq.wrapping_add(1);
                }
                if p.metadata {
                    let pending = camera.and_then(|c| {
                        shared.onvif_pending.lock().get_mut(&c).and_then(|q| {
                            (!q.is_empty()).then(|| q.remove(0))
                        })
                    });
                    if let Some(xml) = pending {
                        out.put_u8(b'$');
                        out.put_u8(2);
                        out.put_u16((12 + xml.len()) as u16);
                        out.put_u8(0x80);
                        out.put_u8(0x80 | 107);
                        out.put_u16(p.meta_seq);
                        out.put_u32(p.timestamp);
                        out.put_u32(p.ssrc.wrapping_add(1));
                        out.put_slice(xml.as_bytes());
                        p.meta_seq = p.meta_seq.wrapping_add(1);
                    }
                }
                if wr.write_all(&out).await.is_err() {
                    break;
                }
                shared.frames.fetch_add(1, Ordering::Relaxed);
                p.frame += 1;
                // RTP time follows the wall clock of the frames actually sent
                p.timestamp = p.timestamp.wrapping_add((step.as_secs_f64() * 90_000.0) as u32);
                p.next += step;
                // a writer that fell far behind (slow reader) skips ahead instead of bursting
                let now = Instant::now();
                if p.next + Duration::from_secs(1) < now {
                    p.next = now;
                }
            }
        }
    }
    if let (Some(_), Some(c)) = (playing.as_ref(), camera) {
        if let Some(p) = shared.plays.lock().get_mut(&c) {
            p.1 -= 1;
        }
    }
    reader.abort();
}

async fn respond(
    req: &Request,
    cam: Option<u32>,
    fault: Option<Fault>,
    session: u64,
    shared: &Shared,
    playing: &mut Option<Playing>,
    metadata: &mut bool,
) -> Option<String> {
    let cseq = req.header("CSeq").unwrap_or("0");
    let reply = |status: &str, extra: &str, body: &str| {
        let mut r = format!("RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: camsim\r\n{extra}");
        if !body.is_empty() {
            r += &format!("Content-Length: {}\r\n", body.len());
        }
        r += "\r\n";
        r += body;
        r
    };
    if req.method == "OPTIONS" {
        return Some(reply(
            "200 OK",
            "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n",
            "",
        ));
    }
    let Some(cam) = cam else {
        return Some(reply("404 Not Found", "", ""));
    };
    if fault == Some(Fault::NotFound) {
        return Some(reply("404 Not Found", "", ""));
    }
    let wanted = shared
        .camera_authorization
        .get(&cam)
        .or(shared.authorization.as_ref());
    let authorized = match wanted {
        _ if fault == Some(Fault::Unauthorized) => false,
        None => true,
        Some(want) => req.header("Authorization") == Some(want.as_str()),
    };
    if !authorized {
        return Some(reply(
            "401 Unauthorized",
            "WWW-Authenticate: Basic realm=\"camsim\"\r\n",
            "",
        ));
    }
    let base = format!("rtsp://{}/cam/{cam}", host_of(&req.url));
    let session_header = format!("Session: {session:08X};timeout=60\r\n");
    match req.method.as_str() {
        "DESCRIBE" => {
            if let Some(Fault::SlowDescribe { delay }) = fault {
                tokio::time::sleep(delay).await;
            }
            let media = if fault == Some(Fault::WrongSdp) {
                "m=video 0 RTP/AVP 96\r\na=rtpmap:96 MP4V-ES/90000\r\na=fmtp:96 profile-level-id=1\r\n".to_string()
            } else {
                format!(
                    "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 {}\r\na=framerate:{}\r\n",
                    shared.clip.fmtp, shared.clip.spec.fps
                )
            };
            let onvif = if shared.onvif.contains(&cam) {
                "m=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\na=control:trackID=1\r\n"
            } else {
                ""
            };
            let sdp = format!(
                "v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=camsim camera {cam}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=control:*\r\n{media}a=control:trackID=0\r\n{onvif}"
            );
            Some(reply(
                "200 OK",
                &format!("Content-Base: {base}/\r\nContent-Type: application/sdp\r\n"),
                &sdp,
            ))
        }
        "SETUP" => {
            let transport = req.header("Transport").unwrap_or("");
            if !transport.contains("RTP/AVP/TCP") {
                return Some(reply("461 Unsupported Transport", "", ""));
            }
            let track_1 = req.url.ends_with("trackID=1");
            if track_1 && !shared.onvif.contains(&cam) {
                return Some(reply("404 Not Found", "", ""));
            }
            *metadata |= track_1;
            let (channels, ssrc) = if track_1 {
                ("2-3", (session as u32).wrapping_add(1))
            } else {
                ("0-1", session as u32)
            };
            Some(reply(
                "200 OK",
                &format!(
                    "Transport: RTP/AVP/TCP;unicast;interleaved={channels};ssrc={ssrc:08X}\r\n{session_header}"
                ),
                "",
            ))
        }
        "PLAY" => {
            if playing.is_none() {
                let mut plays = shared.plays.lock();
                let p = plays.entry(cam).or_default();
                p.0 += 1;
                p.1 += 1;
            }
            if playing.is_none() {
                let now = Instant::now();
                *playing = Some(Playing {
                    content: clip::Content::Pattern,
                    metadata: *metadata,
                    meta_seq: 1,
                    started: now,
                    next: now,
                    frame: 0,
                    seq: (session as u16).wrapping_mul(7),
                    timestamp: (session as u32).wrapping_mul(90_001),
                    ssrc: session as u32,
                });
            }
            let p = playing.as_ref().expect("playing");
            let mut info = format!("url={base}/trackID=0;seq={};rtptime={}", p.seq, p.timestamp);
            if p.metadata {
                info += &format!(
                    ",url={base}/trackID=1;seq={};rtptime={}",
                    p.meta_seq, p.timestamp
                );
            }
            Some(reply(
                "200 OK",
                &format!("{session_header}Range: npt=0.000-\r\nRTP-Info: {info}\r\n"),
                "",
            ))
        }
        "GET_PARAMETER" | "SET_PARAMETER" | "TEARDOWN" => {
            Some(reply("200 OK", &session_header, ""))
        }
        _ => Some(reply("405 Method Not Allowed", "", "")),
    }
}

fn host_of(url: &str) -> &str {
    url.split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_cameras_and_faults_parse() {
        assert_eq!(camera_of("rtsp://127.0.0.1:8554/cam/7", 10), Some(7));
        assert_eq!(camera_of("rtsp://h/cam/7/trackID=0", 10), Some(7));
        assert_eq!(camera_of("rtsp://h/cam/11", 10), None);
        assert_eq!(camera_of("rtsp://h/other/1", 10), None);
        assert_eq!(
            Fault::parse("stall:2.5").unwrap(),
            Fault::Stall {
                after: Duration::from_millis(2500)
            }
        );
        assert_eq!(Fault::parse("low-fps:5").unwrap(), Fault::LowFps { fps: 5 });
        assert!(Fault::parse("explode").is_err());
    }
}
