//! One device connection: frames in order, each confirmed only after its signals are
//! committed; the center's commands out, retransmitted until confirmed.
//!
//! [`Connection::run`] waits for the next thing to happen — bytes from the device, a command
//! from the center, a retransmit tick, a stop — and hands it to `on_frame`, `on_command` or
//! `on_retransmit`. Every handler answers whether the connection goes on.

use super::{
    answer, clock_sync, send, Devices, Downstream, Gb26875Config, Pending, ServerMetrics, Slot,
    RETRANSMIT_AFTER, SOURCE, TRIES,
};
use crate::gb26875::frame::{command, Frame, Header};
use crate::gb26875::signals::signals;
use crate::gb26875::stream::{Decoded, StreamDecoder};
use crate::gb26875::time::TimeLabel;
use alerts::outbox::MessageKey;
use alerts::registry::Unit;
use alerts::signal::Protocol;
use alerts::{Pipeline, SubmitError};
use chrono::{FixedOffset, Utc};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

/// How long a frame is recognised when a device sends it again.
const FRAME_WINDOW: chrono::Duration = chrono::Duration::hours(1);

/// Frames left unconfirmed because the outbox cannot take them: logged once per outage.
static REFUSING: alerts::outage::Outage = alerts::outage::Outage::new();

/// Whether the connection goes on after a handler.
type Go = bool;

/// What woke the connection up.
enum Turn {
    Close,
    Command(Downstream),
    Retransmit,
    Read(usize),
}

/// The per-connection frame budget: past `max` frames in a second, reading stops until the
/// second is over (the device's TCP buffer fills; nothing is dropped).
struct Budget {
    max: u32,
    window_end: Instant,
    frames: u32,
}

impl Budget {
    /// Waits (counted in `throttled`) when this frame is over the budget.
    async fn take(&mut self, throttled: &prometheus::IntCounter) {
        let now = Instant::now();
        if now >= self.window_end {
            self.window_end = now + Duration::from_secs(1);
            self.frames = 0;
        }
        self.frames += 1;
        if self.frames <= self.max {
            return;
        }
        throttled.inc();
        tokio::time::sleep_until(self.window_end).await;
        self.window_end = Instant::now() + Duration::from_secs(1);
        self.frames = 1;
    }
}

/// One device connection.
pub(super) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    pipeline: Arc<Pipeline>,
    metrics: ServerMetrics,
    devices: Arc<Devices>,
    config: Arc<Gb26875Config>,
    /// This connection's id (a reconnect of the same device gets another).
    id: u64,
    /// Notified when a newer connection of the same device takes over.
    close: Arc<Notify>,
    /// The center's commands for this device (the sending half goes into its [`Slot`]).
    commands: mpsc::Sender<Downstream>,
    inbox: mpsc::Receiver<Downstream>,
    /// Commands sent and not yet confirmed, by serial.
    pending: HashMap<u16, Pending>,
    serial: u16,
    /// The device's address once it sent a frame; the center's address it used.
    address: Option<u64>,
    center: u64,
    budget: Budget,
    /// When the last valid frame came (or the connection opened).
    last_valid: Instant,
}

impl Connection {
    pub(super) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        pipeline: Arc<Pipeline>,
        metrics: ServerMetrics,
        devices: Arc<Devices>,
        config: Arc<Gb26875Config>,
    ) -> Self {
        let (commands, inbox) = mpsc::channel::<Downstream>(16);
        Self {
            id: devices.next_id.fetch_add(1, Ordering::Relaxed),
            budget: Budget {
                max: config.max_frames_per_s,
                window_end: Instant::now(),
                frames: 0,
            },
            stream,
            peer,
            pipeline,
            metrics,
            devices,
            config,
            close: Arc::new(Notify::new()),
            commands,
            inbox,
            pending: HashMap::new(),
            serial: 0,
            address: None,
            center: 0,
            last_valid: Instant::now(),
        }
    }

    /// Serves the connection until the device goes, falls idle, is replaced or denied, or
    /// `stop` turns true.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut decoder = StreamDecoder::new();
        let mut buf = vec![0u8; 2048];
        let mut retransmit = tokio::time::interval(Duration::from_secs(1));
        retransmit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // silence counts from the last valid frame, not from the last bytes or loop turn
        // (stray bytes, a command or a retransmit must not keep a connection open)
        let opened = Instant::now();
        loop {
            let (deadline, phase) = match self.address {
                None => (opened + self.config.login_timeout, "login"),
                Some(_) => (self.last_valid + self.config.idle_timeout, "idle"),
            };
            let turn = tokio::select! {
                _ = stop.changed() => Turn::Close,
                _ = self.close.notified() => {
                    tracing::debug!(peer = %self.peer, "GB/T 26875.3 connection replaced by a newer one");
                    Turn::Close
                }
                Some(d) = self.inbox.recv(), if self.address.is_some() => Turn::Command(d),
                _ = retransmit.tick(), if !self.pending.is_empty() => Turn::Retransmit,
                r = tokio::time::timeout_at(deadline, self.stream.read(&mut buf)) => match r {
                    Err(_) => {
                        self.metrics.timed_out.with_label_values(&[phase]).inc();
                        tracing::debug!(peer = %self.peer, phase, "GB/T 26875.3 connection silent; closed");
                        Turn::Close
                    }
                    Ok(Ok(0)) | Ok(Err(_)) => Turn::Close,
                    Ok(Ok(n)) => Turn::Read(n),
                },
            };
            let go = match turn {
                Turn::Close => false,
                Turn::Command(d) => self.on_command(d).await,
                Turn::Retransmit => self.on_retransmit().await,
                Turn::Read(n) => {
                    decoder.push(&buf[..n]);
                    self.on_bytes(&mut decoder).await
                }
            };
            if !go {
                break;
            }
        }
        self.release();
    }

    /// Sends one of the center's commands and keeps it until the device confirms it.
    async fn on_command(&mut self, d: Downstream) -> Go {
        self.serial = self.serial.wrapping_add(1).max(1);
        let serial = self.serial;
        let address = self.address.unwrap_or_default();
        let frame = Frame {
            header: Header {
                serial,
                version: (1, 1),
                time: TimeLabel::from_datetime(Utc::now().with_timezone(&self.config.offset)),
                source: self.center,
                destination: address,
                command: d.command,
            },
            adu: Some(d.adu.clone()),
        };
        let patrol = d.adu.kind == 91;
        if patrol {
            if let Some(p) = self.devices.patrols.lock().get_mut(&address) {
                p.serial = serial;
                p.sent_at = Some(Utc::now());
            }
        }
        let bytes = frame.encode();
        let kind = if patrol { "patrol_check" } else { "control" };
        self.metrics.frames.with_label_values(&[kind]).inc();
        if self.stream.write_all(&bytes).await.is_err() {
            return false;
        }
        self.pending.insert(
            serial,
            Pending {
                bytes,
                tries: 1,
                next: Instant::now() + RETRANSMIT_AFTER,
                patrol,
                read: (d.command == command::REQUEST).then_some(d.adu.kind),
            },
        );
        true
    }

    /// Sends again what is due; gives up on a command after [`TRIES`] sends.
    async fn on_retransmit(&mut self) -> Go {
        let now = Instant::now();
        let address = self.address.unwrap_or_default();
        let mut resend = Vec::new();
        let (devices, peer) = (&self.devices, self.peer);
        self.pending.retain(|serial, p| {
            if p.next > now {
                return true;
            }
            if p.tries >= TRIES {
                if p.patrol {
                    if let Some(c) = devices.patrols.lock().get_mut(&address) {
                        c.unconfirmed = c.serial == *serial || c.unconfirmed;
                    }
                }
                tracing::warn!(%peer, serial, "GB/T 26875.3 command never confirmed (3 tries)");
                return false;
            }
            p.tries += 1;
            p.next = now + RETRANSMIT_AFTER;
            resend.push(p.bytes.clone());
            true
        });
        for b in resend {
            self.metrics.frames.with_label_values(&["retransmit"]).inc();
            if self.stream.write_all(&b).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Every complete frame read so far, in order, within the frame budget.
    async fn on_bytes(&mut self, decoder: &mut StreamDecoder) -> Go {
        while let Some(item) = decoder.decode_next() {
            self.budget.take(&self.metrics.throttled).await;
            let m = self.pipeline.metrics();
            m.ingested(SOURCE);
            let go = match item {
                Decoded::Garbage(bytes) => {
                    m.rejected(SOURCE, "garbage");
                    tracing::debug!(peer = %self.peer, bytes, "GB/T 26875.3: bytes outside any frame");
                    true
                }
                Decoded::Rejected { error, header } => {
                    m.rejected(SOURCE, error.reason());
                    tracing::debug!(peer = %self.peer, reason = error.reason(), error = %error, "GB/T 26875.3 frame denied");
                    match header {
                        Some(h) => self.reply(&h, command::DENY, self.config.offset).await,
                        None => true,
                    }
                }
                Decoded::Frame(f) => self.on_frame(f).await,
            };
            if !go {
                return false;
            }
        }
        true
    }

    /// One frame from the device: an answer to a command, or data to commit and confirm.
    async fn on_frame(&mut self, frame: Frame) -> Go {
        let h = frame.header;
        if matches!(h.command, command::CONFIRM | command::DENY) {
            if self.address == Some(h.source) {
                self.last_valid = Instant::now();
            }
            self.on_answer(&h);
            return true;
        }
        let unit = match self.admit(&h) {
            Ok(unit) => unit,
            Err(()) => {
                let _ = self.reply(&h, command::DENY, self.config.offset).await;
                return false;
            }
        };
        self.last_valid = Instant::now();
        let offset = unit.utc_offset.unwrap_or(self.config.offset);
        if self.address != Some(h.source) {
            self.claim(&h, offset);
        }
        if h.command == command::REPLY {
            self.on_read_reply(&h, &frame);
        }
        let (signals, answers) = signals(&frame, &unit.id, offset);
        if !answers.is_empty() {
            self.on_patrol_answer(&unit, &h, answers[0].operator);
        }
        let m = self.pipeline.metrics();
        // a frame sent again (unconfirmed before a crash) carries the same serial and label
        let key = MessageKey {
            key: format!(
                "gb26875:{}:{}:{}",
                h.source,
                h.serial,
                hex::encode(h.time.0)
            ),
            window_ms: FRAME_WINDOW.num_milliseconds(),
        };
        match self
            .pipeline
            .submit_message(&unit.id, Protocol::Gb26875, &signals, Some(key))
            .await
        {
            Ok(_) => {
                if REFUSING.recovered() {
                    tracing::info!("GB/T 26875.3 frames are confirmed again");
                }
                self.reply(&h, command::CONFIRM, offset).await
            }
            Err(
                e @ (SubmitError::Full(_) | SubmitError::DiskLow(_) | SubmitError::Unavailable(_)),
            ) => {
                // no confirm: the device sends it again
                m.rejected(SOURCE, e.reason());
                if REFUSING.failed() {
                    tracing::warn!(unit = %unit.id, error = %e, "GB/T 26875.3 frames not confirmed while the outbox cannot take them (devices send them again)");
                } else {
                    tracing::debug!(unit = %unit.id, error = %e, "GB/T 26875.3 frame not confirmed");
                }
                true
            }
            Err(e) => {
                m.rejected(SOURCE, e.reason());
                self.reply(&h, command::DENY, offset).await
            }
        }
    }

    /// The device confirmed (or denied) one of the center's commands.
    fn on_answer(&mut self, h: &Header) {
        let patrol = self.pending.remove(&h.serial).is_some_and(|p| p.patrol);
        if patrol && h.command == command::CONFIRM {
            if let Some(c) = self.devices.patrols.lock().get_mut(&h.source) {
                if c.serial == h.serial {
                    c.confirmed_at = Some(Utc::now());
                }
            }
        }
    }

    /// The frame's unit, if its device is registered and connects from an allowed address
    /// (else it is counted, logged, and the connection ends after the deny).
    fn admit(&self, h: &Header) -> Result<Arc<Unit>, ()> {
        let m = self.pipeline.metrics();
        let peer = self.peer;
        let Some(unit) = self.pipeline.registry().unit_by_address(h.source).cloned() else {
            let label = format!("gb26875:{}", h.source);
            self.pipeline.note_unknown_unit(&label, Protocol::Gb26875);
            m.rejected(SOURCE, "unknown_unit");
            tracing::warn!(%peer, address = h.source, "GB/T 26875.3 device not in the registry; denied and disconnected");
            return Err(());
        };
        if !unit.gb26875_peers.is_empty() && !unit.gb26875_peers.contains(&peer.ip()) {
            m.rejected(SOURCE, "peer_not_allowed");
            tracing::warn!(%peer, unit = %unit.id, "GB/T 26875.3 device connects from an address not in its unit's gb26875_peers; denied and disconnected");
            return Err(());
        }
        Ok(unit)
    }

    /// This connection is now the device's: an older one is closed, and the device's clock
    /// is set.
    fn claim(&mut self, h: &Header, offset: FixedOffset) {
        let previous = self.devices.by_address.lock().insert(
            h.source,
            Slot {
                id: self.id,
                close: self.close.clone(),
                commands: self.commands.clone(),
                peer: self.peer,
                since: Utc::now(),
            },
        );
        if let Some(old) = previous.filter(|o| o.id != self.id) {
            self.metrics.replaced.inc();
            tracing::warn!(
                address = h.source,
                old_peer = %old.peer,
                new_peer = %self.peer,
                "GB/T 26875.3 device connection replaced by a newer one claiming its address"
            );
            old.close.notify_one();
        }
        self.address = Some(h.source);
        self.center = h.destination;
        let _ = self.commands.try_send(clock_sync(offset));
    }

    /// The device's reply to a read the center asked for.
    fn on_read_reply(&mut self, h: &Header, frame: &Frame) {
        let Some(kind) = self.pending.remove(&h.serial).and_then(|p| p.read) else {
            return;
        };
        if let Some(r) = self.devices.reads.lock().get_mut(&(h.source, kind)) {
            let adu = frame.adu.as_ref();
            r.replied_at = Some(Utc::now());
            r.reply_kind = adu.map(|a| a.kind);
            r.objects = adu.map(|a| format!("{:?}", a.objects));
            r.adu_hex = adu.map(|a| {
                let mut b = Vec::new();
                a.encode(&mut b);
                b.iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
        }
    }

    /// The answer to a patrol check (the first one counts).
    fn on_patrol_answer(&self, unit: &Unit, h: &Header, operator: u8) {
        let mut patrols = self.devices.patrols.lock();
        let Some(c) = patrols
            .get_mut(&h.source)
            .filter(|c| c.answered_at.is_none())
        else {
            return;
        };
        let now = Utc::now();
        c.answered_at = Some(now);
        c.operator = Some(operator);
        c.response_s = c
            .sent_at
            .map(|s| (now - s).num_milliseconds() as f64 / 1000.0);
        if let Some(requested) = c.requested_at {
            self.pipeline
                .record_patrol(&unit.id, requested, c.timeout_min, Some(now));
        }
        tracing::info!(unit = %unit.id, operator, response_s = c.response_s, "patrol check answered");
    }

    /// Confirms or denies the frame with header `h`, time-labelled in `offset`.
    async fn reply(&mut self, h: &Header, cmd: u8, offset: FixedOffset) -> Go {
        send(&mut self.stream, &answer(h, cmd, offset), &self.metrics).await
    }

    /// The device's slot is freed, unless a newer connection has it.
    fn release(&self) {
        if let Some(a) = self.address {
            let mut map = self.devices.by_address.lock();
            if map.get(&a).is_some_and(|s| s.id == self.id) {
                map.remove(&a);
            }
        }
    }
}
