//! SIP for GB/T 28181: messages parsed and read with rsipstack's message model, our own
//! transport ([`transport`]: UDP and TCP, every read bounded), transactions ([`transaction`]:
//! retransmissions absorbed and made) and digest authentication ([`digest`]). Messages we send
//! are written here ([`Outgoing`]), their bodies as bytes in the device's charset.

pub mod digest;
pub mod frame;
pub mod transaction;
pub mod transport;

pub use rsipstack::sip::{Headers, Method, Request, Response, SipMessage};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// Largest SIP message read or kept (a catalog page over UDP is a few KB; 64 KiB is the
/// largest UDP datagram).
pub const MAX_MESSAGE: usize = 65_535;

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP connection (framed by Content-Length).
    Tcp,
}

impl Transport {
    /// `UDP` or `TCP`, as in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Where a message came from, or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The address (the packet's source: replies go there, whatever Via or Contact say).
    pub addr: SocketAddr,
}

/// Parses one SIP message.
pub fn parse(bytes: &[u8]) -> Result<SipMessage, String> {
    SipMessage::try_from(bytes).map_err(|e| {
        let mut s = e.to_string();
        s.truncate(120);
        s
    })
}

/// The first header of that name (full names; compact forms are read as their full names).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value().trim())
}

/// Every header of that name, in order.
pub fn headers_named<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value().trim())
}

/// The user part of a name-addr or URI (`<sip:USER@host>;tag=…`, `sip:USER@host`).
pub fn uri_user(value: &str) -> Option<&str> {
    let v = match value.find('<') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    let v = v.trim_start();
    let v = v
        .strip_prefix("sip:")
        .or_else(|| v.strip_prefix("SIP:"))
        .or_else(|| v.strip_prefix("sips:"))?;
    let end = v.find(['@', '>', ';', ':'])?;
    v[end..].starts_with('@').then(|| &v[..end])
}

/// A `;name=value` parameter of a header value (outside the `<…>` of a name-addr).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let outside = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    outside.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().split(',').next().unwrap_or("").trim())
    })
}

/// The CSeq number and method.
pub fn cseq(headers: &Headers) -> Option<(u32, &str)> {
    let (n, m) = header(headers, "CSeq")?.split_once(char::is_whitespace)?;
    Some((n.trim().parse().ok()?, m.trim()))
}

/// The branch of the top Via.
pub fn branch(headers: &Headers) -> Option<&str> {
    let top = header(headers, "Via")?.split(',').next()?;
    top.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("branch").then(|| v.trim())
    })
}

/// A SIP message to send, written line by line.
#[derive(Debug, Default)]
pub struct Outgoing {
    head: String,
    body: Vec<u8>,
}

impl Outgoing {
    /// A request line.
    pub fn request(method: &str, uri: &str) -> Self {
        Self {
            head: format!("{method} {uri} SIP/2.0\r\n"),
            body: Vec::new(),
        }
    }

    /// A response to `req`: its Via, From, Call-ID and CSeq copied, its To given `to_tag` when
    /// it has none.
    pub fn response(req: &Request, code: u16, reason: &str, to_tag: &str) -> Self {
        let mut out = Self {
            head: format!("SIP/2.0 {code} {reason}\r\n"),
            body: Vec::new(),
        };
        for via in headers_named(&req.headers, "Via") {
            out = out.header("Via", via);
        }
        for name in ["From", "Call-ID", "CSeq"] {
            if let Some(v) = header(&req.headers, name) {
                out = out.header(name, v);
            }
        }
        let to = header(&req.headers, "To").unwrap_or_default();
        out = if param(to, "tag").is_some() || code == 100 {
            out.header("To", to)
        } else {
            out.header("To", &format!("{to};tag={to_tag}"))
        };
        out
    }

    /// Adds a header (values never carry line breaks: they are cut at the first).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let value = value.split(['\r', '\n']).next().unwrap_or("");
        let _ = write!(self.head, "{name}: {value}\r\n");
        self
    }

    /// Sets the body and its type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self = self.header("Content-Type", content_type);
        self.body = body;
        self
    }

    /// The bytes on the wire.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut out = self.head.into_bytes();
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// A fresh token (tags, branches, Call-IDs).
pub fn token() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn sip_looking_text_parses_or_fails_and_its_fields_read_without_panic(
            start in "(REGISTER|MESSAGE|NOTIFY|SIP/2.0) [ -~]{0,40}",
            headers in proptest::collection::vec("(Via|v|From|f|To|t|Call-ID|i|CSeq|l|Content-Length|Expires|Contact|m): ?[ -~]{0,60}", 0..12),
            body in "[ -~]{0,200}",
        ) {
            let text = format!("{start}\r\n{}\r\n\r\n{body}", headers.join("\r\n"));
            if let Ok(m) = parse(text.as_bytes()) {
                let h = match &m { SipMessage::Request(r) => &r.headers, SipMessage::Response(r) => &r.headers };
                let _ = (branch(h), cseq(h), header(h, "From").and_then(uri_user));
                let _ = header(h, "To").and_then(|t| param(t, "tag"));
            }
            let mut f = frame::Framer::new(MAX_MESSAGE);
            f.push(text.as_bytes());
            let _ = f.next_message();
        }
    }

    #[test]
    fn users_params_cseq_and_branch_are_read_from_what_devices_send() {
        assert_eq!(
            uri_user("<sip:34020000001320000001@3402000000>;tag=7301"),
            Some("34020000001320000001")
        );
        assert_eq!(uri_user("sip:3402@10.0.0.1:5060"), Some("3402"));
        assert_eq!(uri_user("<sip:10.0.0.1:5060>"), None);
        assert_eq!(param("<sip:a@b;lr>;tag=7301", "tag"), Some("7301"));
        assert_eq!(param("<sip:a@b;tag=no>", "tag"), None);
        let raw = b"MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;rport;branch=z9hG4bKx1\r\nCSeq:  20 MESSAGE\r\nl: 0\r\n\r\n";
        let SipMessage::Request(r) = parse(raw).unwrap() else {
            panic!("a request")
        };
        assert_eq!(branch(&r.headers), Some("z9hG4bKx1"));
        assert_eq!(cseq(&r.headers), Some((20, "MESSAGE")));
        let bytes = Outgoing::response(&r, 200, "OK", "t1")
            .header("Evil", "a\r\nInjected: 1")
            .into_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text
            .starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;rport;branch=z9hG4bKx1\r\n"));
        assert!(!text.contains("Injected"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    }
}
