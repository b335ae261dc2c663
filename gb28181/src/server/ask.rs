//! Requests the platform sends a device — queries (DeviceInfo, Catalog, DeviceStatus), the
//! catalog subscription and the answer to an alarm — each in a task of its own, over the
//! device's transport to the address it last registered or kept alive from.

use super::Server;
use crate::manscdp;
use crate::sip::transaction::AskError;
use crate::sip::{self, Outgoing, Peer, Response, Transport};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

impl Server {
    /// Sends a request to a device and waits for its final response.
    pub(crate) async fn send_request(
        &self,
        device: &str,
        method: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, AskError> {
        let peer = self
            .state
            .lock()
            .devices
            .by_id
            .get(device)
            .map(|d| d.peer)
            .ok_or(AskError::Send("not registered".into()))?;
        let branch = format!("z9hG4bK{}", sip::token());
        let via_host = self.local_addr(peer);
        let mut out = Outgoing::request(method, &format!("sip:{device}@{}", peer.addr))
            .header(
                "Via",
                &format!(
                    "SIP/2.0/{} {via_host};rport;branch={branch}",
                    peer.transport.via_name()
                ),
            )
            .header(
                "From",
                &format!(
                    "<sip:{}@{}>;tag={}",
                    self.config.sip_id,
                    self.config.domain,
                    sip::token()
                ),
            )
            .header("To", &format!("<sip:{device}@{}>", self.config.domain))
            .header("Call-ID", &format!("{}@{}", sip::token(), via_host.ip()))
            .header("CSeq", &format!("{} {method}", self.next_sn()))
            .header("Max-Forwards", "70")
            .header("User-Agent", "gateway");
        for (name, value) in headers {
            out = out.header(name, value);
        }
        if let Some(b) = body {
            out = out.body("Application/MANSCDP+xml", b);
        }
        let transport = self.transport.clone();
        self.asking
            .ask(&branch, peer, out.into_bytes(), move |bytes| {
                let transport = transport.clone();
                async move { transport.send(peer, bytes).await.map_err(|e| e.to_string()) }
            })
            .await
    }

    /// The address a device reaches us at, for our Via: the listening address, or when that is
    /// a wildcard, the local address the system would use towards the device.
    fn local_addr(&self, peer: Peer) -> SocketAddr {
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
