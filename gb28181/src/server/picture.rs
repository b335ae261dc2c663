//! Pictures on demand: a channel's live stream is INVITEd (`s=Play`; RTP over TCP with the
//! gateway listening — `a=setup:passive` — unless the device's `media` says otherwise, see
//! [`super::receive`]), its first keyframe read from the MPEG-PS it sends, and the stream
//! ended with BYE. At most [`MAX_STREAMS`] at once; a picture is kept for
//! [`KEEP`] so that several callers of one channel cost one INVITE.

use super::receive::Receiver;
use super::Server;
use crate::media::rtp::MediaError;
use crate::media::{Codec, MediaTransport};
use crate::sip::transport::SOURCE;
use crate::sip::{header, param};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the device may take to answer the INVITE and send its first keyframe.
pub const PICTURE_DEADLINE: Duration = Duration::from_secs(10);

/// Streams pulled at once at most.
pub const MAX_STREAMS: usize = 16;

/// How long a channel's picture is kept for the next caller.
pub const KEEP: Duration = Duration::from_secs(5);

/// A keyframe from a channel.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Its codec.
    pub codec: Codec,
    /// The Annex B access unit.
    pub data: Arc<Vec<u8>>,
    /// When it came.
    pub at: Instant,
}

/// Why there is no picture.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// Not a channel of a registered device.
    #[error("no GB/T 28181 channel `{0}`")]
    Unknown(String),
    /// Its device is offline.
    #[error("the channel's device is offline")]
    Offline,
    /// Too many streams pulled now.
    #[error("{MAX_STREAMS} streams are being pulled already")]
    Busy,
    /// The device refused the INVITE.
    #[error("the device answered the INVITE with {0}")]
    Refused(u16),
    /// Nothing in time.
    #[error("no keyframe within {}s", PICTURE_DEADLINE.as_secs())]
    Timeout,
    /// The INVITE got no answer, or could not be sent.
    #[error("the INVITE went unanswered: {0}")]
    Unanswered(String),
    /// The device's answer names no address to connect to (`tcp_active`).
    #[error("the device's answer names no media address to connect to")]
    NoMediaAddress,
    /// The stream was not readable.
    #[error("{0}")]
    Media(#[from] MediaError),
    /// A socket could not be opened.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Pictures being pulled and kept, per channel.
#[derive(Default)]
pub(crate) struct Pictures {
    by_channel: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Picture>>>>>,
    pulling: std::sync::atomic::AtomicUsize,
    stream_no: std::sync::atomic::AtomicU32,
}

impl Server {
    /// A keyframe of channel `id`: the one kept from the last few seconds, or a new one pulled.
    pub async fn picture(self: &Arc<Self>, id: &str) -> Result<Picture, PictureError> {
        self.picture_within(id, KEEP).await
    }

    /// A keyframe of channel `id` younger than `max_age` (zero: a new one, as a picture check
    /// needs — a kept one would be judged twice, and frozen).
    pub async fn picture_within(
        self: &Arc<Self>,
        id: &str,
        max_age: Duration,
    ) -> Result<Picture, PictureError> {
        let slot = {
            let mut by = self.pictures.by_channel.lock();
            by.entry(id.to_string()).or_default().clone()
        };
        let mut kept = slot.lock().await;
        if let Some(p) = kept.as_ref().filter(|p| p.at.elapsed() < max_age) {
            return Ok(p.clone());
        }
        let n = &self.pictures.pulling;
        if n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= MAX_STREAMS {
            n.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(PictureError::Busy);
        }
        let pulled = tokio::time::timeout(PICTURE_DEADLINE, self.pull(id)).await;
        n.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let (codec, data) = pulled.map_err(|_| PictureError::Timeout)??;
        let p = Picture {
            codec,
            data: Arc::new(data),
            at: Instant::now(),
        };
        *kept = Some(p.clone());
        Ok(p)
    }

    /// INVITE, ACK, the first keyframe, BYE.
    async fn pull(self: &Arc<Self>, channel: &str) -> Result<(Codec, Vec<u8>), PictureError> {
        let device = self.owner(channel)?;
        let mut d = self.dialog(&device, channel).ok_or(PictureError::Offline)?;
        let ip = self.local_addr(d.peer).ip();
        let receiver = Receiver::open(self.media_of(&device), ip).await?;
        let y = self.stream_ssrc();
        let sip_id = &self.config.sip_id;
        let sdp = format!(
            "v=0\r\no={sip_id} 0 0 IN IP4 {ip}\r\ns=Play\r\nc=IN IP4 {ip}\r\nt=0 0\r\n{}y={y}\r\n",
            receiver.media_lines()?
        );
        let contact = format!("<sip:{sip_id}@{}>", self.local_addr(d.peer));
        let headers = [
            ("Subject", format!("{channel}:{y},{sip_id}:0")),
            ("Contact", contact),
        ];
        let cseq = self.next_sn();
        let body = Some(("APPLICATION/SDP", sdp.into_bytes()));
        let (branch, bytes) = self.request_in(&d, "INVITE", cseq, &headers, body);
        let answer = self
            .ask_in(d.peer, &branch, bytes)
            .await
            .map_err(|e| PictureError::Unanswered(e.to_string()))?;
        let code = answer.status_code.code();
        if !(200..300).contains(&code) {
            return Err(PictureError::Refused(code));
        }
        d.to_tag = header(&answer.headers, "To")
            .and_then(|t| param(t, "tag"))
            .map(str::to_string);
        // the device's own y= wins (WVP does the same)
        let ssrc = sdp_ssrc(&answer.body).or(y.parse().ok());
        let (_, ack) = self.request_in(&d, "ACK", cseq, &[], None);
        let _ = self.transport.send(d.peer, ack).await;
        let mut warned = false;
        let mut stranger = |from: SocketAddr| {
            if !std::mem::replace(&mut warned, true) {
                tracing::warn!(channel, %from, device = %d.peer.addr, "media for a pulled picture from an address that is not the device's; dropped");
            }
            self.pipeline.metrics().rejected(SOURCE, "media_stranger");
        };
        let got = receiver
            .first_keyframe(&answer.body, d.peer.addr.ip(), ssrc, &mut stranger)
            .await;
        let (branch, bye) = self.request_in(&d, "BYE", cseq + 1, &[], None);
        let (server, peer) = (self.clone(), d.peer);
        tokio::spawn(async move {
            let _ = server.ask_in(peer, &branch, bye).await;
        });
        got
    }

    /// How a device sends its streams: its own `media`, else the platform's.
    fn media_of(&self, device: &str) -> MediaTransport {
        self.roster()
            .devices
            .get(device)
            .and_then(|d| d.media)
            .unwrap_or(self.config.media)
    }

    /// The registered device a channel belongs to.
    fn owner(&self, channel: &str) -> Result<String, PictureError> {
        let s = self.state.lock();
        let d = s
            .devices
            .by_id
            .values()
            .find(|d| d.channels.contains_key(channel))
            .ok_or_else(|| PictureError::Unknown(channel.chars().take(64).collect()))?;
        if d.online != Some(true) {
            return Err(PictureError::Offline);
        }
        Ok(d.id.clone())
    }

    /// A stream's `y=`: 0 (live), digits 4–8 of the domain, a 4-digit stream number.
    fn stream_ssrc(&self) -> String {
        let n = self
            .pictures
            .stream_no
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % 10_000;
        let domain = format!("{:0<10}", self.config.domain);
        format!("0{}{n:04}", &domain[3..8])
    }
}

/// The SSRC in an SDP's `y=` line (10 decimal digits).
fn sdp_ssrc(sdp: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(sdp)
        .lines()
        .find_map(|l| l.trim().strip_prefix("y="))
        .and_then(|y| y.trim().parse().ok())
}
