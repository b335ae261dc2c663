//! The GB/T 26875.3 TCP server: transmission devices connect, send frames, and get a confirm
//! (command 3) only once what the frame produced is committed — or a deny (command 6) for a
//! frame that fails its checks. One task per connection, frames handled in order.
//!
//! * A device is known by the source address of its frames, mapped to a unit through the
//!   unit's `gb26875_address` (0 is an address like any other). A device that is not in the
//!   registry is denied, counted (and listed when the quarantine list is on), and disconnected.
//! * An empty send-data is a heartbeat: confirmed, and the unit's sign of life.
//! * A device that connects again replaces its old connection; a connection idle for
//!   `idle_timeout` is closed; beyond `max_connections` new connections are refused.
//! * Silence is judged on valid frames, not bytes: a new connection must identify (a valid
//!   frame of a registered device) within `login_timeout`, and idle time counts from the last
//!   valid frame — stray bytes keep no slot open. A replaced connection is logged at WARN.
//! * While the outbox is full a frame is not confirmed: the device retransmits it (≤ 10 s, as
//!   the standard says), so nothing is lost and the device is slowed down.

mod connection;

use connection::Connection;

use super::adu::{Adu, Objects};
use super::frame::{command, Frame, Header};
use super::time::TimeLabel;
use alerts::Pipeline;
use chrono::{DateTime, FixedOffset, Utc};
use parking_lot::Mutex;
use prometheus::{IntCounterVec, IntGauge, Opts};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "gb26875";

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Gb26875Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// A connection with no valid frame for this long is closed (devices heartbeat every
    /// 20–30 s); bytes that are not a valid frame do not keep it open.
    pub idle_timeout: Duration,
    /// A new connection must send a valid frame of a registered device within this long, or
    /// it is closed (a connection that never identifies holds no slot for long).
    pub login_timeout: Duration,
    /// Connections at most; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Connections from one IP address at most (devices behind one NAT share one).
    pub max_connections_per_peer: usize,
    /// The time zone of the devices' time labels, unless their unit sets its own.
    pub offset: FixedOffset,
    /// Frames per second one connection may send; beyond, the gateway stops reading it for
    /// the rest of the second (the device's TCP buffer fills; nothing is dropped).
    pub max_frames_per_s: u32,
}

#[derive(Clone)]
struct ServerMetrics {
    connections: IntGauge,
    frames: IntCounterVec,
    throttled: prometheus::IntCounter,
    replaced: prometheus::IntCounter,
    timed_out: IntCounterVec,
}

impl ServerMetrics {
    fn new(registry: &prometheus::Registry) -> Self {
        let m = Self {
            connections: IntGauge::new(
                "gateway_gb26875_connections",
                "Open GB/T 26875.3 device connections",
            )
            .expect("metric"),
            frames: IntCounterVec::new(
                Opts::new(
                    "gateway_gb26875_frames_total",
                    "GB/T 26875.3 frames sent by the gateway, by command (confirm, deny)",
                ),
                &["command"],
            )
            .expect("metric"),
            throttled: prometheus::IntCounter::new(
                "gateway_gb26875_throttled_total",
                "Times a connection sent more than max_frames_per_s and was not read for the rest of the second",
            )
            .expect("metric"),
            replaced: prometheus::IntCounter::new(
                "gateway_gb26875_replaced_total",
                "Device connections replaced by a newer connection claiming the same address",
            )
            .expect("metric"),
            timed_out: IntCounterVec::new(
                Opts::new(
                    "gateway_gb26875_timeouts_total",
                    "Connections closed for silence: `login` (no valid frame of a registered device in time), `idle` (no valid frame for idle_timeout)",
                ),
                &["phase"],
            )
            .expect("metric"),
        };
        let _ = registry.register(Box::new(m.replaced.clone()));
        let _ = registry.register(Box::new(m.timed_out.clone()));
        let _ = registry.register(Box::new(m.throttled.clone()));
        let _ = registry.register(Box::new(m.connections.clone()));
        let _ = registry.register(Box::new(m.frames.clone()));
        m
    }
}

/// A device's current connection, so that a reconnect can close the old one and the center
/// can send it commands.
struct Slot {
    id: u64,
    close: Arc<Notify>,
    commands: mpsc::Sender<Downstream>,
    peer: SocketAddr,
    since: DateTime<Utc>,
}

/// A command for a device.
#[derive(Debug, Clone)]
struct Downstream {
    command: u8,
    adu: Adu,
}

/// A patrol check (查岗) and how the device answered it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatrolCheck {
    /// When it was asked for (the record's key in the outbox).
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub requested_at: Option<DateTime<Utc>>,
    /// Minutes the device has to answer.
    pub timeout_min: u8,
    /// The serial number of the center's frame.
    pub serial: u16,
    /// When the center sent it.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
    /// When the device confirmed receiving it.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When the answer (type 24, bit 5) arrived.
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub answered_at: Option<DateTime<Utc>>,
    /// Seconds from sending to the answer.
    pub response_s: Option<f64>,
    /// The operator who answered.
    pub operator: Option<u8>,
    /// The device never confirmed it (3 tries, 10 s apart).
    pub unconfirmed: bool,
}

/// A connected device, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    /// Its GB/T 26875.3 address.
    pub address: u64,
    /// Its unit.
    pub unit: Option<String>,
    /// Where it connects from.
    pub peer: String,
    /// Connected since.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub since: DateTime<Utc>,
}

/// A device's reply to a read (command 5).
#[derive(Debug, Clone, Serialize)]
pub struct ReadReply {
    /// The type read.
    pub kind: u8,
    /// When the center asked.
    #[serde(serialize_with = "alerts::time::serialize")]
    pub requested_at: DateTime<Utc>,
    /// When the reply came (`None`: not yet).
    #[serde(serialize_with = "alerts::time::option::serialize")]
    pub replied_at: Option<DateTime<Utc>>,
    /// The reply's ADU type.
    pub reply_kind: Option<u8>,
    /// The reply's objects, decoded (debug notation).
    pub objects: Option<String>,
    /// The reply's ADU bytes, hex.
    pub adu_hex: Option<String>,
}

/// Devices connected now, by address, the patrol checks and the read replies of each.
#[derive(Default)]
struct Devices {
    by_address: Mutex<HashMap<u64, Slot>>,
    patrols: Mutex<HashMap<u64, PatrolCheck>>,
    reads: Mutex<HashMap<(u64, u8), ReadReply>>,
    next_id: AtomicU64,
}

/// Why a command could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The unit has no GB/T 26875.3 device.
    #[error("unit `{0}` has no gb26875_address")]
    NoDevice(String),
    /// The device is not connected.
    #[error("the device of unit `{0}` is not connected")]
    NotConnected(String),
}

/// Why a read could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a read type.
    #[error("type {0} is not a read (61–68, 81–88)")]
    NotARead(u8),
    /// A facility read without its object.
    #[error("a read of type {0} needs `object` (the bytes of the read's object)")]
    MissingObject(u8),
    /// The device cannot be reached.
    #[error(transparent)]
    Device(CommandError),
}

/// What the API uses to reach devices.
#[derive(Clone)]
pub struct Gb26875Handle {
    devices: Arc<Devices>,
    pipeline: Arc<Pipeline>,
}

impl Gb26875Handle {
    fn address(&self, unit: &str) -> Result<u64, CommandError> {
        self.pipeline
            .registry()
            .unit(unit)
            .and_then(|u| u.gb26875_address)
            .ok_or_else(|| CommandError::NoDevice(unit.to_string()))
    }

    fn send(&self, unit: &str, d: Downstream) -> Result<u64, CommandError> {
        let address = self.address(unit)?;
        let map = self.devices.by_address.lock();
        let slot = map
            .get(&address)
            .ok_or_else(|| CommandError::NotConnected(unit.to_string()))?;
        slot.commands
            .try_send(d)
            .map_err(|_| CommandError::NotConnected(unit.to_string()))?;
        Ok(address)
    }

    /// Sends a patrol check (type 91) to the unit's device; the device has `minutes` to answer.
    pub fn patrol_check(&self, unit: &str, minutes: u8) -> Result<(), CommandError> {
        let address = self.address(unit)?;
        // a new check replaces the last one's record
        let now = Utc::now();
        self.devices.patrols.lock().insert(
            address,
            PatrolCheck {
                requested_at: Some(now),
                timeout_min: minutes,
                ..PatrolCheck::default()
            },
        );
        self.send(
            unit,
            Downstream {
                command: command::CONTROL,
                adu: Adu {
                    kind: 91,
                    objects: Objects::PatrolCheck(minutes),
                },
            },
        )?;
        // on record for the assessment (checks sent, answered in time)
        self.pipeline.record_patrol(unit, now, minutes, None);
        Ok(())
    }

    /// The unit's last patrol check.
    pub fn last_patrol(&self, unit: &str) -> Result<Option<PatrolCheck>, CommandError> {
        let address = self.address(unit)?;
        Ok(self.devices.patrols.lock().get(&address).cloned())
    }

    /// Reads from the unit's device: UITD types 81–88 (one reserved byte), or facility types
    /// 61–68 with `object` as the read's object bytes (system type, address, …).
    pub fn read(&self, unit: &str, kind: u8, object: Vec<u8>) -> Result<(), ReadError> {
        let objects = match kind {
            81..=88 => Objects::Request(vec![0]),
            61..=68 if !object.is_empty() => Objects::Raw {
                count: 1,
                bytes: object,
            },
            61..=68 => return Err(ReadError::MissingObject(kind)),
            _ => return Err(ReadError::NotARead(kind)),
        };
        let address = self.address(unit).map_err(ReadError::Device)?;
        self.devices.reads.lock().insert(
            (address, kind),
            ReadReply {
                kind,
                requested_at: Utc::now(),
                replied_at: None,
                reply_kind: None,
                objects: None,
                adu_hex: None,
            },
        );
        self.send(
            unit,
            Downstream {
                command: command::REQUEST,
                adu: Adu { kind, objects },
            },
        )
        .map(|_| ())
        .map_err(ReadError::Device)
    }

    /// The last read of `kind` from the unit's device, with its reply.
    pub fn last_read(&self, unit: &str, kind: u8) -> Result<Option<ReadReply>, CommandError> {
        let address = self.address(unit)?;
        Ok(self.devices.reads.lock().get(&(address, kind)).cloned())
    }

    /// Sets the device's clock to the gateway's (type 90).
    pub fn sync_clock(&self, unit: &str, offset: FixedOffset) -> Result<(), CommandError> {
        self.send(unit, clock_sync(offset)).map(|_| ())
    }

    /// Connected devices.
    pub fn connected(&self) -> Vec<DeviceView> {
        let map = self.devices.by_address.lock();
        let mut v: Vec<DeviceView> = map
            .iter()
            .map(|(a, s)| DeviceView {
                address: *a,
                unit: self
                    .pipeline
                    .registry()
                    .unit_by_address(*a)
                    .map(|u| u.id.clone()),
                peer: s.peer.to_string(),
                since: s.since,
            })
            .collect();
        v.sort_by_key(|d| d.address);
        v
    }
}

fn clock_sync(offset: FixedOffset) -> Downstream {
    Downstream {
        command: command::CONTROL,
        adu: Adu {
            kind: 90,
            objects: Objects::SyncClock(TimeLabel::from_datetime(
                Utc::now().with_timezone(&offset),
            )),
        },
    }
}

/// A command waiting for the device's confirm.
struct Pending {
    bytes: Vec<u8>,
    tries: u32,
    next: tokio::time::Instant,
    patrol: bool,
    /// The type read, for a request.
    read: Option<u8>,
}

/// Open connections per peer IP address.
type PerPeer = Arc<Mutex<HashMap<std::net::IpAddr, usize>>>;

/// One connection's place in its peer's count, given back when dropped.
struct PeerSlot {
    counts: PerPeer,
    ip: std::net::IpAddr,
}

impl PeerSlot {
    /// A place for a connection from `ip`, unless it already has `max`.
    fn take(counts: &PerPeer, ip: std::net::IpAddr, max: usize) -> Option<PeerSlot> {
        let mut c = counts.lock();
        let n = c.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock();
        if let Some(n) = c.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.ip);
            }
        }
    }
}

/// How long to wait for a confirm before sending again, and how many sends in all.
const RETRANSMIT_AFTER: Duration = Duration::from_secs(10);
const TRIES: u32 = 3;

/// Starts the server; returns the bound address. Runs until `stop` turns true.
pub async fn spawn(
    config: Gb26875Config,
    pipeline: Arc<Pipeline>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, Gb26875Handle, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let metrics = ServerMetrics::new(&pipeline.metrics().registry);
    let devices = Arc::new(Devices::default());
    let handle = Gb26875Handle {
        devices: devices.clone(),
        pipeline: pipeline.clone(),
    };
    let config = Arc::new(config);
    let per_peer: PerPeer = Arc::new(Mutex::new(HashMap::new()));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => return,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "GB/T 26875.3 accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            if metrics.connections.get() as usize >= config.max_connections {
                pipeline.metrics().rejected(SOURCE, "too_many_connections");
                drop(stream);
                continue;
            }
            let Some(peer_slot) =
                PeerSlot::take(&per_peer, peer.ip(), config.max_connections_per_peer)
            else {
                pipeline.metrics().rejected(SOURCE, "too_many_from_peer");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            metrics.connections.inc();
            let (p, m, d, c, s) = (
                pipeline.clone(),
                metrics.clone(),
                devices.clone(),
                config.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                Connection::new(stream, peer, p, m.clone(), d, c)
                    .run(s)
                    .await;
                m.connections.dec();
                drop(peer_slot);
            });
        }
    });
    Ok((addr, handle, task))
}

async fn send(stream: &mut TcpStream, frame: &Frame, metrics: &ServerMetrics) -> bool {
    let name = match frame.header.command {
        command::CONFIRM => "confirm",
        command::DENY => "deny",
        _ => "other",
    };
    metrics.frames.with_label_values(&[name]).inc();
    stream.write_all(&frame.encode()).await.is_ok()
}

/// The answer (confirm or deny) to the frame with header `h`, time-labelled in `offset`.
fn answer(header: &Header, cmd: u8, offset: FixedOffset) -> Frame {
    Frame {
        header: header.answer(
            cmd,
            TimeLabel::from_datetime(Utc::now().with_timezone(&offset)),
        ),
        adu: None,
    }
}
