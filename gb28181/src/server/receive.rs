//! Where a pulled stream arrives, in the three ways GB/T 28181 devices send it
//! ([`MediaTransport`]): the socket opened before the INVITE, the lines of the SDP offer that
//! name it, and the reading of the first keyframe once the device has answered.

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

    /// The offer's media lines: `m=` with our port (9, "discard", when we connect) and, over
    /// TCP, who connects.
    pub(super) fn media_lines(&self) -> std::io::Result<String> {
        Ok(match self {
            Receiver::Passive(l) => format!(
                "m=video {} TCP/RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
                 a=setup:passive\r\na=connection:new\r\n",
                l.local_addr()?.port()
            ),
            Receiver::Active => {
                "m=video 9 TCP/RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n\
                 a=setup:active\r\na=connection:new\r\n"
                    .to_string()
            }
            Receiver::Udp(s) => format!(
                "m=video {} RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n",
                s.local_addr()?.port()
            ),
        })
    }

    /// The first keyframe of the stream the device answered with (`answer`: its SDP; `device`:
    /// its SIP address, where it listens when its SDP names no address).
    pub(super) async fn first_keyframe(
        self,
        answer: &[u8],
        device: IpAddr,
        ssrc: Option<u32>,
    ) -> Result<(Codec, Vec<u8>), PictureError> {
        let got = match self {
            Receiver::Passive(listener) => {
                let (mut stream, _) = listener.accept().await?;
                first_keyframe(&mut stream, ssrc).await
            }
            Receiver::Active => {
                let to = answered_address(answer, device).ok_or(PictureError::NoMediaAddress)?;
                let mut stream = TcpStream::connect(to).await?;
                first_keyframe(&mut stream, ssrc).await
            }
            Receiver::Udp(socket) => first_keyframe_udp(&socket, ssrc).await,
        };
        got.map_err(|e: MediaError| e.into())
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
