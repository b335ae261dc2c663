//! Where a pulled stream arrives, in the three ways GB/T 28181 devices send it
//! ([`MediaTransport`]): the socket opened before the INVITE, the lines of the SDP offer that
//! name it, and the reading of the first keyframe once the device has answered — from the
//! device only ([`Senders`]): a stranger's connection or datagrams never become the picture.

use super::picture::PictureError;
use crate::media::rtp::{first_keyframe, first_keyframe_udp, MediaError};
use crate::media::{Codec, MediaTransport};
use std::net::{IpAddr, SocketAddr};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// The receive buffer asked for a UDP stream (a keyframe arrives as a burst of datagrams).
const UDP_BUFFER: usize = 2 << 20;

/// The gateway's end of one stream, opened before the INVITE.
pub(super) enum Receiver {
    /// Listening for the device's connection.
    Passive(TcpListener),
    /// Connecting to the device once it answers.
    Active,
    /// Bound for the device's datagrams.
    Udp(UdpSocket),
}

impl Receiver {
    /// Opens the gateway's end on `ip` (the address the device reaches us at).
    pub(super) async fn open(media: MediaTransport, ip: IpAddr) -> std::io::Result<Self> {
        Ok(match media {
            MediaTransport::TcpPassive => Receiver::Passive(TcpListener::bind((ip, 0)).await?),
            MediaTransport::TcpActive => Receiver::Active,
            MediaTransport::Udp => {
                let socket = UdpSocket::bind((ip, 0)).await?;
                crate::sip::transport::receive_buffer(&socket, UDP_BUFFER);
                Receiver::Udp(socket)
            }
        })
    }

    /// The port the offer names: ours, or 9 ("discard") when we connect.
    fn port(&self) -> std::io::Result<u16> {
        Ok(match self {
            Receiver::Passive(l) => l.local_addr()?.port(),
            Receiver::Active => 9,
            Receiver::Udp(s) => s.local_addr()?.port(),
        })
    }

    /// The offer's media lines: `m=` with [`Receiver::port`] and, over TCP, who connects.
    pub(super) fn media_lines(&self) -> std::io::Result<String> {
        let (profile, setup) = match self {
            Receiver::Passive(_) => ("TCP/RTP/AVP", "a=setup:passive\r\na=connection:new\r\n"),
            Receiver::Active => ("TCP/RTP/AVP", "a=setup:active\r\na=connection:new\r\n"),
            Receiver::Udp(_) => ("RTP/AVP", ""),
        };
        Ok(format!(
            "m=video {} {profile} 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n{setup}",
            self.port()?
        ))
    }

    /// The first keyframe of the stream the device answered with (`answer`: its SDP; `device`:
    /// its SIP address, where it listens when its SDP names no address). Connections and
    /// datagrams from others are dropped, each told to `stranger`.
    pub(super) async fn first_keyframe(
        self,
        answer: &[u8],
        device: IpAddr,
        ssrc: Option<u32>,
        stranger: &mut (dyn FnMut(SocketAddr) + Send),
    ) -> Result<(Codec, Vec<u8>), PictureError> {
        let senders = Senders::of(answer, device);
        let got = match self {
            Receiver::Passive(listener) => loop {
                let (mut stream, from) = listener.accept().await?;
                if senders.allow(from) {
                    break first_keyframe(&mut stream, ssrc).await;
                }
                stranger(from);
            },
            Receiver::Active => {
                let to = answered_address(answer, device).ok_or(PictureError::NoMediaAddress)?;
                let mut stream = TcpStream::connect(to).await?;
                first_keyframe(&mut stream, ssrc).await
            }
            Receiver::Udp(socket) => {
                let allow = |from| {
                    let ok = senders.allow(from);
                    if !ok {
                        stranger(from);
                    }
                    ok
                };
                first_keyframe_udp(&socket, ssrc, allow).await
            }
        };
        got.map_err(|e: MediaError| e.into())
    }
}

/// Who may send a stream: the device's SIP address, and the address its answer names (a lower
/// platform's media server, a device with a media interface of its own).
#[derive(Debug, PartialEq)]
struct Senders(Vec<IpAddr>);

impl Senders {
    fn of(answer: &[u8], device: IpAddr) -> Self {
        let mut ips = vec![device.to_canonical()];
        ips.extend(answered_address(answer, device).map(|a| a.ip().to_canonical()));
        ips.dedup();
        Senders(ips)
    }

    fn allow(&self, from: SocketAddr) -> bool {
        self.0.contains(&from.ip().to_canonical())
    }
}

/// The address an SDP answer's `c=` and `m=video` lines name (`device` when `c=` is missing or
/// unspecified); `None` without a port.
fn answered_address(sdp: &[u8], device: IpAddr) -> Option<SocketAddr> {
    let sdp = String::from_utf8_lossy(sdp);
    let line = |prefix: &str| {
        sdp.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
    };
    let port: u16 = line("m=video ")?.split_whitespace().next()?.parse().ok()?;
    let ip = line("c=IN IP4 ")
        .and_then(|c| c.trim().parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(device);
    (port != 0).then_some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ps::mux;
    use crate::media::rtp::{packetize, packets};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A keyframe whose content says who sent it.
    fn keyframe_of(mark: u8) -> Vec<u8> {
        let idr = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0x1E, 0, 0, 0, 1, 0x68, 0xCE, 0, 0, 0, 1, 0x65,
        ];
        idr.into_iter().chain([mark; 3000]).collect()
    }

    fn pack(mark: u8) -> Vec<u8> {
        mux(Codec::H264, &keyframe_of(mark), 0, true)
    }

    /// What a receiver of `media` takes as the device's (127.0.0.1) first keyframe while a
    /// stranger (127.0.0.2) sends first — `send(from, to, pack)` sending each — and the
    /// strangers it was told of.
    async fn taken<F, S>(media: MediaTransport, send: S) -> (Vec<u8>, Vec<SocketAddr>)
    where
        S: Fn(IpAddr, SocketAddr, Vec<u8>) -> F + Send + 'static,
        F: std::future::Future<Output = ()> + Send,
    {
        let device: IpAddr = "127.0.0.1".parse().unwrap();
        let receiver = Receiver::open(media, device).await.unwrap();
        let to = SocketAddr::new(device, receiver.port().unwrap());
        let sending = tokio::spawn(async move {
            for (from, mark) in [("127.0.0.2", 0xAA), ("127.0.0.1", 0x55)] {
                send(from.parse().unwrap(), to, pack(mark)).await;
            }
        });
        let mut strangers = Vec::new();
        let mut told = |from| strangers.push(from);
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            receiver.first_keyframe(b"", device, Some(7), &mut told),
        )
        .await
        .expect("within 5 s")
        .unwrap();
        sending.await.unwrap();
        (got.1, strangers)
    }

    #[test]
    fn the_senders_are_the_device_and_the_address_its_answer_names() {
        let device: IpAddr = "10.0.0.9".parse().unwrap();
        let s = Senders::of(b"c=IN IP4 10.0.0.20\r\nm=video 6000 RTP/AVP 96\r\n", device);
        assert_eq!(s, Senders(vec![device, "10.0.0.20".parse().unwrap()]));
        assert!(s.allow("[::ffff:10.0.0.9]:5000".parse().unwrap()));
        assert!(!s.allow("10.0.0.21:6000".parse().unwrap()));
        assert_eq!(Senders::of(b"garbage", device), Senders(vec![device]));
    }

    #[tokio::test]
    async fn a_strangers_datagrams_never_become_the_picture() {
        let (got, strangers) = taken(MediaTransport::Udp, |from, to, pack| async move {
            let tx = UdpSocket::bind((from, 0)).await.unwrap();
            for d in packets(&pack, &mut 0, 0, 7, 1400) {
                tx.send_to(&d, to).await.unwrap();
            }
        })
        .await;
        assert_eq!(got, keyframe_of(0x55));
        assert!(!strangers.is_empty());
        assert!(strangers.iter().all(|s| s.ip().to_string() == "127.0.0.2"));
    }

    #[tokio::test]
    async fn a_strangers_connection_is_dropped_and_the_device_still_heard() {
        let (got, strangers) = taken(MediaTransport::TcpPassive, |from, to, pack| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((from, 0).into()).unwrap();
            let mut stream = socket.connect(to).await.unwrap();
            let _ = stream
                .write_all(&packetize(&pack, &mut 0, 0, 7, 1400))
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
        .await;
        assert_eq!(got, keyframe_of(0x55));
        assert_eq!(strangers.len(), 1);
        assert_eq!(strangers[0].ip().to_string(), "127.0.0.2");
    }

    #[test]
    fn the_answered_address_comes_from_c_and_m_or_the_device() {
        let device: IpAddr = "10.0.0.9".parse().unwrap();
        let sdp = b"v=0\r\nc=IN IP4 192.168.1.64\r\nm=video 15060 TCP/RTP/AVP 96\r\n";
        assert_eq!(
            answered_address(sdp, device),
            Some("192.168.1.64:15060".parse().unwrap())
        );
        let no_c = b"v=0\r\nm=video 15060 TCP/RTP/AVP 96\r\n";
        assert_eq!(
            answered_address(no_c, device),
            Some("10.0.0.9:15060".parse().unwrap())
        );
        let zero = b"v=0\r\nc=IN IP4 0.0.0.0\r\nm=video 0 TCP/RTP/AVP 96\r\n";
        assert_eq!(answered_address(zero, device), None);
        assert_eq!(answered_address(b"garbage", device), None);
    }
}
