//! Picture checks, snapshots and fire→video linkage, against camsim (black, frozen, blurred and
//! good pictures) and GStreamer's RTSP server (videotestsrc patterns).

use crate::cameras::{camera_events, camera_toml, wait_camera, wait_event, FAST_HEALTH};
use crate::common::*;
use gateway_sim::camsim::{CamSim, CamSimConfig, Fault};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A picture sample at every new keyframe (camsim and the GStreamer script send one every 2 s).
/// Every second, baselines learned from three samples.
const FAST_VQD_BASELINE: &str = "[vqd]\ninterval_s = 1\nbaseline_samples = 3\n\n";

fn failing(e: &Value) -> Vec<&str> {
    e["camera"]["failing_checks"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

async fn get_bytes(env: &Env, path: &str, token: &str) -> (u16, Option<String>, Vec<u8>) {
    let r = env
        .client
        .get(env.gw.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("gateway answers");
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, ctype, r.bytes().await.unwrap().to_vec())
}

/// Waits until the event `id` is delivered; its body.
async fn delivered(env: &Env, id: &str) -> Value {
    let got = env
        .receiver
        .wait_for(WAIT, &format!("event {id} delivered"), |d| {
            d.iter().any(|d| d.idempotency_key == id)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    got.into_iter()
        .find(|d| d.idempotency_key == id)
        .and_then(|d| d.body)
        .expect("recorded body")
}

fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    cameras::video::decode::jpeg_dimensions(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camsim_black_frozen_blurred_and_profiled_pictures_are_reported_and_recovery_clears() {
    let sim = CamSim::start(CamSimConfig {
        faults: [(2, Fault::Black), (3, Fault::Frozen)]
            .into_iter()
            .collect(),
        ..CamSimConfig::local(5)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // cam-5 is judged by a profile of its own (a camera facing a bright sky, say)
    let mut cams =
        format!("{FAST_HEALTH}{FAST_VQD_BASELINE}[vqd.profiles.glare]\nbright_luma = 100\n\n");
    for n in 1..=5 {
        cams += &camera_toml(&format!("cam-{n}"), "lanjiang", &sim.url(n), None);
    }
    cams += "vqd_profile = \"glare\"\n";
    let mut env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;

    let black = wait_event(&env, "cam-2", "camera.quality", 1).await;
    assert_eq!(failing(&black), vec!["black"], "{black}");
    assert!(black["camera"]["measured"]["mean_luma"].as_f64().unwrap() < 28.0);
    assert_eq!(black["severity"], "minor");
    let glare = wait_event(&env, "cam-5", "camera.quality", 1).await;
    assert_eq!(failing(&glare), vec!["overexposed"], "{glare}");
    let frozen = wait_event(&env, "cam-3", "camera.quality", 1).await;
    assert_eq!(failing(&frozen), vec!["frozen"], "{frozen}");
    assert_eq!(frozen["camera"]["measured"]["changed_ratio"], 0.0);
    // cam-4 goes out of focus once its baseline is learned: its detail falls far below its own
    let learned = wait_camera(&env, "cam-4", "judged against its baseline", |c| {
        c["picture"]["measured"]["covered_ratio"].as_f64().is_some()
    })
    .await;
    assert_eq!(learned["picture"]["baseline"], "learned", "{learned}");
    assert_eq!(learned["picture"]["baseline_progress"], 3, "{learned}");
    assert_eq!(learned["picture"]["failing"], json!([]), "{learned}");
    sim.set_fault(4, Some(Fault::Blurred));
    let blurred = wait_event(&env, "cam-4", "camera.quality", 1).await;
    assert_eq!(failing(&blurred), vec!["blurred"], "{blurred}");

    // the good camera has been sampled several times by now, and passes every check
    let good = wait_camera(&env, "cam-1", "sampled", |c| {
        c["picture"]["measured"]["changed_ratio"].as_f64().is_some()
    })
    .await;
    assert_eq!(good["picture"]["failing"], serde_json::json!([]), "{good}");
    assert!(camera_events(&env.receiver.deliveries(), "cam-1")
        .iter()
        .all(|d| d.event_header != "camera.quality"));

    // the cameras with a bad picture, as ops list them
    let (status, list) = env
        .get("/api/v1/cameras?picture=failing", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["cam-2", "cam-3", "cam-4", "cam-5"], "{list}");
    let (status, _) = env
        .get("/api/v1/cameras?picture=bad", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 400);

    // integrity: one of five cameras is online with a clear picture
    env.wait_metric("gateway_camera_integrity_ratio{township=\"lanjiang\"}", 0.2)
        .await;
    let (_, t) = env.get("/api/v1/townships", Some(ADMIN_TOKEN)).await;
    assert_eq!(t["townships"][0]["camera_integrity_ratio"], 0.2, "{t}");

    // the black camera recovers: cleared after two good samples
    sim.set_fault(2, None);
    let clear = wait_event(&env, "cam-2", "camera.quality", 2).await;
    assert_eq!(failing(&clear), Vec::<&str>::new(), "{clear}");
    assert_eq!(
        clear["camera"]["cleared_checks"],
        serde_json::json!(["black"])
    );
    assert_eq!(clear["camera"]["reason"], "cleared");
    let m = env.metrics().await;
    assert!(
        metric(&m, "gateway_vqd_samples_total{result=\"ok\"}") >= 10.0,
        "{m}"
    );

    // the baselines are kept in the outbox: after a kill -9 and a restart the first sample is
    // judged against the one learned before
    env.gw.kill9();
    env.restart().await;
    let resumed = wait_camera(&env, "cam-1", "sampled again", |c| c["picture"].is_object()).await;
    assert_eq!(resumed["picture"]["baseline"], "learned", "{resumed}");
    assert!(
        resumed["picture"]["measured"]["view_match"]
            .as_f64()
            .is_some_and(|m| m > 0.5),
        "{resumed}"
    );

    // ops accept a view moved on purpose: the baseline is learned again from the next samples
    let path = "/api/v1/cameras/cam-1/baseline/relearn";
    let (status, body) = env.post(path, Some(INGEST_TOKEN), &json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = env.post(path, Some(ADMIN_TOKEN), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["baseline"], "learning");
    wait_camera(&env, "cam-1", "learning again", |c| {
        c["picture"]["baseline"] == "learning"
    })
    .await;
    wait_camera(&env, "cam-1", "learned again", |c| {
        c["picture"]["baseline"] == "learned"
    })
    .await;
    let (status, _) = env
        .post(
            "/api/v1/cameras/nope/baseline/relearn",
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_jpegs_of_the_stream_and_township_scoped() {
    let sim = CamSim::start(CamSimConfig::local(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cams = format!(
        "{FAST_HEALTH}{}",
        camera_toml("cam-1", "lanjiang", &sim.url(1), None)
    );
    let env = Env::start(&["lanjiang", "nvbu"], |c| c.extra += &cams).await;
    wait_camera(&env, "cam-1", "online", |c| c["state"] == "online").await;

    let (status, ctype, jpeg) = get_bytes(
        &env,
        "/api/v1/cameras/cam-1/snapshot.jpg",
        &township_token("lanjiang"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ctype.as_deref(), Some("image/jpeg"));
    assert_eq!(
        jpeg_size(&jpeg),
        Some((640, 360)),
        "the stream's dimensions"
    );
    // the thumbnail, made from the same decode
    let (status, _, thumb) = get_bytes(
        &env,
        "/api/v1/cameras/cam-1/snapshot.jpg?width=320",
        &township_token("lanjiang"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(jpeg_size(&thumb), Some((320, 180)), "a thumbnail");
    // a newer keyframe arrives (60 frames: more than one of camsim's 50-frame GOPs), yet the
    // wall is served the thumbnail it had (kept 30 s: no decode per viewer)
    let frames =
        |m: &str| gateway_sim::harness::metric(m, "gateway_camera_frames_total{camera=\"cam-1\"}");
    let before = frames(&env.metrics().await);
    let deadline = Instant::now() + WAIT;
    while frames(&env.metrics().await) < before + 60.0 {
        assert!(Instant::now() < deadline, "no frames");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, _, again) = get_bytes(
        &env,
        "/api/v1/cameras/cam-1/snapshot.jpg?width=160",
        &township_token("lanjiang"),
    )
    .await;
    assert!(again == thumb, "the thumbnail was made again");
    // decodes as a picture (ffmpeg reads it back)
    let path = env.dir.path().join("snap.jpg");
    std::fs::write(&path, &jpeg).unwrap();
    gateway_sim::harness::require("ffprobe", "ffmpeg").unwrap_or_else(|e| panic!("{e}"));
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe");
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "mjpeg,640,360"
    );

    let (status, _, body) = get_bytes(
        &env,
        "/api/v1/cameras/cam-1/snapshot.jpg",
        &township_token("nvbu"),
    )
    .await;
    assert_eq!(status, 404, "another township's token");
    assert!(jpeg_size(&body).is_none());
    let (status, _, _) = get_bytes(&env, "/api/v1/cameras/nope/snapshot.jpg", ADMIN_TOKEN).await;
    assert_eq!(status, 404);

    // an offline camera: 503 naming why, at once
    sim.set_fault(1, Some(Fault::Refuse));
    wait_camera(&env, "cam-1", "disconnected", |c| c["connected"] == false).await;
    let (status, body) = env
        .get("/api/v1/cameras/cam-1/snapshot.jpg", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "no_picture", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_alarm_carries_its_cameras_snapshots_and_an_offline_camera_does_not_hold_it() {
    let sim = CamSim::start(CamSimConfig {
        faults: [(2, Fault::Refuse)].into_iter().collect(),
        ..CamSimConfig::local(3)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut extra = FAST_HEALTH.to_string();
    for n in 1..=2 {
        extra += &camera_toml(&format!("cam-{n}"), "lanjiang", &sim.url(n), None);
    }
    // a camera across the boundary watches one of the mall's detectors
    extra += &camera_toml("cam-3", "nvbu", &sim.url(3), None);
    extra += "[[units]]\nid = \"mall\"\nname = \"商场\"\ntownship = \"lanjiang\"\ncameras = [\"cam-1\"]\n\
              [[units.camera_links]]\ncomponent_addr = 77\ncameras = [\"cam-3\"]\n\n\
              [[units]]\nid = \"depot\"\nname = \"仓库\"\ntownship = \"lanjiang\"\ncameras = [\"cam-2\"]\n\n";
    let env = Env::start(&["lanjiang", "nvbu"], |c| {
        c.units.clear();
        c.extra += &extra;
        // lanjiang's fire alarms go to the fire brigade by rule
        crate::cases::departments(c);
    })
    .await;
    wait_camera(&env, "cam-1", "online", |c| c["state"] == "online").await;
    wait_camera(&env, "cam-3", "online", |c| c["state"] == "online").await;
    wait_event(&env, "cam-2", "camera.offline", 1).await;

    // a linked alarm: delivered with the snapshot, within two seconds of the push
    let pushed = Instant::now();
    let (status, r) = env.push("mall", "status", &fire(5)).await;
    assert_eq!(status, 202, "{r}");
    let id = r["events"][0].as_str().unwrap().to_string();
    let body = delivered(&env, &id).await;
    let took = pushed.elapsed();
    assert!(took <= Duration::from_secs(2), "delivered after {took:?}");
    let evidence = body["evidence"].as_array().expect("evidence");
    assert_eq!(evidence.len(), 1, "{body}");
    assert_eq!(evidence[0]["camera"], "cam-1");
    assert_eq!(evidence[0]["kind"], "snapshot");
    let url = evidence[0]["url"].as_str().unwrap();
    assert!(url.starts_with("/api/v1/snapshots/cam-1/"), "{url}");
    let (status, ctype, jpeg) = get_bytes(&env, url, &township_token("lanjiang")).await;
    assert_eq!((status, ctype.as_deref()), (200, Some("image/jpeg")));
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)));
    let (status, _, _) = get_bytes(&env, url, &township_token("nvbu")).await;
    assert_eq!(status, 404, "another township cannot fetch the evidence");
    // the stored event shows it too
    let stored = env
        .wait_event(&id, "evidence", |e| e["evidence"][0]["url"] == url)
        .await;
    assert_eq!(stored["kind"], "fire.alarm");

    // two alarms at once use the same keyframe: one encode, one file on disk, shared
    let (f11, f12) = (fire(11), fire(12));
    let (a, b) = tokio::join!(
        env.push("mall", "status", &f11),
        env.push("mall", "status", &f12)
    );
    // (on a loaded machine a picture may come after the deadline: it is attached late)
    let mut urls = Vec::new();
    for r in [a, b] {
        let id = r.1["events"][0].as_str().unwrap().to_string();
        let e = env
            .wait_event(&id, "its picture", |e| e["evidence"][0]["url"].is_string())
            .await;
        urls.push(e["evidence"][0]["url"].clone());
    }
    assert_eq!(urls[0], urls[1], "one file per keyframe");

    // a component with its own camera gets that camera's picture
    let (_, r) = env.push("mall", "status", &fire(77)).await;
    let id77 = r["events"][0].as_str().unwrap().to_string();
    let body = delivered(&env, &id77).await;
    assert_eq!(body["evidence"][0]["camera"], "cam-3", "{body}");
    // evidence follows the event's township, not the camera's
    let url77 = body["evidence"][0]["url"].as_str().unwrap();
    let (status, _, _) = get_bytes(&env, url77, &township_token("lanjiang")).await;
    assert_eq!(status, 200, "the alarm's own township sees its evidence");
    let (status, _, _) = get_bytes(&env, url77, &township_token("nvbu")).await;
    assert_eq!(
        status, 404,
        "the camera's township does not see another's alarm"
    );
    let brigade = "brigade-token-0123456789";
    let (status, _, _) = get_bytes(&env, url77, brigade).await;
    assert_eq!(
        status, 200,
        "the department the alarm is assigned to sees its evidence"
    );
    let (status, _, _) = get_bytes(&env, url77, "video-ops-token-0123456789").await;
    assert_eq!(status, 404, "another department does not");
    let (code, out, _) = env.cli(&["check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(
            "warning: unit `mall` (township `lanjiang`) links camera `cam-3` of township `nvbu`"
        ),
        "{out}"
    );

    // a unit whose camera is offline: the alarm goes out at once, without a picture
    let pushed = Instant::now();
    let (_, r) = env.push("depot", "status", &fire(9)).await;
    let id2 = r["events"][0].as_str().unwrap().to_string();
    let body = delivered(&env, &id2).await;
    let took = pushed.elapsed();
    assert!(took < Duration::from_secs(1), "not held back: {took:?}");
    assert_eq!(body["evidence"], serde_json::json!([]), "{body}");
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_linkage_video_total{result=\"attached\"}")
            + metric(&m, "gateway_linkage_video_total{result=\"late\"}"),
        4.0,
        "four linked alarms with a picture, before delivery or just after: {m}"
    );
    assert_eq!(
        metric(&m, "gateway_linkage_video_total{result=\"missed\"}"),
        1.0,
        "{m}"
    );
}

/// Waits until camera `id`'s samples carry `measure` (judged against its baseline), signals its
/// GStreamer server to change the picture, and returns the `camera.quality` event that follows.
async fn changed_once_learned(
    env: &Env,
    id: &str,
    measure: &str,
    server: &gateway_sim::gst::GstServer,
) -> Value {
    let c = wait_camera(env, id, "learned its view", |c| {
        c["picture"]["baseline"] == "learned"
    })
    .await;
    // a turn is judged only on a view that held still while learning (a moving one is not)
    if measure == "view_match" {
        assert_eq!(c["picture"]["view_steady"], true, "{c}");
    }
    wait_camera(env, id, "judged against its baseline", |c| {
        c["picture"]["measured"][measure].as_f64().is_some()
    })
    .await;
    server.signal_usr1().unwrap_or_else(|e| panic!("{e}"));
    wait_event(env, id, "camera.quality", 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_black_frozen_covered_and_turned_pictures_are_reported_the_moving_one_never() {
    let mut servers = Vec::new();
    let mut cams = format!("{FAST_HEALTH}{FAST_VQD_BASELINE}");
    // `smpte75`: colour bars that never change (the `smpte` pattern has a corner of live snow,
    // which rightly keeps it from looking frozen)
    for (id, pattern) in [
        ("gst-ball", "ball"),
        ("gst-black", "black"),
        ("gst-smpte", "smpte75"),
        ("gst-covered", "covered"),
        ("gst-turned", "turned"),
    ] {
        let s = gateway_sim::gst::GstServer::start_pattern(0, pattern)
            .unwrap_or_else(|e| panic!("{e}"));
        cams += &camera_toml(id, "lanjiang", &s.url(), None);
        servers.push(s);
    }
    let env = Env::start(&["lanjiang"], |c| c.extra += &cams).await;
    let black = wait_event(&env, "gst-black", "camera.quality", 1).await;
    assert_eq!(failing(&black), vec!["black"], "{black}");
    // a board comes down over the moving picture, and another camera is turned, each once it
    // has learned its view
    let covered = changed_once_learned(&env, "gst-covered", "covered_ratio", &servers[3]).await;
    assert_eq!(failing(&covered), vec!["occluded"], "{covered}");
    let covered_ratio = covered["camera"]["measured"]["covered_ratio"].as_f64();
    assert!(covered_ratio.is_some_and(|c| c >= 0.3), "{covered}");
    let turned = changed_once_learned(&env, "gst-turned", "view_match", &servers[4]).await;
    assert_eq!(failing(&turned), vec!["scene_changed"], "{turned}");
    let view_match = turned["camera"]["measured"]["view_match"].as_f64();
    assert!(view_match.is_some_and(|m| m < 0.5), "{turned}");
    let got = env
        .receiver
        .wait_for(WAIT, "gst-smpte reported frozen", |d| {
            camera_events(d, "gst-smpte").iter().any(|d| {
                d.body
                    .as_ref()
                    .is_some_and(|b| failing(b).contains(&"frozen"))
            })
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    let frozen = camera_events(&got, "gst-smpte")
        .into_iter()
        .find_map(|d| d.body.clone().filter(|b| failing(b).contains(&"frozen")))
        .unwrap();
    assert_eq!(
        frozen["camera"]["measured"]["changed_ratio"], 0.0,
        "{frozen}"
    );
    // colour bars are a sharp picture with few edges: judged on their edges, never blurred
    assert!(
        camera_events(&env.receiver.deliveries(), "gst-smpte")
            .iter()
            .filter_map(|d| d.body.as_ref())
            .all(|b| !failing(b).contains(&"blurred")),
        "static colour bars called blurred"
    );
    let good = wait_camera(&env, "gst-ball", "sampled three times", |c| {
        c["picture"]["measured"]["changed_ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    })
    .await;
    assert_eq!(good["picture"]["failing"], serde_json::json!([]), "{good}");
    assert!(camera_events(&env.receiver.deliveries(), "gst-ball")
        .iter()
        .all(|d| d.event_header != "camera.quality"));
    let (status, _, jpeg) =
        get_bytes(&env, "/api/v1/cameras/gst-ball/snapshot.jpg", ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_after_the_deadline_follows_as_event_evidence() {
    let sim = CamSim::start(CamSimConfig::local(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // a keyframe older than 1 s is not a current picture; alarms wait 1 s for snapshots
    let mut extra =
        String::from("[snapshots]\nmax_age_s = 1\n\n[linkage]\nvideo_deadline_ms = 1000\n\n");
    extra += &camera_toml("cam-1", "lanjiang", &sim.url(1), None);
    extra += "[[units]]\nid = \"mall\"\nname = \"商场\"\ntownship = \"lanjiang\"\ncameras = [\"cam-1\"]\n\n";
    let env = Env::start(&["lanjiang"], |c| {
        c.units.clear();
        c.extra += &extra;
    })
    .await;
    wait_camera(&env, "cam-1", "online", |c| c["state"] == "online").await;

    // frames stop (the session stays up): no current picture at the alarm
    sim.set_fault(
        1,
        Some(Fault::Stall {
            after: Duration::ZERO,
        }),
    );
    // let the last keyframe age past max_age_s (time itself is the condition here)
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let pushed = Instant::now();
    let (_, r) = env.push("mall", "status", &fire(5)).await;
    let id = r["events"][0].as_str().unwrap().to_string();
    let alarm = delivered(&env, &id).await;
    let took = pushed.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "held at most the deadline: {took:?}"
    );
    assert_eq!(alarm["evidence"], serde_json::json!([]));

    // frames come back: the picture follows as event.evidence referring to the alarm
    sim.set_fault(1, None);
    let got = env
        .receiver
        .wait_for(WAIT, "the evidence follow-up", |d| {
            d.iter().any(|d| d.event_header == "event.evidence")
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", env.gw.log()));
    let follow = got
        .iter()
        .find(|d| d.event_header == "event.evidence")
        .and_then(|d| d.body.clone())
        .unwrap();
    assert_eq!(follow["refers_to"], id.as_str(), "{follow}");
    assert_eq!(follow["severity"], "info");
    assert_eq!(follow["source"]["id"], "mall");
    assert_eq!(follow["evidence"][0]["camera"], "cam-1", "{follow}");
    let url = follow["evidence"][0]["url"].as_str().unwrap().to_string();
    let (status, _, jpeg) = get_bytes(&env, &url, ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(jpeg_size(&jpeg), Some((640, 360)));
    // and the stored alarm has it too
    env.wait_event(&id, "the late evidence", |e| {
        e["evidence"][0]["url"] == url.as_str()
    })
    .await;
    let m = env.metrics().await;
    assert_eq!(
        metric(&m, "gateway_linkage_video_total{result=\"late\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "gateway_linkage_video_total{result=\"attached\"}"),
        0.0,
        "{m}"
    );
}
