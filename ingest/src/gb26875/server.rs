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
//! * While the outbox is full a frame is not confirmed: the device retransmits it (≤ 10 s, as
//!   the standard says), so nothing is lost and the device is slowed down.

use super::frame::{command, Frame, Header};
use super::signals::signals;
use super::stream::{Decoded, StreamDecoder};
use super::time::TimeLabel;
use alerts::signal::Protocol;
use alerts::{Pipeline, SubmitError};
use chrono::{FixedOffset, Utc};
use prometheus::{IntCounterVec, IntGauge, Opts};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

/// The `source` label of this source's metrics.
pub const SOURCE: &str = "gb26875";

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct Gb26875Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// A connection with no bytes for this long is closed (devices heartbeat every 20–30 s).
    pub idle_timeout: Duration,
    /// Connections at most; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// The time zone of the devices' time labels.
    pub offset: FixedOffset,
}

#[derive(Clone)]
struct ServerMetrics {
    connections: IntGauge,
    frames: IntCounterVec,
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
        };
        let _ = registry.register(Box::new(m.connections.clone()));
        let _ = registry.register(Box::new(m.frames.clone()));
        m
    }
}

/// A device's current connection, so that a reconnect can close the old one.
struct Slot {
    id: u64,
    close: Arc<Notify>,
}

/// Devices connected now, by address.
#[derive(Default)]
struct Devices {
    by_address: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
}

/// Starts the server; returns the bound address. Runs until `stop` turns true.
pub async fn spawn(
    config: Gb26875Config,
    pipeline: Arc<Pipeline>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let metrics = ServerMetrics::new(&pipeline.metrics().registry);
    let devices = Arc::new(Devices::default());
    let config = Arc::new(config);
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
                connection(stream, peer, p, &m, d, c, s).await;
                m.connections.dec();
            });
        }
    });
    Ok((addr, task))
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

fn answer(header: &Header, cmd: u8, offset: FixedOffset) -> Frame {
    Frame {
        header: header.answer(
            cmd,
            TimeLabel::from_datetime(Utc::now().with_timezone(&offset)),
        ),
        adu: None,
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    pipeline: Arc<Pipeline>,
    metrics: &ServerMetrics,
    devices: Arc<Devices>,
    config: Arc<Gb26875Config>,
    mut stop: watch::Receiver<bool>,
) {
    let id = devices.next_id.fetch_add(1, Ordering::Relaxed);
    let close = Arc::new(Notify::new());
    let mut address: Option<u64> = None;
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 2048];
    let m = pipeline.metrics();
    'conn: loop {
        let n = tokio::select! {
            _ = stop.changed() => break,
            _ = close.notified() => {
                tracing::debug!(%peer, "GB/T 26875.3 connection replaced by a newer one");
                break;
            }
            r = tokio::time::timeout(config.idle_timeout, stream.read(&mut buf)) => match r {
                Err(_) => {
                    tracing::debug!(%peer, "GB/T 26875.3 connection idle; closed");
                    break;
                }
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
            },
        };
        decoder.push(&buf[..n]);
        while let Some(item) = decoder.decode_next() {
            let frame = match item {
                Decoded::Garbage(bytes) => {
                    m.ingested(SOURCE);
                    m.rejected(SOURCE, "garbage");
                    tracing::debug!(%peer, bytes, "GB/T 26875.3: bytes outside any frame");
                    continue;
                }
                Decoded::Rejected { error, header } => {
                    m.ingested(SOURCE);
                    m.rejected(SOURCE, error.reason());
                    tracing::debug!(%peer, reason = error.reason(), error = %error, "GB/T 26875.3 frame denied");
                    if let Some(h) = header {
                        if !send(
                            &mut stream,
                            &answer(&h, command::DENY, config.offset),
                            metrics,
                        )
                        .await
                        {
                            break 'conn;
                        }
                    }
                    continue;
                }
                Decoded::Frame(f) => f,
            };
            m.ingested(SOURCE);
            let h = frame.header;
            if matches!(h.command, command::CONFIRM | command::DENY) {
                continue; // answers to the center's commands
            }
            let Some(unit) = pipeline.registry().unit_by_address(h.source).cloned() else {
                let label = format!("gb26875:{}", h.source);
                pipeline.note_unknown_unit(&label, Protocol::Gb26875);
                m.rejected(SOURCE, "unknown_unit");
                tracing::warn!(%peer, address = h.source, "GB/T 26875.3 device not in the registry; denied and disconnected");
                let _ = send(
                    &mut stream,
                    &answer(&h, command::DENY, config.offset),
                    metrics,
                )
                .await;
                break 'conn;
            };
            if address != Some(h.source) {
                // this connection is now the device's: an older one is closed
                let previous = devices.by_address.lock().expect("devices lock").insert(
                    h.source,
                    Slot {
                        id,
                        close: close.clone(),
                    },
                );
                if let Some(old) = previous.filter(|o| o.id != id) {
                    old.close.notify_one();
                }
                address = Some(h.source);
            }
            let (signals, answers) = signals(&frame, &unit.id, config.offset);
            for a in answers {
                tracing::info!(unit = %unit.id, operator = a.operator, "patrol check answered");
            }
            match pipeline
                .submit_all(&unit.id, Protocol::Gb26875, signals)
                .await
            {
                Ok(_) => {
                    if !send(
                        &mut stream,
                        &answer(&h, command::CONFIRM, config.offset),
                        metrics,
                    )
                    .await
                    {
                        break 'conn;
                    }
                }
                Err(e @ (SubmitError::Full(_) | SubmitError::Unavailable(_))) => {
                    // no confirm: the device sends it again
                    m.rejected(SOURCE, e.reason());
                    tracing::warn!(unit = %unit.id, error = %e, "GB/T 26875.3 frame not confirmed: the outbox cannot take it now");
                }
                Err(e) => {
                    m.rejected(SOURCE, e.reason());
                    let _ = send(
                        &mut stream,
                        &answer(&h, command::DENY, config.offset),
                        metrics,
                    )
                    .await;
                }
            }
        }
    }
    if let Some(a) = address {
        let mut map = devices.by_address.lock().expect("devices lock");
        if map.get(&a).is_some_and(|s| s.id == id) {
            map.remove(&a);
        }
    }
}
