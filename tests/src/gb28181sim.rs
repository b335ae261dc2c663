//! Simulated GB/T 28181 devices (IPCs and NVRs) over UDP: they register with digest, keep
//! alive, answer catalog / device-info / status queries (channels ON or OFF, names in GB2312
//! or UTF-8, catalogs split into pages), accept a catalog subscription and notify changes,
//! send alarms, go silent, and register again from another port. Used by the end-to-end
//! tests and the `gb28181sim` binary.

use gb28181::manscdp::{self, Charset};
use gb28181::sip::digest::{self, Answer};
use gb28181::sip::{self, header, Outgoing, Request, Response, SipMessage};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

/// A channel of a simulated device.
#[derive(Debug, Clone)]
pub struct SimChannel {
    /// Its 20-digit id.
    pub id: String,
    /// Name (written in the device's charset).
    pub name: String,
    /// ON or OFF.
    pub on: bool,
    /// Civil code.
    pub civil_code: String,
}

/// The id of a device's channel `i`: the device's first 10 digits, type 131 (camera), its
/// network digit, and a serial of the device's serial × 100 + `i`.
pub fn channel_id(device: &str, i: usize) -> String {
    let serial: u64 = device[14..].parse().unwrap_or(0);
    format!(
        "{}131{}{:06}",
        &device[..10],
        &device[13..14],
        (serial * 100 + i as u64) % 1_000_000
    )
}

/// How a simulated device behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Its 20-digit id.
    pub id: String,
    /// The password it registers with.
    pub password: String,
    /// The platform.
    pub server: SocketAddr,
    /// The platform's id.
    pub server_id: String,
    /// Keepalive period (zero: none until asked).
    pub keepalive: Duration,
    /// Registration time asked for.
    pub expires: u32,
    /// Catalog items per MESSAGE.
    pub page_size: usize,
    /// How it writes bodies.
    pub charset: Charset,
    /// Its channels.
    pub channels: Vec<SimChannel>,
    /// The clip its channels stream when INVITEd.
    pub clip: crate::camsim::clip::ClipSpec,
    /// What the clip shows.
    pub content: crate::camsim::clip::Content,
    /// A stream starts a few frames into a GOP (the first keyframe up to 2 s later), as from a
    /// camera that does not start a new stream with a keyframe; else with one.
    pub mid_gop: bool,
}

impl SimConfig {
    /// A device with `channels` channels named 通道1…, all ON, GB2312, keepalive every 60 s.
    pub fn new(id: &str, password: &str, server: SocketAddr, channels: usize) -> Self {
        let channels = (1..=channels)
            .map(|i| SimChannel {
                id: channel_id(id, i),
                name: format!("通道{i}"),
                on: true,
                civil_code: id[..6].to_string(),
            })
            .collect();
        Self {
            id: id.into(),
            password: password.into(),
            server,
            server_id: "34020000002000000001".into(),
            keepalive: Duration::from_secs(60),
            expires: 3600,
            page_size: 1,
            charset: Charset::Gb18030,
            channels,
            clip: Default::default(),
            content: Default::default(),
            mid_gop: false,
        }
    }
}

/// What a simulated device saw.
#[derive(Debug, Default, Clone)]
pub struct SimSeen {
    /// Query and control commands received (`Catalog`, `DeviceInfo`, …).
    pub queries: Vec<String>,
    /// Catalog subscriptions accepted.
    pub subscriptions: u32,
    /// Keepalives answered 200.
    pub keepalives_ok: u64,
    /// Keepalives answered otherwise (or not at all).
    pub keepalives_failed: u64,
    /// Alarm responses received.
    pub alarm_responses: u32,
    /// The `Date` of the last 200 to REGISTER.
    pub date: Option<String>,
    /// INVITEs answered.
    pub invites: u32,
    /// BYEs received.
    pub byes: u32,
    /// How each INVITE asked for its stream, in the platform's words (`tcp_passive`: it
    /// listens; `tcp_active`: it connects; `udp`).
    pub offers: Vec<&'static str>,
}

struct Inner {
    config: Mutex<SimConfig>,
    socket: Mutex<Arc<UdpSocket>>,
    generation: AtomicU64,
    waiting: Mutex<HashMap<String, oneshot::Sender<Response>>>,
    seen: Mutex<SimSeen>,
    silent: AtomicBool,
    cseq: AtomicU64,
    call_id: String,
    /// The catalog subscription's dialog: (Call-ID, from tag, to tag).
    dialog: Mutex<Option<(String, String, String)>>,
    /// A stream is being sent (until BYE).
    streaming: AtomicBool,
}

/// A running simulated device.
#[derive(Clone)]
pub struct SimDevice {
    inner: Arc<Inner>,
}

impl SimDevice {
    /// Binds a loopback UDP port and starts answering (does not register yet).
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let inner = Arc::new(Inner {
            config: Mutex::new(config),
            socket: Mutex::new(socket.clone()),
            generation: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            seen: Mutex::new(SimSeen::default()),
            silent: AtomicBool::new(false),
            cseq: AtomicU64::new(1),
            call_id: format!("{}@127.0.0.1", sip::token()),
            dialog: Mutex::new(None),
            streaming: AtomicBool::new(false),
        });
        let device = SimDevice { inner };
        device.spawn_reader(socket, 0);
        device.spawn_keepalive();
        Ok(device)
    }

    /// What it saw so far.
    pub fn seen(&self) -> SimSeen {
        self.inner.seen.lock().clone()
    }

    /// Its id.
    pub fn id(&self) -> String {
        self.inner.config.lock().id.clone()
    }

    /// The local address it sends from.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.socket.lock().local_addr().expect("bound")
    }

    /// Registers (answering the digest challenge); returns the final status code.
    pub async fn register(&self) -> u16 {
        let expires = self.inner.config.lock().expires;
        self.register_for(expires).await
    }

    /// Unregisters (`Expires: 0`).
    pub async fn unregister(&self) -> u16 {
        self.register_for(0).await
    }

    async fn register_for(&self, expires: u32) -> u16 {
        let first = self.register_request(expires, None).await;
        let Some(r) = first else { return 0 };
        if r.status_code.code() != 401 {
            return r.status_code.code();
        }
        let challenge = header(&r.headers, "WWW-Authenticate").unwrap_or_default();
        let params = digest::parse(challenge).unwrap_or_default();
        let auth = self.authorization(&params);
        let second = self.register_request(expires, Some(auth)).await;
        let Some(r) = second else { return 0 };
        if r.status_code.code() == 200 {
            self.inner.seen.lock().date = header(&r.headers, "Date").map(str::to_string);
        }
        r.status_code.code()
    }

    fn authorization(&self, params: &HashMap<String, String>) -> String {
        let c = self.inner.config.lock();
        let realm = params.get("realm").cloned().unwrap_or_default();
        let nonce = params.get("nonce").cloned().unwrap_or_default();
        let uri = format!("sip:{}@{}", c.server_id, &c.server_id[..10]);
        let response = digest::answer(&Answer {
            username: &c.id,
            realm: &realm,
            password: &c.password,
            method: "REGISTER",
            uri: &uri,
            nonce: &nonce,
            qop: None,
        });
        format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
            c.id
        )
    }

    async fn register_request(&self, expires: u32, auth: Option<String>) -> Option<Response> {
        let (id, server_id) = {
            let c = self.inner.config.lock();
            (c.id.clone(), c.server_id.clone())
        };
        let domain = &server_id[..10];
        let local = self.local_addr();
        let mut out = self
            .request("REGISTER", &format!("sip:{server_id}@{domain}"))
            .header("Contact", &format!("<sip:{id}@{local}>"))
            .header("Expires", &expires.to_string())
            .header("User-Agent", "gb28181sim");
        if let Some(a) = auth {
            out = out.header("Authorization", &a);
        }
        self.send(out).await
    }

    /// A request with the usual headers (Via with a fresh branch, From, To, Call-ID, CSeq).
    fn request(&self, method: &str, uri: &str) -> Outgoing {
        let local = self.local_addr();
        let c = self.inner.config.lock();
        let domain = &c.server_id[..10];
        let call_id = if method == "REGISTER" {
            self.inner.call_id.clone()
        } else {
            format!("{}@127.0.0.1", sip::token())
        };
        Outgoing::request(method, uri)
            .header(
                "Via",
                &format!("SIP/2.0/UDP {local};rport;branch=z9hG4bK{}", sip::token()),
            )
            .header(
                "From",
                &format!("<sip:{}@{domain}>;tag={}", c.id, sip::token()),
            )
            .header(
                "To",
                &format!(
                    "<sip:{}@{domain}>",
                    if method == "REGISTER" {
                        &c.id
                    } else {
                        &c.server_id
                    }
                ),
            )
            .header("Call-ID", &call_id)
            .header(
                "CSeq",
                &format!(
                    "{} {method}",
                    self.inner.cseq.fetch_add(1, Ordering::Relaxed)
                ),
            )
            .header("Max-Forwards", "70")
    }

    /// Sends a request and waits up to 4 s for its final response, sending it again after
    /// 0.5, 1 and 2 s as a device does over UDP (a datagram may be dropped in a burst).
    async fn send(&self, out: Outgoing) -> Option<Response> {
        let bytes = out.into_bytes();
        let SipMessage::Request(req) = sip::parse(&bytes).ok()? else {
            return None;
        };
        let branch = sip::branch(&req.headers)?.to_string();
        let (tx, mut rx) = oneshot::channel();
        self.inner.waiting.lock().insert(branch.clone(), tx);
        // one lock at a time (request() takes the socket's, then the config's)
        let server = self.inner.config.lock().server;
        let mut answer = None;
        for wait in [500u64, 1000, 2000, 500] {
            let socket = self.inner.socket.lock().clone();
            if socket.send_to(&bytes, server).await.is_err() {
                break;
            }
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(wait), &mut rx).await {
                answer = r.ok();
                break;
            }
        }
        self.inner.waiting.lock().remove(&branch);
        answer
    }

    /// A MESSAGE with a MANSCDP body (in the device's charset).
    async fn message(&self, xml: &str) -> Option<Response> {
        let (server_id, charset) = {
            let c = self.inner.config.lock();
            (c.server_id.clone(), c.charset)
        };
        let body = charset.encode(&xml.replace("{charset}", charset.label()));
        let out = self
            .request("MESSAGE", &format!("sip:{server_id}@{}", &server_id[..10]))
            .body("Application/MANSCDP+xml", body);
        self.send(out).await
    }

    /// Sends one keepalive now; returns the status code (0: no answer).
    pub async fn keepalive(&self) -> u16 {
        let id = self.inner.config.lock().id.clone();
        let xml = format!("<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n", self.inner.cseq.load(Ordering::Relaxed));
        let code = self.message(&xml).await.map_or(0, |r| r.status_code.code());
        let mut seen = self.inner.seen.lock();
        match code {
            200 => seen.keepalives_ok += 1,
            _ => seen.keepalives_failed += 1,
        }
        code
    }

    /// Stops (true) or resumes (false) the periodic keepalives.
    pub fn silence(&self, silent: bool) {
        self.inner.silent.store(silent, Ordering::SeqCst);
    }

    /// Sends an alarm about `subject` (the device or a channel); returns the status code.
    pub async fn alarm(&self, subject: &str, method: u8, alarm_type: u8, description: &str) -> u16 {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>{}</SN>\r\n<DeviceID>{subject}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>{method}</AlarmMethod>\r\n<AlarmTime>{}</AlarmTime>\r\n<AlarmDescription>{description}</AlarmDescription>\r\n<Info>\r\n<AlarmType>{alarm_type}</AlarmType>\r\n</Info>\r\n</Notify>\r\n",
            self.inner.cseq.load(Ordering::Relaxed),
            chrono::Utc::now()
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("offset"))
                .format("%Y-%m-%dT%H:%M:%S")
        );
        self.message(&xml).await.map_or(0, |r| r.status_code.code())
    }

    /// Turns a channel on or off, and notifies the platform when it subscribed.
    pub async fn set_channel(&self, channel: &str, on: bool) {
        let (id, server_id, charset) = {
            let mut c = self.inner.config.lock();
            for ch in c.channels.iter_mut().filter(|ch| ch.id == channel) {
                ch.on = on;
            }
            (c.id.clone(), c.server_id.clone(), c.charset)
        };
        let Some((call_id, local_tag, remote_tag)) = self.inner.dialog.lock().clone() else {
            return;
        };
        let event = if on { "ON" } else { "OFF" };
        let xml = format!("<?xml version=\"1.0\" encoding=\"{}\"?>\r\n<Notify>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<SumNum>1</SumNum>\r\n<DeviceList Num=\"1\">\r\n<Item>\r\n<DeviceID>{channel}</DeviceID>\r\n<Event>{event}</Event>\r\n</Item>\r\n</DeviceList>\r\n</Notify>\r\n", charset.label(), self.inner.cseq.load(Ordering::Relaxed));
        let local = self.local_addr();
        let domain = &server_id[..10];
        let out = Outgoing::request("NOTIFY", &format!("sip:{server_id}@{domain}"))
            .header(
                "Via",
                &format!("SIP/2.0/UDP {local};rport;branch=z9hG4bK{}", sip::token()),
            )
            .header("From", &format!("<sip:{id}@{domain}>;tag={local_tag}"))
            .header(
                "To",
                &format!("<sip:{server_id}@{domain}>;tag={remote_tag}"),
            )
            .header("Call-ID", &call_id)
            .header(
                "CSeq",
                &format!("{} NOTIFY", self.inner.cseq.fetch_add(1, Ordering::Relaxed)),
            )
            .header("Event", "Catalog")
            .header("Subscription-State", "active")
            .body("Application/MANSCDP+xml", charset.encode(&xml));
        self.send(out).await;
    }

    /// Moves to a new local port (as after a NAT rebinding or a reboot) and registers again.
    pub async fn rebind_and_register(&self) -> u16 {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *self.inner.socket.lock() = socket.clone();
        self.spawn_reader(socket, generation);
        self.register().await
    }

    fn spawn_keepalive(&self) {
        let device = self.clone();
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let every = device.inner.config.lock().keepalive;
                tokio::time::sleep(if every.is_zero() {
                    Duration::from_millis(200)
                } else {
                    every
                })
                .await;
                if weak.strong_count() <= 2 {
                    return; // only this task and the reader hold it: the device was dropped
                }
                if !every.is_zero() && !device.inner.silent.load(Ordering::SeqCst) {
                    device.keepalive().await;
                }
            }
        });
    }

    fn spawn_reader(&self, socket: Arc<UdpSocket>, generation: u64) {
        let device = SimDevice {
            inner: self.inner.clone(),
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                let r =
                    tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf))
                        .await;
                if device.inner.generation.load(Ordering::SeqCst) != generation
                    || Arc::strong_count(&device.inner) <= 2
                {
                    return;
                }
                let Ok(Ok((n, from))) = r else { continue };
                match sip::parse(&buf[..n]) {
                    Ok(SipMessage::Response(resp)) => {
                        let branch = sip::branch(&resp.headers).map(str::to_string);
                        if resp.status_code.code() >= 200 {
                            if let Some(tx) =
                                branch.and_then(|b| device.inner.waiting.lock().remove(&b))
                            {
                                let _ = tx.send(resp);
                            }
                        }
                    }
                    Ok(SipMessage::Request(req)) => device.answer(&socket, from, req).await,
                    Err(_) => {}
                }
            }
        });
    }

    /// Answers a request from the platform, then does what it asked.
    async fn answer(&self, socket: &UdpSocket, from: SocketAddr, req: Request) {
        let body = manscdp::read(&req.body).ok();
        let tag = sip::token();
        let ok = Outgoing::response(&req, 200, "OK", &tag);
        let ok = if req.method == sip::Method::Subscribe {
            ok.header("Expires", header(&req.headers, "Expires").unwrap_or("600"))
        } else {
            ok
        };
        if req.method == sip::Method::Invite {
            self.answer_invite(socket, from, &req, &tag).await;
            return;
        }
        if req.method == sip::Method::Ack {
            return;
        }
        let _ = socket.send_to(&ok.into_bytes(), from).await;
        if req.method == sip::Method::Bye {
            self.inner.seen.lock().byes += 1;
            self.inner.streaming.store(false, Ordering::SeqCst);
            return;
        }
        if req.method == sip::Method::Subscribe {
            let call_id = header(&req.headers, "Call-ID")
                .unwrap_or_default()
                .to_string();
            let remote = sip::param(header(&req.headers, "From").unwrap_or_default(), "tag")
                .unwrap_or_default()
                .to_string();
            *self.inner.dialog.lock() = Some((call_id, tag, remote));
            self.inner.seen.lock().subscriptions += 1;
            return;
        }
        let Some(body) = body else { return };
        self.inner.seen.lock().queries.push(body.cmd.clone());
        if body.is("Response", "Alarm") {
            self.inner.seen.lock().alarm_responses += 1;
            return;
        }
        let sn = body.sn.unwrap_or(0);
        let device = self.clone();
        let cmd = body.cmd.clone();
        tokio::spawn(async move {
            match cmd.as_str() {
                "Catalog" => device.send_catalog(sn).await,
                "DeviceInfo" => device.send_device_info(sn).await,
                "DeviceStatus" => device.send_device_status(sn).await,
                _ => {}
            }
        });
    }

    /// An INVITE: 200 with our SDP (the same `y=`), then the clip as MPEG-PS over RTP, the way
    /// the offer asks, until BYE: over TCP to the address offered (the platform listens,
    /// `setup:passive`), over TCP from a port we listen on (the platform connects,
    /// `setup:active`), or over UDP (`RTP/AVP`) to the address offered.
    async fn answer_invite(&self, socket: &UdpSocket, from: SocketAddr, req: &Request, tag: &str) {
        let sdp = String::from_utf8_lossy(&req.body).to_string();
        let line = |p: &str| {
            sdp.lines()
                .find_map(|l| l.trim().strip_prefix(p).map(str::to_string))
        };
        let ip = line("c=IN IP4 ").unwrap_or_default();
        let m = line("m=video ").unwrap_or_default();
        let port: u16 = m
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let udp = m.split_whitespace().nth(1) == Some("RTP/AVP");
        let they_connect = line("a=setup:") == Some("active".into());
        let Ok(to) = format!("{ip}:{port}").parse::<SocketAddr>() else {
            return;
        };
        let sink = match (udp, they_connect) {
            (true, _) => UdpSocket::bind("127.0.0.1:0")
                .await
                .map(|s| Sink::Udp(s, to)),
            (false, true) => tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map(Sink::Listening),
            (false, false) => Ok(Sink::Connect(to)),
        };
        let Ok(sink) = sink else { return };
        self.inner.seen.lock().offers.push(match &sink {
            Sink::Connect(_) => "tcp_passive",
            Sink::Listening(_) => "tcp_active",
            Sink::Udp(..) => "udp",
        });
        let y = line("y=").unwrap_or_else(|| "0000000000".into());
        let id = self.inner.config.lock().id.clone();
        let local = self.local_addr();
        let ok = Outgoing::response(req, 200, "OK", tag)
            .header("Contact", &format!("<sip:{id}@{local}>"))
            .body("APPLICATION/SDP", sink.answer(&id, &y).into_bytes());
        let _ = socket.send_to(&ok.into_bytes(), from).await;
        self.inner.seen.lock().invites += 1;
        let ssrc: u32 = y.parse().unwrap_or(0);
        let (spec, content, mid_gop) = {
            let c = self.inner.config.lock();
            (c.clip, c.content, c.mid_gop)
        };
        let device = self.clone();
        self.inner.streaming.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            let skip = if mid_gop { 3 } else { 0 };
            let _ = device.stream(sink, ssrc, (spec, content), skip).await;
        });
    }

    /// Sends the clip from frame `skip` on, at its frame rate, until BYE.
    async fn stream(
        &self,
        sink: Sink,
        ssrc: u32,
        (spec, content): (crate::camsim::clip::ClipSpec, crate::camsim::clip::Content),
        skip: usize,
    ) -> std::io::Result<()> {
        use gb28181::media::{ps, rtp, Codec};
        use tokio::io::AsyncWriteExt;
        let units =
            tokio::task::spawn_blocking(move || crate::camsim::clip::access_units(spec, content))
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
        let mut tcp = match &sink {
            Sink::Connect(to) => Some(tokio::net::TcpStream::connect(to).await?),
            Sink::Listening(l) => Some(
                tokio::time::timeout(Duration::from_secs(10), l.accept())
                    .await
                    .map_err(std::io::Error::other)??
                    .0,
            ),
            Sink::Udp(..) => None,
        };
        let (mut seq, mut ts) = (0u16, 0u32);
        let frame = Duration::from_millis(1000 / u64::from(spec.fps.max(1)));
        for (keyframe, au) in units.iter().cycle().skip(skip) {
            if !self.inner.streaming.load(Ordering::SeqCst) {
                return Ok(());
            }
            let pack = ps::mux(Codec::H264, au, u64::from(ts), *keyframe);
            match (&mut tcp, &sink) {
                (Some(tcp), _) => {
                    tcp.write_all(&rtp::packetize(&pack, &mut seq, ts, ssrc, 1400))
                        .await?
                }
                (None, Sink::Udp(socket, to)) => {
                    for p in rtp::packets(&pack, &mut seq, ts, ssrc, 1400) {
                        socket.send_to(&p, to).await?;
                    }
                }
                (None, _) => return Ok(()),
            }
            ts = ts.wrapping_add(90_000 / spec.fps.max(1));
            tokio::time::sleep(frame).await;
        }
        Ok(())
    }

    async fn send_catalog(&self, sn: u64) {
        let (id, channels, page) = {
            let c = self.inner.config.lock();
            (c.id.clone(), c.channels.clone(), c.page_size.max(1))
        };
        let pages: Vec<&[SimChannel]> = channels.chunks(page).collect();
        if pages.is_empty() {
            let xml = format!("<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<SumNum>0</SumNum>\r\n<DeviceList Num=\"0\">\r\n</DeviceList>\r\n</Response>\r\n");
            self.message(&xml).await;
        }
        for p in pages {
            let items: String = p.iter().map(|ch| format!(
                "<Item>\r\n<DeviceID>{}</DeviceID>\r\n<Name>{}</Name>\r\n<Manufacturer>Sim</Manufacturer>\r\n<Model>IPC</Model>\r\n<CivilCode>{}</CivilCode>\r\n<Address>东门</Address>\r\n<Parental>0</Parental>\r\n<ParentID>{id}</ParentID>\r\n<Status>{}</Status>\r\n<Longitude>0</Longitude>\r\n<Latitude>0</Latitude>\r\n</Item>\r\n",
                ch.id, ch.name, ch.civil_code, if ch.on { "ON" } else { "OFF" })).collect();
            let xml = format!("<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<SumNum>{}</SumNum>\r\n<DeviceList Num=\"{}\">\r\n{items}</DeviceList>\r\n</Response>\r\n", channels.len(), p.len());
            self.message(&xml).await;
        }
    }

    async fn send_device_info(&self, sn: u64) {
        let (id, n) = {
            let c = self.inner.config.lock();
            (c.id.clone(), c.channels.len())
        };
        let xml = format!("<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<Result>OK</Result>\r\n<DeviceName>模拟录像机</DeviceName>\r\n<Manufacturer>Sim</Manufacturer>\r\n<Model>NVR-1</Model>\r\n<Firmware>V1.0</Firmware>\r\n<Channel>{n}</Channel>\r\n</Response>\r\n");
        self.message(&xml).await;
    }

    async fn send_device_status(&self, sn: u64) {
        let id = self.inner.config.lock().id.clone();
        let xml = format!("<?xml version=\"1.0\" encoding=\"{{charset}}\"?>\r\n<Response>\r\n<CmdType>DeviceStatus</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>{id}</DeviceID>\r\n<Result>OK</Result>\r\n<Online>ONLINE</Online>\r\n<Status>OK</Status>\r\n<Encode>ON</Encode>\r\n<Record>OFF</Record>\r\n</Response>\r\n");
        self.message(&xml).await;
    }
}

/// Where a simulated device sends a stream.
enum Sink {
    /// To the platform's listening port (it offered `setup:passive`).
    Connect(SocketAddr),
    /// From our listening port, once the platform connects (it offered `setup:active`).
    Listening(tokio::net::TcpListener),
    /// Datagrams from this socket to the platform's port.
    Udp(UdpSocket, SocketAddr),
}

impl Sink {
    /// Our SDP answer: where we send from or listen, and how.
    fn answer(&self, id: &str, y: &str) -> String {
        let media = match self {
            Sink::Connect(_) => {
                "m=video 9 TCP/RTP/AVP 96\r\na=setup:active\r\na=connection:new\r\n".into()
            }
            Sink::Listening(l) => format!(
                "m=video {} TCP/RTP/AVP 96\r\na=setup:passive\r\na=connection:new\r\n",
                l.local_addr().map(|a| a.port()).unwrap_or(0)
            ),
            Sink::Udp(s, _) => format!(
                "m=video {} RTP/AVP 96\r\n",
                s.local_addr().map(|a| a.port()).unwrap_or(0)
            ),
        };
        format!(
            "v=0\r\no={id} 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             {media}a=sendonly\r\na=rtpmap:96 PS/90000\r\ny={y}\r\nf=v/2/5/25/1/1000a///\r\n"
        )
    }
}
