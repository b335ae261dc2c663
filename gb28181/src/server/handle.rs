//! Every message, in order: responses go to the request of ours that waits for them; requests
//! are answered once (a retransmission gets the same answer again, [`Answered`]) and handled:
//! REGISTER (digest), MESSAGE (keepalive, query responses, alarms), NOTIFY (catalog changes).

use super::Server;
use crate::manscdp::{self, Body};
use crate::sip::digest::Refusal;
use crate::sip::transaction::Answered;
use crate::sip::transport::{Incoming, SOURCE};
use crate::sip::{self, header, Outgoing, Peer, Request, SipMessage};
use alerts::signal::Protocol;
use chrono::Duration;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// Registrations last at most this long (devices ask for 3600 s or 86400 s).
const MAX_EXPIRES_S: i64 = 86_400;
/// A REGISTER without an Expires asks for this long.
const DEFAULT_EXPIRES_S: i64 = 3_600;

/// Reads messages until `stop` turns true.
pub(super) async fn run(
    server: Arc<Server>,
    mut rx: mpsc::Receiver<Incoming>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        server.incoming(msg).await;
    }
}

/// What a request gets: the status, and what to do once the answer is sent.
pub(super) struct Reply {
    pub(super) code: u16,
    pub(super) reason: &'static str,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) then: Option<Then>,
}

/// Follow-up work around an answer.
pub(super) enum Then {
    /// A device (re)registered: ask what it is and what it has, subscribe to its catalog.
    Registered(String),
    /// An alarm: committed before the 200 is sent, then answered with the Response the
    /// standard expects.
    Alarm(Box<super::alarm::AlarmJob>),
}

impl Reply {
    pub(super) fn status(code: u16, reason: &'static str) -> Self {
        Self {
            code,
            reason,
            headers: Vec::new(),
            then: None,
        }
    }
}

impl Server {
    async fn incoming(self: &Arc<Self>, msg: Incoming) {
        let metrics = self.pipeline.metrics();
        let parsed = match sip::parse(&msg.bytes) {
            Ok(m) => m,
            Err(_) => {
                metrics.rejected(SOURCE, "unreadable");
                return;
            }
        };
        let req = match parsed {
            SipMessage::Response(r) => {
                if let Some(b) = sip::branch(&r.headers).map(str::to_string) {
                    self.asking.answer(&b, r);
                }
                return;
            }
            SipMessage::Request(r) => r,
        };
        let complete = ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .all(|h| header(&req.headers, h).is_some());
        if !complete {
            metrics.rejected(SOURCE, "unreadable");
            return;
        }
        let key = Answered::key(
            &msg.peer,
            sip::branch(&req.headers),
            header(&req.headers, "Call-ID").unwrap_or_default(),
            header(&req.headers, "CSeq").unwrap_or_default(),
        );
        let again = self
            .state
            .lock()
            .answered
            .get(&key, Instant::now())
            .map(<[u8]>::to_vec);
        if let Some(bytes) = again {
            let _ = self.transport.send(msg.peer, bytes).await;
            return;
        }
        metrics.ingested(SOURCE);
        let mut reply = self.request(&req, msg.peer);
        if let Some(Then::Alarm(job)) = &reply.then {
            if !self.raise(job).await {
                // not committed: not acknowledged (a retransmission is handled afresh)
                reply = Reply {
                    headers: vec![("Retry-After", "5".to_string())],
                    ..Reply::status(503, "Service Unavailable")
                };
            }
        }
        let mut out = Outgoing::response(&req, reply.code, reply.reason, &self.tag);
        for (name, value) in &reply.headers {
            out = out.header(name, value);
        }
        let bytes = out.header("User-Agent", "gateway").into_bytes();
        if req.method != sip::Method::Ack {
            if reply.code != 503 {
                let mut s = self.state.lock();
                s.answered.keep(key, bytes.clone(), Instant::now());
            }
            let _ = self.transport.send(msg.peer, bytes).await;
        }
        match reply.then {
            Some(Then::Registered(device)) => self.spawn_follow_up(device),
            Some(Then::Alarm(job)) if reply.code == 200 => {
                if let Some(sn) = job.sn {
                    self.spawn_alarm_response(job.device, sn);
                }
            }
            _ => {}
        }
    }

    /// Decides the answer to a request.
    fn request(&self, req: &Request, peer: Peer) -> Reply {
        match req.method {
            sip::Method::Register => self.register(req, peer),
            sip::Method::Message | sip::Method::Notify => self.message(req, peer),
            sip::Method::Options | sip::Method::Bye | sip::Method::Ack => Reply::status(200, "OK"),
            sip::Method::Subscribe => Reply::status(489, "Bad Event"),
            _ => Reply::status(405, "Method Not Allowed"),
        }
    }

    /// REGISTER: known devices only, with a digest answer to a fresh challenge.
    fn register(&self, req: &Request, peer: Peer) -> Reply {
        let metrics = self.pipeline.metrics();
        let from = header(&req.headers, "From").unwrap_or_default();
        let Some(device) = sip::uri_user(from).filter(|d| crate::id::is_id(d)) else {
            metrics.rejected(SOURCE, "bad_id");
            return Reply::status(400, "Bad Request");
        };
        if !self.roster().devices.contains_key(device) {
            metrics.rejected(SOURCE, "unknown_device");
            self.pipeline.note_unknown_unit(device, Protocol::Gb28181);
            return Reply::status(403, "Forbidden");
        }
        let now = self.pipeline.clock().now();
        let auth = header(&req.headers, "Authorization");
        let checked = self.state.lock().nonces.check(
            auth,
            "REGISTER",
            device,
            self.password_of(device).expose(),
            now,
        );
        match checked {
            Ok(()) => {}
            Err(Refusal::Missing | Refusal::Stale) => {
                let nonce = self.state.lock().nonces.issue(now);
                let challenge = format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5",
                    self.config.domain
                );
                return Reply {
                    headers: vec![("WWW-Authenticate", challenge)],
                    ..Reply::status(401, "Unauthorized")
                };
            }
            Err(Refusal::Wrong) => {
                metrics.rejected(SOURCE, "wrong_password");
                tracing::warn!(device, peer = %peer.addr, "GB/T 28181 registration refused: wrong password");
                return Reply::status(403, "Forbidden");
            }
        }
        let expires = expires_of(req).clamp(0, MAX_EXPIRES_S);
        let mut headers = vec![("Expires", expires.to_string())];
        if let Some(c) = header(&req.headers, "Contact") {
            headers.push(("Contact", c.to_string()));
        }
        let local = now.with_timezone(&self.config.offset);
        headers.push(("Date", local.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()));
        let mut s = self.state.lock();
        if expires == 0 {
            s.devices.unregistered(device, now);
            s.dirty = true;
            tracing::info!(device, "GB/T 28181 device unregistered");
            return Reply {
                headers,
                ..Reply::status(200, "OK")
            };
        }
        let was_online = s.devices.by_id.get(device).and_then(|d| d.online) == Some(true);
        let ua = header(&req.headers, "User-Agent");
        let moved = s
            .devices
            .registered(device, peer, Duration::seconds(expires), ua, now);
        s.dirty = true;
        drop(s);
        if let Some(old) = moved {
            tracing::warn!(device, from = %old.addr, to = %peer.addr, "GB/T 28181 device registered from a new address");
        }
        let fresh = !was_online || moved.is_some();
        if fresh {
            tracing::info!(device, peer = %peer.addr, transport = ?peer.transport, expires, "GB/T 28181 device registered");
        }
        Reply {
            headers,
            then: fresh.then(|| super::handle::Then::Registered(device.to_string())),
            ..Reply::status(200, "OK")
        }
    }

    /// MESSAGE and NOTIFY: a MANSCDP body from a registered device.
    fn message(&self, req: &Request, peer: Peer) -> Reply {
        let metrics = self.pipeline.metrics();
        let from = header(&req.headers, "From").unwrap_or_default();
        let Some(device) = sip::uri_user(from).map(str::to_string) else {
            metrics.rejected(SOURCE, "bad_id");
            return Reply::status(400, "Bad Request");
        };
        let body = match manscdp::read(&req.body) {
            Ok(b) => b,
            Err(_) => {
                metrics.rejected(SOURCE, "unreadable_body");
                return Reply::status(400, "Bad Request");
            }
        };
        if !self.roster().devices.contains_key(&device) {
            metrics.rejected(SOURCE, "unknown_device");
            self.pipeline.note_unknown_unit(&device, Protocol::Gb28181);
            return Reply::status(403, "Forbidden");
        }
        let now = self.pipeline.clock().now();
        let mut s = self.state.lock();
        if let Some(d) = s
            .devices
            .by_id
            .get_mut(&device)
            .filter(|_| !req.body.is_ascii())
        {
            d.charset = body.charset; // ASCII says nothing of the charset
        }
        if body.is("Notify", "Keepalive") {
            let faulty = body
                .node
                .child("Info")
                .map(|i| {
                    i.children_named("DeviceID")
                        .map(|c| c.text.clone())
                        .take(64)
                        .collect()
                })
                .unwrap_or_default();
            let status = body.node.text_of("Status");
            return match s.devices.keepalive(&device, peer, status, faulty, now) {
                Ok(moved) => {
                    if let Some(old) = moved {
                        tracing::info!(device, from = %old.addr, to = %peer.addr, "GB/T 28181 device keeps alive from a new address");
                        s.dirty = true;
                    }
                    Reply::status(200, "OK")
                }
                Err(_) => Reply::status(404, "Not Registered"),
            };
        }
        if !s.devices.by_id.contains_key(&device) {
            return Reply::status(404, "Not Registered");
        }
        self.body(&mut s, &device, &body)
    }

    /// A body from a registered device, other than a keepalive.
    fn body(&self, s: &mut super::State, device: &str, body: &Body) -> Reply {
        if body.cmd.eq_ignore_ascii_case("Catalog") {
            self.catalog_page(s, device, body);
        } else if body.is("Response", "DeviceInfo") {
            if let Some(d) = s.devices.by_id.get_mut(device) {
                d.info = manscdp::leaves(body);
                s.dirty = true;
            }
        } else if body.is("Response", "DeviceStatus") {
            if let Some(d) = s.devices.by_id.get_mut(device) {
                d.device_status = manscdp::leaves(body);
            }
        } else if body.is("Notify", "Alarm") {
            return self.alarm(s, device, body);
        }
        Reply::status(200, "OK")
    }
}

/// The registration time asked for: `Expires`, else the Contact's `expires` parameter.
fn expires_of(req: &Request) -> i64 {
    header(&req.headers, "Expires")
        .and_then(|e| e.parse().ok())
        .or_else(|| {
            header(&req.headers, "Contact")
                .and_then(|c| sip::param(c, "expires"))
                .and_then(|e| e.parse().ok())
        })
        .unwrap_or(DEFAULT_EXPIRES_S)
}
