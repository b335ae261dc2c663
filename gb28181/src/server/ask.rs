//! Requests the platform sends a device — queries (DeviceInfo, Catalog, DeviceStatus), the
//! catalog subscription and the answer to an alarm — each in a task of its own, over the
//! device's transport to the address it last registered or kept alive from.

use super::Server;
use crate::manscdp;
use crate::sip::transaction::AskError;
use crate::sip::{self, Outgoing, Peer, Response, Transport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A dialog with a device (or the one-off request outside any): where, and the identifiers
/// every request in it repeats.
#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    /// The device's transport and address.
    pub(crate) peer: Peer,
    /// The user of the Request-URI and the To header (the device, or one of its channels).
    pub(crate) user: String,
    /// Call-ID.
    pub(crate) call_id: String,
    /// Our tag.
    pub(crate) from_tag: String,
    /// The device's tag, from its answer.
    pub(crate) to_tag: Option<String>,
}

impl Server {
    /// A new dialog with `user` at `device`'s address (`None`: the device is not registered).
    pub(crate) fn dialog(&self, device: &str, user: &str) -> Option<Dialog> {
        let peer = self
            .state
            .lock()
            .devices
            .by_id
            .get(device)
            .map(|d| d.peer)?;
        Some(Dialog {
            peer,
            user: user.to_string(),
            call_id: format!("{}@{}", sip::token(), self.local_addr(peer).ip()),
            from_tag: sip::token(),
            to_tag: None,
        })
    }

    /// A request in `d` with CSeq `cseq`; returns its branch and bytes.
    pub(crate) fn request_in(
        &self,
        d: &Dialog,
        method: &str,
        cseq: u64,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> (String, Vec<u8>) {
        let branch = format!("z9hG4bK{}", sip::token());
        let via_host = self.local_addr(d.peer);
        let (user, domain) = (&d.user, &self.config.domain);
        let to = match &d.to_tag {
            Some(t) => format!("<sip:{user}@{domain}>;tag={t}"),
            None => format!("<sip:{user}@{domain}>"),
        };
        let mut out = Outgoing::request(method, &format!("sip:{user}@{}", d.peer.addr))
            .header(
                "Via",
                &format!(
                    "SIP/2.0/{} {via_host};rport;branch={branch}",
                    d.peer.transport.via_name()
                ),
            )
            .header(
                "From",
                &format!("<sip:{}@{domain}>;tag={}", self.config.sip_id, d.from_tag),
            )
            .header("To", &to)
            .header("Call-ID", &d.call_id)
            .header("CSeq", &format!("{cseq} {method}"))
            .header("Max-Forwards", "70")
            .header("User-Agent", "gateway");
        for (name, value) in headers {
            out = out.header(name, value);
        }
        if let Some((content_type, b)) = body {
            out = out.body(content_type, b);
        }
        (branch, out.into_bytes())
    }

    /// Sends a request (sent again over UDP until answered) and waits for its final response.
    pub(crate) async fn ask_in(
        &self,
        peer: Peer,
        branch: &str,
        bytes: Vec<u8>,
    ) -> Result<Response, AskError> {
        let transport = self.transport.clone();
        self.asking
            .ask(branch, peer, bytes, move |bytes| {
                let transport = transport.clone();
                async move { transport.send(peer, bytes).await.map_err(|e| e.to_string()) }
            })
            .await
    }

    /// Sends a request to a device outside any dialog and waits for its final response.
    pub(crate) async fn send_request(
        &self,
        device: &str,
        method: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, AskError> {
        let d = self
            .dialog(device, device)
            .ok_or(AskError::Send("not registered".into()))?;
        let body = body.map(|b| ("Application/MANSCDP+xml", b));
        let (branch, bytes) = self.request_in(&d, method, self.next_sn(), headers, body);
        self.ask_in(d.peer, &branch, bytes).await
    }

    /// The address a device reaches us at, for our Via: the listening address, or when that is
    /// a wildcard, the local address the system would use towards the device.
    pub(crate) fn local_addr(&self, peer: Peer) -> SocketAddr {
        let bound = match peer.transport {
            Transport::Udp => self.transport.udp_addr(),
            Transport::Tcp => self.transport.tcp_addr(),
        };
        let bound = bound.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)));
        if !bound.ip().is_unspecified() {
            return bound;
        }
        let towards = std::net::UdpSocket::bind((IpAddr::from([0, 0, 0, 0]), 0))
            .and_then(|s| s.connect(peer.addr).and_then(|_| s.local_addr()));
        match towards {
            Ok(a) => SocketAddr::new(a.ip(), bound.port()),
            Err(_) => bound,
        }
    }

    /// How a device writes (queries to it are written the same way).
    fn charset_of(&self, device: &str) -> manscdp::Charset {
        let s = self.state.lock();
        s.devices
            .by_id
            .get(device)
            .map(|d| d.charset)
            .unwrap_or_default()
    }

    /// A MANSCDP query to a device; its answer comes later as a MESSAGE of its own.
    pub(crate) async fn query(&self, device: &str, cmd: &str) -> Result<u64, AskError> {
        let sn = self.next_sn();
        let charset = self.charset_of(device);
        let body = manscdp::query(cmd, sn, device, charset);
        let r = self
            .send_request(device, "MESSAGE", &[], Some(body))
            .await?;
        match r.status_code.code() {
            200..=299 => Ok(sn),
            code => Err(AskError::Send(format!("answered {code}"))),
        }
    }

    /// Subscribes to a device's catalog changes (NOTIFYs), for `subscribe_expires`.
    pub(crate) async fn subscribe(&self, device: &str) -> Result<(), AskError> {
        let expires = self.config.subscribe_expires.as_secs();
        let sn = self.next_sn();
        let charset = self.charset_of(device);
        let headers = [
            ("Event", format!("Catalog;id={sn}")),
            ("Expires", expires.to_string()),
            (
                "Contact",
                format!("<sip:{}@{}>", self.config.sip_id, self.config.domain),
            ),
        ];
        let body = manscdp::query("Catalog", sn, device, charset);
        let r = self
            .send_request(device, "SUBSCRIBE", &headers, Some(body))
            .await?;
        match r.status_code.code() {
            200..=299 => {
                // refreshed a minute before it ends (or halfway through a short one)
                let refresh =
                    std::time::Duration::from_secs(expires.saturating_sub(60).max(expires / 2));
                self.state
                    .lock()
                    .subscribed
                    .insert(device.to_string(), tokio::time::Instant::now() + refresh);
                Ok(())
            }
            code => Err(AskError::Send(format!("answered {code}"))),
        }
    }

    /// After a (re)registration: what the device is, what it has, and its catalog changes.
    pub(super) fn spawn_follow_up(self: &Arc<Self>, device: String) {
        let server = self.clone();
        tokio::spawn(async move {
            if let Err(e) = server.query(&device, "DeviceInfo").await {
                tracing::debug!(device, error = %e, "GB/T 28181 DeviceInfo query unanswered");
            }
            if let Err(e) = server.query(&device, "Catalog").await {
                tracing::warn!(device, error = %e, "GB/T 28181 catalog query unanswered");
            }
            if !server.config.subscribe_expires.is_zero() {
                if let Err(e) = server.subscribe(&device).await {
                    tracing::info!(device, error = %e, "GB/T 28181 catalog subscription refused; the catalog is asked for again instead");
                }
            }
        });
    }

    /// The Response the standard expects after an alarm's 200.
    pub(super) fn spawn_alarm_response(self: &Arc<Self>, device: String, sn: u64) {
        let server = self.clone();
        tokio::spawn(async move {
            let charset = server.charset_of(&device);
            let body = manscdp::alarm_response(sn, &device, charset);
            let _ = server
                .send_request(&device, "MESSAGE", &[], Some(body))
                .await;
        });
    }
}

impl Server {
    /// Asks a device now (`Catalog`, `DeviceInfo` or `DeviceStatus`); the answer updates the
    /// device when it comes. `false`: no such device registered.
    pub fn ask_now(self: &Arc<Self>, device: &str, cmd: &'static str) -> bool {
        if !self.state.lock().devices.by_id.contains_key(device) {
            return false;
        }
        let (server, device) = (self.clone(), device.to_string());
        tokio::spawn(async move {
            if let Err(e) = server.query(&device, cmd).await {
                tracing::info!(device, cmd, error = %e, "GB/T 28181 query unanswered");
            }
        });
        true
    }
}
