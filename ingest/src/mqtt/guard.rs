//! The guard between the broker and the MQTT client: it keeps one oversized message from
//! stopping MQTT ingestion.
//!
//! rumqttc reads a whole packet into memory, and one larger than its limit breaks the
//! connection *before* the message can be acknowledged — so a persistent session hands the
//! same message back on every reconnect, forever, and nothing after it is processed. A stock
//! broker accepts messages of up to 256 MB.
//!
//! So the gateway opens the broker connection itself (TCP, or TLS) and gives rumqttc a private
//! Unix socket instead. Packets from the broker are framed on the way through, streamed, never
//! held whole: a PUBLISH larger than the limit reaches rumqttc with its topic and packet id
//! intact but its payload replaced by a *stand-in* — a random per-process marker and the
//! original size. The source recognises the stand-in, counts the message `too_large`, and
//! acknowledges it in its turn like any other discarded message. Everything the client sends
//! goes to the broker unchanged.

use super::conn::Version;
use super::MqttConfig;
use parking_lot::Mutex;
use rumqttc::tokio_rustls::rustls;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpStream, UnixListener};

/// How long the guard waits for the broker's TCP and TLS handshakes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A stand-in payload: the marker, then the original packet's remaining length (u64, BE).
const STAND_IN_LEN: usize = 16 + 8;

/// What the source needs to recognise stand-ins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker([u8; 16]);

impl Marker {
    /// A fresh random marker (nobody outside this process can forge a stand-in).
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The original size when `payload` is a stand-in.
    pub fn oversized(&self, payload: &[u8]) -> Option<u64> {
        if payload.len() != STAND_IN_LEN || payload[..16] != self.0 {
            return None;
        }
        Some(u64::from_be_bytes(payload[16..].try_into().ok()?))
    }

    fn stand_in(&self, size: usize) -> [u8; STAND_IN_LEN] {
        let mut out = [0u8; STAND_IN_LEN];
        out[..16].copy_from_slice(&self.0);
        out[16..].copy_from_slice(&(size as u64).to_be_bytes());
        out
    }
}

/// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A running guard: rumqttc connects to [`Guard::path`].
pub struct Guard {
    path: PathBuf,
    last_error: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
    /// A temporary directory holding the socket, when the gateway's own had no room.
    _temp: Option<tempfile::TempDir>,
}

/// Where the socket goes: `<dir>/mqtt-guard/broker.sock` in the gateway's own directory (a
/// socket left by a killed gateway is replaced: one gateway runs per data directory), else —
/// no directory, or a path too long for a socket address — a fresh private directory in the
/// system's temporary directory. Either directory is the gateway's alone (0700).
fn socket_place(dir: Option<&Path>) -> std::io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(dir) = dir.map(|d| d.join("mqtt-guard")) {
        let path = dir.join("broker.sock");
        if path.as_os_str().len() <= MAX_SOCKET_PATH {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => return Ok((path, None)),
            }
        }
    }
    let temp = tempfile::Builder::new().prefix("gw-mqtt-").tempdir()?;
    Ok((temp.path().join("broker.sock"), Some(temp)))
}

impl Guard {
    /// Starts listening on a Unix socket in a private (0700) directory — in
    /// `config.socket_dir` when it has room ([`socket_place`]), else (or when that file
    /// system takes no sockets) in a temporary one; each client connection gets its own broker
    /// connection.
    pub fn start(config: &MqttConfig, limit: usize, marker: Marker) -> std::io::Result<Self> {
        let placed = socket_place(config.socket_dir.as_deref())
            .and_then(|(path, temp)| Ok((UnixListener::bind(&path)?, path, temp)));
        let (listener, path, temp) = match placed {
            Ok(p) => p,
            Err(e) if config.socket_dir.is_some() => {
                tracing::warn!(error = %e, dir = ?config.socket_dir, "MQTT client socket not placed in the data directory; using a temporary one");
                let (path, temp) = socket_place(None)?;
                (UnixListener::bind(&path)?, path, temp)
            }
            Err(e) => return Err(e),
        };
        let last_error = Arc::new(Mutex::new(None));
        let broker = Broker::new(config).map_err(std::io::Error::other)?;
        let filter = Filter {
            limit,
            marker,
            v5: config.version == Version::V5,
        };
        let task = tokio::spawn(accept(listener, broker, filter, last_error.clone()));
        Ok(Self {
            path,
            last_error,
            task,
            _temp: temp,
        })
    }

    /// The socket rumqttc connects to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Why the last broker connection failed, once (rumqttc only sees its socket closed).
    pub fn take_error(&self) -> Option<String> {
        self.last_error.lock().take()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// How to reach the broker.
struct Broker {
    host: String,
    port: u16,
    tls: Option<rumqttc::tokio_rustls::TlsConnector>,
}

impl Broker {
    fn new(config: &MqttConfig) -> Result<Self, String> {
        let tls = match &config.tls {
            None => None,
            Some(ca) => Some(rumqttc::tokio_rustls::TlsConnector::from(tls_config(
                ca.as_deref(),
            )?)),
        };
        Ok(Self {
            host: config.host.clone(),
            port: config.port,
            tls,
        })
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("broker host `{}`: {e}", self.host))?;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
            .await
            .map_err(|_| format!("TLS handshake with {addr} timed out"))?
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        Ok(Box::new(stream))
    }
}

/// Trusts the configured CA bundle (PEM), or the platform's roots.
fn tls_config(ca: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let Some(ca) = ca else {
        return match rumqttc::TlsConfiguration::default() {
            rumqttc::TlsConfiguration::Rustls(config) => Ok(config),
            _ => Err("no platform TLS configuration".into()),
        };
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca) {
        let cert = cert.map_err(|e| format!("CA bundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("CA bundle certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("CA bundle holds no certificate".into());
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A broker connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

async fn accept(
    listener: UnixListener,
    broker: Broker,
    filter: Filter,
    last_error: Arc<Mutex<Option<String>>>,
) {
    let broker = Arc::new(broker);
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                tracing::warn!(error = %e, "MQTT guard: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (broker, last_error) = (broker.clone(), last_error.clone());
        tokio::spawn(async move {
            let upstream = match broker.connect().await {
                Ok(s) => s,
                Err(e) => {
                    *last_error.lock() = Some(e);
                    return; // dropping the client's socket tells rumqttc
                }
            };
            let (from_broker, to_broker) = tokio::io::split(upstream);
            let (from_client, to_client) = client.into_split();
            let mut up = BufWriter::new(to_broker);
            let client_to_broker = async {
                let mut from_client = BufReader::new(from_client);
                pump_up(&mut from_client, &mut up).await
            };
            let broker_to_client = filter.run(BufReader::new(from_broker), to_client);
            tokio::select! {
                r = client_to_broker => if let Err(e) = r { tracing::debug!(error = %e, "MQTT guard: client side ended") },
                r = broker_to_client => if let Err(e) = r {
                    tracing::debug!(error = %e, "MQTT guard: broker side ended");
                    *last_error.lock() = Some(e.to_string());
                },
            }
        });
    }
}

/// Client → broker, unchanged, flushed whenever nothing more is waiting.
async fn pump_up<R, W>(from: &mut BufReader<R>, to: &mut W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let chunk = from.fill_buf().await?;
        if chunk.is_empty() {
            return to.flush().await;
        }
        let n = chunk.len();
        to.write_all(chunk).await?;
        from.consume(n);
        if from.buffer().is_empty() {
            to.flush().await?;
        }
    }
}

/// Broker → client: packets framed and passed on, oversized PUBLISHes replaced by stand-ins.
#[derive(Clone, Copy)]
struct Filter {
    /// The largest remaining length passed on as it is.
    limit: usize,
    marker: Marker,
    v5: bool,
}

/// A packet's fixed header.
struct Fixed {
    first: u8,
    remaining: usize,
}

impl Filter {
    async fn run<R, W>(self, mut from: BufReader<R>, to: W) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut to = BufWriter::new(to);
        while let Some(fixed) = read_fixed(&mut from).await? {
            if fixed.first >> 4 == 3 && fixed.remaining > self.limit {
                self.replace(&fixed, &mut from, &mut to).await?;
            } else {
                write_fixed(&mut to, fixed.first, fixed.remaining).await?;
                copy_exact(&mut from, &mut to, fixed.remaining).await?;
            }
            if from.buffer().is_empty() {
                to.flush().await?;
            }
        }
        to.flush().await
    }

    /// Reads an oversized PUBLISH's topic and packet id, skips the rest, writes the stand-in.
    async fn replace<R, W>(&self, fixed: &Fixed, from: &mut R, to: &mut W) -> std::io::Result<()>
    where
        R: AsyncBufRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let qos = (fixed.first >> 1) & 0b11;
        let topic_len = from.read_u16().await? as usize;
        let mut head = Vec::with_capacity(2 + topic_len + 2);
        head.extend_from_slice(&(topic_len as u16).to_be_bytes());
        let mut topic = vec![0u8; topic_len];
        from.read_exact(&mut topic).await?;
        head.extend_from_slice(&topic);
        if qos > 0 {
            head.extend_from_slice(&from.read_u16().await?.to_be_bytes());
        }
        if head.len() > fixed.remaining {
            return Err(malformed("PUBLISH shorter than its topic"));
        }
        copy_exact(from, &mut tokio::io::sink(), fixed.remaining - head.len()).await?;
        if self.v5 {
            head.push(0); // no properties
        }
        head.extend_from_slice(&self.marker.stand_in(fixed.remaining));
        write_fixed(to, fixed.first, head.len()).await?;
        to.write_all(&head).await
    }
}

/// The first byte and the remaining length; `None` at a clean end between packets.
async fn read_fixed<R: AsyncBufRead + Unpin>(from: &mut R) -> std::io::Result<Option<Fixed>> {
    let first = match from.read_u8().await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut remaining = 0usize;
    for i in 0..4 {
        let b = from.read_u8().await?;
        remaining |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(Fixed { first, remaining }));
        }
    }
    Err(malformed("remaining length longer than 4 bytes"))
}

async fn write_fixed<W: AsyncWrite + Unpin>(
    to: &mut W,
    first: u8,
    mut remaining: usize,
) -> std::io::Result<()> {
    let mut out = vec![first];
    loop {
        let mut b = (remaining % 128) as u8;
        remaining /= 128;
        if remaining > 0 {
            b |= 0x80;
        }
        out.push(b);
        if remaining == 0 {
            break;
        }
    }
    to.write_all(&out).await
}

/// Copies exactly `n` bytes, streaming.
async fn copy_exact<R, W>(from: &mut R, to: &mut W, n: usize) -> std::io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy_buf(&mut from.take(n as u64), to).await?;
    if copied < n as u64 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("malformed packet from the broker: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(qos: u8, topic: &str, pid: u16, v5: bool, payload: &[u8]) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            body.extend_from_slice(&pid.to_be_bytes());
        }
        if v5 {
            body.extend_from_slice(&[3, 0x01, 0x01, 0x00]); // payload format indicator
        }
        body.extend_from_slice(payload);
        let mut out = Vec::new();
        futures::executor::block_on(write_fixed(&mut out, 0x30 | (qos << 1), body.len())).unwrap();
        out.extend_from_slice(&body);
        out
    }

    async fn filter(input: Vec<u8>, limit: usize, v5: bool, marker: Marker) -> Vec<u8> {
        let f = Filter { limit, marker, v5 };
        let mut out = Vec::new();
        f.run(BufReader::new(&input[..]), &mut out).await.unwrap();
        out
    }

    async fn next(rd: &mut BufReader<&[u8]>) -> (u8, Vec<u8>) {
        let f = read_fixed(rd).await.unwrap().unwrap();
        let mut body = vec![0u8; f.remaining];
        rd.read_exact(&mut body).await.unwrap();
        (f.first, body)
    }

    #[tokio::test]
    async fn an_oversized_publish_becomes_a_stand_in_and_the_rest_passes_unchanged() {
        for v5 in [false, true] {
            let marker = Marker::random();
            let small = publish(1, "fire/u1/status", 7, v5, b"{\"alarm\":true}");
            let big_payload = vec![0xAB; 3_000_000];
            let big = publish(1, "fire/u2/status", 8, v5, &big_payload);
            let ping = vec![0xD0, 0x00];
            let input = [small.clone(), big.clone(), ping.clone(), small.clone()].concat();
            let out = filter(input, 65_536, v5, marker).await;

            let mut rd = BufReader::new(&out[..]);
            assert_eq!(
                next(&mut rd).await.1,
                small[2..],
                "a small message passes unchanged"
            );
            let (first, body) = next(&mut rd).await;
            assert_eq!(first, 0x32, "QoS 1 PUBLISH");
            let topic_end = 2 + "fire/u2/status".len();
            assert_eq!(&body[2..topic_end], b"fire/u2/status");
            assert_eq!(
                &body[topic_end..topic_end + 2],
                &8u16.to_be_bytes(),
                "same packet id"
            );
            let payload = &body[topic_end + 2 + usize::from(v5)..];
            assert_eq!(marker.oversized(payload), Some((big.len() - 5) as u64));
            assert_eq!(Marker::random().oversized(payload), None, "another marker");
            assert_eq!(next(&mut rd).await, (0xD0, vec![]), "ping response");
            assert_eq!(next(&mut rd).await.1, small[2..]);
        }
    }

    #[tokio::test]
    async fn qos0_and_a_truncated_stream_are_handled() {
        let marker = Marker::random();
        let big = publish(0, "t", 0, false, &[1u8; 1000]);
        let out = filter(big.clone(), 100, false, marker).await;
        assert_eq!(out[0], 0x30);
        assert_eq!(
            marker.oversized(&out[2 + 3..]),
            Some((big.len() - 3) as u64)
        );

        let f = Filter {
            limit: 100,
            marker,
            v5: false,
        };
        let cut = &big[..500];
        let r = f.run(BufReader::new(cut), &mut Vec::new()).await;
        assert!(r.is_err(), "a stream cut inside a packet is an error");
        let r = f
            .run(
                BufReader::new(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01][..]),
                Vec::new(),
            )
            .await;
        assert!(r.unwrap_err().to_string().contains("4 bytes"));
    }

    #[test]
    fn the_socket_goes_in_the_gateways_directory_replacing_a_killed_gateways() {
        let data = tempfile::tempdir().unwrap();
        let (path, temp) = socket_place(Some(data.path())).unwrap();
        assert!(temp.is_none());
        assert_eq!(path, data.path().join("mqtt-guard/broker.sock"));
        let mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o700);
        // a socket left behind by kill -9 does not keep the next gateway from listening
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        assert!(path.exists());
        let (again, _) = socket_place(Some(data.path())).unwrap();
        std::os::unix::net::UnixListener::bind(&again).unwrap();
    }

    #[test]
    fn a_directory_too_deep_for_a_socket_address_falls_back_to_a_private_temporary_one() {
        let data = tempfile::tempdir().unwrap();
        let deep = data.path().join("d".repeat(100));
        let (path, temp) = socket_place(Some(&deep)).unwrap();
        let temp = temp.expect("a temporary directory");
        assert!(path.starts_with(temp.path()));
        assert!(!deep.exists(), "nothing made where the socket could not go");
        let (path, temp) = socket_place(None).unwrap();
        assert!(path.starts_with(temp.unwrap().path()));
    }
}
