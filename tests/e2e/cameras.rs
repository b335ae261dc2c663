//! Cameras over RTSP: against camsim (faults injected per camera) and against GStreamer's
//! gst-rtsp-server, an implementation nobody here wrote.

use crate::common::*;
use gateway_sim::camsim::{CamSim, CamSimConfig, Fault};
use gateway_sim::receiver::Delivery;
use serde_json::{json, Value};
use std::time::Duration;

type DateTime = chrono::DateTime<chrono::Utc>;

const CAM_PASSWORD: &str = "s3cret-cam-password";

/// Fast health thresholds, so a test sees offline in seconds.
pub(crate) const FAST_HEALTH: &str = "[health]\ncamera_offline_after_s = 3\ncamera_stall_after_s = 2\n\n[rtsp]\nreconnect_max_s = 1\nstep_timeout_s = 3\n\n";

pub(crate) fn camera_toml(id: &str, township: &str, url: &str, password: Option<&str>) -> String {
    let creds = password
        .map(|p| format!("username = \"viewer\"\npassword = \"{p}\"\n"))
        .unwrap_or_default();
    format!("[[cameras]]\nid = \"{id}\"\nname = \"路口{id}\"\ntownship = \"{township}\"\nurl = \"{url}\"\n{creds}\n")
}

pub(crate) async fn camera(env: &Env, id: &str) -> Value {
    let (status, body) = env
        .get(
            &format!("/api/v1/cameras/{id}"),
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

pub(crate) async fn wait_camera(
    env: &Env,
    id: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = camera(env, id).await;
        if ok(&c) {
            return c;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: never {what}: {c}\n{}",
            env.gw.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn camera_events<'a>(d: &'a [Delivery], id: &str) -> Vec<&'a Delivery> {
    d.iter()
        .filter(|d| d.body.as_ref().is_some_and(|b| b["source"]["id"] == id))
        .collect()
}

pub(crate) async fn wait_event(env: &Env, id: &str, kind: &str, n: usize) -> Value {
    let got = env
        .receiver
        .wait_for(WAIT, &format!("{n} × {kind} of {id}"), |d| {
            camera_events(d, id)
                .iter()
                .filter(|d| d.event_header == kind)
                .count()
                >= n
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    camera_events(&got, id)
        .into_iter()
        .filter(|d| d.event_header == kind)
        .nth(n - 1)
        .and_then(|d| d.body.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camsim_cameras_are_measured_a_wrong_password_reported_and_no_secret_leaks() {
    let sim = CamSim::start(CamSimConfig {
        credentials: Some(("viewer".into(), CAM_PASSWORD.into())),
        ..CamSimConfig::local(2)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cams = FAST_HEALTH.to_string();
    cams += &camera_toml("cam-1", "lanjiang", &sim.url(1), Some(CAM_PASSWORD));
    cams += &camera_toml("cam-2", "lanjiang", &sim.url(2), Some("wrong-password"));
    let env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;

    // online, measured from the stream itself
    let c1 = wait_camera(&env, "cam-1", "online at ~25 fps", |c| {
        c["state"] == "online"
            && c["fps"]
                .as_f64()
                .is_some_and(|f| (22.0..=28.0).contains(&f))
    })
    .await;
    assert_eq!(
        (c1["width"].as_u64(), c1["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert!(c1["codec"].as_str().unwrap().starts_with("avc1."), "{c1}");
    assert_eq!(c1["expected_fps"], 25.0);
    assert!(c1["bitrate_kbps"].as_f64().unwrap() > 300.0, "{c1}");
    assert_eq!(
        c1["keyframe_interval_s"].as_f64().map(f64::round),
        Some(2.0),
        "{c1}"
    );

    // a wrong password is reported as such
    let off = wait_event(&env, "cam-2", "camera.offline", 1).await;
    assert_eq!(off["camera"]["reason"], "unauthorized", "{off}");
    assert_eq!(off["camera"]["state"], "offline");
    assert_eq!(off["source"]["protocol"], "rtsp");
    assert_eq!(off["severity"], "major");

    // stalls, drops and their recovery are timed on a manual clock: camera_clock.rs

    // a camera that streams from the first look raised nothing
    assert!(camera_events(&env.receiver.deliveries(), "cam-1").is_empty());
    let m = env.metrics().await;
    assert_eq!(
        metric(
            &m,
            "gateway_camera_up{camera=\"cam-1\",township=\"lanjiang\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "gateway_camera_up{camera=\"cam-2\",township=\"lanjiang\"}"
        ),
        0.0
    );
    assert!(metric(&m, "gateway_camera_frames_total{camera=\"cam-1\"}") > 25.0);
    assert!(
        metric(
            &m,
            "gateway_camera_session_failures_total{reason=\"unauthorized\"}"
        ) >= 1.0
    );

    // filters, scopes, and no secret anywhere
    let (status, body) = env
        .get(
            "/api/v1/cameras?state=offline",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = body["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cam-2"]);
    let (status, body) = env
        .get(
            "/api/v1/cameras?state=sleepy",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_query"))
    );
    let all = env
        .get("/api/v1/cameras", Some(gateway_sim::harness::ADMIN_TOKEN))
        .await
        .1
        .to_string();
    for secret in [CAM_PASSWORD, "wrong-password"] {
        assert!(!all.contains(secret), "a password in the API answer");
        assert!(!env.gw.log().contains(secret), "a password in the log");
        assert!(!m.contains(secret), "a password in the metrics");
    }
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_rtsp_server_is_watched_killed_and_recovered() {
    let server = gateway_sim::gst::GstServer::start(0).unwrap_or_else(|e| panic!("{e}"));
    // the camera's URL stays: the server comes back on the same port
    let port = server.port;
    let cams = format!(
        "{FAST_HEALTH}{}",
        camera_toml("gst-1", "lanjiang", &server.url(), None)
    );
    let env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;
    let c = wait_camera(&env, "gst-1", "online at ~25 fps", |c| {
        c["state"] == "online"
            && c["fps"]
                .as_f64()
                .is_some_and(|f| (20.0..=30.0).contains(&f))
    })
    .await;
    assert_eq!(
        (c["width"].as_u64(), c["height"].as_u64()),
        (Some(320), Some(240)),
        "{c}"
    );
    assert!(c["codec"].as_str().unwrap().starts_with("avc1."), "{c}");

    let killed = std::time::Instant::now();
    server.kill();
    let off = wait_event(&env, "gst-1", "camera.offline", 1).await;
    let reason = off["camera"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ["refused", "connection_closed"].contains(&reason.as_str()),
        "{off}"
    );
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "offline within the configured time"
    );

    let server = gateway_sim::gst::GstServer::start(port).unwrap_or_else(|e| panic!("{e}"));
    let on = wait_event(&env, "gst-1", "camera.online", 1).await;
    assert!(
        on["camera"]["measured"]["away_s"].as_i64().unwrap() >= 3,
        "{on}"
    );
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_frame_rate_degrades_and_a_flapping_camera_is_debounced() {
    let sim = CamSim::start(CamSimConfig::local(2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cams = FAST_HEALTH.replace("[rtsp]\n", "[rtsp]\ndegrade_after_s = 2\n");
    cams += &camera_toml("slow", "lanjiang", &sim.url(1), None);
    cams += &camera_toml("flappy", "lanjiang", &sim.url(2), None);
    let env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;
    wait_camera(&env, "slow", "online", |c| c["state"] == "online").await;
    wait_camera(&env, "flappy", "online", |c| c["state"] == "online").await;

    // 5 fps where the SDP announces 25: degraded, with the numbers
    sim.set_fault(1, Some(Fault::LowFps { fps: 5 }));
    // the other camera's sessions last one second each, then drop and reconnect: never down
    // for camera_offline_after_s (3 s), so never offline
    sim.set_fault(
        2,
        Some(Fault::Drop {
            after: Duration::from_secs(1),
        }),
    );
    let degraded = wait_event(&env, "slow", "camera.degraded", 1).await;
    assert_eq!(degraded["camera"]["reason"], "low_fps", "{degraded}");
    let fps = degraded["camera"]["measured"]["fps"].as_f64().unwrap();
    assert!((3.0..=7.0).contains(&fps), "{degraded}");
    assert_eq!(degraded["camera"]["measured"]["expected_fps"], 25.0);
    sim.set_fault(1, None);
    wait_event(&env, "slow", "camera.online", 1).await;

    let flappy = wait_camera(&env, "flappy", "reconnecting again and again", |c| {
        c["reconnects"].as_u64().unwrap_or(0) >= 4
    })
    .await;
    assert!(
        camera_events(&env.receiver.deliveries(), "flappy").is_empty(),
        "short drops raise nothing: {flappy}"
    );
    sim.set_fault(2, None);
    sim.stop();
}

async fn availability(
    env: &Env,
    id: &str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Value {
    let q = format!(
        "/api/v1/cameras/{id}/availability?from={}&to={}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let (status, body) = env.get(&q, Some(gateway_sim::harness::ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn secs(v: &Value, state: &str) -> f64 {
    v["seconds"][format!("{state}_s")].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_counts_a_scripted_outage_and_a_gateway_restart_as_unknown() {
    let sim = CamSim::start(CamSimConfig::local(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cams = format!(
        "{FAST_HEALTH}{}",
        camera_toml("av-1", "lanjiang", &sim.url(1), None)
    );
    let mut env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;
    let t0 = chrono::Utc::now();
    wait_camera(&env, "av-1", "online", |c| c["state"] == "online").await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // a scripted outage of ~6 s
    let dropped = chrono::Utc::now();
    sim.set_fault(1, Some(Fault::Refuse));
    wait_event(&env, "av-1", "camera.offline", 1).await;
    let elapsed = (chrono::Utc::now() - dropped).to_std().unwrap();
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(elapsed)).await;
    sim.set_fault(1, None);
    let returned = chrono::Utc::now();
    wait_event(&env, "av-1", "camera.online", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t1 = chrono::Utc::now();
    let a = availability(&env, "av-1", t0, t1).await;
    let outage = (returned - dropped).num_milliseconds() as f64 / 1000.0;
    let offline = secs(&a, "offline");
    // offline from the lost session to the first frames back (reconnect backoff adds ≤ 2 s)
    assert!(
        offline >= outage - 1.0 && offline <= outage + 3.0,
        "outage {outage} s: {a}"
    );
    assert!(secs(&a, "online") >= 3.0, "{a}");
    assert!(secs(&a, "unknown") < 3.0, "only before the first look: {a}");
    let total = (t1 - t0).num_milliseconds() as f64 / 1000.0;
    let sum: f64 = ["online", "stalled", "degraded", "offline", "unknown"]
        .iter()
        .map(|s| secs(&a, s))
        .sum();
    assert!(
        (sum - total).abs() < 0.01,
        "the window is accounted whole: {sum} vs {total}"
    );
    let avail = a["availability"].as_f64().unwrap();
    assert!(avail > 0.2 && avail < 0.9, "{a}");
    assessment_agrees(&env, t0, t1, &a, outage).await;

    // the gateway dies for ~4 s: that time is unknown, not online, and the restart raises
    // no new event for a camera the township already knows is online
    env.gw.kill9();
    let killed = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.restart().await;
    wait_camera(&env, "av-1", "online again", |c| c["state"] == "online").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t2 = chrono::Utc::now();
    let b = availability(&env, "av-1", t1, t2).await;
    let down = (chrono::Utc::now() - killed).num_milliseconds() as f64 / 1000.0 - 2.0;
    assert!(secs(&b, "unknown") >= 3.5, "gateway down ~{down} s: {b}");
    assert_eq!(secs(&b, "offline"), 0.0, "{b}");
    assert!(
        secs(&b, "online") <= (t2 - t1).num_milliseconds() as f64 / 1000.0 - 3.5,
        "{b}"
    );
    let online_events = camera_events(&env.receiver.deliveries(), "av-1")
        .iter()
        .filter(|d| d.event_header == "camera.online")
        .count();
    assert_eq!(online_events, 1, "no repeat after the restart");

    // township figure and bad windows
    let (status, t) = env
        .get(
            "/api/v1/townships/lanjiang/availability",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["cameras"][0]["camera"], "av-1");
    let (status, e) = env
        .get(
            "/api/v1/cameras/av-1/availability?from=yesterday",
            Some(gateway_sim::harness::ADMIN_TOKEN),
        )
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("bad_query")),
        "{e}"
    );
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onvif_tamper_is_raised_motion_only_when_enabled_and_a_burst_is_held_to_one() {
    use cameras::rtsp::onvif::sample;
    let sim = CamSim::start(CamSimConfig {
        onvif: [1, 2].into_iter().collect(),
        ..CamSimConfig::local(2)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut cams = FAST_HEALTH.to_string();
    // the default: tamper only
    cams += &camera_toml("onvif-default", "lanjiang", &sim.url(1), None);
    cams += &camera_toml("onvif-motion", "lanjiang", &sim.url(2), None)
        .replace("url =", "onvif_events = [\"motion\", \"tamper\"]\nurl =");
    let env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;
    wait_camera(&env, "onvif-default", "online", |c| c["state"] == "online").await;
    wait_camera(&env, "onvif-motion", "online", |c| c["state"] == "online").await;

    let motion = || {
        sample(
            "tns1:RuleEngine/CellMotionDetector/Motion",
            "IsMotion",
            true,
        )
    };
    let tamper = || sample("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper", true);
    for _ in 0..3 {
        sim.onvif(1, motion());
        sim.onvif(2, motion());
    }
    sim.onvif(1, tamper());
    sim.onvif(1, tamper());
    let t = wait_event(&env, "onvif-default", "camera.tamper", 1).await;
    assert_eq!(t["severity"], "major");
    assert_eq!(
        t["camera"]["reason"],
        "tns1:RuleEngine/TamperDetector/Tamper"
    );
    let m = wait_event(&env, "onvif-motion", "camera.motion", 1).await;
    assert_eq!(m["severity"], "info");
    // every notification read: counted, raised once per kind and camera within the cooldown
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = env.metrics().await;
        let raised = |kind: &str| {
            metric(
                &m,
                &format!("gateway_camera_onvif_events_total{{kind=\"{kind}\",result=\"raised\"}}"),
            )
        };
        let suppressed = |kind: &str| {
            metric(
                &m,
                &format!(
                    "gateway_camera_onvif_events_total{{kind=\"{kind}\",result=\"suppressed\"}}"
                ),
            )
        };
        if raised("motion") == 1.0
            && suppressed("motion") == 2.0
            && raised("tamper") == 1.0
            && suppressed("tamper") == 1.0
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = env.receiver.deliveries();
    assert!(
        camera_events(&d, "onvif-default")
            .iter()
            .all(|e| e.event_header != "camera.motion"),
        "motion is off by default"
    );
    assert_eq!(
        camera_events(&d, "onvif-motion")
            .iter()
            .filter(|e| e.event_header == "camera.motion")
            .count(),
        1
    );
    sim.stop();
}

/// The assessment of the same window: the camera figures are the availability route's, the
/// picture stayed clear (no picture check ran), and the outage is one ticket, closed by the
/// camera's return after about as long as it was scripted.
async fn assessment_agrees(env: &Env, t0: DateTime, t1: DateTime, a: &Value, outage: f64) {
    let q = format!("from={}&to={}", t0.to_rfc3339(), t1.to_rfc3339()).replace('+', "%2B");
    let (s, r) = env
        .get(
            &format!("/api/v1/reports/assessment?{q}"),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let t = &r["townships"][0];
    let cams = &t["cameras"];
    let known: f64 = ["online", "stalled", "degraded", "offline"]
        .iter()
        .map(|k| secs(a, k))
        .sum();
    assert_eq!(cams["registered"], 1);
    assert!(
        (cams["known_s"].as_f64().unwrap() - known).abs() < 0.01,
        "{cams} vs {a}"
    );
    assert!(
        (cams["online_s"].as_f64().unwrap() - secs(a, "online")).abs() < 0.01,
        "{cams}"
    );
    let share = |k: &str| cams[k].as_f64().unwrap();
    assert!(
        (share("integrity") - share("availability")).abs() < 1e-9,
        "a clear picture all along: {cams}"
    );
    let e = &t["events"];
    assert_eq!(
        (&e["camera_outages"], &e["camera_outages_recovered"]),
        (&json!(1), &json!(1)),
        "{e}"
    );
    let mttr = e["camera_mttr_s"].as_f64().unwrap();
    assert!(
        mttr >= outage - 1.0 && mttr <= outage + 6.0,
        "outage {outage} s, MTTR {mttr} s"
    );
}
