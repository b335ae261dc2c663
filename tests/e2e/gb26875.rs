//! GB/T 26875.3 over TCP: a simulated transmission device against the real gateway — confirm
//! only after commit, deny for broken frames, coalesced and split frames, unknown devices,
//! and an alarm confirmed just before a kill -9 still delivered.

use crate::common::*;
use gateway_sim::gbsim::{component_status, fire_alarm, patrol_answer, Device};
use gateway_sim::receiver::Behavior;
use ingest::gb26875::{command, Adu, Objects};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

const DEVICE: u64 = 889;
const CENTER: u64 = 88888;

async fn start() -> Env {
    let extra = format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\nidle_timeout_s = 30\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\n\n\
         [registry]\nquarantine_unknown_units = true\n\n"
    );
    Env::start(&["lanjiang"], |c| c.extra += &extra).await
}

/// Where this run of the gateway's GB/T 26875.3 server listens (it bound port 0).
fn addr(env: &Env) -> SocketAddr {
    env.gw
        .logged_addr("GB/T 26875.3 server listening")
        .expect("the gateway logs the GB/T 26875.3 address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_confirmed_after_commit_and_broken_ones_denied() {
    let env = start().await;
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();

    // a fire alarm: confirmed (same serial, addresses swapped), delivered with its description
    let alarm = dev.frame(Some(fire_alarm(7, "3F 东走廊感烟探测器")));
    let answer = dev.exchange(&alarm, WAIT).await.unwrap();
    assert_eq!(answer.header.command, command::CONFIRM);
    assert_eq!(
        (answer.header.source, answer.header.destination),
        (CENTER, DEVICE)
    );
    assert!(answer.adu.is_none());
    let got = env
        .receiver
        .wait_for(WAIT, "the alarm", |d| !d.is_empty())
        .await
        .unwrap();
    let e = got[0].body.as_ref().unwrap();
    assert_eq!(e["kind"], "fire.alarm");
    assert_eq!(e["fire"]["description"], "3F 东走廊感烟探测器");
    assert_eq!(e["fire"]["component_type"], 42);
    assert_eq!(e["source"]["id"], "gb-unit");
    assert_eq!(e["source"]["protocol"], "gb26875");

    // a heartbeat is confirmed and makes the unit online
    let hb = dev.frame(None);
    assert_eq!(
        dev.exchange(&hb, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let (_, unit) = env
        .get(
            "/api/v1/units/gb-unit",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(unit["online"], true, "{unit}");

    // a bad checksum is denied with the frame's serial
    let bad = dev.frame(Some(fire_alarm(8, "")));
    let serial = bad.header.serial;
    let mut bytes = bad.encode();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x55;
    dev.write(&bytes).await.unwrap();
    let deny = dev.recv(WAIT).await.unwrap();
    assert_eq!(
        (deny.header.command, deny.header.serial),
        (command::DENY, serial)
    );

    // split across writes, then two coalesced in one write, after garbage: all confirmed
    let split = dev.frame(Some(fire_alarm(9, "split"))).encode();
    dev.write(&split[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    dev.write(&split[10..]).await.unwrap();
    assert_eq!(
        dev.recv(WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let mut two = b"\x00\xffjunk".to_vec();
    two.extend(dev.frame(Some(fire_alarm(10, ""))).encode());
    two.extend(
        dev.frame(Some(Adu {
            kind: 21,
            objects: Objects::UitdStatus(vec![(0x08, gateway_sim::gbsim::now_label())]),
        }))
        .encode(),
    );
    dev.write(&two).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            dev.recv(WAIT).await.unwrap().header.command,
            command::CONFIRM
        );
    }
    let want: BTreeSet<u64> = [7, 9, 10].into_iter().collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
    let got = env
        .receiver
        .wait_for(WAIT, "the UITD power fault", |d| {
            d.iter().any(|d| d.event_header == "fire.power_fault")
        })
        .await
        .unwrap();
    let pf = got
        .iter()
        .find(|d| d.event_header == "fire.power_fault")
        .and_then(|d| d.body.clone())
        .unwrap();
    assert_eq!(pf["fire"]["description"], "传输装置主电故障", "{pf}");

    // a fault, then the same fault again: confirmed both times, delivered once (dedup)
    let fault = component_status(11, 0x0004, "");
    for _ in 0..2 {
        let f = dev.frame(Some(fault.clone()));
        assert_eq!(
            dev.exchange(&f, WAIT).await.unwrap().header.command,
            command::CONFIRM
        );
    }

    // an unknown device is denied and disconnected, counted, and listed
    let mut stranger = Device::connect(addr(&env), 12345, CENTER).await.unwrap();
    let f = stranger.frame(None);
    let deny = stranger.exchange(&f, WAIT).await.unwrap();
    assert_eq!(deny.header.command, command::DENY);
    assert!(
        stranger.recv(Duration::from_secs(2)).await.is_none(),
        "disconnected"
    );
    let m = env.metrics().await;
    for (reason, n) in [("checksum", 1.0), ("garbage", 1.0), ("unknown_unit", 1.0)] {
        let series =
            format!("gateway_ingest_rejected_total{{reason=\"{reason}\",source=\"gb26875\"}}");
        assert_eq!(metric(&m, &series), n, "{series}");
    }
    let (_, q) = env
        .get(
            "/api/v1/quarantine",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert!(q.to_string().contains("gb26875:12345"), "{q}");
    let faults = env
        .receiver
        .deliveries()
        .iter()
        .filter(|d| d.event_header == "fire.fault")
        .count();
    assert_eq!(faults, 1, "the repeated fault is deduplicated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_confirmed_before_a_kill_9_is_delivered_after_the_restart() {
    let mut env = start().await;
    env.receiver.set_behavior("lanjiang", Behavior::Always(503));
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let alarm = dev.frame(Some(fire_alarm(77, "机房")));
    assert_eq!(
        dev.exchange(&alarm, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    env.gw.kill9();
    env.receiver.set_behavior("lanjiang", Behavior::Accept);
    env.restart().await;
    let want: BTreeSet<u64> = [77].into_iter().collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_sent_again_after_a_kill_9_raises_no_second_alarm() {
    let mut env = start().await;
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let alarm = dev.frame(Some(fire_alarm(78, "配电间")));
    assert_eq!(
        dev.exchange(&alarm, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let want: BTreeSet<u64> = [78].into_iter().collect();
    crate::wait_for_addrs(&env, "lanjiang", &want).await;
    // the confirm was lost with the gateway: the device sends the same frame again
    env.gw.kill9();
    env.restart().await;
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    assert_eq!(
        dev.exchange(&alarm, WAIT).await.unwrap().header.command,
        command::CONFIRM,
        "confirmed again"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    // (delivered again, perhaps — at least once — but under the same id)
    let alarms: BTreeSet<String> = env
        .receiver
        .deliveries()
        .iter()
        .filter(|d| d.event_header == "fire.alarm")
        .map(|d| d.idempotency_key.clone())
        .collect();
    assert_eq!(
        alarms.len(),
        1,
        "the same frame is the same alarm: {alarms:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_sync_on_connect_and_a_patrol_check_round_trip() {
    let env = start().await;
    let admin = Some(gateway_sim::harness::ADMIN_TOKEN);
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let hb = dev.frame(None);
    dev.write(&hb.encode()).await.unwrap();
    // the gateway sets the device's clock when it connects
    let sync = dev.next_command(WAIT).await.expect("a clock sync");
    assert_eq!(sync.header.command, command::CONTROL);
    assert_eq!(
        (sync.header.source, sync.header.destination),
        (CENTER, DEVICE)
    );
    let Some(Adu {
        kind: 90,
        objects: Objects::SyncClock(t),
    }) = sync.adu
    else {
        panic!("type 90: {sync:?}");
    };
    let east8 = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let drift = (chrono::Utc::now() - t.to_datetime(east8).unwrap().with_timezone(&chrono::Utc))
        .num_seconds()
        .abs();
    assert!(drift <= 2, "the gateway's clock, in the device's time zone");
    dev.confirm(&sync).await.unwrap();

    // patrol check: sent, confirmed, answered, timed
    let (status, body) = env
        .post(
            "/api/v1/units/gb-unit/patrol-check",
            admin,
            &serde_json::json!({"timeout_min": 5}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let check = dev.next_command(WAIT).await.expect("the patrol check");
    assert_eq!(
        check.adu.as_ref().map(|a| a.objects.clone()),
        Some(Objects::PatrolCheck(5))
    );
    dev.confirm(&check).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = dev.frame(Some(patrol_answer(3)));
    dev.write(&answer.encode()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let p = loop {
        let (status, p) = env.get("/api/v1/units/gb-unit/patrol-check", admin).await;
        assert_eq!(status, 200, "{p}");
        if !p["answered_at"].is_null() {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(p["serial"], check.header.serial);
    assert!(!p["confirmed_at"].is_null(), "{p}");
    assert_eq!(p["operator"], 3);
    let r = p["response_s"].as_f64().unwrap();
    assert!((0.25..5.0).contains(&r), "{p}");
    assert_eq!(p["unconfirmed"], false);
    // and it counts in the assessment: one check, answered in time
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, report) = env
            .get("/api/v1/reports/assessment?township=lanjiang", admin)
            .await;
        assert_eq!(status, 200, "{report}");
        let u = &report["townships"][0]["units"];
        if u["patrol_checks"] == 1 && u["patrol_answered_in_time"] == 1 {
            let median = u["patrol_median_response_s"].as_f64().unwrap();
            assert!((median - r).abs() < 1.0, "{u} vs {p}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{u}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // the connected devices, and what a unit without a device gets
    let (_, d) = env.get("/api/v1/gb26875/devices", admin).await;
    assert_eq!(d["devices"][0]["unit"], "gb-unit", "{d}");
    let (status, e) = env
        .post(
            "/api/v1/units/lanjiang-u1/patrol-check",
            admin,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("device_unavailable")),
        "{e}"
    );
    let (status, _) = env
        .post(
            "/api/v1/units/gb-unit/patrol-check",
            Some(gateway_sim::harness::INGEST_TOKEN),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 403, "an ingest-only token cannot command devices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_demand_per_unit_time_zones_and_a_peer_allow_list() {
    // a second unit whose device lives in UTC and may connect from 10.9.9.9 only
    let extra = format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\nutc_offset = \"+00:00\"\n\n\
         [[units]]\nid = \"gb-far\"\nname = \"远端单位\"\ntownship = \"lanjiang\"\ngb26875_address = 890\ngb26875_peers = [\"10.9.9.9\"]\n\n"
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &extra).await;
    let admin = Some(gateway_sim::harness::ADMIN_TOKEN);
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let alarm = dev.frame(Some(fire_alarm(5, "UTC")));
    let sent_label = match &alarm.adu.as_ref().unwrap().objects {
        Objects::ComponentStatus(v) => v[0].time,
        _ => unreachable!(),
    };
    assert_eq!(
        dev.exchange(&alarm, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let got = env
        .receiver
        .wait_for(WAIT, "the alarm", |d| !d.is_empty())
        .await
        .unwrap();
    let occurred = got[0].body.as_ref().unwrap()["occurred_at"]
        .as_str()
        .unwrap()
        .to_string();
    // the device's label is read as UTC for this unit: +08:00 local wall time, 8 h later
    let utc = sent_label
        .to_datetime(chrono::FixedOffset::east_opt(0).unwrap())
        .unwrap();
    let shown = chrono::DateTime::parse_from_rfc3339(&occurred).unwrap();
    assert_eq!(shown, utc, "{occurred}");

    // a read of the UITD status, answered by the device
    let (status, body) = env
        .post(
            "/api/v1/units/gb-unit/read",
            admin,
            &serde_json::json!({"type": 81}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    // (the clock sync sent when the device connected may come first)
    let req = loop {
        let f = dev.next_command(WAIT).await.expect("the read");
        if f.header.command == command::REQUEST {
            break f;
        }
        dev.confirm(&f).await.unwrap();
    };
    dev.reply(&req).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let r = loop {
        let (status, r) = env.get("/api/v1/units/gb-unit/read/81", admin).await;
        assert_eq!(status, 200, "{r}");
        if !r["replied_at"].is_null() {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(r["reply_kind"], 21, "{r}");
    assert!(r["objects"].as_str().unwrap().contains("UitdStatus"), "{r}");
    let (status, e) = env
        .post(
            "/api/v1/units/gb-unit/read",
            admin,
            &serde_json::json!({"type": 3}),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_read")),
        "{e}"
    );

    // a device connecting from an address its unit does not allow is denied and cut off
    let mut far = Device::connect(addr(&env), 890, CENTER).await.unwrap();
    let f = far.frame(None);
    assert_eq!(
        far.exchange(&f, WAIT).await.unwrap().header.command,
        command::DENY
    );
    assert!(
        far.recv(Duration::from_secs(2)).await.is_none(),
        "disconnected"
    );
    env.wait_metric(
        "gateway_ingest_rejected_total{reason=\"peer_not_allowed\",source=\"gb26875\"}",
        1.0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_command_is_sent_again_with_its_serial() {
    let env = start().await;
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let hb = dev.frame(None);
    dev.write(&hb.encode()).await.unwrap();
    // the clock sync on connect, not confirmed: it comes again 10 s later, same serial
    let first = dev.next_command(WAIT).await.expect("the clock sync");
    let started = std::time::Instant::now();
    let again = dev.next_command(WAIT).await.expect("sent again");
    let waited = started.elapsed();
    assert_eq!(again.header.serial, first.header.serial);
    assert_eq!(again.adu, first.adu);
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(13),
        "{waited:?}"
    );
    // confirmed now: no third send
    dev.confirm(&again).await.unwrap();
    assert!(dev.next_command(Duration::from_secs(12)).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_replaces_the_old_connection_and_silent_ones_are_closed() {
    let extra = format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\nidle_timeout_s = 2\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\n\n"
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &extra).await;
    let mut old = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let hb = old.frame(None);
    assert_eq!(
        old.exchange(&hb, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    // the same device connects again: the new connection serves, the old one is closed
    let mut new = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let hb = new.frame(None);
    assert_eq!(
        new.exchange(&hb, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let closed = tokio::time::timeout(WAIT, async {
        // whatever was still queued for it (a clock sync) may come first; then the end
        while old.recv(WAIT).await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the old connection was closed");
    let (_, d) = env
        .get(
            "/api/v1/gb26875/devices",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(d["devices"].as_array().unwrap().len(), 1, "{d}");
    env.wait_metric("gateway_gb26875_replaced_total", 1.0).await;
    assert!(
        env.gw.log().contains("WARN") && env.gw.log().contains("connection replaced"),
        "a replaced connection is logged at WARN"
    );
    // silence past idle_timeout_s closes the connection
    let started = std::time::Instant::now();
    while new.recv(Duration::from_secs(5)).await.is_some() {}
    let silent = started.elapsed();
    assert!(
        silent < Duration::from_secs(5),
        "closed after ~2 s of silence: {silent:?}"
    );
    env.wait_metric("gateway_gb26875_connections", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_bytes_keep_no_connection_open() {
    let extra = format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\nidle_timeout_s = 2\nlogin_timeout_s = 1\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\n\n"
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &extra).await;
    // never identifies, but sends a byte every 300 ms: closed at the login deadline
    let mut stranger = tokio::net::TcpStream::connect(addr(&env)).await.unwrap();
    let closed_after = dribble(&mut stranger).await;
    assert!(
        closed_after < Duration::from_secs(3),
        "login deadline 1 s: {closed_after:?}"
    );
    // identified, then only stray bytes: closed once idle_timeout passes after the last frame
    let mut dev = Device::connect(addr(&env), DEVICE, CENTER).await.unwrap();
    let hb = dev.frame(None);
    assert_eq!(
        dev.exchange(&hb, WAIT).await.unwrap().header.command,
        command::CONFIRM
    );
    let closed_after = dribble(dev.stream()).await;
    assert!(
        closed_after < Duration::from_secs(4),
        "idle 2 s from the last valid frame: {closed_after:?}"
    );
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_gb26875_timeouts_total{phase=\"login\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "gateway_gb26875_timeouts_total{phase=\"idle\"}"),
        1.0
    );
    env.wait_metric("gateway_gb26875_connections", 0.0).await;
}

/// Writes one `@` every 300 ms until the gateway closes the connection; how long that took.
async fn dribble(stream: &mut tokio::net::TcpStream) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    while started.elapsed() < Duration::from_secs(10) {
        if stream.write_all(b"@").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => {}
        }
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_take_every_slot() {
    let extra = format!(
        "[gb26875]\nlisten = \"127.0.0.1:0\"\nmax_connections_per_peer = 2\n\n\
         [[units]]\nid = \"gb-unit\"\nname = \"传输装置单位\"\ntownship = \"lanjiang\"\ngb26875_address = {DEVICE}\n\n"
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &extra).await;
    let _held: Vec<tokio::net::TcpStream> = vec![
        tokio::net::TcpStream::connect(addr(&env)).await.unwrap(),
        tokio::net::TcpStream::connect(addr(&env)).await.unwrap(),
    ];
    let mut third = tokio::net::TcpStream::connect(addr(&env)).await.unwrap();
    let mut buf = [0u8; 16];
    let read =
        tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut third, &mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the third is closed at once: {read:?}"
    );
    env.wait_metric(
        "gateway_ingest_rejected_total{reason=\"too_many_from_peer\",source=\"gb26875\"}",
        1.0,
    )
    .await;
}
