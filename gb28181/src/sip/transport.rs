//! The SIP transport: a UDP socket and a TCP listener. Every datagram and every framed TCP
//! message goes to one channel as an [`Incoming`]; what the server sends goes back on the
//! transport and (for TCP) the connection it came in on.
//!
//! Bounds: a datagram or message is at most [`super::MAX_MESSAGE`] bytes; TCP connections are
//! limited in number and must send a whole SIP message within `login_timeout`, then one at
//! least every `idle_timeout` (bytes that frame no message keep nothing open); writes wait at
//! most a few seconds; while the server is busy, datagrams are dropped and counted, TCP reads
//! wait.

use super::frame::Framer;
use super::{Peer, Transport, MAX_MESSAGE};
use parking_lot::Mutex;
use prometheus::IntCounterVec;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

/// The `source` label of this transport's rejections.
pub const SOURCE: &str = "gb28181";

/// The UDP receive buffer asked for: bursts (every device registering again after an outage,
/// catalogs of many NVRs at once) fit in it while the message task catches up.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// Asks for a receive buffer of `bytes` (the kernel caps it at `net.core.rmem_max`); returns
/// what the socket got (Linux reports twice the usable size; halved here).
pub(crate) fn receive_buffer(socket: &UdpSocket, bytes: usize) -> usize {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let size = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let mut got: libc::c_int = 0;
    let mut len = size;
    // SAFETY: fd is an open socket this function borrows; the option values are c_ints of
    // the sizes given
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&want as *const libc::c_int).cast(),
            size,
        );
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&mut got as *mut libc::c_int).cast(),
            &mut len,
        );
    }
    usize::try_from(got).unwrap_or(0) / 2
}

/// How long one write to a TCP peer may take before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages queued for one TCP peer at most (beyond, the connection is too slow: dropped).
const WRITE_QUEUE: usize = 256;

/// A message as it arrived.
#[derive(Debug)]
pub struct Incoming {
    /// From where.
    pub peer: Peer,
    /// The bytes (one datagram or one framed message).
    pub bytes: Vec<u8>,
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP address (`None`: no UDP).
    pub udp: Option<SocketAddr>,
    /// TCP address (`None`: no TCP).
    pub tcp: Option<SocketAddr>,
    /// Open TCP connections at most.
    pub max_connections: usize,
    /// A new TCP connection must send a whole SIP message within this long.
    pub login_timeout: Duration,
    /// A TCP connection with no whole message for this long is closed.
    pub idle_timeout: Duration,
}

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// TCP: the peer has no open connection to us (GB/T 28181 devices connect; we answer and
    /// ask on their connection).
    #[error("no TCP connection from {0}")]
    NotConnected(SocketAddr),
    /// The transport is not listening.
    #[error("{0:?} is not enabled")]
    Disabled(Transport),
    /// The socket refused it.
    #[error("send failed: {0}")]
    Io(String),
}

/// The bound sockets.
pub struct SipTransport {
    udp: Option<Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    connections: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
}

impl SipTransport {
    /// The UDP address bound.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// The TCP address bound.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_local
    }

    /// Open TCP connections.
    pub fn connections(&self) -> usize {
        self.connections.lock().len()
    }

    /// Whether a TCP peer is connected.
    pub fn connected(&self, addr: SocketAddr) -> bool {
        self.connections.lock().contains_key(&addr)
    }

    /// Sends bytes to a peer, on its transport.
    pub async fn send(&self, peer: Peer, bytes: Vec<u8>) -> Result<(), SendError> {
        match peer.transport {
            Transport::Udp => {
                let udp = self
                    .udp
                    .as_ref()
                    .ok_or(SendError::Disabled(Transport::Udp))?;
                udp.send_to(&bytes, peer.addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| SendError::Io(e.kind().to_string()))
            }
            Transport::Tcp => {
                let tx = self.connections.lock().get(&peer.addr).cloned();
                let tx = tx.ok_or(SendError::NotConnected(peer.addr))?;
                tx.try_send(bytes)
                    .map_err(|_| SendError::Io("connection backlogged or closed".into()))
            }
        }
    }
}

/// Binds the sockets and starts reading them into `incoming` until `stop` turns true.
pub async fn bind(
    config: TransportConfig,
    incoming: mpsc::Sender<Incoming>,
    rejected: IntCounterVec,
    stop: watch::Receiver<bool>,
) -> std::io::Result<Arc<SipTransport>> {
    let udp = match config.udp {
        Some(a) => {
            let socket = UdpSocket::bind(a).await?;
            let got = receive_buffer(&socket, UDP_RECEIVE_BUFFER);
            if got < UDP_RECEIVE_BUFFER {
                tracing::info!(
                    bytes = got,
                    wanted = UDP_RECEIVE_BUFFER,
                    "GB/T 28181 UDP receive buffer limited by net.core.rmem_max: a burst of registrations may be dropped (devices send again); raise it for thousands of devices"
                );
            }
            Some(Arc::new(socket))
        }
        None => None,
    };
    let tcp = match config.tcp {
        Some(a) => Some(TcpListener::bind(a).await?),
        None => None,
    };
    let transport = Arc::new(SipTransport {
        udp: udp.clone(),
        tcp_local: tcp.as_ref().and_then(|l| l.local_addr().ok()),
        connections: Mutex::new(HashMap::new()),
    });
    if let Some(udp) = udp {
        tokio::spawn(read_udp(
            udp,
            incoming.clone(),
            rejected.clone(),
            stop.clone(),
        ));
    }
    if let Some(tcp) = tcp {
        let t = transport.clone();
        tokio::spawn(accept_tcp(tcp, t, config, incoming, rejected, stop));
    }
    Ok(transport)
}

async fn read_udp(
    socket: Arc<UdpSocket>,
    incoming: mpsc::Sender<Incoming>,
    rejected: IntCounterVec,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let (n, addr) = tokio::select! {
            _ = stop.changed() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                // ICMP port unreachable from an earlier send, and the like
                Err(_) => continue,
            },
        };
        let bytes = &buf[..n];
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            continue; // NAT keepalive
        }
        if n > MAX_MESSAGE {
            rejected.with_label_values(&[SOURCE, "too_large"]).inc();
            continue;
        }
        let peer = Peer {
            transport: Transport::Udp,
            addr,
        };
        let msg = Incoming {
            peer,
            bytes: bytes.to_vec(),
        };
        if incoming.try_send(msg).is_err() {
            rejected.with_label_values(&[SOURCE, "busy"]).inc();
        }
    }
}

async fn accept_tcp(
    listener: TcpListener,
    transport: Arc<SipTransport>,
    config: TransportConfig,
    incoming: mpsc::Sender<Incoming>,
    rejected: IntCounterVec,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, addr) = tokio::select! {
            _ = stop.changed() => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "GB/T 28181 TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if transport.connections() >= config.max_connections {
            rejected
                .with_label_values(&[SOURCE, "too_many_connections"])
                .inc();
            continue;
        }
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        transport.connections.lock().insert(addr, tx);
        let t = transport.clone();
        let (incoming, rejected, config, stop) = (
            incoming.clone(),
            rejected.clone(),
            config.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            connection(stream, addr, rx, &config, incoming, &rejected, stop).await;
            t.connections.lock().remove(&addr);
        });
    }
}

/// One TCP connection: reads framed messages, writes what is queued for it.
async fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    config: &TransportConfig,
    incoming: mpsc::Sender<Incoming>,
    rejected: &IntCounterVec,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut framer = Framer::new(MAX_MESSAGE);
    let mut buf = vec![0u8; 16 * 1024];
    let mut deadline = tokio::time::Instant::now() + config.login_timeout;
    let peer = Peer {
        transport: Transport::Tcp,
        addr,
    };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(deadline) => {
                rejected.with_label_values(&[SOURCE, "idle_timeout"]).inc();
                return;
            }
            out = outgoing.recv() => {
                let Some(bytes) = out else { return };
                match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                loop {
                    match framer.next_message() {
                        Ok(Some(bytes)) => {
                            deadline = tokio::time::Instant::now() + config.idle_timeout;
                            if incoming.send(Incoming { peer, bytes }).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let reason = match e {
                                super::frame::FrameError::TooLarge(_) => "too_large",
                                super::frame::FrameError::NoLength => "unreadable",
                            };
                            rejected.with_label_values(&[SOURCE, reason]).inc();
                            return;
                        }
                    }
                }
            }
        }
    }
}
