//! GB/T 28181 device access: simulated devices (gb28181sim) against the real gateway —
//! registration with digest, keepalive liveness, a catalog split into pages, catalog NOTIFYs,
//! camera events delivered to the channel's township with `source.protocol = "gb28181"`.

use crate::common::*;
use gateway_sim::gb28181sim::{SimConfig, SimDevice};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const SERVER_ID: &str = "34020000002000000001";
pub const PASSWORD: &str = "12345678";
pub const NVR: &str = "34020000001180000001";
const OTHER_PASSWORD_NVR: &str = "34020000001180000002";
const UNLISTED: &str = "34020000001320000999";

/// `[gb28181]` on loopback UDP: keepalives every second, offline after 3 missed, no picture
/// checks (a test that counts INVITEs must not meet one).
pub fn section(devices: &str) -> String {
    format!(
        "[gb28181]\nlisten_udp = \"127.0.0.1:0\"\nlisten_tcp = \"127.0.0.1:0\"\nsip_id = \"{SERVER_ID}\"\npassword = \"{PASSWORD}\"\n\
         keepalive_timeout_s = 1\nkeepalive_misses = 3\nvqd_interval_s = 0\n\n{devices}\n"
    )
}

/// Where this run of the gateway's GB/T 28181 platform listens over UDP.
pub fn udp(env: &Env) -> SocketAddr {
    env.gw
        .logged_addr("GB/T 28181 platform listening (UDP)")
        .expect("the gateway logs the GB/T 28181 address")
}

/// The camera events of one channel, as the township received them.
fn camera_events<'a>(d: &'a [gateway_sim::receiver::Delivery], channel: &str) -> Vec<&'a Value> {
    d.iter()
        .filter_map(|d| d.body.as_ref())
        .filter(|b| b["source"]["id"] == channel)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_register_keep_alive_and_their_channels_become_cameras() {
    let devices = format!(
        "[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\nname = \"北门录像机\"\n\n\
         [[gb28181.devices]]\nid = \"{OTHER_PASSWORD_NVR}\"\ntownship = \"lanjiang\"\npassword = \"its-own\"\n\n\
         [registry]\nquarantine_unknown_units = true\n"
    );
    let env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &section(&devices)).await;
    let server = udp(&env);

    // an NVR with three channels, the third OFF, its catalog one item per MESSAGE
    let mut config = SimConfig::new(NVR, PASSWORD, server, 3);
    config.keepalive = Duration::from_secs(1);
    config.channels[2].on = false;
    let (ch1, ch2, ch3) = (
        config.channels[0].id.clone(),
        config.channels[1].id.clone(),
        config.channels[2].id.clone(),
    );
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    let date = nvr.seen().date.expect("the 200 carries a Date");
    chrono::NaiveDateTime::parse_from_str(&date, "%Y-%m-%dT%H:%M:%S%.3f")
        .unwrap_or_else(|e| panic!("Date `{date}` is local time without a zone: {e}"));

    // the catalog, gathered from three pages, names decoded from GB2312
    let device = wait_device(&env, NVR, |d| {
        d["online"] == true && d["channels"].as_array().is_some_and(|c| c.len() == 3)
    })
    .await;
    assert_eq!(device["name"], "北门录像机");
    assert_eq!(device["transport"], "udp");
    assert_eq!(device["info"]["Model"], "NVR-1");
    let names: Vec<&str> = device["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["通道1", "通道2", "通道3"]);

    // the OFF channel is a camera.offline at once; the others are online (nothing to tell)
    let got = env
        .receiver
        .wait_for(WAIT, "camera.offline of the OFF channel", |d| {
            !camera_events(d, &ch3).is_empty()
        })
        .await
        .unwrap();
    let e = camera_events(&got, &ch3)[0];
    assert_eq!(e["kind"], "camera.offline");
    assert_eq!(e["source"]["protocol"], "gb28181");
    assert_eq!(e["source"]["name"], "通道3");
    assert_eq!(e["camera"]["reason"], "channel_off");
    assert_eq!(e["township"]["code"], "lanjiang");
    assert!(got.iter().all(|d| d.township == "lanjiang"));
    assert!(camera_events(&got, &ch1).is_empty() && camera_events(&got, &ch2).is_empty());

    // a catalog NOTIFY turns channel 1 off
    crate::wait_seen(&nvr, |s| s.subscriptions >= 1).await;
    nvr.set_channel(&ch1, false).await;
    let got = env
        .receiver
        .wait_for(WAIT, "camera.offline of channel 1", |d| {
            !camera_events(d, &ch1).is_empty()
        })
        .await
        .unwrap();
    assert_eq!(
        camera_events(&got, &ch1)[0]["camera"]["reason"],
        "channel_off"
    );

    // keepalives stop: channel 2 goes offline 3 s after the last one (± 2 s)
    nvr.silence(true);
    let silent_from = Instant::now();
    let got = env
        .receiver
        .wait_for(WAIT, "camera.offline of channel 2", |d| {
            !camera_events(d, &ch2).is_empty()
        })
        .await
        .unwrap();
    let after = silent_from.elapsed();
    assert!(
        after >= Duration::from_secs(1) && after <= Duration::from_secs(5),
        "offline after {after:?} of silence; 3 × 1 s expected"
    );
    let e = camera_events(&got, &ch2)[0];
    assert_eq!(e["kind"], "camera.offline");
    assert_eq!(e["camera"]["reason"], "keepalive_timeout");
    wait_device(&env, NVR, |d| {
        d["online"] == false && d["offline_reason"] == "keepalive_timeout"
    })
    .await;

    // a keepalive again: channel 2 online; channels 1 and 3 stay off
    nvr.silence(false);
    let got = env
        .receiver
        .wait_for(WAIT, "camera.online of channel 2", |d| {
            camera_events(d, &ch2)
                .iter()
                .any(|e| e["kind"] == "camera.online")
        })
        .await
        .unwrap();
    assert!(camera_events(&got, &ch1)
        .iter()
        .all(|e| e["kind"] == "camera.offline"));

    // channel 2 online of three: the township's online rate, as for RTSP cameras
    env.wait_metric(
        "gateway_camera_online_ratio{township=\"lanjiang\"}",
        1.0 / 3.0,
    )
    .await;
    let (_, t) = env.get("/api/v1/townships", Some(ADMIN_TOKEN)).await;
    let lanjiang = t["townships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "lanjiang")
        .unwrap();
    assert_eq!(lanjiang["cameras_online"], 1, "{t}");

    // registered again from another port: the binding moves
    let before = device["address"].as_str().unwrap().to_string();
    assert_eq!(nvr.rebind_and_register().await, 200);
    wait_device(&env, NVR, |d| {
        d["address"] != before.as_str() && d["online"] == true
    })
    .await;

    // the availability route counts the channels as the township's cameras
    let (s, v) = env
        .get("/api/v1/townships/lanjiang/availability", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["cameras"].as_array().unwrap().len(), 3, "{v}");

    // the channels are in the cameras list (ordered by id with any RTSP camera), with their
    // states, filters and pages as RTSP cameras have them
    let lanjiang = township_token("lanjiang");
    let (s, v) = env.get("/api/v1/cameras?limit=2", Some(&lanjiang)).await;
    assert_eq!(s, 200, "{v}");
    let (s, rest) = env
        .get(
            &format!("/api/v1/cameras?after={}", v["next"].as_str().unwrap()),
            Some(&lanjiang),
        )
        .await;
    assert_eq!(s, 200, "{rest}");
    let listed: Vec<(String, String)> = [&v, &rest]
        .iter()
        .flat_map(|p| p["cameras"].as_array().unwrap().iter())
        .filter(|c| c["protocol"] == "gb28181")
        .map(|c| {
            (
                c["id"].as_str().unwrap().into(),
                c["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [(&ch1, "offline"), (&ch2, "online"), (&ch3, "offline")]
        .iter()
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect();
    assert_eq!(listed, want, "{v} {rest}");
    let online = channels_listed(&env, "?state=online", &lanjiang).await;
    assert_eq!(online, std::slice::from_ref(&ch2));
    let (s, c) = env
        .get(&format!("/api/v1/cameras/{ch3}"), Some(&lanjiang))
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (&c["name"], &c["device"], &c["last_error"], &c["township"]),
        (
            &json!("通道3"),
            &json!(NVR),
            &json!("channel_off"),
            &json!("lanjiang")
        ),
        "{c}"
    );
    let yunshan = township_token("yunshan");
    let (s, _) = env
        .get(&format!("/api/v1/cameras/{ch3}"), Some(&yunshan))
        .await;
    assert_eq!(s, 404);
    assert!(channels_listed(&env, "", &yunshan).await.is_empty());

    // a township sees its own devices; another sees none
    let (s, v) = env
        .get("/api/v1/gb28181/devices", Some(&township_token("yunshan")))
        .await;
    assert_eq!((s, v["devices"].as_array().unwrap().len()), (200, 0), "{v}");
    let (s, v) = env
        .get(
            &format!("/api/v1/gb28181/devices/{NVR}"),
            Some(&township_token("yunshan")),
        )
        .await;
    assert_eq!(s, 404, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unlisted_devices_are_refused_and_counted() {
    let devices = format!(
        "[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n\n\
         [[gb28181.devices]]\nid = \"{OTHER_PASSWORD_NVR}\"\ntownship = \"lanjiang\"\npassword = \"its-own\"\n\n\
         [registry]\nquarantine_unknown_units = true\n"
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &section(&devices)).await;
    let server = udp(&env);
    let start = |id: &str, password: &str| {
        let mut c = SimConfig::new(id, password, server, 1);
        c.keepalive = Duration::ZERO;
        SimDevice::start(c)
    };
    assert_eq!(start(NVR, "wrong").await.unwrap().register().await, 403);
    // the server's password is not this device's: its own is
    assert_eq!(
        start(OTHER_PASSWORD_NVR, PASSWORD)
            .await
            .unwrap()
            .register()
            .await,
        403
    );
    assert_eq!(
        start(OTHER_PASSWORD_NVR, "its-own")
            .await
            .unwrap()
            .register()
            .await,
        200
    );
    let unlisted = start(UNLISTED, PASSWORD).await.unwrap();
    assert_eq!(unlisted.register().await, 403);
    // keepalives without a registration are not taken
    assert_eq!(unlisted.keepalive().await, 403);
    let fresh = start(NVR, PASSWORD).await.unwrap();
    assert_eq!(fresh.keepalive().await, 404);

    let m = env.gw.metrics().await;
    let rejected = |reason: &str| {
        metric(
            &m,
            &format!("gateway_ingest_rejected_total{{reason=\"{reason}\",source=\"gb28181\"}}"),
        )
    };
    assert_eq!(rejected("wrong_password"), 2.0);
    assert!(rejected("unknown_device") >= 2.0);
    let (s, v) = env.get("/api/v1/quarantine", Some(ADMIN_TOKEN)).await;
    assert_eq!(s, 200);
    assert!(
        v["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["unit"] == UNLISTED && u["protocol"] == "gb28181"),
        "{v}"
    );
    let (_, v) = env.get("/api/v1/gb28181/devices", Some(ADMIN_TOKEN)).await;
    let ids: Vec<&str> = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [OTHER_PASSWORD_NVR],
        "only the device that registered is listed"
    );
}

/// Polls a device's API view until `check` holds.
pub(crate) async fn wait_device(env: &Env, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (s, v) = env
            .get(&format!("/api/v1/gb28181/devices/{id}"), Some(ADMIN_TOKEN))
            .await;
        if s == 200 && check(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "device {id} never became as expected: {s} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_the_channels_township_once_with_their_chinese_descriptions() {
    // the NVR has no township of its own: its channels map by civil code
    let devices = format!(
        "[gb28181.civil_codes]\n\"3402\" = \"lanjiang\"\n\"340200\" = \"yunshan\"\n\n\
         [[gb28181.devices]]\nid = \"{NVR}\"\n"
    );
    let env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &section(&devices)).await;
    let mut config = SimConfig::new(NVR, PASSWORD, udp(&env), 2);
    config.keepalive = Duration::from_secs(1);
    let (ch1, ch2) = (config.channels[0].id.clone(), config.channels[1].id.clone());
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    wait_device(&env, NVR, |d| {
        d["channels"].as_array().is_some_and(|c| {
            c.len() == 2
                && c.iter()
                    .all(|c| c["township"] == "yunshan" && c["state"] == "online")
        })
    })
    .await;

    // an intrusion on channel 2, described in GB2312
    assert_eq!(nvr.alarm(&ch2, 5, 6, "周界入侵 东门").await, 200);
    let got = env
        .receiver
        .wait_for(WAIT, "camera.alarm", |d| !camera_events(d, &ch2).is_empty())
        .await
        .unwrap();
    let e = camera_events(&got, &ch2)[0];
    assert_eq!(e["kind"], "camera.alarm");
    assert_eq!(
        e["township"]["code"], "yunshan",
        "the longest civil-code prefix wins"
    );
    assert_eq!(e["source"]["protocol"], "gb28181");
    assert_eq!(e["camera"]["alarm"]["description"], "周界入侵 东门");
    assert_eq!(e["camera"]["alarm"]["type_name"], "入侵检测");
    assert_eq!(e["camera"]["alarm"]["method_name"], "视频报警");
    assert_eq!(e["camera"]["alarm"]["device"], NVR);
    assert_eq!(e["severity"], "critical", "priority 1");
    assert!(
        e["title"].as_str().unwrap().contains("入侵检测"),
        "{}",
        e["title"]
    );
    crate::wait_seen(&nvr, |s| s.alarm_responses >= 1).await;

    // the same alarm again within the dedup window: answered, counted, not delivered again
    assert_eq!(nvr.alarm(&ch2, 5, 6, "周界入侵 东门").await, 200);
    // a tamper alarm on channel 1 is camera.tamper
    assert_eq!(nvr.alarm(&ch1, 2, 2, "防拆").await, 200);
    let got = env
        .receiver
        .wait_for(WAIT, "camera.tamper", |d| {
            !camera_events(d, &ch1).is_empty()
        })
        .await
        .unwrap();
    assert_eq!(camera_events(&got, &ch1)[0]["kind"], "camera.tamper");
    assert_eq!(
        camera_events(&got, &ch2).len(),
        1,
        "the repeat is not delivered"
    );
    let m = env.gw.metrics().await;
    assert_eq!(
        metric(&m, "gateway_events_deduplicated_total{source=\"gb28181\"}"),
        1.0
    );
}

/// A REGISTER (with `auth` when given) from `device` over a stream.
fn register_request(device: &str, local: SocketAddr, cseq: u32, auth: Option<String>) -> Vec<u8> {
    use gb28181::sip::Outgoing;
    let domain = &SERVER_ID[..10];
    let mut out = Outgoing::request("REGISTER", &format!("sip:{SERVER_ID}@{domain}"))
        .header(
            "Via",
            &format!("SIP/2.0/TCP {local};rport;branch=z9hG4bK{cseq}tcp"),
        )
        .header("From", &format!("<sip:{device}@{domain}>;tag=t1"))
        .header("To", &format!("<sip:{device}@{domain}>"))
        .header("Call-ID", "tcp-call@127.0.0.1")
        .header("CSeq", &format!("{cseq} REGISTER"))
        .header("Contact", &format!("<sip:{device}@{local}>"))
        .header("Expires", "3600");
    if let Some(a) = auth {
        out = out.header("Authorization", &a);
    }
    out.into_bytes()
}

/// Reads the next SIP message from a stream.
async fn read_message(
    stream: &mut tokio::net::TcpStream,
    framer: &mut gb28181::sip::frame::Framer,
) -> gb28181::sip::SipMessage {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(m) = framer.next_message().unwrap() {
            return gb28181::sip::parse(&m).unwrap();
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "the gateway closed the connection");
        framer.push(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_device_registers_and_is_asked_on_its_own_connection() {
    use gb28181::sip::digest::{self, Answer};
    use gb28181::sip::{header, SipMessage};
    use tokio::io::AsyncWriteExt;
    let devices = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang"], |c| c.extra += &section(&devices)).await;
    let tcp = env
        .gw
        .logged_addr("GB/T 28181 platform listening (TCP)")
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let mut framer = gb28181::sip::frame::Framer::new(65_535);
    // the REGISTER split in two writes: framed by Content-Length, not by reads
    let first = register_request(NVR, local, 1, None);
    stream.write_all(&first[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&first[20..]).await.unwrap();
    let SipMessage::Response(challenge) = read_message(&mut stream, &mut framer).await else {
        panic!("a response")
    };
    assert_eq!(challenge.status_code.code(), 401);
    let params = digest::parse(header(&challenge.headers, "WWW-Authenticate").unwrap()).unwrap();
    let uri = format!("sip:{SERVER_ID}@{}", &SERVER_ID[..10]);
    let response = digest::answer(&Answer {
        username: NVR,
        realm: &params["realm"],
        password: PASSWORD,
        method: "REGISTER",
        uri: &uri,
        nonce: &params["nonce"],
        qop: Some(("auth", "00000001", "abcdef")),
    });
    let auth = format!(
        "Digest username=\"{NVR}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", qop=auth, nc=00000001, cnonce=\"abcdef\"",
        params["realm"], params["nonce"]
    );
    stream
        .write_all(&register_request(NVR, local, 2, Some(auth)))
        .await
        .unwrap();
    let SipMessage::Response(ok) = read_message(&mut stream, &mut framer).await else {
        panic!("a response")
    };
    assert_eq!(ok.status_code.code(), 200, "a qop answer is taken too");
    // the platform asks what the device is — on this connection
    let SipMessage::Request(query) = read_message(&mut stream, &mut framer).await else {
        panic!("a request")
    };
    assert_eq!(query.method, gb28181::sip::Method::Message);
    assert!(String::from_utf8_lossy(&query.body).contains("<CmdType>DeviceInfo</CmdType>"));
    let d = wait_device(&env, NVR, |d| d["online"] == true).await;
    assert_eq!(
        (d["transport"].as_str(), d["address"].as_str()),
        (Some("tcp"), Some(local.to_string().as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_messages_are_counted_and_the_platform_keeps_serving() {
    use tokio::io::AsyncWriteExt;
    let devices = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang"], |c| c.extra += &section(&devices)).await;
    let server = udp(&env);
    let rss = || gateway_sim::harness::rss_kib(env.gw.pid());
    let before = rss();
    // 8,000 datagrams of random bytes, of SIP-looking junk, and of 65,000 bytes (paced, so
    // that the kernel keeps most of them for the gateway to read)
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..8_000u32 {
        let datagram: Vec<u8> = match i % 4 {
            0 => (0..(next() % 1400)).map(|_| next() as u8).collect(),
            1 => format!(
                "MESSAGE sip:x SIP/2.0\r\nl: {}\r\n\r\n<Notify><CmdType>Keepalive",
                next()
            )
            .into_bytes(),
            2 => b"REGISTER sip:a@b SIP/2.0\r\nFrom: <sip:340200000013200000019999@x>\r\n\r\n"
                .to_vec(),
            _ => vec![b'A'; 65_000],
        };
        let _ = socket.send_to(&datagram, server).await;
        if i % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // TCP: a header that never ends, and a lying Content-Length
    let tcp = env
        .gw
        .logged_addr("GB/T 28181 platform listening (TCP)")
        .unwrap();
    let mut endless = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let _ = endless.write_all(&vec![b'x'; 200_000]).await;
    let mut lying = tokio::net::TcpStream::connect(tcp).await.unwrap();
    lying
        .write_all(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n")
        .await
        .unwrap();
    // a real device still registers and keeps alive
    let mut config = SimConfig::new(NVR, PASSWORD, server, 1);
    config.keepalive = Duration::ZERO;
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    assert_eq!(nvr.keepalive().await, 200);
    // the TCP connections are read on their own tasks: poll until both are refused (the
    // endless header and the lying length)
    let m = env
        .wait_metric_where(
            "gateway_ingest_rejected_total{reason=\"too_large\",source=\"gb28181\"}",
            "counted both TCP connections",
            |v| v >= 2.0,
        )
        .await;
    let refused: f64 = ["unreadable", "too_large", "bad_id"]
        .iter()
        .map(|r| {
            metric(
                &m,
                &format!("gateway_ingest_rejected_total{{reason=\"{r}\",source=\"gb28181\"}}"),
            )
        })
        .sum();
    assert!(
        refused >= 6_000.0,
        "most of the 8,000 datagrams read and refused: {refused}"
    );
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channels_snapshot_is_pulled_by_invite_as_a_jpeg_of_the_streams_size() {
    let devices = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &section(&devices)).await;
    let mut config = SimConfig::new(NVR, PASSWORD, udp(&env), 1);
    config.keepalive = Duration::from_secs(1);
    config.mid_gop = true; // P frames (and no stream map) before the first keyframe
    let ch = config.channels[0].id.clone();
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    wait_device(&env, NVR, |d| d["channels"][0]["state"] == "online").await;

    let get = |path: String, token: String| {
        let client = env.client.clone();
        let url = env.gw.url(&path);
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let r = get(
        format!("/api/v1/cameras/{ch}/snapshot.jpg"),
        township_token("lanjiang"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let jpeg = r.bytes().await.unwrap();
    assert_eq!(
        cameras::video::decode::jpeg_dimensions(&jpeg),
        Some((640, 360)),
        "the stream's size"
    );
    // the stream was INVITEd once and ended with BYE
    crate::wait_seen(&nvr, |s| s.invites == 1 && s.byes == 1).await;
    // a thumbnail within seconds reuses the keyframe: no second INVITE
    let r = get(
        format!("/api/v1/cameras/{ch}/snapshot.jpg?width=320"),
        ADMIN_TOKEN.into(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let thumb = r.bytes().await.unwrap();
    assert_eq!(
        cameras::video::decode::jpeg_dimensions(&thumb),
        Some((320, 180))
    );
    assert_eq!(nvr.seen().invites, 1);
    // another township does not see the channel
    let r = get(
        format!("/api/v1/cameras/{ch}/snapshot.jpg"),
        township_token("yunshan"),
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_pulled_over_udp_and_by_connecting_to_the_device_as_configured() {
    const UDP_NVR: &str = "34020000001180000003";
    const ACTIVE_NVR: &str = "34020000001180000004";
    // the platform's default is UDP; one device says it only listens for TCP
    let devices = format!(
        "media = \"udp\"\n\n[[gb28181.devices]]\nid = \"{UDP_NVR}\"\ntownship = \"lanjiang\"\n\n\
         [[gb28181.devices]]\nid = \"{ACTIVE_NVR}\"\ntownship = \"lanjiang\"\nmedia = \"tcp_active\"\n"
    );
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += &section("").replace(
            "vqd_interval_s = 0\n",
            &format!("vqd_interval_s = 0\n{devices}"),
        )
    })
    .await;
    for (id, offered) in [(UDP_NVR, "udp"), (ACTIVE_NVR, "tcp_active")] {
        let mut config = SimConfig::new(id, PASSWORD, udp(&env), 1);
        config.keepalive = Duration::from_secs(1);
        config.mid_gop = true;
        let ch = config.channels[0].id.clone();
        let nvr = SimDevice::start(config).await.unwrap();
        assert_eq!(nvr.register().await, 200);
        wait_device(&env, id, |d| d["channels"][0]["state"] == "online").await;
        let r = env
            .client
            .get(env.gw.url(&format!("/api/v1/cameras/{ch}/snapshot.jpg")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{offered}");
        let jpeg = r.bytes().await.unwrap();
        assert_eq!(
            cameras::video::decode::jpeg_dimensions(&jpeg),
            Some((640, 360)),
            "{offered}: the stream's size"
        );
        crate::wait_seen(&nvr, |s| s.invites == 1 && s.byes == 1).await;
        assert_eq!(nvr.seen().offers, vec![offered]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_alarm_at_a_unit_linked_to_a_channel_carries_its_snapshot() {
    let devices = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let ch = gateway_sim::gb28181sim::channel_id(NVR, 1);
    let env = Env::start(&["lanjiang"], |c| {
        c.units.clear();
        c.extra += &section(&devices);
        c.extra += &format!(
            "[[units]]\nid = \"mall\"\nname = \"商场\"\ntownship = \"lanjiang\"\ncameras = [\"{ch}\"]\n\n"
        );
    })
    .await;
    assert!(
        env.gw.log().contains("taken as a GB/T 28181 channel"),
        "the link to a channel no catalog reported yet is said at start"
    );
    let mut config = SimConfig::new(NVR, PASSWORD, udp(&env), 1);
    config.keepalive = Duration::from_secs(1);
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    wait_device(&env, NVR, |d| d["channels"][0]["state"] == "online").await;

    let fire = serde_json::json!({"system_type": 1, "system_addr": 1, "component_type": 40,
        "component_addr": 5, "status": ["fire"], "description": "3F 东走廊"});
    let (status, r) = env.push("mall", "status", &fire).await;
    assert_eq!(status, 202, "{r}");
    let id = r["events"][0].as_str().unwrap().to_string();
    let e = env
        .wait_event(&id, "its snapshot", |e| {
            e["evidence"][0]["camera"] == ch.as_str()
        })
        .await;
    let url = e["evidence"][0]["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("/api/v1/snapshots/{ch}/")),
        "{url}"
    );
    let jpeg = env
        .client
        .get(env.gw.url(&url))
        .bearer_auth(township_token("lanjiang"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        cameras::video::decode::jpeg_dimensions(&jpeg),
        Some((640, 360))
    );
    assert!(nvr.seen().invites >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_channel_is_reported_by_its_picture_checks_and_not_counted_intact() {
    let devices = format!("[[gb28181.devices]]\nid = \"{NVR}\"\ntownship = \"lanjiang\"\n");
    let env = Env::start(&["lanjiang"], |c| {
        c.extra += &section(&devices).replace("vqd_interval_s = 0", "vqd_interval_s = 1")
    })
    .await;
    let mut config = SimConfig::new(NVR, PASSWORD, udp(&env), 1);
    config.keepalive = Duration::from_secs(1);
    config.content = gateway_sim::camsim::clip::Content::Black;
    let ch = config.channels[0].id.clone();
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    let got = env
        .receiver
        .wait_for(WAIT, "camera.quality of the black channel", |d| {
            camera_events(d, &ch)
                .iter()
                .any(|e| e["kind"] == "camera.quality")
        })
        .await
        .unwrap();
    let e = camera_events(&got, &ch)
        .into_iter()
        .find(|e| e["kind"] == "camera.quality")
        .unwrap();
    assert_eq!(e["camera"]["failing_checks"][0], "black", "{e}");
    assert_eq!(e["source"]["protocol"], "gb28181");
    assert!(nvr.seen().invites >= 2, "a sample is a pulled picture");
    env.wait_metric("gateway_camera_online_ratio{township=\"lanjiang\"}", 1.0)
        .await;
    env.wait_metric("gateway_camera_integrity_ratio{township=\"lanjiang\"}", 0.0)
        .await;
    // the cameras list shows the channel's picture failing, and the filter finds it
    let (s, v) = env
        .get("/api/v1/cameras?picture=failing", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(s, 200, "{v}");
    let listed = &v["cameras"][0];
    assert_eq!(listed["id"], ch.as_str(), "{v}");
    assert_eq!(listed["picture"]["failing"][0], "black", "{v}");
    // its baseline can be learned again, as an RTSP camera's
    let r = env
        .client
        .post(
            env.gw
                .url(&format!("/api/v1/cameras/{ch}/baseline/relearn")),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

/// The ids of the GB/T 28181 channels in `GET /api/v1/cameras{query}`, as `token` sees it.
async fn channels_listed(env: &Env, query: &str, token: &str) -> Vec<String> {
    let (s, v) = env
        .get(&format!("/api/v1/cameras{query}"), Some(token))
        .await;
    assert_eq!(s, 200, "{v}");
    v["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["protocol"] == "gb28181")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// `[[gb28181.devices]]` as TOML.
fn listed(devices: &[(&str, &str)]) -> String {
    devices
        .iter()
        .map(|(id, t)| format!("[[gb28181.devices]]\nid = \"{id}\"\ntownship = \"{t}\"\n\n"))
        .collect()
}

/// Polls `path` until it answers `status` (bounded).
async fn wait_status(env: &Env, path: &str, token: &str, status: u16) {
    let deadline = Instant::now() + WAIT;
    while env.get(path, Some(token)).await.0 != status {
        assert!(Instant::now() < deadline, "{path} never answered {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reloads the config as it is written now; the answer.
async fn reload(env: &Env) -> (u16, Value) {
    env.config.write(env.dir.path());
    env.post("/api/v1/admin/reload", Some(ADMIN_TOKEN), &json!({}))
        .await
}

/// A reload adds a device (it may register at once), moves a device to another township (its
/// channel follows, with its gauge), sets one channel's township on its own, removes a device (forgotten, refused, its channel gone) — and
/// refuses a change to the platform's own settings, which needs a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_moves_and_removes_devices_without_a_restart() {
    const NEW_NVR: &str = "34020000001180000005";
    let first = section(&listed(&[(NVR, "lanjiang")]));
    let mut env = Env::start(&["lanjiang", "yunshan"], |c| c.extra += &first).await;
    let mut config = SimConfig::new(NVR, PASSWORD, udp(&env), 1);
    config.keepalive = Duration::from_secs(1);
    let ch = config.channels[0].id.clone();
    let nvr = SimDevice::start(config).await.unwrap();
    assert_eq!(nvr.register().await, 200);
    wait_device(&env, NVR, |d| d["channels"][0]["state"] == "online").await;
    let mut config = SimConfig::new(NEW_NVR, PASSWORD, udp(&env), 1);
    config.keepalive = Duration::ZERO;
    let new_ch = config.channels[0].id.clone();
    let newer = SimDevice::start(config).await.unwrap();
    assert_eq!(newer.register().await, 403, "not listed yet");

    // NEW_NVR listed, NVR moved to yunshan, NEW_NVR's channel set to lanjiang on its own
    let second = section(&format!(
        "{}[gb28181.channels]\n\"{new_ch}\" = \"lanjiang\"\n",
        listed(&[(NVR, "yunshan"), (NEW_NVR, "yunshan")])
    ));
    env.config.extra = env.config.extra.replace(&first, &second);
    let (s, v) = reload(&env).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["reloaded"]["gb28181_devices_added"], json!([NEW_NVR]));
    assert_eq!(v["reloaded"]["gb28181_devices_changed"], json!([NVR]));
    assert_eq!(newer.register().await, 200);
    let yunshan = township_token("yunshan");
    wait_status(&env, &format!("/api/v1/cameras/{ch}"), &yunshan, 200).await;
    let lanjiang = township_token("lanjiang");
    wait_status(&env, &format!("/api/v1/cameras/{new_ch}"), &lanjiang, 200).await;
    let (s, _) = env
        .get(&format!("/api/v1/cameras/{ch}"), Some(&lanjiang))
        .await;
    assert_eq!(s, 404, "no longer lanjiang's");
    env.wait_metric(
        &format!("gateway_camera_up{{camera=\"{ch}\",township=\"yunshan\"}}"),
        1.0,
    )
    .await;
    let m = env.metrics().await;
    assert!(
        !m.contains(&format!("camera=\"{ch}\",township=\"lanjiang\"")),
        "the old township's series is gone"
    );

    // NVR removed: forgotten, refused, its channel gone
    let third = section(&listed(&[(NEW_NVR, "yunshan")]));
    env.config.extra = env.config.extra.replace(&second, &third);
    let (s, v) = reload(&env).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["reloaded"]["gb28181_devices_removed"], json!([NVR]));
    let (s, _) = env
        .get(&format!("/api/v1/gb28181/devices/{NVR}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(s, 404);
    wait_status(&env, &format!("/api/v1/cameras/{ch}"), ADMIN_TOKEN, 404).await;
    assert_eq!(nvr.register().await, 403);

    // NEW_NVR removed while the gateway is down: the device list kept from the run before
    // does not bring it back
    let (s, d) = env
        .get(
            &format!("/api/v1/gb28181/devices/{NEW_NVR}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!((s, d["channels_total"].as_u64()), (200, Some(1)), "{d}");
    env.gw.terminate().await.unwrap();
    env.config.extra = env.config.extra.replace(&third, &section(""));
    env.config.write(env.dir.path());
    env.restart().await;
    let (s, v) = env.get("/api/v1/gb28181/devices", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (s, v["devices"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    assert!(channels_listed(&env, "", ADMIN_TOKEN).await.is_empty());

    // the platform's own settings need a restart
    env.config.extra = env
        .config
        .extra
        .replace("keepalive_misses = 3", "keepalive_misses = 4");
    let (s, v) = reload(&env).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["errors"].to_string().contains("[gb28181]"),
        "{v}"
    );
}
